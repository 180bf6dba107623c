"""The soft-target designs of the literature: generalised (negative) label smoothing (UGradSL), the masked teacher
(DELETE, PRU) and its hard switches, each against a hand computation, and the directions their papers claim."""

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from softtargets.config import load_config
from softtargets.errors import SoftTargetsError
from softtargets.experiment import validate
from softtargets.targets import RandomLabels, build_targets, kl_div, retain_kind_for, soft_cross_entropy

# logits whose softmax is (1/6, 2/6, 3/6): ln 1, ln 2, ln 3
LOGITS = torch.log(torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]))
Y = torch.tensor([2, 0])


def test_masked_is_the_originals_distribution_without_the_label_renormalised():
    q = build_targets("masked", Y, 3, LOGITS)
    # row 0, label 2: (1/6, 2/6) / (3/6) = (1/3, 2/3, 0); row 1, label 0: (2/6, 3/6) / (5/6) = (0, 2/5, 3/5)
    assert torch.allclose(q, torch.tensor([[1 / 3, 2 / 3, 0.0], [0.0, 0.4, 0.6]]))
    assert torch.equal(q[torch.arange(2), Y], torch.zeros(2))


def test_masked_at_a_temperature_masks_the_tempered_distribution():
    # T = 2: softmax(ln(1, 2, 3) / 2) is proportional to (1, sqrt 2, sqrt 3); label 2 removed -> (1, sqrt 2) / sum
    q = build_targets("masked", Y[:1], 3, LOGITS[:1], temperature=2.0)
    expected = torch.tensor([1.0, math.sqrt(2), 0.0]) / (1 + math.sqrt(2))
    assert torch.allclose(q[0], expected)


def test_masked_where_all_mass_was_on_the_label_is_uniform_over_the_others():
    saturated = torch.tensor([[0.0, 200.0, 0.0, 0.0]])  # float32 softmax puts exactly 1.0 on class 1
    q = build_targets("masked", torch.tensor([1]), 4, saturated)
    assert torch.equal(q, torch.tensor([[1 / 3, 0.0, 1 / 3, 1 / 3]]))


def test_masked_pseudo_is_the_runner_up_class():
    # row 0 (label 2): runner-up is class 1; row 1 (label 0): class 2
    assert torch.equal(build_targets("masked_pseudo", Y, 3, LOGITS), torch.tensor([[0.0, 1, 0], [0, 0, 1.0]]))


def test_masked_equals_deletes_minus_1e10_logit_construction():
    torch.manual_seed(0)
    z, y = torch.randn(8, 10) * 4, torch.randint(10, (8,))
    masked_logits = z.clone()
    masked_logits[torch.arange(8), y] = -1e10  # shaaaaron/DELETE method/delete.py line 62
    assert torch.allclose(build_targets("masked", y, 10, z), torch.softmax(masked_logits, 1), atol=1e-7)


def test_negative_smoothing_is_not_a_distribution_but_sums_to_one():
    t = build_targets("smooth", torch.tensor([0]), 4, smoothing=-0.5)
    # (1 - a) onehot + a / C with a = -0.5, C = 4: 1.5 - 0.125 on the label, -0.125 elsewhere
    assert torch.allclose(t, torch.tensor([[1.375, -0.125, -0.125, -0.125]]))
    assert t.sum().item() == pytest.approx(1.0)


def test_negative_smoothing_cross_entropy_is_ugradsls_loss_gls_with_the_exact_gradient():
    torch.manual_seed(1)
    z = torch.randn(5, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0])
    a = -1.0
    t = build_targets("smooth", y, 4, smoothing=a)
    loss = soft_cross_entropy(z, t)
    # UCSC-REAL/negative-label-smoothing loss.py::loss_gls: (1 - a) NLL(y) + a mean_k(-log p_k), batch-averaged
    log_p = F.log_softmax(z.detach(), 1)
    by_hand = ((1 - a) * -log_p.gather(1, y[:, None]).squeeze(1) + a * -log_p.mean(1)).mean()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    loss.backward()
    assert torch.equal(z.grad, (torch.softmax(z.detach(), 1) - t) / 5)


@pytest.mark.parametrize("smoothing", [1.5, float("nan"), float("inf")])
def test_smoothing_above_one_or_not_finite_is_refused(smoothing):
    with pytest.raises(SoftTargetsError, match="finite number <= 1"):
        build_targets("smooth", Y, 3, smoothing=smoothing)


def test_kl_to_targets_that_are_not_distributions_is_nan_so_validate_refuses_them_first():
    assert kl_div(torch.zeros(1, 4), build_targets("smooth", torch.tensor([0]), 4, smoothing=-0.2)).isnan()


def test_nls_ascent_keeps_pushing_the_other_classes_where_hard_ascent_fades():
    """UGradSL's claim in gradient form: ascent on -CE moves the logits by lr * (p - t). On a saturated example
    (p_y ~ 1) hard ascent leaves the other logits alone (p_k ~ 0), negative smoothing lifts each by |a| / C."""
    z = torch.tensor([[12.0, 0.0, 0.0, 0.0]])
    y, a = torch.tensor([0]), -0.8
    grads = {}
    for kind in ("hard", "smooth"):
        logits = z.clone().requires_grad_(True)
        (-soft_cross_entropy(logits, build_targets(kind, y, 4, smoothing=a))).backward()
        grads[kind] = logits.grad[0]
    step = {kind: -g for kind, g in grads.items()}  # a descent step on the ascent loss
    assert step["hard"][1:].max() < 1e-4  # p_k = e^-12: nothing left to push
    assert torch.allclose(step["smooth"][1:] - step["hard"][1:], torch.full((3,), abs(a) / 4))
    assert step["smooth"][0] < step["hard"][0] < 0  # the label's logit falls, faster with NLS


def _descend(kind: str, steps: int = 300) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(original's probabilities, unlearned probabilities, labels) after descending KL(t || student) on one
    forget batch, starting from the original (a linear model that can fit any logits of its 8 examples) whose
    predictions are the labels, as on its training data."""
    x = torch.randn(8, 20, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    original = torch.nn.Linear(20, 5)
    with torch.no_grad():
        original.weight.mul_(3)
        logits = original(x)
    y = logits.argmax(1)
    t = build_targets(kind, y, 5, logits)
    student = copy.deepcopy(original)
    opt = torch.optim.SGD(student.parameters(), lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        kl_div(student(x), t).backward()
        opt.step()
    with torch.no_grad():
        return torch.softmax(logits, 1), torch.softmax(student(x), 1), y


def test_masked_descent_forgets_the_label_and_keeps_the_dark_knowledge_a_hard_relabel_collapses():
    """DELETE's decomposition: KL(q || p) with the masked q drives p_y to 0 while the student's distribution over
    the other classes keeps the teacher's proportions; the runner-up one-hot (PRU's hard switch) also drives p_y
    down but collapses the other classes onto one."""
    teacher, masked, y = _descend("masked")
    _, runner_up, _ = _descend("masked_pseudo")
    rows = torch.arange(len(y))
    before = teacher[rows, y]
    assert (masked[rows, y] < before).all() and masked[rows, y].max() < 0.05
    assert (runner_up[rows, y] < before).all()

    def others(p):  # the distribution over the classes other than the label, renormalised
        q = p.clone()
        q[rows, y] = 0
        return q / q.sum(1, keepdim=True)

    target = others(teacher)
    gap = {name: (others(p) - target).abs().sum(1).mean().item() for name, p in (("masked", masked),
                                                                                   ("runner_up", runner_up))}
    assert gap["masked"] < 0.1 < gap["runner_up"]


def test_random_labels_are_drawn_per_batch_reproducibly_over_all_classes():
    x, y = torch.zeros(64, 1), torch.zeros(64, dtype=torch.long)
    first, again = RandomLabels(10, 7), RandomLabels(10, 7)
    a, b = first(x, y), first(x, y)
    assert torch.equal(a, again(x, y))  # seeded
    assert not torch.equal(a, b)  # redrawn for every batch
    assert (a.sum(1) == 1).all() and a.argmax(1).unique().numel() > 5  # one-hot over many classes, the label too
    assert (a.argmax(1) == 0).any()


def test_forget_side_kinds_mean_their_parent_on_retain_terms_and_are_refused_there_explicitly():
    assert [retain_kind_for(k, None) for k in ("masked", "masked_pseudo", "random", "smooth")] == \
        ["soft", "pseudo", "hard", "smooth"]
    assert retain_kind_for("masked", "hard") == "hard"
    with pytest.raises(SoftTargetsError, match="--retain-targets masked is a forget-side kind"):
        retain_kind_for("hard", "masked")


@pytest.mark.parametrize("changes, message", [
    ({"unlearning.method": "delete", "targets.kind": "hard"}, "method 'delete' refuses --targets hard: descending"),
    ({"unlearning.method": "delete", "targets.kind": "pseudo"}, "method 'delete' refuses --targets pseudo"),
    ({"unlearning.method": "delete", "targets.kind": "smooth", "targets.smoothing": -0.2},
     "method 'delete' takes a KL divergence to its forget targets, which needs a distribution"),
    ({"unlearning.method": "bad_teacher", "targets.kind": "smooth", "targets.smoothing": -0.2},
     "method 'bad_teacher' takes a KL divergence to its retain targets"),
    ({"unlearning.method": "graddiff", "targets.retain_kind": "random"}, "--retain-targets random is a forget-side"),
    ({"targets.smoothing": 1.2}, "--smoothing must be a finite number <= 1"),
])
def test_bad_target_choices_are_refused_before_any_work(tmp_path, changes, message):
    cfg = load_config(overrides={"out": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache"), **changes})
    with pytest.raises(SoftTargetsError, match=message):
        validate(cfg)


def test_methods_bring_their_default_targets_and_flags_override_them(tmp_path):
    paths = {"out": str(tmp_path), "cache_dir": str(tmp_path)}
    delete = load_config(overrides={"unlearning.method": "delete", **paths})
    assert (delete.targets.kind, delete.targets.temperature) == ("masked", 1.0)
    assert (delete.unlearning.optimizer, delete.unlearning.lr, delete.unlearning.epochs,
            delete.unlearning.batch_size, delete.unlearning.momentum) == ("sgd", 1e-3, 20, 128, 0.9)
    nls = load_config(overrides={"unlearning.method": "ugradsl_plus", **paths})
    assert (nls.targets.kind, nls.targets.smoothing, nls.targets.retain_kind) == ("smooth", -0.5, "hard")
    chosen = load_config(overrides={"unlearning.method": "delete", "targets.kind": "uniform", **paths})
    assert chosen.targets.kind == "uniform"
    assert load_config(overrides=paths).targets.kind == "hard"  # other methods keep hard


def test_list_targets_shows_the_new_kinds(cli):
    code, out, _ = cli("list", "targets")
    flat = " ".join(out.split())
    assert code == 0
    for kind in ("masked", "masked_pseudo", "random", "negative label smoothing"):
        assert kind in flat
    code, out, _ = cli("list", "methods")
    assert all(name in out for name in ("delete", "ugradsl", "ugradsl_plus"))


def test_the_cli_refuses_a_kl_method_with_negative_smoothing_in_one_line(cli, tmp_path):
    code, out, err = cli("run", "--mu_algo", "delete", "--targets", "smooth", "--smoothing", "-0.2",
                         "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"))
    assert code == 2
    assert len((out + err).strip().splitlines()) == 1 and "delete" in err and "smooth" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_delete_erases_a_digits_class_and_keeps_the_other_classes(cli, tmp_path):
    """The issue's acceptance run: `softtargets run --dataset digits --architecture cnn --mu_algo delete --forget
    class:5` (DELETE's defaults: the masked target, SGD 1e-3 momentum 0.9, 20 epochs, batch 128)."""
    code, out, err = cli("--quiet", "run", "--dataset", "digits", "--architecture", "cnn", "--mu_algo", "delete",
                         "--forget", "class:5", "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"))
    assert code == 0, err
    (folder,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((folder / "result.json").read_text())["metrics"]
    original, unlearned = metrics["original"], metrics["unlearned"]
    assert original["acc_forget"] > 0.9 and unlearned["acc_forget"] < 0.02  # measured: 0.972 -> 0.000
    assert unlearned["acc_test_retain_classes"] > original["acc_test_retain_classes"] - 0.03  # measured: 0.892 -> 0.889
    assert unlearned["js_forget_to_reference"] < original["js_forget_to_reference"] / 4  # measured: 0.456 -> 0.053


def test_bad_sweep_and_compare_options_are_one_line_and_exit_2(cli, tmp_path):
    paths = ("--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    for args, message in ((("sweep", "configs/sweeps/smoke.yaml", "--only", "dataset", "--dry-run"),
                           "must look like AXIS=VALUE"),
                          (("sweep", "configs/sweeps/smoke.yaml", "--only", "dataset=cifar99", "--dry-run"),
                           "no cell has dataset=cifar99"),
                          (("sweep", "configs/sweeps/smoke.yaml", "--only", "dataset=digits", "--backend", "slurm"),
                           "--only runs part of a grid locally"),
                          (("compare", "--soft-kind", "hard"), "both hard: compare two different kinds"),
                          (("compare", "--base-kind", "fuzzy"), "unknown target kind 'fuzzy'"),
                          (("compare", "--tune", "unlearning.lr"), "must look like KEY=V1,V2")):
        code, out, err = cli(*args, *paths)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("result.json"))
