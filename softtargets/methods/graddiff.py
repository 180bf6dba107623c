from softtargets.methods.base import Method
from softtargets.targets import soft_cross_entropy


class GradientDifference(Method):
    """Gradient difference: L = alpha * CE(f(x_r), t_r) - gamma * CE(f(x_f), t_f), paired batches.

    Reference: open-unlearning src/trainer/unlearn/grad_diff.py (gamma = alpha = 1); the original
    SoftTargets tool's `graddiff`. One epoch passes over the forget set, retain batches are cycled.
    Targets: both terms. Hard: one-hot labels. Soft: the original's probabilities at T, which makes the
    retain term a distillation from the original and the forget term a push away from its distribution.
    """

    name = "graddiff"
    summary = "gradient difference: alpha * CE(f(x_r), t_r) - gamma * CE(f(x_f), t_f)"
    targets_use = "retain term CE(f(x_r), t_r) and forget term CE(f(x_f), t_f)"
    defaults = {"alpha": 1.0, "gamma": 1.0}
    target_terms = ("retain_ce", "forget_ce")
    driver = "forget"

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        retain = soft_cross_entropy(model(retain_batch.x), retain_batch.t)
        forget = soft_cross_entropy(model(forget_batch.x), forget_batch.t)
        loss = self.alpha * retain - self.gamma * forget
        return {"loss": loss, "retain_ce": retain, "forget_ce": forget}
