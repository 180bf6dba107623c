import torch

from softtargets.methods.finetune import Finetune


class WeightDropout(Finetune):
    """Weight dropout (Siddiqui et al. 2025): zero each parameter entry independently with probability p
    (0.2) once, then retain fine-tuning CE(f(x_r), t_r).

    Reference: shoaibahmed/vision_relearning vision_unlearner.py. No rescaling by 1/(1-p); buffers untouched.
    The mask is drawn from a generator seeded by the run's seed.
    Targets: the dropout has no target term; the fine-tuning term uses t_r.
    """

    name = "weight_dropout"
    summary = "weight dropout: zero each weight with probability p (0.2), then fine-tune CE(f(x_r), t_r)"
    targets_use = "dropout: no target term; then retain term CE(f(x_r), t_r)"
    defaults = {"p": 0.2}
    bounds = {"p": "[0, 1)"}

    @torch.no_grad()
    def setup(self, ctx):
        super().setup(ctx)
        generator = torch.Generator().manual_seed(ctx.seed)
        for param in ctx.model.parameters():
            keep = torch.rand(param.shape, generator=generator) >= self.p
            param.mul_(keep.to(param.device, param.dtype))
