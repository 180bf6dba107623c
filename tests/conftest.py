import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


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
