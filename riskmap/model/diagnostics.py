"""Fit diagnostics stored with every model (docs/METHOD.md §7).

Weighted AUC and Brier score, a calibration table by deciles of the predicted probability,
and a cross-validated AUC whose folds are whole PSUs: records of one PSU are correlated, so
splitting by row would leak information between training and test folds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import GroupKFold

from ..errors import ModelError
from .logit import SurveyLogit


def calibration_table(p, y, w, n_bins=10) -> list[dict]:
    """Weighted observed rate against mean prediction in deciles of the prediction.

    Deciles are by record count of the sorted predictions (ties kept together is not
    attempted: a decile boundary may split equal predictions).

    Returns
    -------
    list of dict
        ``decile`` (1..n_bins), ``mean_predicted``, ``observed``, ``weight``, ``n``.
    """
    p, y, w = (np.asarray(a, dtype=np.float64) for a in (p, y, w))
    order = np.argsort(p, kind="stable")
    bins = np.empty(p.size, dtype=np.int64)
    bins[order] = np.arange(p.size) * n_bins // p.size
    out = []
    for b in range(n_bins):
        sel = bins == b
        wt = w[sel].sum()
        out.append({
            "decile": b + 1,
            "mean_predicted": float(np.dot(w[sel], p[sel]) / wt) if wt > 0 else None,
            "observed": float(np.dot(w[sel], y[sel]) / wt) if wt > 0 else None,
            "weight": float(wt),
            "n": int(sel.sum()),
        })
    return out


def diagnose(model, X, y, sample_weight, psu, n_folds=5, random_state=0) -> dict:
    """Weighted AUC, Brier score, calibration by deciles and PSU-grouped CV AUC.

    Parameters
    ----------
    model : SurveyLogit
        Fitted on ``X, y``.
    X, y, sample_weight : array-like
        The survey data the model was fitted on.
    psu : array-like
        PSU labels (strata-nested labels are fine: only grouping matters). ``None`` treats
        every record as its own group.
    n_folds : int, default 5
    random_state : int, default 0
        Seed for shuffling the PSU-to-fold assignment.

    Returns
    -------
    dict
        ``auc``, ``cv_auc`` (mean over folds; None when no fold could be scored),
        ``cv_auc_folds``, ``cv_skipped`` (why a fold has no AUC: one outcome class in its test
        part, or a training part that cannot identify the model), ``brier``, ``calibration``.

    Warns
    -----
    UserWarning
        When folds are skipped.

    Raises
    ------
    ModelError
        Fewer PSUs than folds.
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    p = model.predict_proba(X)[:, 1]
    result = {
        "auc": float(roc_auc_score(y, p, sample_weight=w)),
        "brier": float(brier_score_loss(y, p, sample_weight=w)),
        "calibration": calibration_table(p, y, w),
    }
    groups = np.arange(y.size) if psu is None else pd.factorize(
        pd.Series(np.asarray(psu).reshape(-1)))[0]
    n_groups = int(groups.max()) + 1
    if n_groups < n_folds:
        raise ModelError(f"cross-validation needs at least {n_folds} PSUs, found {n_groups}")
    # GroupKFold shuffles whole groups (scikit-learn >= 1.6); PSUs never straddle folds.
    try:
        cv = GroupKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    except TypeError:  # scikit-learn < 1.6: deterministic, size-balanced group folds
        cv = GroupKFold(n_splits=n_folds)
    is_df = isinstance(X, pd.DataFrame)
    folds, skipped = [], []
    for k, (train, test) in enumerate(cv.split(np.zeros(y.size), y, groups), start=1):
        if np.unique(y[test]).size < 2:
            skipped.append(f"fold {k}: one outcome class only (AUC undefined)")
            continue
        Xtr = X.iloc[train] if is_df else np.asarray(X)[train]
        Xte = X.iloc[test] if is_df else np.asarray(X)[test]
        sub = SurveyLogit(max_iter=model.max_iter, tol=model.tol,
                          single_psu=model.single_psu)
        try:
            sub.fit(Xtr, y[train], w[train], design=False)
        except ModelError as exc:
            # A rare covariate can be absent from (or separate) one training fold even
            # though the full survey supports the model: that fold has no AUC, the build
            # goes on.
            skipped.append(f"fold {k}: {exc.message}")
            continue
        folds.append(float(roc_auc_score(y[test], sub.predict_proba(Xte)[:, 1],
                                         sample_weight=w[test])))
    result["cv_auc_folds"] = folds
    result["cv_auc"] = float(np.mean(folds)) if folds else None
    result["cv_skipped"] = skipped
    if skipped:
        warnings.warn(f"cross-validated AUC from {len(folds)} of {n_folds} folds; skipped "
                      + "; ".join(skipped), UserWarning, stacklevel=2)
    return result
