from softtargets.methods.base import Method
from softtargets.targets import soft_cross_entropy


class GradientAscent(Method):
    """Gradient ascent (GA / NegGrad): L = -CE(f(x_f), t_f), forget set only.

    Reference: Unlearn-Sparse unlearn/GA.py (Jia et al. 2023); the original SoftTargets tool's `gradasc`.
    Targets: the forget term. Hard: t_f = onehot(y_f). Soft: t_f = softmax(f_orig(x_f)/T), so the model is
    pushed away from the original's whole distribution, not only from the label. The loss is unbounded;
    the loop's divergence guard and early stop bound it in practice.
    """

    name = "gradasc"
    summary = "gradient ascent on the forget set: minimise -CE(f(x_f), t_f)"
    targets_use = "forget term CE(f(x_f), t_f)"
    target_terms = ("forget_ce",)
    needs = ("forget",)
    driver = "forget"

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        forget = soft_cross_entropy(model(forget_batch.x), forget_batch.t)
        return {"loss": -forget, "forget_ce": forget}
