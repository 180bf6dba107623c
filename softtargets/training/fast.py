"""The CUDA training path built for throughput: config `fast_cuda`, off by default because it has not yet run
on a GPU (benchmarks/gpu_check.sh is the check that decides; docs/benchmarks.md, "GPU").

On a GPU a batch-32 step of the mlp or cnn is microseconds of arithmetic behind hundreds of kernel launches,
host-side batch drawing and host-to-device copies (1.4 ms / 2.9 ms per step on an H200 with the default
path). This path removes all three:

- The batch order (a permutation per epoch) and the augmentation's crops and flips are drawn from a
  torch.Generator on the device, seeded with the model's seed: reproducible on that device, but not what the
  CPU generator of the default path draws, so these models have their own cache key (training.compute_tag).
- One training step (gather and normalise the batch, forward, backward, optimizer update, loss and accuracy
  sums) reads its batch positions and random numbers from static tensors and is captured once as a CUDA graph
  (torch.cuda.CUDAGraph); a step is then one copy of the positions and one graph launch. The warm-up steps
  that capture needs (they create the optimizer's state and the libraries' workspaces) are undone exactly.
- K models of one recipe (seeds) train as one stacked model (torch.func, as parallel.py), their
  BatchNorm buffers stacked too, so each model normalises with its own batch statistics.

A last short batch (n not a multiple of the batch size) runs eagerly, outside the graph. With capture=False
(and always on CPU) the same step runs eagerly; with the CPU generator it then draws exactly what
training.fit draws, which is how the tests check this path step for step without a GPU.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from softtargets.config import TrainConfig
from softtargets.data.batches import AUGMENT_PAD, SplitData, crop_flip
from softtargets.hooks import Hooks
from softtargets.training.fit import Diverged, make_optimizer, make_scheduler, use_channels_last

WARMUP_STEPS = 3  # eager steps before a capture (PyTorch's CUDA graph notes use 3)


class Stack:
    """K models of one architecture as one: forward on [K, B, ...] batches, one mean loss per model. K = 1 is
    the plain model, computed exactly as training.fit computes it."""

    def __init__(self, models: list[nn.Module], device: torch.device):
        self.models, self.k = models, len(models)
        if self.k == 1:
            self.model = models[0]
            self.channels_last = use_channels_last(self.model, device)
            self.params, self.buffers = list(self.model.parameters()), list(self.model.buffers())
            return
        self.stacked_params, self.stacked_buffers = stack_module_state(models)
        skeleton = copy.deepcopy(models[0]).to("meta")
        self.batched = vmap(lambda p, b, x: functional_call(skeleton, (p, b), (x,)))
        self.params, self.buffers = list(self.stacked_params.values()), list(self.stacked_buffers.values())

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [K, B, C, H, W], y [K, B] -> logits [K, B, classes], mean cross-entropy per model [K]."""
        if self.k == 1:
            x1 = x[0].contiguous(memory_format=torch.channels_last) if self.channels_last else x[0]
            logits = self.model(x1)
            return logits[None], F.cross_entropy(logits, y[0])[None]
        logits = self.batched(self.stacked_params, self.stacked_buffers, x)
        losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(self.k, -1).mean(1)
        return logits, losses

    def write_back(self) -> None:
        """Copy each model's trained parameters and buffers (BatchNorm statistics) back into it."""
        if self.k == 1:
            return
        stacked = {**self.stacked_params, **self.stacked_buffers}
        with torch.no_grad():
            for i, model in enumerate(self.models):
                for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                    tensor.copy_(stacked[name][i])


def fit_one(model: nn.Module, split: SplitData, recipe: TrainConfig, seed: int, hooks: Hooks, series: str
            ) -> list[dict]:
    """training.fit's signature on the fast path: train_or_load's trainer when fast_cuda is on."""
    return fit_fast([model], [split], [seed], recipe, hooks, series)[0]


def fit_fast(models: list[nn.Module], splits: list[SplitData], seeds: list[int], recipe: TrainConfig,
             hooks: Hooks, series: str) -> list[list[dict]]:
    """The fast path: random numbers drawn on the device, steps captured as a CUDA graph on CUDA."""
    cuda = splits[0].data.device.type == "cuda"
    return fit_many(models, splits, seeds, recipe, hooks, series, capture=cuda, device_draws=True)


def fit_many(models: list[nn.Module], splits: list[SplitData], seeds: list[int], recipe: TrainConfig,
             hooks: Hooks, series: str, capture: bool = False, device_draws: bool = False) -> list[list[dict]]:
    """Train the models (one seed each, splits of equal length) together; returns each model's per-epoch
    history. capture: record the step as a CUDA graph; device_draws: batch order and augmentation from a
    generator on the device (else on the CPU, as training.fit; the same thing on a CPU)."""
    data, device = splits[0].data, splits[0].data.device
    k, n, size = len(models), len(splits[0]), recipe.batch_size
    if any(len(s) != n for s in splits):
        raise ValueError("fit_many: every model needs a split of the same length")
    for model in models:
        model.train()
    stack = Stack(models, device)
    generators = [torch.Generator(device if device_draws else "cpu").manual_seed(seed) for seed in seeds]
    steps_per_epoch = math.ceil(n / size)
    total_steps = recipe.epochs * steps_per_epoch
    # a graph keeps the learning rate it was captured with: a scheduled rate lives in a tensor it reads
    scheduled = recipe.schedule != "constant"
    lr = torch.tensor(recipe.lr, device=device) if capture and scheduled else recipe.lr
    optimizer = make_optimizer(stack.params, recipe.optimizer, lr, recipe.weight_decay, recipe.momentum, fused=True,
                               capturable=capture)
    scheduler = None if capture else make_scheduler(optimizer, recipe.schedule, total_steps)
    total_loss, correct = torch.zeros(k, device=device), torch.zeros(k, device=device)

    def step(idx: torch.Tensor, offsets: torch.Tensor | None, coins: torch.Tensor | None) -> None:
        """idx [K, B] positions in each model's split; offsets [K, 2, B] and coins [K, B] its augmentation."""
        x = torch.cat([s.x[i] for s, i in zip(splits, idx)])
        y = torch.stack([s.y[i] for s, i in zip(splits, idx)])
        if offsets is not None:
            x = crop_flip(x, offsets.transpose(0, 1).reshape(2, -1), coins.reshape(-1) < 0.5)
        x = data.normalise(x).view(k, -1, *x.shape[1:])
        logits, losses = stack.losses(x, y)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        total_loss.add_(losses.detach() * y.shape[1])
        correct.add_((logits.argmax(2) == y).sum(1))

    def draw(idx: torch.Tensor, offsets: torch.Tensor | None, coins: torch.Tensor | None) -> None:
        """Each model's crops and flips for one step, in training.fit's order (crops, then flips)."""
        if offsets is not None:
            for g, off, coin in zip(generators, offsets, coins):
                off.copy_(torch.randint(0, 2 * AUGMENT_PAD + 1, off.shape, generator=g, device=g.device))
                coin.copy_(torch.rand(coin.shape, generator=g, device=g.device))

    def buffers_for(b: int) -> tuple:
        idx = torch.zeros(k, b, dtype=torch.long, device=device)
        if not recipe.augment:
            return idx, None, None
        return (idx, torch.zeros(k, 2, b, dtype=torch.long, device=device), torch.zeros(k, b, device=device))

    static = buffers_for(size)
    run = lambda: step(*static)  # noqa: E731
    if capture and n >= size:
        run = capture_graph(run, [*stack.params, *stack.buffers, total_loss, correct], optimizer)
    histories: list[list[dict]] = [[] for _ in range(k)]
    done = 0
    with hooks.progress(f"train {series}" + (f" x{k}" if k > 1 else ""), total_steps) as advance:
        for epoch in range(1, recipe.epochs + 1):
            total_loss.zero_()
            correct.zero_()
            orders = torch.stack([torch.randperm(n, generator=g, device=g.device) for g in generators]).to(device)
            for start in range(0, n, size):
                if capture and scheduled:
                    lr.fill_(cosine_lr(recipe.lr, done, total_steps))
                if start + size <= n:
                    static[0].copy_(orders[:, start:start + size])
                    draw(*static)
                    run()
                else:  # the short last batch, eagerly
                    tail = buffers_for(n - start)
                    tail[0].copy_(orders[:, start:])
                    draw(*tail)
                    step(*tail)
                if scheduler is not None:
                    scheduler.step()
                done += 1
                advance(1)
            losses, hits = [v / n for v in total_loss.tolist()], [v / n for v in correct.tolist()]
            for i in range(k):
                if not math.isfinite(losses[i]):
                    raise Diverged(f"training {series} (seed {seeds[i]}) diverged at epoch {epoch}")
                histories[i].append({"epoch": epoch, "loss": losses[i], "acc": hits[i]})
            if k == 1:
                hooks.scalars(series, epoch, {"loss": losses[0], "acc": hits[0]})
    stack.write_back()
    return histories


def cosine_lr(base: float, step: int, total: int) -> float:
    """CosineAnnealingLR(T_max=total, eta_min=0) in closed form: the rate of step `step` (0-based)."""
    return base * (1 + math.cos(math.pi * step / max(1, total))) / 2


def capture_graph(step, state: list[torch.Tensor], optimizer: torch.optim.Optimizer):
    """Capture step() as a CUDA graph; returns its replay. The warm-up steps capture needs run on a side stream and are then
    undone: `state` (parameters, buffers, accumulators) restored, the optimizer's state zeroed, which is its
    fresh state (Adam: step 0, zero moments; SGD: a zero momentum buffer gives the first step's buffer = grad)."""
    saved = [t.detach().clone() for t in state]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(WARMUP_STEPS):
            step()
    torch.cuda.current_stream().wait_stream(side)
    with torch.no_grad():
        for tensor, value in zip(state, saved):
            tensor.copy_(value)
        for values in optimizer.state.values():
            for value in values.values():
                if torch.is_tensor(value):
                    value.zero_()
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        step()
    grads = [p.grad for group in optimizer.param_groups for p in group["params"]]  # the replays write these

    def replay() -> None:
        graph.replay()

    replay.graph, replay.grads = graph, grads  # kept alive as long as the replay is
    return replay
