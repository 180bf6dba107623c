"""Code from the NeurIPS 2023 challenge and MLS-Bench runs unchanged: returned nets, run-style classes, plugin
folders laid out as the challenge harness's (imported once per process), MLS-Bench's epoch base and batch
augmentation, and labels-only plugins flagged instead of compared."""

import json
from pathlib import Path

import pytest
import torch

from softtargets.config import load_config
from softtargets.experiment import prepare, run_experiment
from softtargets.methods import get_method_class


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugins")
    base = {"data.forget": "class:3", "training.epochs": 3, "out": str(root / "runs"),
            "cache_dir": str(root / "cache"), "device": "cpu"}
    return base, prepare(load_config(overrides=base))


def run(digits, **changes) -> dict:
    base, prepared = digits
    return run_experiment(load_config(overrides={**base, **changes}), prepared=prepared)


RETURNS_A_COPY = '''
import copy

import torch
import torch.nn.functional as F


def unlearning(net, retain_loader, forget_loader, val_loader):
    """A published variant of the starting kit's baseline: fine-tunes a deep copy and returns it."""
    net = copy.deepcopy(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    for inputs, targets in retain_loader:
        optimizer.zero_grad()
        F.cross_entropy(net(inputs), targets).backward()
        optimizer.step()
    return net
'''


def test_a_returned_copy_is_the_unlearned_model(digits, tmp_path):
    plugin = tmp_path / "kit.py"
    plugin.write_text(RETURNS_A_COPY)
    result = run(digits, **{"unlearning.method": f"{plugin}:unlearning"})
    assert result["status"] == "completed"
    assert result["metrics"]["unlearned"]["param_change"] > 1e-3  # the copy's weights, not the untouched net's
    assert result["unlearning"]["uses_targets"] is False


def test_a_returned_net_of_another_shape_is_one_clear_error(cli, tmp_path):
    plugin = tmp_path / "wrong.py"
    plugin.write_text("import torch\n\ndef unlearning(net, retain, forget, val):\n    return torch.nn.Linear(2, 2)\n")
    code, _, err = cli("run", "--mu_algo", f"{plugin}:unlearning", "--epochs", "1", "--device", "cpu",
                       "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"), "--tracker", "none")
    assert code == 2 and "returned a network whose weights do not fit" in err and len(err.strip().splitlines()) == 1


def harness(root: Path, counter: Path) -> Path:
    """A challenge-harness layout: methods/MyMethod.py imports its package and a neighbour; every import of
    MyMethod.py appends a line to counter."""
    methods = root / "methods"
    methods.mkdir(parents=True)
    (methods / "helpers.py").write_text('''
import torch.nn.functional as F


def finetune(net, loader, optimizer):
    for inputs, targets in loader:
        optimizer.zero_grad()
        F.cross_entropy(net(inputs), targets).backward()
        optimizer.step()
''')
    (methods / "schedule.py").write_text("EPOCHS = 2\n")
    (methods / "MyMethod.py").write_text(f'''
import torch

import schedule  # a neighbour module
from methods.helpers import finetune  # the package, as the harness imports it

with open({str(counter)!r}, "a") as f:
    f.write("imported\\n")


class MyMethod:
    """A run-style class: run(net, retain_loader, forget_loader, val_loader)."""

    def run(self, net, retain_loader, forget_loader, val_loader):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        net.train()
        for _ in range(schedule.EPOCHS):
            finetune(net, retain_loader, optimizer)
''')
    return methods / "MyMethod.py"


def test_harness_plugin_folder_runs_imported_once_and_compare_says_it_sees_labels_only(cli, digits, tmp_path):
    counter = tmp_path / "imports.txt"
    plugin = harness(tmp_path / "harness", counter)
    base, _ = digits
    out = tmp_path / "compare"
    code, stdout, err = cli("--quiet", "compare", "--mu_algo", f"{plugin}:MyMethod", "--seeds", "2", "--forget",
                            "class:3", "--epochs", "3", "--out", str(out), "--cache-dir", base["cache_dir"],
                            "--device", "cpu", "--tracker", "none")
    assert code == 0, err
    assert counter.read_text().count("imported") == 1  # once per process: validation, both arms, both seeds
    assert "sees labels only" in stdout and "sign-flip" not in stdout and "| p |" not in stdout
    folder = next(out.iterdir())
    summary = json.loads((folder / "comparison.json").read_text())
    assert summary["labels_only"] is True
    markdown = (folder / "comparison.md").read_text()
    assert "sees labels only" in markdown and "| metric |" not in markdown
    results = {kind: [json.loads((Path(p) / "result.json").read_text()) for p in paths]
               for kind, paths in summary["runs"].items()}
    for hard, soft in zip(results["hard"], results["soft"]):  # what the line claims: the arms are identical
        assert hard["metrics"]["unlearned"] == soft["metrics"]["unlearned"]
        assert hard["metrics"]["unlearned"]["param_change"] > 1e-3
    code, stdout, err = cli("--quiet", "report", str(folder / "runs"))
    assert code == 0, err
    report = (folder / "runs" / "report" / "report.md").read_text()
    assert "sees labels only" in report


def test_plugin_modules_are_imported_once_per_process(tmp_path):
    counter = tmp_path / "imports.txt"
    plugin = harness(tmp_path / "h", counter)
    classes = {get_method_class(f"{plugin}:MyMethod"), get_method_class(f"{plugin.resolve()}:MyMethod")}
    assert len(classes) == 1 and counter.read_text().count("imported") == 1


EPOCHS_AND_BATCHES = '''
import torch
import torch.nn.functional as F


class UnlearningMethod:
    """Records the epochs it is called with and the retain images of its first step."""

    def __init__(self):
        self.msteps = 1  # SCRUB's convention: max steps in the first msteps epochs, `if epoch < self.msteps`

    def unlearn_step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        with open(RECORD, "a") as f:
            f.write(f"{epoch} {int(epoch < self.msteps)}\\n")
        if step == 0:
            torch.save(retain_batch[0].cpu(), BATCH)
        loss = F.cross_entropy(model(retain_batch[0]), retain_batch[1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}
'''


def test_mlsbench_epochs_count_from_zero_and_its_protocol_augments_the_batches(digits, tmp_path):
    base, prepared = digits
    seen = {}
    for augment in (False, True):
        record, batch = tmp_path / f"epochs-{augment}.txt", tmp_path / f"batch-{augment}.pt"
        plugin = tmp_path / f"mls_{augment}.py"
        plugin.write_text(f"RECORD = {str(record)!r}\nBATCH = {str(batch)!r}\n" + EPOCHS_AND_BATCHES)
        result = run(digits, **{"unlearning.method": f"{plugin}:UnlearningMethod", "unlearning.epochs": 2,
                                "unlearning.driver": "retain", "unlearning.augment": augment})
        assert result["status"] == "completed"
        lines = record.read_text().split()
        epochs, max_steps = [int(e) for e in lines[::2]], [int(m) for m in lines[1::2]]
        assert sorted(set(epochs)) == [0, 1]  # as the harness's `for epoch in range(unlearn_epochs)`
        assert sum(max_steps) == epochs.count(0)  # msteps = 1: the max step runs in the first epoch only
        seen[augment] = torch.load(batch)
    data = prepared.data
    retain = data.normalise(data.train_x[prepared.split.retain_idx])
    clean = {img.numpy().tobytes() for img in retain}
    in_clean = {augment: sum(img.numpy().tobytes() in clean for img in x) for augment, x in seen.items()}
    assert in_clean[False] == len(seen[False])  # unaugmented: every image is a retain image as it is
    assert in_clean[True] < len(seen[True]) / 2  # cropped and flipped: most are not
    assert load_config(overrides={"protocol": "mlsbench"}).unlearning.augment is True
    assert load_config().unlearning.augment is False and load_config(
        overrides={"protocol": "softtargets"}).unlearning.augment is False

