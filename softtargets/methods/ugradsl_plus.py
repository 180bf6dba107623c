from softtargets.methods.base import Method
from softtargets.targets import soft_cross_entropy


class UGradSLPlus(Method):
    """UGradSL+ (Di et al., "Label Smoothing Improves Machine Unlearning", ICLR 2026, arXiv 2406.07698):
    L = p * CE(f(x_r), t_r) - (1 - p) * CE(f(x_f), t_f), t_f = (1 - a) onehot(y) + a/C with a < 0, built on
    fine-tuning: one epoch passes over the retain set, forget batches are cycled.

    Reference: the paper's UGradSL+ objective; its smoothed CE is UCSC-REAL/negative-label-smoothing
    loss.py::loss_gls (@02bcc1a, lines 25-34), CE against t_f here (targets.soft_cross_entropy, exact gradient
    softmax(z) - t_f for a < 0 too). The paper gives no a, p, lr or epochs: configs/unlearn/ugradsl_plus.yaml
    chooses a = -0.5, p = 0.5 (graddiff's equal weights), Adam 1e-4, 2 epochs; tune them (study 2 does).
    Targets: both terms. The forget term's default kind is smooth with a < 0; the retain term uses hard labels
    by default (the paper smooths the forget term only); --retain-targets changes it.
    """

    name = "ugradsl_plus"
    summary = "UGradSL+: p * CE(f(x_r), t_r) - (1 - p) * CE(f(x_f), t_f), t_f negatively smoothed, retain-driven"
    targets_use = "retain term CE(f(x_r), t_r) (default hard) and forget term CE(f(x_f), t_f) (default a = -0.5)"
    defaults = {"p": 0.5}
    bounds = {"p": "[0, 1]"}
    target_terms = ("retain_ce", "forget_ce")
    driver = "retain"

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        retain = soft_cross_entropy(model(retain_batch.x), retain_batch.t)
        forget = soft_cross_entropy(model(forget_batch.x), forget_batch.t)
        return {"loss": self.p * retain - (1 - self.p) * forget, "retain_ce": retain, "forget_ce": forget}
