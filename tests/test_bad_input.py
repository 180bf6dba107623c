"""Hostile and careless input: every row fails before any training with exit code 2, exactly one line on stderr
naming the problem, and nothing written under --out or --cache-dir (issue 18). Rows that could expand a small
input into a huge value (YAML aliases, ranges, labels) run under a tight address-space limit."""

import contextlib
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FAST = ["--epochs", "1", "--unlearn-epochs", "1", "--device", "cpu"]
# "billion laughs": 18 anchored lists, each holding the previous one 9 times: 9^18 values from 600 bytes
LEVELS = "abcdefghijklmnopqr"
BOMB = "[" + ", ".join(["&a [1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [f"&{b} [{', '.join(['*' + a] * 9)}]"
                                                              for a, b in zip(LEVELS, LEVELS[1:])]) + "]"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def config(tmp_path, text: str) -> list[str]:
    return ["--config", str(write(tmp_path / "in" / "exp.yaml", text))]


def csv_dataset(tmp_path, labels: list[str]) -> list[str]:
    """A csv: dataset of 4x4 images, one train row per label (plus a test row per label)."""
    rows = ["index;Path;Class_Label;train_split;f1_split"]
    for i, label in enumerate(labels * 2):
        image = tmp_path / "in" / "img" / f"{i}.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((4, 4), i, dtype=np.uint8), "L").save(image)
        rows.append(f"{i};img/{i}.png;{label};{int(i < len(labels))};0")
    return ["--dataset", f"csv:{write(tmp_path / 'in' / 'index.csv', chr(10).join(rows) + chr(10))}"]


def nan_image_folder(tmp_path) -> list[str]:
    """A folder: dataset whose one float TIFF has an inf pixel."""
    for label, name in enumerate(("a", "b")):
        for i in range(5):
            image = tmp_path / "in" / "ds" / name / f"{i}.png"
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8), 40 * label + i, dtype=np.uint8), "L").save(image)
    Image.fromarray(np.full((8, 8), np.inf, dtype=np.float32), "F").save(tmp_path / "in" / "ds" / "a" / "x.tif")
    return ["--dataset", f"folder:{tmp_path / 'in' / 'ds'}"]


def forget_file(tmp_path, content: bytes) -> list[str]:
    return ["--forget", f"file:{write(tmp_path / 'in' / 'ids.txt', content)}"]


def grid(tmp_path, axes: str) -> list[str]:
    text = f"name: bad\nbase:\n  training: {{epochs: 1}}\n  device: cpu\naxes:\n{axes}\n"
    return ["sweep", str(write(tmp_path / "in" / "grid.yaml", text))]


def plugin(tmp_path, body: str) -> list[str]:
    return ["--mu_algo", f"{write(tmp_path / 'in' / 'plug.py', body)}:Plug"]


# (id, args builder, expected part of the message); the command is `run` unless the args start with one
ROWS = [
    ("lr-nan", lambda t: ["--unlearn-lr", "nan"], "'unlearning.lr' must be a finite number, got nan"),
    ("lr-inf", lambda t: ["--unlearn-lr", "inf"], "'unlearning.lr' must be a finite number"),
    ("lr-zero", lambda t: ["--unlearn-lr", "0"], "unlearning.lr must be a finite number > 0"),
    ("seed-negative", lambda t: ["--seed", "-5"], "--seed must be an integer in 0..4294967295, got -5"),
    ("seed-huge", lambda t: ["--seed", "99999999999999999999"], "--seed must be an integer in 0..4294967295"),
    ("temperature-inf", lambda t: ["--targets", "soft", "--temperature", "inf"],
     "'targets.temperature' must be a finite number, got inf"),
    ("temperature-nan", lambda t: ["--temperature", "nan"], "'targets.temperature' must be a finite number"),
    ("smoothing-nan", lambda t: ["--smoothing", "nan"], "'targets.smoothing' must be a finite number"),
    ("param-bool", lambda t: ["--param", "alpha=true"], "parameter 'alpha' must be a finite number, got True"),
    ("param-list", lambda t: ["--param", "alpha=[1,2]"], "parameter 'alpha' must be a finite number, got [1, 2]"),
    ("param-nan", lambda t: ["--param", "alpha=nan"], "parameter 'alpha' must be a finite number"),
    ("param-inf", lambda t: ["--param", "alpha=1e400"], "parameter 'alpha' must be a finite number"),
    ("param-bomb", lambda t: ["--param", f"alpha={BOMB}"], "expands to more than 100,000 values"),
    ("param-syntax", lambda t: ["--param", "alpha=[1,"], "is not a valid value"),
    ("scrub-msteps-text", lambda t: ["--mu_algo", "scrub", "--param", "msteps=abc"],
     "parameter 'msteps' must be an integer, got 'abc'"),
    ("scrub-msteps-fraction", lambda t: ["--mu_algo", "scrub", "--param", "msteps=2.5"],
     "parameter 'msteps' must be an integer"),
    ("scrub-milestones", lambda t: ["--mu_algo", "scrub", "--param", "milestones=[5,x]"],
     "parameter 'milestones'[1] must be an integer"),
    ("unsir-noise-text", lambda t: ["--mu_algo", "unsir", "--param", "noise_count=abc"],
     "parameter 'noise_count' must be an integer"),
    ("unsir-noise-huge", lambda t: ["--mu_algo", "unsir", "--param", "noise_count=100000000000"],
     "parameter 'noise_count' must be in [1, 65536]"),
    ("salun-ratio", lambda t: ["--mu_algo", "salun", "--param", "ratio=5"], "parameter 'ratio' must be in (0, 1]"),
    ("clip-negative", lambda t: config(t, "unlearning: {clip_grad: -1.0}"),
     "unlearning.clip_grad must be a finite number > 0"),
    ("clip-zero", lambda t: config(t, "unlearning: {clip_grad: 0}"), "unlearning.clip_grad must be a finite number > 0"),
    ("retain-floor", lambda t: config(t, "unlearning: {retain_floor: 5}"),
     "unlearning.retain_floor must be an accuracy in [0, 1]"),
    ("momentum", lambda t: config(t, "unlearning: {momentum: -0.9}"), "unlearning.momentum must be a finite number >= 0"),
    ("weight-decay", lambda t: config(t, "training: {weight_decay: -1}"),
     "training.weight_decay must be a finite number >= 0"),
    ("optimizer", lambda t: config(t, "unlearning: {optimizer: lbfgs}"), "unknown unlearning.optimizer 'lbfgs'"),
    ("int-overflow", lambda t: config(t, "training: {batch_size: 1e400}"), "'training.batch_size' must be int"),
    ("config-seed", lambda t: config(t, "seed: -1"), "--seed must be an integer in 0..4294967295, got -1"),
    ("config-not-utf8", lambda t: ["--config", str(write(t / "in" / "c.yaml", "seed: 1 # caf\xe9".encode("latin-1")))],
     "is not UTF-8 text"),
    ("config-bomb", lambda t: config(t, f"unlearning:\n  alpha: {BOMB}\n"), "expands to more than 100,000 values"),
    ("config-huge", lambda t: config(t, "seed: 1\n" + "#" * (2 << 20)), "a YAML config must be under"),
    ("out-is-file", lambda t: ["--out", str(write(t / "in" / "a-file", "x"))], "is a file: give a folder path"),
    ("out-under-file", lambda t: ["--out", str(write(t / "in" / "a-file", "x") / "runs")], "a file: give a folder"),
    ("cache-is-file", lambda t: ["--cache-dir", str(write(t / "in" / "a-file", "x"))], "--cache-dir"),
    ("architecture-path", lambda t: ["--architecture", "../../x"], "unknown architecture '../../x'"),
    ("method-path", lambda t: ["--mu_algo", "../../x"], "unknown method '../../x'"),
    ("protocol-path", lambda t: ["--protocol", "../../x"], "unknown protocol '../../x'"),
    ("plugin-exit", lambda t: plugin(t, "import sys\nsys.exit(0)\n"), "it called sys.exit(0) while importing"),
    ("forget-file-superscript", lambda t: forget_file(t, "1\n²\n".encode()),
     "1 entries are not train indices in 0..1436: ²"),
    ("forget-file-not-utf8", lambda t: forget_file(t, b"1\n\xff\n"), "is not UTF-8 text"),
    ("image-inf", nan_image_folder, "x.tif has nan or inf pixel values"),
    ("csv-mixed-labels", lambda t: csv_dataset(t, [str(i) for i in range(11)] + ["cat"]),
     "label 'cat' is not an integer while other labels are"),
    ("csv-huge-label", lambda t: csv_dataset(t, ["0", "100000000"]), "class 1 has no train rows"),
    ("csv-enormous-label", lambda t: csv_dataset(t, ["0", "1" * 5000]), "is too large: integer labels are class"),
    ("compare-seeds-huge", lambda t: ["compare", "--seeds", "99999999999999999999"], "must give 1 to 10,000 seeds"),
    ("compare-seeds-negative", lambda t: ["compare", "--seeds", "0,-1"], "--seeds: each seed must be an integer"),
    ("sweep-range-huge", lambda t: [*grid(t, "  seed: {stop: 100000000000}"), "--dry-run"],
     "axis 'seed' has 100,000,000,000 values"),
    ("sweep-product-huge", lambda t: [*grid(t, "  seed: {stop: 1000}\n  unlearn_lr: {start: 1, stop: 1001}"),
                                      "--dry-run"], "the axes make 1,000,000 cells"),
    ("sweep-bad-cell", lambda t: grid(t, "  unlearn_lr: [0.001, .nan]"),
     "cell 1 (unlearn_lr=nan): command line: 'unlearning.lr' must be a finite number"),
    ("sweep-bad-clip", lambda t: grid(t, "  seed: [0, 1]\n  unlearning.clip_grad: [-1.0]"),
     "cell 0 (seed=0, unlearning.clip_grad=-1.0): unlearning.clip_grad must be"),
    ("sweep-workers", lambda t: [*grid(t, "  seed: [0]"), "--workers", "100000"], "--workers must be in 1.."),
    ("relearn-lr", lambda t: ["relearn", "--relearn-lr", "nan"], "relearn lr must be a finite number > 0"),
    ("relearn-recover", lambda t: ["relearn", "--recover-fraction", "inf"], "--recover-fraction must be in (0, 1]"),
    ("forget-quality-models", lambda t: ["forget-quality", "--n-models", "100000"], "--n-models must be in 2..4096"),
]


@contextlib.contextmanager
def address_space_limit(extra_bytes: int):
    """Lower this process's address-space limit to what it maps now plus extra_bytes, for the block."""
    if not sys.platform.startswith("linux"):
        yield
        return
    mapped = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (mapped + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("build, message", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_fails_fast_with_one_line_and_writes_nothing(cli, tmp_path, build, message):
    args = build(tmp_path)
    command = [] if args[0] in ("compare", "sweep", "forget-quality", "relearn") else ["run"]
    out_dirs = ["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    if "--out" in args or "--cache-dir" in args:  # the row's own path stands in for the default one
        out_dirs = ["--cache-dir", str(tmp_path / "cache")] if "--out" in args else ["--out", str(tmp_path / "runs")]
    extra = FAST if args[0] not in ("sweep",) else ["--device", "cpu"]
    cli("list", "targets")  # imports done before the clock starts
    start = time.perf_counter()
    with address_space_limit(1 << 30):  # 1 GiB beyond what is mapped: a size blow-up fails the row
        code, out, err = cli("--quiet", *command, *args, *extra, *out_dirs)
    seconds = time.perf_counter() - start
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert message in " ".join(err.split()), err
    assert seconds < 20, f"took {seconds:.1f} s"  # validation, not training (generous: shared CI cores)
    for folder in (tmp_path / "runs", tmp_path / "cache"):
        assert not folder.exists() or not any(folder.rglob("*")), list(folder.rglob("*"))


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


PLUGIN = '''
import torch
from softtargets.methods.base import Method


class Plug(Method):
    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        loss = torch.nn.functional.cross_entropy(model(forget_batch.x), forget_batch.y)
        return {RETURN}
'''


@pytest.mark.parametrize("returned, message", [
    ("loss", "must return a dict of numbers with a 'loss' entry, got tensor("),
    ('{"forget_ce": loss}', "with a 'loss' entry, got {'forget_ce': tensor("),
    ('{"loss": loss, "note": "text"}', "its entry 'note' is 'text'"),
    ('{"loss": loss.expand(2)}', "its entry 'loss' is tensor(["),
])
def test_a_plugin_step_with_the_wrong_output_stops_with_one_line(cli, tmp_path, shared_cache, returned, message):
    code, out, err = cli("--quiet", "run", *plugin(tmp_path, PLUGIN.replace("{RETURN}", returned)), *FAST,
                         "--out", str(tmp_path / "runs"), "--cache-dir", str(shared_cache))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "method '" in err and message in " ".join(err.split()), err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_diverged_loss_stops_the_run_without_a_torch_warning():
    import warnings

    import torch

    from softtargets.config import UnlearnConfig
    from softtargets.methods import get_method_class
    from softtargets.training.fit import Diverged
    from softtargets.training.unlearning import _update

    model = torch.nn.Linear(2, 2)
    loss = model(torch.ones(1, 2)).sum() * float("nan")  # still attached to the graph, as a method returns it
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Diverged, match="loss became nan"):
            _update({"loss": loss}, model, optimizer, UnlearnConfig(), get_method_class("gradasc")(), {})
    assert not caught, [str(w.message) for w in caught]
