import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def no_real_clearml(monkeypatch, tmp_path):
    """`--tracker auto` is the default: no test may reach the developer's ClearML server through a real
    ~/clearml.conf or CLEARML_* variables (tests that want ClearML set their own)."""
    for name in list(os.environ):
        if name.startswith(("CLEARML_", "TRAINS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(tmp_path / "no-clearml.conf"))


@pytest.fixture
def fast(tmp_path):
    """CLI/config overrides for quick digits experiments that write only under tmp_path."""
    return {
        "training.epochs": 3,
        "unlearning.epochs": 2,
        "out": str(tmp_path / "runs"),
        "cache_dir": str(tmp_path / "cache"),
        "device": "cpu",
    }


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from softtargets.cli import main

    def invoke(*args: str):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
