from softtargets.methods.gradasc import GradientAscent


class UGradSL(GradientAscent):
    """UGradSL (Di et al., "Label Smoothing Improves Machine Unlearning", ICLR 2026, arXiv 2406.07698): gradient
    ascent on the forget set with generalised label smoothing, L = -CE(f(x_f), t_f), t_f = (1 - a) onehot(y) + a/C
    with a < 0 (negative label smoothing, NLS).

    Reference: the loss of UCSC-REAL/negative-label-smoothing loss.py::loss_gls (@02bcc1a, lines 25-34):
    (1 - a) * NLL(y) + a * mean_k(-log p_k), batch-averaged, which is CE against t_f (targets.soft_cross_entropy,
    whose gradient softmax(z) - t_f stays exact for a < 0). Written out, the ascent is -(1 + |a|) CE(onehot y) +
    |a| CE(uniform): ascent on the label, up-weighted, plus a pull towards uniform that does not fade as p_y -> 1.
    The paper gives no a, lr or epochs: configs/unlearn/ugradsl.yaml takes gradasc's recipe and a = -0.5, the
    middle of that repository's NLS grid {-0.2, ..., -1}; tune them (study 2 does).
    Targets: the forget term; the default kind is smooth with a < 0 (hard gives plain gradient ascent).
    """

    name = "ugradsl"
    summary = "UGradSL: gradient ascent -CE(f(x_f), t_f) with negative label smoothing t_f = (1-a) onehot + a/C, a<0"
    targets_use = "forget term CE(f(x_f), t_f); default smooth with a = -0.5 (negative label smoothing)"
