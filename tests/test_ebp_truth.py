"""EBP against the demo's known truth (municipal random effect of SD 0.4 on the logit scale).

The 2023 demo edition is rebuilt from the demo's input files with ``--estimator ebp``
(through :func:`riskmap.publish.pipeline.build_and_publish`, as the command line does) and
compared with the true municipal probabilities, beside the synthetic estimate of the same
edition. B = 60 keeps the test short; ``bench/bench_ebp.py`` runs the full B = 200.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskmap.paths import MODELS_DIR
from riskmap.publish.pipeline import build_and_publish

pytestmark = pytest.mark.slow
B = 60


@pytest.fixture(scope="module")
def ebp_edition(demo_dir, tmp_path_factory):
    demo = demo_dir / "demo"
    edition = build_and_publish(
        tmp_path_factory.mktemp("ebp"), "2023", demo / "survey_2023.parquet",
        demo / "census_2020.parquet", demo / "boundaries_2020.gpkg",
        spec_path=MODELS_DIR / "demo.toml", rasters={"cropland_share": demo / "cropland_share.tif"},
        vintage="2020", year=2023, synthetic=True, estimator="ebp", bootstrap=B)
    truth = pd.read_csv(demo / "truth" / "municipal_2023.csv", dtype={"cvegeo": str})
    rows = edition.rows.set_index("cvegeo")
    rows["truth"] = truth.set_index("cvegeo")["true_probability"].reindex(rows.index)
    meta = json.loads((demo / "truth" / "editions.json").read_text(encoding="utf-8"))
    return edition, rows[rows["probability"].notna()], meta


def _covered(rows, suffix=""):
    return ((rows[f"ci_low{suffix}"] <= rows["truth"])
            & (rows["truth"] <= rows[f"ci_high{suffix}"]))


def test_ebp_intervals_cover_the_truth(ebp_edition):
    _, rows, _ = ebp_edition
    ebp, syn = _covered(rows).mean(), _covered(rows, "_synthetic").mean()
    print(f"95 % interval coverage of the true municipal probability: EBP {ebp:.3f}, "
          f"synthetic {syn:.3f} ({len(rows)} municipalities)")
    assert 0.90 <= ebp <= 0.99
    assert syn < ebp  # the synthetic intervals ignore the area effect


def _rmse(rows, col):
    return float(np.sqrt(np.mean((rows[col] - rows["truth"]) ** 2)))


def test_ebp_sharper_where_the_survey_reached_and_no_worse_elsewhere(ebp_edition):
    _, rows, _ = ebp_edition
    s = rows["sampled"].astype(bool)
    ratio_s = _rmse(rows[s], "probability") / _rmse(rows[s], "probability_synthetic")
    ratio_n = _rmse(rows[~s], "probability") / _rmse(rows[~s], "probability_synthetic")
    print(f"RMSE with survey children ({s.sum()}): EBP {_rmse(rows[s], 'probability'):.4f} vs "
          f"synthetic {_rmse(rows[s], 'probability_synthetic'):.4f} (x{ratio_s:.3f}); without "
          f"({(~s).sum()}): EBP {_rmse(rows[~s], 'probability'):.4f} vs synthetic "
          f"{_rmse(rows[~s], 'probability_synthetic'):.4f} (x{ratio_n:.3f})")
    assert ratio_s <= 0.85
    assert ratio_n <= 1.02
    assert (rows.loc[s, "n_survey"] > 0).all() and (rows.loc[~s, "n_survey"] == 0).all()


def test_sigma_u_recovered_within_its_interval(ebp_edition):
    edition, _, meta = ebp_edition
    card = edition.card
    lo, hi = card["ebp"]["sigma_u_ci"]
    true = meta["area_effect"]["sd"]
    print(f"sigma_u {card['ebp']['sigma_u']:.3f} [{lo:.3f}, {hi:.3f}], true {true}")
    assert 0.3 <= true <= 0.5
    assert lo <= true <= hi


def test_card_records_the_estimator(ebp_edition):
    edition, rows, _ = ebp_edition
    card = edition.card
    assert card["estimator"] == "ebp"
    ebp = card["ebp"]
    assert ebp["bootstrap"]["B"] == B and ebp["bootstrap"]["seed"] == 20240601
    assert ebp["benchmark"]["applied"] is False
    assert ebp["n_sampled"] == int(rows["sampled"].sum())
    assert 0 < ebp["variance_between"]["share_covariates"] < 1
    assert "adaptive Gauss-Hermite" in ebp["fit"]
    # the level rules read the same columns as for a synthetic edition
    assert set(rows["level"].dropna()) <= {"alto", "medio", "bajo", "sin_informacion"}
    assert (rows["se"] > 0).all()


def test_demo_cards_carry_the_truth_check(demo_dir, ebp_edition):
    """The published (synthetic) demo editions record how their intervals fare against the
    truth; the methodology page shows it."""
    from webdata import web_app

    from riskmap.publish.store import DataStore

    _, rows, _ = ebp_edition
    check = DataStore(demo_dir).load_card("2023")["truth_check"]
    np.testing.assert_allclose(check["coverage"], _covered(rows, "_synthetic").mean(),
                               atol=1e-12)
    assert check["coverage"] < 0.7
    html = web_app(demo_dir).test_client().get("/metodologia?edicion=2023&lang=es")
    assert "data-truth-coverage" in html.get_data(as_text=True)
