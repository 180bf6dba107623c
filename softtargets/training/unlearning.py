"""The unlearning loop: paired retain/forget batches, the update, and the guards shared by all methods.

Guards: a NaN/inf loss stops the run with status 'diverged'; optional global gradient-norm clipping;
optional early stops when forget accuracy reaches the reference's or retain accuracy (on a fixed probe of
the retain set) drops below a floor. Their settings and effects are returned in UnlearnOutcome.guards.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Iterator

import torch

from softtargets.config import UnlearnConfig
from softtargets.errors import SoftTargetsError, brief
from softtargets.inference import predict_logits
from softtargets.data.batches import Batch
from softtargets.methods.base import Context, Method, Phase
from softtargets.targets import retain_kind_for
from softtargets.training.fit import Diverged, make_optimizer, make_scheduler

log = logging.getLogger(__name__)
RETAIN_PROBE = 4096  # retain accuracy per epoch on a fixed subsample: cheap and stable enough for a guard
DEGENERATE_RATIO = 1e-3  # a target term is degenerate when its gradient is below this fraction of the hard one's
_WARNED: set[tuple] = set()


@dataclass
class UnlearnOutcome:
    status: str = "completed"  # completed | diverged
    epochs_run: int = 0
    steps: int = 0
    stopped: str | None = None  # reached_reference | retain_floor | diverged message
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    guards: dict = field(default_factory=dict)  # the guard settings and what they did (result.json)
    target_terms: dict = field(default_factory=dict)  # probe_target_terms(): gradient norms at the original


def _accuracy(model, split, idx=None) -> float | None:
    """Accuracy on a split (or a subsample); None when the outputs are not finite (a diverged model)."""
    x, y = (split.x, split.y) if idx is None else (split.x[idx], split.y[idx])
    logits = predict_logits(model, split.data, x)
    if not torch.isfinite(logits).all():
        return None
    return (logits.argmax(1) == y).float().mean().item()


def _steps(ctx: Context, phase: Phase, batch_size: int) -> int:
    return math.ceil(len(phase.split or getattr(ctx, phase.driver)) / batch_size)


def _pairs(ctx: Context, phase: Phase, batch_size: int, cycles: dict, augment: bool = False) -> Iterator[tuple]:
    """(retain_batch, forget_batch) for one pass over the phase's driver; the other split is cycled, or None
    when the phase does not need it. A split's cycle persists across phases and epochs. augment: crop + flip
    every batch (MLS-Bench's harness loads its data "with standard augmentation", seed 001's
    run_unlearning.py lines 4-5, before splitting it into retain and forget)."""
    other_name = "retain" if phase.driver == "forget" else "forget"
    if other_name in phase.needs and other_name not in cycles:
        cycles[other_name] = getattr(ctx, other_name).cycle(batch_size, ctx.generator, augment)
    driver = phase.split or getattr(ctx, phase.driver)
    for batch in driver.batches(batch_size, ctx.generator, augment):
        other = next(cycles[other_name]) if other_name in phase.needs else None
        yield (other, batch) if phase.driver == "forget" else (batch, other)


def unlearn(model: torch.nn.Module, method: Method, ctx: Context, cfg: UnlearnConfig,
            reference_forget_acc: float | None = None) -> UnlearnOutcome:
    """Run method on model in place for cfg.epochs; an epoch runs the method's phases (by default one pass
    over its driver split)."""
    outcome = UnlearnOutcome(guards={"clip_grad": cfg.clip_grad, "clipped_steps": 0, "max_grad_norm": None,
                                     "stop_at_reference": cfg.stop_at_reference,
                                     "reference_forget_acc": reference_forget_acc, "retain_floor": cfg.retain_floor})
    start = time.perf_counter()
    method.setup(ctx)
    outcome.target_terms = probe_target_terms(method, ctx, cfg.batch_size)
    optimizer = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
    lr_schedule = make_scheduler(optimizer, cfg.schedule, cfg.epochs)  # stepped once per epoch
    schedule = {epoch: _with_driver(method.phases(epoch), cfg.driver) for epoch in range(1, cfg.epochs + 1)}
    total = sum(_steps(ctx, p, cfg.batch_size) for phases in schedule.values() for p in phases)
    probe = torch.randperm(len(ctx.retain), generator=torch.Generator().manual_seed(ctx.seed))[:RETAIN_PROBE]
    cycles: dict = {}
    with ctx.hooks.progress(f"unlearn {method.name}", total) as advance:
        try:
            for epoch, phases in schedule.items():
                if not phases:
                    break
                row = _epoch(model, method, ctx, cfg, phases, epoch, optimizer, cycles, outcome, advance)
                if lr_schedule is not None:
                    lr_schedule.step()
                forget_acc, retain_acc = _accuracy(model, ctx.forget), _accuracy(model, ctx.retain,
                                                                                 probe.to(ctx.device))
                if forget_acc is None or retain_acc is None:
                    raise Diverged(f"model outputs became non-finite in epoch {epoch}")
                row["forget_acc"], row["retain_acc"] = forget_acc, retain_acc
                outcome.history.append({"epoch": epoch, **row})
                outcome.epochs_run = epoch
                ctx.hooks.scalars("unlearn", epoch, row)
                outcome.stopped = _early_stop(row, cfg, reference_forget_acc)
                if outcome.stopped:
                    break
        except Diverged as err:
            outcome.status, outcome.stopped = "diverged", str(err)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    outcome.seconds = time.perf_counter() - start
    return outcome


def _with_driver(phases: list[Phase], driver: str | None) -> list[Phase]:
    """A protocol's driver (MLS-Bench: every step gets a retain and a forget batch, an epoch is one pass over
    the retain set) replaces the pass of single-pass methods; methods with their own phases keep them."""
    if driver is None or len(phases) != 1 or phases[0].split is not None:
        return phases
    return [replace(phases[0], driver=driver, needs=("retain", "forget"))]


def _epoch(model, method: Method, ctx: Context, cfg: UnlearnConfig, phases: list[Phase], epoch: int, optimizer,
           cycles: dict, outcome: UnlearnOutcome, advance) -> dict:
    """All phases of one epoch; returns each reported loss averaged over the steps that reported it."""
    model.train(method.train_mode)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for phase in phases:
        method.phase = phase.name
        for retain_b, forget_b in _pairs(ctx, phase, cfg.batch_size, cycles, cfg.augment):
            out = method.step(model, retain_b, forget_b, optimizer, outcome.steps, epoch)
            _update(out, model, optimizer, cfg, method, outcome.guards)
            outcome.steps += 1
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + float(value)
                counts[key] = counts.get(key, 0) + 1
            advance(1)
    return {k: v / counts[k] for k, v in sums.items()}


def _early_stop(row: dict, cfg: UnlearnConfig, reference_forget_acc: float | None) -> str | None:
    if cfg.stop_at_reference and reference_forget_acc is not None and row["forget_acc"] <= reference_forget_acc:
        return "reached_reference"
    if cfg.retain_floor is not None and row["retain_acc"] < cfg.retain_floor:
        return "retain_floor"
    return None


def _check_step_output(out, method: Method):
    """step() returns a dict of numbers with a one-element 'loss'; anything else is the plugin's bug, named."""
    where = f"method '{method.name}': step() must return a dict of numbers with a 'loss' entry"
    if not isinstance(out, dict) or "loss" not in out:
        raise SoftTargetsError(f"{where}, got {brief(out)}")
    for key, value in out.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number and not (torch.is_tensor(value) and value.numel() == 1):
            raise SoftTargetsError(f"{where}; its entry {brief(key)} is {brief(value)}")
    return out["loss"]


def _update(out: dict, model, optimizer, cfg: UnlearnConfig, method: Method, guards: dict) -> None:
    """Backward and step when the method returned a differentiable loss; check every loss is finite."""
    loss = _check_step_output(out, method)
    loss_t = loss if torch.is_tensor(loss) else torch.tensor(float(loss))
    if not torch.isfinite(loss_t).all():
        raise Diverged(f"loss became {float(loss_t.detach())}")
    if torch.is_tensor(loss) and loss.requires_grad:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        method.after_backward(model)
        if cfg.clip_grad is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad))
            guards["max_grad_norm"] = max(norm, guards["max_grad_norm"] or 0.0)
            guards["clipped_steps"] += norm > cfg.clip_grad
        optimizer.step()
        method.after_step(model, optimizer)
    for key, value in out.items():
        if torch.is_tensor(value):
            out[key] = value.detach().item()


def probe_target_terms(method: Method, ctx: Context, batch_size: int) -> dict:
    """The gradient norm of each loss term that consumes targets (method.target_terms), at the original
    weights on the first batch of its phase, with the run's targets and with hard labels.

    A term is degenerate when its gradient with the run's targets is below DEGENERATE_RATIO of its gradient
    with hard labels: soft targets at T = 1 are the original's own outputs, the optimum of CE(f, t), so such a
    term gets exactly zero gradient there and cannot start the unlearning. The probe runs the method's own
    step() on a copy of the original with its own batch generator and restores every random state it could
    touch, so the run itself is unchanged by it."""
    if not method.target_terms:
        return {}
    rng = _random_states(method)
    terms: dict[str, dict] = {}
    try:
        for phase in _with_driver(method.phases(1), ctx.config.driver):
            retain_b, forget_b = _first_pair(ctx, phase, batch_size)
            for label, pair in (("grad_norm", (retain_b, forget_b)), ("hard_grad_norm", _hard(retain_b, forget_b))):
                _restore(method, rng)
                for name, norm in _term_gradients(method, ctx, phase, pair).items():
                    terms.setdefault(name, {"phase": phase.name})[label] = norm
    finally:
        _restore(method, rng)
    hard_run = ctx.targets.kind == "hard" and retain_kind_for("hard", ctx.targets.retain_kind) == "hard"
    for name, row in terms.items():
        row["degenerate"] = (not hard_run and row.get("hard_grad_norm", 0.0) > 0
                             and row.get("grad_norm", 0.0) <= DEGENERATE_RATIO * row["hard_grad_norm"])
    degenerate = [name for name, row in terms.items() if row["degenerate"]]
    said = (method.name, tuple(degenerate), _kinds(ctx))
    if degenerate and said not in _WARNED:  # once per process: a compare over 10 seeds says it once
        _WARNED.add(said)
        log.warning("%s: %s get%s no gradient from %s targets at the original weights (%s; hard labels: %s), so "
                    "%s cannot move the model; use --temperature other than 1, --targets smooth or --targets pseudo",
                    method.name, " and ".join(degenerate), "s" if len(degenerate) == 1 else "",
                    _kinds(ctx), ", ".join(f"{terms[n]['grad_norm']:.2g}" for n in degenerate),
                    ", ".join(f"{terms[n]['hard_grad_norm']:.2g}" for n in degenerate),
                    "it" if len(degenerate) == 1 else "they")
    return terms


def _kinds(ctx: Context) -> str:
    kind, retain = ctx.targets.kind, retain_kind_for(ctx.targets.kind, ctx.targets.retain_kind)
    text = kind if retain == kind else f"{kind}/{retain}"
    return f"{text} (T = {ctx.targets.temperature:g})" if "soft" in (kind, retain) else text


def _first_pair(ctx: Context, phase: Phase, batch_size: int) -> tuple[Batch | None, Batch | None]:
    """The phase's first (retain, forget) batches under a generator of the probe's own (the loop's is untouched)."""
    generator = torch.Generator().manual_seed(ctx.seed)
    pair = {}
    for name in ("retain", "forget"):
        if name not in phase.needs and name != phase.driver:
            pair[name] = None
            continue
        split = phase.split if (phase.split is not None and name == phase.driver) else getattr(ctx, name)
        idx = torch.randperm(len(split), generator=generator)[:batch_size]
        pair[name] = split.batch(idx)
    return pair["retain"], pair["forget"]


def _hard(*batches: Batch | None) -> tuple[Batch | None, ...]:
    """The same batches with one-hot labels as targets."""
    return tuple(None if b is None else Batch(b.x, b.y, torch.nn.functional.one_hot(b.y, b.t.shape[1]).to(b.t.dtype),
                                              b.idx) for b in batches)


def _term_gradients(method: Method, ctx: Context, phase: Phase, pair: tuple) -> dict[str, float]:
    model = copy.deepcopy(ctx.original).requires_grad_(True).train(method.train_mode)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.0)  # step() may set learning rates; nothing is ever stepped
    method.phase = phase.name
    out = method.step(model, *pair, optimizer, 0, 1)
    norms = {}
    for name in method.target_terms:
        term = out.get(name)
        if torch.is_tensor(term) and term.requires_grad:
            grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            norms[name] = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None)))
    method.phase = ""
    return norms


def _generators(method: Method) -> dict[str, torch.Generator]:
    """The generators a probe could advance: the method's own and those of per-batch targets (random labels)."""
    found = {key: value for key, value in vars(method).items() if isinstance(value, torch.Generator)}
    if method.ctx is not None:
        for split in ("retain", "forget"):
            generator = getattr(getattr(method.ctx, split).teacher, "generator", None)
            if isinstance(generator, torch.Generator):
                found[f"{split} targets"] = generator
    return found


def _random_states(method: Method) -> dict:
    states = {"torch": torch.get_rng_state(), "generators": {k: g.get_state() for k, g in _generators(method).items()}}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore(method: Method, states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
    generators = _generators(method)
    for key, state in states["generators"].items():
        generators[key].set_state(state)
