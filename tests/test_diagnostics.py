"""Diagnostics: weighted AUC/Brier, calibration deciles, CV AUC with folds by PSU."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit
from sklearn.metrics import roc_auc_score

import riskmap.model.diagnostics as diag_mod
from riskmap.errors import ModelError
from riskmap.model.diagnostics import calibration_table, diagnose
from riskmap.model.logit import SurveyLogit


def survey(n=3000, G=100, seed=0):
    rng = np.random.default_rng(seed)
    psu = rng.integers(0, G, n)
    X = pd.DataFrame({"age": rng.uniform(5, 17, n), "rural": rng.integers(0, 2, n) * 1.0})
    y = (rng.random(n) < expit(-4 + 0.2 * X["age"] + 1.0 * X["rural"])).astype(int).to_numpy()
    w = rng.uniform(1, 5, n)
    return X, y, w, psu


def test_metrics_are_weighted():
    X, y, w, psu = survey()
    model = SurveyLogit().fit(X, y, w, psu=psu)
    d = diagnose(model, X, y, w, psu)
    p = model.predict_proba(X)[:, 1]
    assert_allclose(d["auc"], roc_auc_score(y, p, sample_weight=w))
    assert_allclose(d["brier"], np.sum(w * (y - p) ** 2) / w.sum())
    assert d["auc"] != pytest.approx(roc_auc_score(y, p), abs=1e-9)
    assert 0.6 < d["auc"] < 0.95
    assert len(d["cv_auc_folds"]) == 5
    assert_allclose(d["cv_auc"], np.mean(d["cv_auc_folds"]))
    assert abs(d["cv_auc"] - d["auc"]) < 0.03  # well-specified model: little optimism


def test_calibration_table_by_deciles():
    rng = np.random.default_rng(1)
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(int)
    w = rng.uniform(1, 3, 1000)
    table = calibration_table(p, y, w)
    assert [r["decile"] for r in table] == list(range(1, 11))
    assert [r["n"] for r in table] == [100] * 10
    assert_allclose(sum(r["weight"] for r in table), w.sum())
    low = np.argsort(p)[:100]
    assert_allclose(table[0]["mean_predicted"], np.average(p[low], weights=w[low]))
    assert_allclose(table[0]["observed"], np.average(y[low], weights=w[low]))
    means = [r["mean_predicted"] for r in table]
    assert means == sorted(means)
    assert set(table[0]) == {"decile", "mean_predicted", "observed", "weight", "n"}


def test_cross_validation_folds_never_split_a_psu(monkeypatch):
    X, y, w, psu = survey(n=1500, G=40, seed=2)
    model = SurveyLogit().fit(X, y, w, psu=psu)
    seen = []

    class Spy(SurveyLogit):
        def fit(self, X, y, sample_weight, strata=None, psu=None, design=True):
            seen.append((X.index.to_numpy(), design))
            return super().fit(X, y, sample_weight, design=design)

    monkeypatch.setattr(diag_mod, "SurveyLogit", Spy)
    diagnose(model, X, y, w, psu)
    assert len(seen) == 5
    tested = np.zeros(len(y), dtype=int)
    for train_rows, design in seen:
        assert design is False  # no covariance needed in the refits
        train_psus = set(psu[train_rows])
        test_rows = np.setdiff1d(np.arange(len(y)), train_rows)
        assert train_psus.isdisjoint(set(psu[test_rows]))
        tested[test_rows] += 1
    assert (tested == 1).all()  # each record is tested exactly once


def test_too_few_psus_for_folds():
    X, y, w, _ = survey(n=400)
    model = SurveyLogit().fit(X, y, w)
    with pytest.raises(ModelError, match="at least 5 PSUs, found 3"):
        diagnose(model, X, y, w, psu=np.arange(400) % 3)


def test_a_fold_that_cannot_identify_the_model_is_skipped_not_fatal():
    """A rare covariate present in one PSU only: the training part without that PSU has an
    all-zero column; the full model is fine, so the diagnostics skip that fold."""
    X, y, w, psu = survey(n=1500, G=40, seed=3)
    X = X.assign(rare=(psu == 7).astype(float) * (np.arange(len(y)) % 2))
    model = SurveyLogit().fit(X, y, w, psu=psu)
    with pytest.warns(UserWarning, match=r"from 4 of 5 folds; skipped fold \d: singular "
                                         r"design: column\(s\) all zero: rare"):
        d = diagnose(model, X, y, w, psu)
    assert len(d["cv_auc_folds"]) == 4 and len(d["cv_skipped"]) == 1
    assert d["cv_auc"] == pytest.approx(np.mean(d["cv_auc_folds"]))
    # without the rare covariate nothing is skipped
    clean = diagnose(SurveyLogit().fit(X[["age", "rural"]], y, w, psu=psu),
                     X[["age", "rural"]], y, w, psu)
    assert clean["cv_skipped"] == [] and len(clean["cv_auc_folds"]) == 5
