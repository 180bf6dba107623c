"""Membership-inference attacks used as forgetting metrics (see methods-metrics.md section 9)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


LOSS_MIA_MIN = 6  # examples per side: the smallest n whose 10% test split, ceil(0.2 n), holds both classes


def per_example_loss(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    return F.cross_entropy(logits, y, reduction="none").cpu().numpy()


def loss_mia_accuracy(forget_losses: np.ndarray, test_losses: np.ndarray, seed: int = 0) -> float:
    """The NeurIPS 2023 starting kit's simple_mia: logistic regression on per-example loss, forget (1) vs
    test (0), the larger side subsampled (seeded) to balance the classes, accuracy averaged over
    StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=0). 0.5 = indistinguishable.
    Returns nan when either side has fewer than LOSS_MIA_MIN examples (with 5 a side, the 10% test split holds
    one example, which a stratified split of two classes cannot take).
    """
    from sklearn.linear_model import LogisticRegression  # scikit-learn on first use: 85 MB RSS, not in training
    from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score

    n = min(len(forget_losses), len(test_losses))
    if n < LOSS_MIA_MIN:
        return float("nan")
    rng = np.random.default_rng(seed)
    f = rng.permutation(np.asarray(forget_losses, dtype=np.float64))[:n]
    t = rng.permutation(np.asarray(test_losses, dtype=np.float64))[:n]
    x = np.concatenate([f, t]).reshape(-1, 1)
    labels = np.r_[np.ones(n), np.zeros(n)]
    cv = StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=0)
    return float(cross_val_score(LogisticRegression(), x, labels, cv=cv, scoring="accuracy").mean())


def max_confidence(logits: torch.Tensor) -> torch.Tensor:
    """max softmax probability per example (float64), on the logits' device."""
    return torch.softmax(logits.double(), 1).max(1).values


def confidence_mia_auc(member_scores: np.ndarray | torch.Tensor, nonmember_scores: np.ndarray | torch.Tensor
                       ) -> float:
    """MLS-Bench forget_mia_auc: ROC AUC of max-softmax confidence, members (forget-train) = 1 vs
    non-members (test images of the forgotten classes) = 0; equals Mann-Whitney U / (n1 n0), ties count 1/2.
    0.5 is ideal; below 0.5 means the forget set is *less* confident than unseen data. Scores on a GPU are
    ranked there (rank_auc); elsewhere scikit-learn's roc_auc_score computes it."""
    if len(member_scores) == 0 or len(nonmember_scores) == 0:
        return float("nan")
    if torch.is_tensor(member_scores) and member_scores.is_cuda:
        return rank_auc(member_scores, nonmember_scores)
    member_scores, nonmember_scores = np.asarray(member_scores), np.asarray(nonmember_scores)
    labels = np.r_[np.ones(len(member_scores)), np.zeros(len(nonmember_scores))]
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, np.r_[member_scores, nonmember_scores]))


def rank_auc(member_scores: torch.Tensor, nonmember_scores: torch.Tensor) -> float:
    """ROC AUC by ranks, on the scores' device: (sum of the members' ranks - n1 (n1 + 1) / 2) / (n1 n0), tied
    scores sharing their average rank (so a tie between a member and a non-member counts 1/2, as in
    roc_auc_score). Sorting-based, hence deterministic on a GPU."""
    n1, n0 = len(member_scores), len(nonmember_scores)
    scores = torch.cat([member_scores, nonmember_scores]).double()
    _, inverse, counts = torch.unique(scores, sorted=True, return_inverse=True, return_counts=True)
    last = torch.cumsum(counts, 0)  # 1-based rank of each distinct value's last occurrence
    average = last.double() - (counts.double() - 1) / 2
    member_ranks = average[inverse[:n1]].sum()
    return ((member_ranks - n1 * (n1 + 1) / 2) / (n1 * n0)).item()


def unlearn_score(retain_acc: float, forget_acc: float, forget_mia_auc: float) -> float:
    """MLS-Bench: (retain_acc + (1 - forget_acc) + (1 - forget_mia_auc)) / 3, where retain_acc and forget_acc
    are test accuracies on the retained and the forgotten classes."""
    return (retain_acc + (1 - forget_acc) + (1 - forget_mia_auc)) / 3


SVC_MAX_SHADOW = 2000  # per side: the RBF SVC's cost grows ~quadratically with its training set


def true_class_confidence(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """p_y = softmax(logits)_y per example, the 'confidence' feature of SalUn's SVC_MIA."""
    return torch.softmax(logits.double(), 1).gather(1, y.view(-1, 1)).squeeze(1).cpu().numpy()


def svc_mia_efficacy(retain_conf: np.ndarray, test_conf: np.ndarray, forget_conf: np.ndarray,
                     seed: int = 0) -> float:
    """SalUn / Unlearn-Sparse MIA-Efficacy (evaluation/SVC_MIA.py, main_forget.py; Jia et al. 2023,
    Fan et al. 2024) on the confidence feature p_y: an SVC(C=3, RBF, gamma='auto') learns members = the first
    |D_t| retain examples (1) vs non-members = the test set (0); the score is the fraction of forget examples
    it calls non-members, 1 - mean(predict(D_f)). Higher = more forgotten; compare with the reference's value.
    Cost control (ours): each shadow side is capped at SVC_MAX_SHADOW examples, the first ones of the retain
    set and a seeded random subset of the test set. nan when a set is empty.
    """
    from sklearn.svm import SVC

    n = min(len(retain_conf), len(test_conf), SVC_MAX_SHADOW)
    if n == 0 or len(forget_conf) == 0:
        return float("nan")
    members = np.asarray(retain_conf, dtype=np.float64)[:n]
    nonmembers = np.random.default_rng(seed).permutation(np.asarray(test_conf, dtype=np.float64))[:n]
    x = np.r_[members, nonmembers].reshape(-1, 1)
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, np.r_[np.ones(n), np.zeros(n)])
    return float(1 - svc_predict(clf, np.asarray(forget_conf, dtype=np.float64)).mean())


SVC_CHUNK = 512  # forget examples per vectorised block: 512 x (support vectors) doubles, about 16 MB at 4,000
SVC_SURE = 1e-9  # relative margin beyond which numpy's and libsvm's f(x) share their sign (their difference: ~1e-13)


def svc_predict(clf, x: np.ndarray) -> np.ndarray:
    """clf.predict(x.reshape(-1, 1)) of a fitted binary RBF SVC on one feature, the same labels, about 3 times
    faster (docs/benchmarks.md): the decision function f(x) = sum_i coef_i exp(-gamma (x - sv_i)^2) + b in
    vectorised numpy (libsvm evaluates it one example at a time). Its rounding differs from libsvm's by far less than
    SVC_SURE x sum_i |coef_i k_i| + |b|, so wherever |f| exceeds that the sign, and the label, are libsvm's;
    the examples closer to the boundary than that are passed to clf.predict itself. Exact by construction,
    tested against clf.predict on and beside the boundary."""
    sv, coef = clf.support_vectors_[:, 0], clf.dual_coef_[0]
    b, gamma = float(clf.intercept_[0]), float(clf._gamma)  # _gamma: the value 'auto' resolved to at fit
    labels = np.empty(len(x), dtype=clf.classes_.dtype)
    for start in range(0, len(x), SVC_CHUNK):
        part = x[start:start + SVC_CHUNK]
        terms = np.exp(-gamma * np.square(part[:, None] - sv[None, :])) * coef
        f = terms.sum(1) + b
        sure = np.abs(f) > SVC_SURE * (np.abs(terms).sum(1) + abs(b))
        out = np.where(f > 0, clf.classes_[1], clf.classes_[0])
        if not sure.all():
            out[~sure] = clf.predict(part[~sure].reshape(-1, 1))
        labels[start:start + SVC_CHUNK] = out
    return labels

