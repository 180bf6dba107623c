import torch

from softtargets.methods.finetune import Finetune


class WeightDistortion(Finetune):
    """Weight distortion (Siddiqui et al. 2025, "From Dormant to Deleted"): theta <- theta + N(0, sigma^2) once,
    then retain fine-tuning CE(f(x_r), t_r).

    Reference: shoaibahmed/vision_relearning vision_unlearner.py (sigma = 0.02), the paper's headline method.
    The noise is drawn from a generator seeded by the run's seed; it perturbs parameters, not buffers.
    Targets: the perturbation has no target term; the fine-tuning term uses t_r (hard: one-hot, soft:
    distillation from the original).
    """

    name = "weight_distortion"
    summary = "weight distortion: theta += N(0, sigma^2), then fine-tune CE(f(x_r), t_r)"
    targets_use = "perturbation: no target term; then retain term CE(f(x_r), t_r)"
    defaults = {"sigma": 0.02}
    bounds = {"sigma": "[0, inf)"}

    @torch.no_grad()
    def setup(self, ctx):
        super().setup(ctx)
        generator = torch.Generator().manual_seed(ctx.seed)
        for p in ctx.model.parameters():
            p.add_(torch.randn(p.shape, generator=generator).to(p.device) * self.sigma)
