"""The unlearning loop: paired retain/forget batches, the update, and the guards shared by all methods.

Guards: a NaN/inf loss stops the run with status 'diverged'; optional global gradient-norm clipping;
optional early stops when forget accuracy reaches the reference's or retain accuracy drops below a floor.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from softtargets.config import UnlearnConfig
from softtargets.inference import predict_logits
from softtargets.methods.base import Context, Method
from softtargets.training import Diverged, make_optimizer

RETAIN_PROBE = 4096  # retain accuracy per epoch on a fixed subsample: cheap and stable enough for a guard


@dataclass
class UnlearnOutcome:
    status: str = "completed"  # completed | diverged
    epochs_run: int = 0
    steps: int = 0
    stopped: str | None = None  # reached_reference | retain_floor | diverged message
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)


def _accuracy(model, split, idx=None) -> float | None:
    """Accuracy on a split (or a subsample); None when the outputs are not finite (a diverged model)."""
    x, y = (split.x, split.y) if idx is None else (split.x[idx], split.y[idx])
    logits = predict_logits(model, split.data, x)
    if not torch.isfinite(logits).all():
        return None
    return (logits.argmax(1) == y).float().mean().item()


def unlearn(model: torch.nn.Module, method: Method, ctx: Context, cfg: UnlearnConfig,
            reference_forget_acc: float | None = None) -> UnlearnOutcome:
    """Run method on model in place for cfg.epochs; one epoch = one pass over the method's driver split."""
    outcome = UnlearnOutcome()
    start = time.perf_counter()
    method.setup(ctx)
    optimizer = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
    driver, other = (ctx.forget, ctx.retain) if method.driver == "forget" else (ctx.retain, ctx.forget)
    other_name = "retain" if method.driver == "forget" else "forget"
    others = other.cycle(cfg.batch_size, ctx.generator) if other_name in method.needs else None
    probe = torch.randperm(len(ctx.retain), generator=torch.Generator().manual_seed(ctx.seed))[:RETAIN_PROBE]
    steps_per_epoch = math.ceil(len(driver) / cfg.batch_size)
    with ctx.hooks.progress(f"unlearn {method.name}", cfg.epochs * steps_per_epoch) as advance:
        for epoch in range(1, cfg.epochs + 1):
            model.train(method.train_mode)
            sums: dict[str, float] = {}
            for batch in driver.batches(cfg.batch_size, ctx.generator):
                paired = next(others) if others is not None else None
                retain_b, forget_b = (paired, batch) if method.driver == "forget" else (batch, paired)
                try:
                    out = method.step(model, retain_b, forget_b, optimizer, outcome.steps, epoch)
                    _update(out, model, optimizer, cfg, method)
                except Diverged as err:
                    outcome.status, outcome.stopped = "diverged", str(err)
                    break
                outcome.steps += 1
                for key, value in out.items():
                    sums[key] = sums.get(key, 0.0) + float(value)
                advance(1)
            if outcome.status == "diverged":
                break
            row = {k: v / steps_per_epoch for k, v in sums.items()}
            forget_acc, retain_acc = _accuracy(model, ctx.forget), _accuracy(model, ctx.retain, probe.to(ctx.device))
            if forget_acc is None or retain_acc is None:
                outcome.status, outcome.stopped = "diverged", f"model outputs became non-finite in epoch {epoch}"
                break
            row["forget_acc"], row["retain_acc"] = forget_acc, retain_acc
            outcome.history.append({"epoch": epoch, **row})
            outcome.epochs_run = epoch
            ctx.hooks.scalars("unlearn", epoch, row)
            if cfg.stop_at_reference and reference_forget_acc is not None and row["forget_acc"] <= reference_forget_acc:
                outcome.stopped = "reached_reference"
                break
            if cfg.retain_floor is not None and row["retain_acc"] < cfg.retain_floor:
                outcome.stopped = "retain_floor"
                break
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    outcome.seconds = time.perf_counter() - start
    return outcome


def _update(out: dict, model, optimizer, cfg: UnlearnConfig, method: Method) -> None:
    """Backward and step when the method returned a differentiable loss; check every loss is finite."""
    loss = out.get("loss")
    if loss is None:
        raise KeyError(f"method '{method.name}' step() must return a dict with a 'loss' entry")
    loss_t = loss if torch.is_tensor(loss) else torch.tensor(float(loss))
    if not torch.isfinite(loss_t).all():
        raise Diverged(f"loss became {float(loss_t)}")
    if torch.is_tensor(loss) and loss.requires_grad:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        optimizer.step()
        method.after_step(model, optimizer)
    for key, value in out.items():
        if torch.is_tensor(value):
            out[key] = value.detach().item()
