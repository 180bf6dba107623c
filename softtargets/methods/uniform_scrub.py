import torch

from softtargets.methods.base import Method
from softtargets.targets import kl_div, soft_cross_entropy


class UniformSCRUB(Method):
    """Uniform SCRUB (Siddiqui et al. 2025): each step minimises
    alpha * KL(p_orig(x_r) || p(x_r)) + gamma * CE(f(x_r), t_r) + KL(u || p(x_f)), with u = 1/C.

    SCRUB with its unbounded max-step replaced by the bounded pull of forget outputs toward uniform.
    Reference: shoaibahmed/vision_relearning vision_unlearner.py (`uniform_scrub`; alpha = gamma = 1, T = 1,
    non-alternating: one retain and one forget batch per step). Both KL terms use the reference's reduction,
    torch.nn.KLDivLoss() with its default 'mean' (vision_unlearner.py:421, used at :279 and :383), which divides
    the batch sum by B * C: the terms weigh 1/C of the batchmean KL next to the CE term. One epoch passes over
    D_r, forget batches cycled.
    Targets: only gamma * CE(f(x_r), t_r). The retain KL uses the original's softmax (natively soft) and the
    forget term the fixed uniform distribution: neither changes between hard and soft runs.
    """

    name = "uniform_scrub"
    summary = "uniform SCRUB: alpha*KL(p_orig||p) + gamma*CE(f(x_r), t_r) on D_r, + KL(u||p) on D_f"
    targets_use = "retain term gamma * CE(f(x_r), t_r); teacher KL natively soft; forget KL(u||p) fixed"
    defaults = {"alpha": 1.0, "gamma": 1.0}
    target_terms = ("retain_ce",)
    driver = "retain"

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        logits = model(retain_batch.x)
        ce = soft_cross_entropy(logits, retain_batch.t)
        kl_retain = kl_div(logits, self.ctx.teacher_probs(retain_batch.x), reduction="mean")
        forget_logits = model(forget_batch.x)
        uniform = torch.full_like(forget_logits, 1 / forget_logits.shape[1])
        kl_forget = kl_div(forget_logits, uniform, reduction="mean")
        loss = self.alpha * kl_retain + self.gamma * ce + kl_forget
        return {"loss": loss, "retain_ce": ce, "retain_kl": kl_retain.detach(),
                "forget_kl_uniform": kl_forget.detach()}
