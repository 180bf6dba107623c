from softtargets.methods.base import Method, Phase, set_lr
from softtargets.targets import kl_div, soft_cross_entropy


class SCRUB(Method):
    """SCRUB (Kurmanji et al. 2023), the student-teacher max/min scheme with the frozen original as teacher.

    Per epoch e (1-based): lr = lr0 * 0.1^(number of milestones m with e > m); if e <= msteps, a max pass over
    D_f minimising -KL_T(f(x_f) || teacher); then a min pass over D_r minimising
    gamma * CE(f(x_r), t_r) + alpha * KL_T(f(x_r) || teacher), where KL_T = T^2 * batchmean KL(teacher_T || f_T)
    (targets.kl_div; the reference's RepDistiller DistillKL has the same reduction and direction).
    Reference: meghdadk/SCRUB thirdparty/repdistiller/helper/loops.py::train_distill, small_scale_unlearning
    notebook (Adam 5e-4, alpha 0.5, gamma 1, T 2, msteps 3, milestones 5,8,9, 10 epochs). The milestone
    schedule sets the learning rate at every step, so unlearning.schedule has no effect on SCRUB.
    Targets: the KL terms are natively soft (the teacher's softmax at the method's own T, computed on the fly,
    the same for hard and soft runs). Only gamma * CE(f(x_r), t_r) uses targets: hard = the reference's labels,
    soft = an extra distillation term at the targets' temperature, smooth = label smoothing.
    """

    name = "scrub"
    summary = "SCRUB: max pass -KL_T(f||teacher) on D_f (first msteps epochs), min pass gamma*CE_r + alpha*KL_T on D_r"
    targets_use = "retain term gamma * CE(f(x_r), t_r); KL terms are natively soft (teacher at T), no target"
    defaults = {"alpha": 0.5, "gamma": 1.0, "T": 2.0, "msteps": 3, "milestones": [5, 8, 9]}
    target_terms = ("retain_ce",)
    bounds = {"T": "(0, inf)", "msteps": "[0, inf)"}

    def phases(self, epoch):
        min_pass = Phase("min", "retain", ("retain",))
        return [Phase("max", "forget", ("forget",)), min_pass] if epoch <= self.msteps else [min_pass]

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        set_lr(optimizer, self.ctx.config.lr * 0.1 ** sum(epoch > m for m in self.milestones))
        if self.phase == "max":
            kl = kl_div(model(forget_batch.x), self.ctx.teacher_probs(forget_batch.x, self.T), self.T)
            return {"loss": -kl, "forget_kl": kl.detach()}
        logits = model(retain_batch.x)
        ce = soft_cross_entropy(logits, retain_batch.t)
        kl = kl_div(logits, self.ctx.teacher_probs(retain_batch.x, self.T), self.T)
        return {"loss": self.gamma * ce + self.alpha * kl, "retain_ce": ce, "retain_kl": kl.detach()}
