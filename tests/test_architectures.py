"""The CIFAR-style architectures: shapes, the features/head split, BatchNorm modes, augmentation, and one
unlearning step of every registered method on each of them."""

import copy

import pytest
import torch
import torch.nn.functional as F

from softtargets.config import load_config
from softtargets.data.batches import DeviceData, SplitData, augment
from softtargets.data.datasets import make_bundle
from softtargets.experiment import prepare, unlearn_copy
from softtargets.methods import get_method_class, registry
from softtargets.models import build_model

NEW = ("resnet20", "vgg16_bn", "mobilenet_v2")


def bn_buffers(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k}


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("arch", NEW)
def test_architecture_trains_a_step_and_splits_into_features_and_head(arch, shape):
    torch.manual_seed(0)
    model = build_model(arch, shape, 10)
    x, y = torch.randn(4, *shape), torch.tensor([0, 1, 2, 3])
    model.eval()
    assert torch.allclose(model.head(model.features(x)), model(x), atol=1e-6)
    assert isinstance(model.head, torch.nn.Linear) and model(x).shape == (4, 10)
    before, running = copy.deepcopy(model.state_dict()), bn_buffers(model)
    model(x)  # eval mode: BatchNorm uses and keeps its running statistics
    assert all(torch.equal(v, bn_buffers(model)[k]) for k, v in running.items())
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values())
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert any(not torch.equal(v, bn_buffers(model)[k]) for k, v in running.items())  # train mode updates them
    model.eval()
    with torch.no_grad():
        assert F.cross_entropy(model(x), y) != loss  # the step changed the function


def tiny_bundle(shape, n_per_class=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = torch.randint(0, 256, (len(y), *shape), generator=g, dtype=torch.uint8)
    return make_bundle("tiny", x, y, x[::2].clone(), y[::2].clone(), range(classes))


def method_names():
    return list(registry())


@pytest.mark.slow
@pytest.mark.parametrize("arch,shape", [("resnet20", (3, 32, 32)), ("vgg16_bn", (1, 28, 28)),
                                        ("mobilenet_v2", (1, 28, 28))])
def test_every_method_runs_one_step_on_the_architecture(arch, shape, tmp_path):
    """Whatever methods exist at test time, each runs on the architecture; BatchNorm statistics stay frozen
    where a method's reference runs the model in eval mode (train_mode = False)."""
    bundle = tiny_bundle(shape)
    failures = []
    cfg0 = load_config(overrides={"training.architecture": arch, "training.epochs": 1, "training.batch_size": 8,
                                  "training.augment": True, "data.forget": "class:0", "device": "cpu",
                                  "cache_dir": str(tmp_path / "cache")})
    prepared = prepare(cfg0, bundle=bundle)
    original_state = prepared.original.state_dict()
    for name in method_names():
        cfg = load_config(overrides={"training.architecture": arch, "unlearning.method": name,
                                     "unlearning.epochs": 1, "unlearning.batch_size": 32, "device": "cpu"})
        method_cls = get_method_class(name)
        model, method, outcome = unlearn_copy(cfg, method_cls, prepared, prepared_hooks())
        changed = any(not torch.equal(v, model.state_dict()[k]) for k, v in original_state.items()
                      if v.is_floating_point() and "running" not in k)
        frozen_bn = all(torch.equal(v, model.state_dict()[k]) for k, v in original_state.items() if "running" in k)
        if outcome.status != "completed" or outcome.steps < 1 or not changed:
            failures.append(f"{name}: status {outcome.status} ({outcome.stopped}), {outcome.steps} steps, "
                            f"weights changed: {changed}")
        elif not method_cls.train_mode and not frozen_bn:
            failures.append(f"{name}: train_mode=False but BatchNorm running statistics changed")
    assert not failures, "\n".join(failures)
    assert len(method_names()) >= 3


def prepared_hooks():
    from softtargets.hooks import Hooks

    return Hooks()


def test_augment_crops_from_the_zero_padded_image_and_flips():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).view(2, 1, 6, 6)
    padded = F.pad(x, (4, 4, 4, 4))
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    for i in range(2):  # each output is some 6x6 window of the padded image, possibly mirrored
        windows = [padded[i, :, r:r + 6, c:c + 6] for r in range(9) for c in range(9)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    many = augment(x.repeat(200, 1, 1, 1), torch.Generator().manual_seed(1))
    assert (many != x.repeat(200, 1, 1, 1)).flatten(1).any(1).float().mean() > 0.9  # almost all moved
    first = augment(x, torch.Generator().manual_seed(5))
    assert torch.equal(first, augment(x, torch.Generator().manual_seed(5)))  # seeded


def test_augmentation_only_in_training_batches():
    bundle = tiny_bundle((1, 28, 28))
    data = DeviceData(bundle, torch.device("cpu"))
    split = SplitData(data, data.train_x, data.train_y)
    idx = torch.arange(len(split))
    plain = split.batch(idx).x
    assert torch.equal(plain, data.normalise(data.train_x))
    assert torch.equal(next(split.batches(64, torch.Generator().manual_seed(0))).x,
                       data.normalise(data.train_x[torch.randperm(18, generator=torch.Generator().manual_seed(0))]))
    augmented = next(split.batches(64, torch.Generator().manual_seed(0), augment=True)).x
    assert not torch.equal(augmented, plain) and augmented.shape == plain.shape
