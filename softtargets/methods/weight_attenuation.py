import torch

from softtargets.methods.finetune import Finetune


class WeightAttenuation(Finetune):
    """Weight attenuation (Siddiqui et al. 2025): theta <- factor * theta once (factor 0.5), then retain
    fine-tuning CE(f(x_r), t_r).

    Reference: shoaibahmed/vision_relearning vision_unlearner.py. Scales parameters, not buffers.
    Targets: the attenuation has no target term; the fine-tuning term uses t_r.
    """

    name = "weight_attenuation"
    summary = "weight attenuation: theta *= factor (0.5), then fine-tune CE(f(x_r), t_r)"
    targets_use = "attenuation: no target term; then retain term CE(f(x_r), t_r)"
    defaults = {"factor": 0.5}

    @torch.no_grad()
    def setup(self, ctx):
        super().setup(ctx)
        for p in ctx.model.parameters():
            p.mul_(self.factor)
