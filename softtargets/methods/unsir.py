import torch

from softtargets.data.batches import SplitData
from softtargets.methods.base import Method, Phase, set_lr, take
from softtargets.targets import soft_cross_entropy


def error_maximising_noise(original, shape, target: torch.Tensor, count: int, steps: int, lr: float,
                           generator: torch.Generator) -> torch.Tensor:
    """N [count, *shape] minimising -CE(f_orig(N), target) + 0.1 * mean_b ||N_b||^2 (normalised-input space)."""
    noise = torch.randn((count, *shape), generator=generator).to(target.device).requires_grad_(True)
    optimizer = torch.optim.Adam([noise], lr=lr)
    targets = target.expand(count, -1)
    for _ in range(steps):
        loss = -soft_cross_entropy(original(noise), targets) + 0.1 * noise.pow(2).flatten(1).sum(1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return noise.detach()


def first_per_class(split: SplitData, per_class: int) -> SplitData:
    """The first `per_class` examples of each class present in the split (UNSIR's D_r,sub)."""
    keep = torch.cat([(split.y == c).nonzero().flatten()[:per_class] for c in split.y.unique()])
    return take(split, keep.sort().values)


class UNSIR(Method):
    """UNSIR (Tarun et al. 2023, "Fast Yet Effective Machine Unlearning"): impair with error-maximising noise,
    then repair.

    Setup: for each class k in the forget set, noise N_k [noise_count, image shape] is optimised (Adam
    noise_lr, noise_steps) to minimise -CE(f_orig(N_k), tbar_k) + 0.1 * mean ||N||^2, tbar_k = mean of t_f
    over the forget examples of class k. Impair (lr): CE on each D_r,sub batch joined by an equal number of
    noise samples labelled tbar_k. Repair (repair_lr): CE(f(x_r), t_r) on D_r,sub, the first
    retain_per_class examples of each retained class.
    Reference: vikram2000b/Fast-Machine-Unlearning notebook (256 noise images, Adam 0.1, 5x8 steps; impair
    Adam 0.02, repair 0.01, 1 epoch each, batch 256) and its port in bad-teaching-unlearning. Designed for
    class forgetting; for random forget sets every class present gets its own noise. The two phases set
    their own learning rates, so unlearning.schedule has no effect on UNSIR.
    Targets: noise labels tbar_k (hard: onehot(k), the reference; soft: the original's mean distribution on
    class k) in the noise loss and the impair term; the retain terms use t_r (soft: distillation repair).
    """

    name = "unsir"
    summary = "UNSIR: error-maximising noise per forget class; impair CE on noise + D_r,sub, repair CE on D_r,sub"
    targets_use = "noise labels tbar_k = mean t_f of class k (noise + impair); retain terms CE(f(x_r), t_r)"
    target_terms = ("impair_ce", "repair_ce")
    defaults = {"noise_count": 256, "noise_steps": 40, "noise_lr": 0.1, "repair_lr": 0.01, "retain_per_class": 1000}
    bounds = {"noise_count": "[1, 65536]", "noise_steps": "[0, 1e6]", "noise_lr": "(0, inf)", "repair_lr": "(0, inf)",
              "retain_per_class": "[1, inf)"}

    def setup(self, ctx):
        super().setup(ctx)
        generator = torch.Generator().manual_seed(ctx.seed)
        shape = tuple(ctx.forget.x.shape[1:])
        noises, labels = [], []
        for k in ctx.forget.y.unique():
            target = ctx.forget.t[ctx.forget.y == k].mean(0, keepdim=True)
            noises.append(error_maximising_noise(ctx.original, shape, target, self.noise_count, self.noise_steps,
                                                 self.noise_lr, generator))
            labels.append(target.expand(self.noise_count, -1))
        self.noise, self.noise_t = torch.cat(noises), torch.cat(labels)
        self.noise_generator = generator
        self.retain_subset = first_per_class(ctx.retain, self.retain_per_class)

    def phases(self, epoch):
        return [Phase(name, "retain", ("retain",), split=self.retain_subset) for name in ("impair", "repair")]

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        if self.phase == "repair":
            set_lr(optimizer, self.repair_lr)
            loss = soft_cross_entropy(model(retain_batch.x), retain_batch.t)
            return {"loss": loss, "repair_ce": loss}
        set_lr(optimizer, self.ctx.config.lr)
        pick = torch.randint(len(self.noise), (len(retain_batch.y),), generator=self.noise_generator)
        pick = pick.to(self.noise.device)
        x = torch.cat([retain_batch.x, self.noise[pick]])
        loss = soft_cross_entropy(model(x), torch.cat([retain_batch.t, self.noise_t[pick]]))
        return {"loss": loss, "impair_ce": loss}
