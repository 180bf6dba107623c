import copy

import torch

from softtargets.data.batches import SplitData
from softtargets.methods.base import Method, Phase, take
from softtargets.targets import kl_div


def reinitialised(model: torch.nn.Module) -> torch.nn.Module:
    """A randomly initialised copy of the same architecture (the incompetent teacher), eval mode."""
    fresh = copy.deepcopy(model)
    for module in fresh.modules():
        if callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()
    return fresh.eval().requires_grad_(False)


def random_subset(split: SplitData, fraction: float, seed: int) -> SplitData:
    """A seeded random `fraction` of a split, targets included."""
    count = max(1, round(fraction * len(split)))
    return take(split, torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:count])


class BadTeacher(Method):
    """Bad Teacher (Chundawat et al. 2023): distil a student from two teachers,
    L = KL_T(f(x) || q) on a batch of forget and retain examples, q = the incompetent (randomly initialised)
    teacher's softmax(f_bad(x_f) / T) on forget examples and t_r on retain examples.

    Reference: vikram2000b/bad-teaching-unlearning unlearn.py (UnlearnerLoss, blindspot_unlearner; notebook:
    Adam 1e-4, 1 epoch, T = 1, a random 30% of D_r). Here each step pairs a batch of that retain subset with a
    forget batch (the reference shuffles their union), one epoch passes over the subset, and the KL uses
    batchmean * T^2 (the reference's torch 'mean' reduction is C times smaller; Adam is insensitive to it).
    T is the targets' temperature (--temperature), so q uses the same T on both parts.
    Targets: the retain (competent-teacher) term is t_r: soft = the reference's competent teacher
    softmax(f_orig(x_r)/T); hard = one-hot labels. The forget term (the incompetent teacher) has no target term.
    """

    name = "bad_teacher"
    summary = "Bad Teacher: KL_T(f || q), q = random-init teacher on x_f and t_r on x_r (30% of D_r)"
    targets_use = "retain term KL_T(f(x_r) || t_r) (competent teacher = soft targets); forget term: no target"
    kl_targets = ("retain",)
    defaults = {"retain_fraction": 0.3}
    target_terms = ("distill_kl",)  # one KL over the joint batch: its retain half consumes t_r
    bounds = {"retain_fraction": "(0, 1]"}
    driver = "retain"

    def setup(self, ctx):
        super().setup(ctx)
        self.incompetent = reinitialised(ctx.original)
        self.retain_subset = random_subset(ctx.retain, self.retain_fraction, ctx.seed)

    def phases(self, epoch):
        return [Phase("distill", "retain", ("retain", "forget"), split=self.retain_subset)]

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        temperature = self.ctx.targets.temperature
        with torch.no_grad():
            bad = torch.softmax(self.incompetent(forget_batch.x).float() / temperature, dim=1)
        logits = model(torch.cat([retain_batch.x, forget_batch.x]))
        loss = kl_div(logits, torch.cat([retain_batch.t, bad]), temperature)
        return {"loss": loss, "distill_kl": loss}
