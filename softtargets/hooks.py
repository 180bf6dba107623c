"""How the library reports progress and curves without printing: the CLI and trackers implement Hooks."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


class Hooks:
    """Silent by default. progress() yields advance(n=1, **info); scalars() receives per-epoch curves."""

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[..., None]]:
        yield lambda n=1, **info: None

    def scalars(self, series: str, step: int, values: dict[str, float]) -> None:
        pass


class HookList(Hooks):
    """Fan out to several hooks (e.g. the CLI's progress bars and the run folder's metrics.jsonl)."""

    def __init__(self, *hooks: Hooks):
        self.hooks = [h for h in hooks if h is not None]

    @contextmanager
    def progress(self, description: str, total: int):
        from contextlib import ExitStack

        with ExitStack() as stack:
            advances = [stack.enter_context(h.progress(description, total)) for h in self.hooks]

            def advance(n=1, **info):
                for a in advances:
                    a(n, **info)

            yield advance

    def scalars(self, series: str, step: int, values: dict[str, float]) -> None:
        for h in self.hooks:
            h.scalars(series, step, values)
