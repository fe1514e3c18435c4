"""Factor contributions c_mk = beta_k (xbar_mk - xbar_k) and top factors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from riskmap.publish.edition import FACTOR_COLUMNS
from riskmap.errors import InputError
from riskmap.model.factors import factor_contributions, top_factors

COEF = pd.Series({"intercept": -3.0, "age": 0.2, "attends_school": -1.5, "rural": 0.7})
NATIONAL = pd.Series({"age": 11.0, "attends_school": 0.9, "rural": 0.3})
DOMAINS = {"age": "demografía", "attends_school": "educación", "rural": "vivienda y servicios"}


def means():
    return pd.DataFrame({
        "age": [12.0, 10.0, 11.0, np.nan],
        "attends_school": [0.80, 0.95, 0.90, np.nan],
        "rural": [0.90, 0.10, 0.30, np.nan],
    }, index=pd.Index(["07001", "09002", "20003", "32058"], name="cvegeo"))


def test_contributions_follow_the_formula():
    long = factor_contributions(COEF, means(), NATIONAL, DOMAINS)
    assert list(long.columns) == list(FACTOR_COLUMNS)
    assert len(long) == 4 * 3
    row = long[(long["cvegeo"] == "07001") & (long["covariate"] == "attends_school")].iloc[0]
    assert_allclose(row["contribution"], -1.5 * (0.80 - 0.9))
    assert row["domain"] == "educación"
    assert_allclose(row["municipal_mean"], 0.80)
    assert_allclose(row["national_mean"], 0.9)
    wide = long.pivot(index="cvegeo", columns="covariate", values="contribution")
    expected = (means() - NATIONAL) * COEF[["age", "attends_school", "rural"]]
    pd.testing.assert_frame_equal(wide.loc[expected.index, expected.columns], expected,
                                  check_names=False)
    # A municipality at the national means contributes nothing.
    assert_allclose(wide.loc["20003"], 0.0, atol=1e-12)
    assert wide.loc["32058"].isna().all()


def test_top_factors_keeps_only_positive_in_order():
    long = factor_contributions(COEF, means(), NATIONAL, DOMAINS)
    top = top_factors(long, n=3, labels={"rural": "Rural", "age": "Edad",
                                         "attends_school": "No asiste"})
    # 07001: rural 0.42, attends_school 0.15, age 0.2 -> rural, age, no asiste.
    assert top["07001"] == "Rural; Edad; No asiste"
    # 09002: age -0.2, attends_school -0.075, rural -0.14 -> none positive.
    assert top["09002"] == ""
    assert top["20003"] == "" and top["32058"] == ""
    assert top.index.tolist() == ["07001", "09002", "20003", "32058"]
    assert top_factors(long, n=1)["07001"] == "rural"


def test_missing_coefficient_or_mean_raises():
    with pytest.raises(InputError, match="no coefficient for covariate.*rural"):
        factor_contributions(COEF.drop("rural"), means(), NATIONAL, DOMAINS)
    with pytest.raises(InputError, match="no national mean for covariate.*age"):
        factor_contributions(COEF, means(), NATIONAL.drop("age"), DOMAINS)
    with pytest.raises(InputError, match="positive integer"):
        top_factors(factor_contributions(COEF, means(), NATIONAL, DOMAINS), n=0)


@pytest.mark.parametrize("lang, m, n, expected", [
    ("es", 0.318, 0.452, "Jefatura: menos que el promedio nacional (31.8 % frente a 45.2 %)"),
    ("es", 0.6, 0.4, "Jefatura: más que el promedio nacional (60.0 % frente a 40.0 %)"),
    ("en", 7.3, 8.9, "Jefatura: less than the national average (7.3 vs 8.9)"),
    ("en", None, 0.4, "Jefatura"),
])
def test_describe_factor_states_the_direction_in_words(lang, m, n, expected):
    from riskmap.model.factors import describe_factor

    assert describe_factor("Jefatura", m, n, lang) == expected
