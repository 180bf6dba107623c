"""A small stand-in for a ClearML server (API + file server) on 127.0.0.1, for tests.

It exists so the *online* code path of the ClearML tracker (authentication, task creation, parameters,
events, artifact upload, status changes) runs against real HTTP in tests, without a ClearML server or
internet. It keeps just enough state (tasks, projects) for the real SDK to work, and records every request
so a test can assert what the SDK sent.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

API_VERSION = "2.23"


class FakeClearML:
    """Start with `with FakeClearML() as server:`; server.api / server.files are the URLs to configure."""

    def __init__(self, tasks: dict[str, dict] | None = None):
        self.calls: list[tuple[str, dict]] = []  # (service.action, request body)
        self.events: list[dict] = []
        self.uploads: list[bytes] = []  # raw bodies of the requests to the file server
        self.tasks: dict[str, dict] = dict(tasks or {})
        self.projects: dict[str, dict] = {}
        self.auth_headers: list[str] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.api = f"http://127.0.0.1:{self.httpd.server_port}"
        self.files = f"{self.api}/files"

    def __enter__(self) -> "FakeClearML":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def endpoints(self) -> list[str]:
        return [name for name, _ in self.calls]

    def bodies(self, endpoint: str) -> list[dict]:
        return [body for name, body in self.calls if name == endpoint]

    # ----- API -----------------------------------------------------------------------------------------

    def answer(self, endpoint: str, body) -> dict:
        service, _, action = endpoint.partition(".")
        if endpoint == "auth.login":
            claims = {"api_version": API_VERSION, "server_version": "1.16.0", "exp": int(time.time()) + 86400,
                      "identity": {"user": "tester", "company": "test"}}
            return {"token": jwt.encode(claims, "a test server signs nothing that matters", algorithm="HS256")}
        if endpoint == "events.add_batch":
            self.events.extend(body)
            return {"added": len(body), "errors": 0}
        if endpoint == "projects.create":
            pid = uuid.uuid4().hex
            self.projects[pid] = {"id": pid, **body}
            return {"id": pid}
        if endpoint in ("projects.get_all", "projects.get_all_ex"):
            names = body.get("name")
            found = [p for p in self.projects.values() if not names or p["name"].strip("^$") in str(names)]
            return {"projects": found}
        if endpoint == "projects.get_by_id":
            return {"project": self.projects.get(body.get("project"), {})}
        if endpoint == "tasks.create":
            tid = uuid.uuid4().hex
            self.tasks[tid] = {"id": tid, "status": "created", "hyperparams": {}, "configuration": {},
                               "execution": {"artifacts": []}, "tags": [], "system_tags": [], "output": {}, **body}
            return {"id": tid}
        if endpoint in ("tasks.get_by_id", "tasks.get_all", "tasks.get_all_ex"):
            ids = body.get("id") or body.get("task")
            ids = [ids] if isinstance(ids, str) else (ids or [])
            found = [self.tasks[i] for i in ids if i in self.tasks]
            return {"task": found[0]} if action == "get_by_id" and found else {"tasks": found}
        task = self.tasks.get(body.get("task")) if isinstance(body, dict) else None
        if task is not None:
            return self._update_task(task, action, body)
        return {}

    def _update_task(self, task: dict, action: str, body: dict) -> dict:
        if action in ("started", "stopped", "completed", "failed", "close", "publish", "reset"):
            task["status"] = {"started": "in_progress", "close": "closed", "publish": "published",
                              "reset": "created"}.get(action, action)
            return {"updated": 1, "fields": {"status": task["status"]}}
        if action == "edit_hyper_params":
            for p in body.get("hyperparams", []):
                task["hyperparams"].setdefault(p["section"], {})[p["name"]] = p
        elif action == "edit_configuration":
            for c in body.get("configuration", []):
                task["configuration"][c["name"]] = c
        elif action == "add_or_update_artifacts":
            arts = {a["key"]: a for a in task["execution"].get("artifacts", [])}
            arts.update({a["key"]: a for a in body.get("artifacts", [])})
            task["execution"]["artifacts"] = list(arts.values())
        elif action in ("edit", "add_or_update_model", "set_requirements"):
            task.update({k: v for k, v in body.items() if k not in ("task", "force")})
        elif action in ("add_tags", "remove_tags"):
            pass
        return {"updated": 1, "fields": {}}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:  # the SDK sends API calls as GET with a JSON body
                raw = self._body()
                if self.path.startswith("/files"):
                    with server.lock:
                        server.uploads.append(raw)
                    self._reply(200, b"{}")
                else:
                    self._api(raw)

            do_GET = do_PUT = do_POST

            def _api(self, raw: bytes) -> None:
                endpoint = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
                if endpoint.startswith("debug.ping"):
                    self._reply(200, b"{}")
                    return
                text = raw.decode() if raw else ""
                if endpoint == "events.add_batch":
                    body = [json.loads(line) for line in text.splitlines() if line.strip()]
                else:
                    body = json.loads(text) if text.strip() else {}
                with server.lock:
                    server.calls.append((endpoint, body))
                    server.auth_headers.append(self.headers.get("Authorization", ""))
                    data = server.answer(endpoint, body)
                payload = {"meta": {"id": uuid.uuid4().hex, "trx": uuid.uuid4().hex,
                                    "endpoint": {"name": endpoint, "requested_version": API_VERSION,
                                                 "actual_version": API_VERSION},
                                    "result_code": 200, "result_subcode": 0, "result_msg": "OK", "error_stack": ""},
                           "data": data}
                self._reply(200, json.dumps(payload).encode())

            def _reply(self, code: int, content: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        return Handler
