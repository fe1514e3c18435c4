"""Trend decomposition (docs/METHOD.md section 8): the invariants, exact to rounding, and an
independent brute-force computation of P(X, beta) on small data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmap.errors import InputError
from riskmap.model.trend import NATION, TrendSide, decompose

COVS = ["school", "social", "agri"]
DOMAINS = {"school": "educacion", "social": "proteccion_social", "agri": "trabajo"}


def _census(seed, n=3000, codes=("01001", "01002", "01003", "02001", "02002"), shift=0.0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "cvegeo": rng.choice(list(codes), n),
        "weight": rng.uniform(0.5, 3.0, n),
        "school": (rng.random(n) < 0.7 + shift).astype(float),
        "social": (rng.random(n) < 0.4 + shift).astype(float),
        "agri": (rng.random(n) < 0.3).astype(float),
    })


def _cov(seed, k=4, scale=0.03):
    a = np.random.default_rng(seed).normal(size=(k, k))
    return (a @ a.T / k + np.eye(k)) * scale**2


def _side(name, coef, census, cov=None, covariates=COVS):
    return TrendSide(name, np.asarray(coef, float), _cov(len(name)) if cov is None else cov,
                     list(covariates), census, dict(DOMAINS))


BETA_A = [-2.0, -1.0, -0.5, 0.7]
BETA_B = [-1.7, -0.8, -0.45, 1.0]


@pytest.fixture(scope="module")
def pair():
    return _side("2017", BETA_A, _census(1)), _side("2023", BETA_B, _census(2, shift=0.1))


def _brute(census, beta, covs, codes):
    """P(X, beta) per unit by a plain loop over the records (no numpy vectorisation)."""
    num, den = {}, {}
    for rec in census.to_dict("records"):
        eta = beta[0] + sum(b * rec[c] for b, c in zip(beta[1:], covs))
        p = 1.0 / (1.0 + np.exp(-eta))
        key = codes(rec["cvegeo"])
        num[key] = num.get(key, 0.0) + rec["weight"] * p
        den[key] = den.get(key, 0.0) + rec["weight"]
    return {k: num[k] / den[k] for k in num}


def test_probabilities_and_shapley_parts_match_a_brute_force_computation(pair):
    a, b = pair
    t = decompose(a, b, draws=0)
    for level, key in (("municipality", lambda c: c), ("state", lambda c: c[:2]),
                       ("nation", lambda c: NATION)):
        P = {(s, u): _brute(x.census, beta, COVS, key) for s, x in (("a", a), ("b", b))
             for u, beta in (("a", BETA_A), ("b", BETA_B))}
        table = t.table(level).set_index("unit")
        for unit, row in table.iterrows():
            aa, ab, ba, bb = (P[(s, u)][unit] for s, u in (("a", "a"), ("a", "b"),
                                                            ("b", "a"), ("b", "b")))
            assert row["probability_a"] == pytest.approx(aa, abs=1e-12)
            assert row["probability_b"] == pytest.approx(bb, abs=1e-12)
            assert row["composition"] == pytest.approx(0.5 * (ba - aa + bb - ab), abs=1e-12)
            assert row["behaviour"] == pytest.approx(0.5 * (ab - aa + bb - ba), abs=1e-12)


def _all_rows(t):
    return pd.concat([t.municipalities, t.states, t.nation], ignore_index=True)


def test_composition_plus_behaviour_is_the_change_and_parts_add_up(pair):
    t = decompose(*pair, draws=0)
    rows = _all_rows(t)
    assert np.allclose(rows["composition"] + rows["behaviour"], rows["change"], atol=1e-14)
    comp = rows[[f"composition_{c}" for c in COVS]].sum(axis=1)
    beh = rows[[f"behaviour_{c}" for c in COVS] + ["behaviour_intercept"]].sum(axis=1)
    shown = rows["composition_withheld"] == ""
    assert shown.sum() >= 1
    assert np.allclose(comp[shown], rows["composition"][shown], atol=1e-14)
    shown = rows["behaviour_withheld"] == ""
    assert np.allclose(beh[shown], rows["behaviour"][shown], atol=1e-14)


def test_swapping_the_editions_negates_every_part(pair):
    a, b = pair
    ab = decompose(a, b, draws=0)
    ba = decompose(b, a, draws=0)
    cols = ["change", "composition", "behaviour", *ab.part_columns()]
    x, y = _all_rows(ab)[cols], _all_rows(ba)[cols]
    assert np.allclose(x.to_numpy(), -y.to_numpy(), atol=1e-14, equal_nan=True)


def test_equal_coefficients_give_no_behaviour(pair):
    a, b = pair
    same = _side("2023", BETA_A, b.census)
    rows = _all_rows(decompose(a, same, draws=0))
    assert (rows["behaviour"] == 0).all()
    assert np.allclose(rows["composition"], rows["change"], atol=1e-15)
    for c in [f"behaviour_{c}" for c in COVS] + ["behaviour_intercept"]:
        assert (rows[c] == 0).all()


def test_identical_census_records_give_no_composition(pair):
    a, b = pair
    same = _side("2023", BETA_B, a.census.copy())
    rows = _all_rows(decompose(a, same, draws=0))
    assert (rows["composition"] == 0).all()
    assert np.allclose(rows["behaviour"], rows["change"], atol=1e-15)
    assert (rows[[f"composition_{c}" for c in COVS]] == 0).all().all()


def test_yun_weights_follow_the_formula_at_the_nation(pair):
    a, b = pair
    t = decompose(a, b, draws=0)
    nat = t.nation.iloc[0]
    xa = np.average(a.census[COVS], weights=a.census["weight"], axis=0)
    xb = np.average(b.census[COVS], weights=b.census["weight"], axis=0)
    ba, bb = np.array(BETA_A), np.array(BETA_B)
    terms = 0.5 * (ba + bb)[1:] * (xb - xa)
    for j, c in enumerate(COVS):
        assert nat[f"composition_{c}"] == pytest.approx(terms[j] / terms.sum()
                                                        * nat["composition"], rel=1e-10)
    xm = np.r_[1.0, 0.5 * (xa + xb)]
    bterms = xm * (bb - ba)
    assert nat["behaviour_intercept"] == pytest.approx(bterms[0] / bterms.sum()
                                                       * nat["behaviour"], rel=1e-10)
    assert nat["behaviour_agri"] == pytest.approx(bterms[3] / bterms.sum() * nat["behaviour"],
                                                  rel=1e-10)


def test_a_near_zero_denominator_withholds_the_split_with_a_reason(pair):
    a, b = pair
    # Coefficient changes that cancel on the linear index: intercept +0.3, school -0.3 * ...
    xa = np.average(a.census["school"], weights=a.census["weight"])
    xb = np.average(b.census["school"], weights=b.census["weight"])
    beta = list(BETA_A)
    beta[0] += 0.3
    beta[1] -= 0.3 / (0.5 * (xa + xb))
    t = decompose(a, _side("2023", beta, b.census), draws=0)
    nat = t.nation.iloc[0]
    assert "withheld" in nat["behaviour_withheld"]
    assert np.isnan(nat["behaviour_school"]) and np.isnan(nat["behaviour_intercept"])
    assert np.isfinite(nat["behaviour"])  # the aggregate is still reported
    assert nat["composition_withheld"] == ""


def test_divided_municipalities_pool_their_pieces(pair):
    a, b = pair
    census_b = b.census.copy()
    # 01003 of a's geography is divided in b's: part of it is the new 01010.
    piece = census_b.index[census_b["cvegeo"] == "01003"][::3]
    census_b.loc[piece, "cvegeo"] = "01010"
    names = pd.DataFrame({"cvegeo": ["01001", "01002", "01003", "02001", "02002"],
                          "cve_ent": ["01"] * 3 + ["02"] * 2, "nom_ent": ["A"] * 3 + ["B"] * 2,
                          "nom_mun": list("vwxyz")})
    split = decompose(a, _side("2023", BETA_B, census_b), home={"01010": "01003"},
                      names=names, draws=0)
    whole = decompose(a, b, names=names, draws=0)
    cols = ["probability_a", "probability_b", "change", "composition", "behaviour"]
    assert list(split.municipalities["unit"]) == list(names["cvegeo"])
    assert np.allclose(split.municipalities[cols], whole.municipalities[cols], atol=1e-14)
    # Children-weighted pooling of the pieces' own probabilities, as compare does.
    own = _brute(census_b, BETA_B, COVS, lambda c: c)
    n = census_b.groupby("cvegeo")["weight"].sum()
    pooled = (own["01003"] * n["01003"] + own["01010"] * n["01010"]) / (n["01003"] + n["01010"])
    row = split.municipalities.set_index("unit").loc["01003"]
    assert row["probability_b"] == pytest.approx(pooled, abs=1e-13)


def test_linearised_draws_agree_with_exact_rescoring(pair):
    """The first-order expansion moves interval limits by a few per cent of their width
    (measured: about 2 % with coefficient SEs of 0.04-0.05)."""
    a, b = pair
    fast = decompose(a, b, draws=400, seed=3)
    exact = decompose(a, b, draws=400, seed=3, exact=True)
    for part in ("change", "composition", "behaviour", "composition_school",
                 "behaviour_agri"):
        for lim in ("ci_low", "ci_high"):
            col = f"{part}_{lim}"
            width = (exact.states[f"{part}_ci_high"] - exact.states[f"{part}_ci_low"]).abs()
            gap = (fast.states[col] - exact.states[col]).abs()
            assert (gap <= 0.05 * width + 1e-12).all(), (col, gap.max(), width.min())
    nat = fast.nation.iloc[0]
    assert nat["change_ci_low"] < nat["change"] < nat["change_ci_high"]
    assert "change_ci_low" not in fast.municipalities.columns


def test_intervals_widen_with_the_covariance_and_are_reproducible(pair):
    a, b = pair
    one = decompose(a, b, draws=200)
    two = decompose(a, b, draws=200)
    assert one.nation.equals(two.nation)
    wide = decompose(_side("2017", BETA_A, a.census, cov=a.cov * 4),
                     _side("2023", BETA_B, b.census, cov=b.cov * 4), draws=200)
    w1 = one.nation["behaviour_ci_high"] - one.nation["behaviour_ci_low"]
    w4 = wide.nation["behaviour_ci_high"] - wide.nation["behaviour_ci_low"]
    assert float(w4.iloc[0]) == pytest.approx(2 * float(w1.iloc[0]), rel=0.05)


def test_covariates_of_one_spec_only_are_not_comparable(pair):
    a, b = pair
    census_b = b.census.assign(dirt=(np.arange(len(b.census)) % 5 == 0).astype(float))
    k = len(COVS) + 2
    side_b = TrendSide("2023", np.array(BETA_B + [0.4]), _cov(9, k=k), COVS + ["dirt"],
                       census_b, dict(DOMAINS, dirt="vivienda_servicios"))
    t = decompose(a, side_b, draws=50)
    assert t.not_comparable == ["dirt"] and t.covariates == COVS
    rows = _all_rows(t)
    assert np.allclose(rows["composition"] + rows["behaviour"], rows["change"], atol=1e-14)
    beh = rows[[f"behaviour_{c}" for c in COVS] + ["behaviour_intercept",
                                                   "behaviour_not_comparable"]].sum(axis=1)
    ok = rows["behaviour_withheld"] == ""
    assert np.allclose(beh[ok], rows["behaviour"][ok], atol=1e-14)
    assert (t.nation["behaviour_not_comparable"] > 0).all()


def test_domain_parts_sum_covariates_of_a_domain(pair):
    t = decompose(*pair, draws=0)
    row = t.nation.iloc[0]
    parts = t.domain_parts(row)
    assert parts["composition"]["educacion"] == pytest.approx(row["composition_school"])
    assert row["composition_domain_trabajo"] == pytest.approx(row["composition_agri"])
    assert sum(parts["composition"].values()) == pytest.approx(row["composition"])


def test_bad_inputs_raise_one_line_errors(pair):
    a, b = pair
    with pytest.raises(InputError, match="lack column"):
        decompose(a, _side("2023", BETA_B, b.census.drop(columns="agri")))
    with pytest.raises(InputError, match="coefficients"):
        decompose(a, _side("2023", BETA_B[:3], b.census))
    with pytest.raises(InputError, match="no fitted model"):
        TrendSide.from_card({"edition": "mirti2017", "kind": "imported"}, b.census)
