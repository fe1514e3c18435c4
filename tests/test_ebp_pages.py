"""EBP editions end to end: ``riskmap build --estimator ebp``, the card, and the pages."""

from __future__ import annotations

import pytest
from cli_inputs import build_args, run
from test_pipeline import write_inputs
from webdata import web_app

from riskmap.publish.store import DataStore


@pytest.fixture(scope="module")
def ebp_demo(tmp_path_factory):
    """A small demo atlas whose editions are built with the EBP estimator."""
    from riskmap.demo import build_demo
    from riskmap.demo.build import DemoConfig

    path = tmp_path_factory.mktemp("ebp-demo")
    build_demo(path, seed=5, config=DemoConfig.small(), estimator="ebp", bootstrap=8)
    return path


def test_build_command_with_ebp_records_the_estimator(tmp_path, capsys):
    paths = write_inputs(tmp_path / "in")
    data = tmp_path / "data"
    code, out, err = run(build_args(paths, data, "2023", "--estimator", "ebp", "--bootstrap",
                                    "6", "--benchmark"), capsys)
    assert code == 0, err
    assert "parametric bootstrap, B = 6" in err and "bootstrap 6/6" in err  # progress shown
    card = DataStore(data).load_card("2023")
    assert card["estimator"] == "ebp"
    ebp = card["ebp"]
    assert ebp["bootstrap"]["B"] == 6 and ebp["bootstrap"]["seed"] == 20240601
    assert ebp["benchmark"]["applied"] is True and ebp["benchmark"]["cv_max"] == 0.2
    lo, hi = ebp["sigma_u_ci"]
    assert lo <= ebp["sigma_u"] <= hi
    rows = DataStore(data).load_edition("2023").rows
    for col in ("probability", "ci_low", "ci_high", "se", "sampled", "n_survey",
                "probability_synthetic", "ci_low_synthetic", "ci_high_synthetic"):
        assert col in rows.columns
    assert int(rows["sampled"].sum()) == ebp["n_sampled"]


def test_build_command_default_is_synthetic(tmp_path, capsys):
    paths = write_inputs(tmp_path / "in")
    code, _, err = run(build_args(paths, tmp_path / "data", "2023"), capsys)
    assert code == 0, err
    card = DataStore(tmp_path / "data").load_card("2023")
    assert card["estimator"] == "synthetic" and "ebp" not in card
    assert "bootstrap" not in err


def test_build_command_rejects_unknown_estimator(tmp_path, capsys):
    paths = write_inputs(tmp_path / "in")
    code, _, err = run(build_args(paths, tmp_path / "data", "2023", "--estimator", "magic"),
                       capsys)
    assert code == 2 and "magic" in err and "Traceback" not in err


@pytest.mark.slow
def test_demo_truth_check_in_the_card(ebp_demo):
    card = DataStore(ebp_demo).load_card("2023")
    check = card["truth_check"]
    assert 0 < check["coverage"] <= 1 and "synthetic" in check
    assert check["n"] > 100


@pytest.mark.slow
def test_methodology_page_shows_the_ebp_diagnostics(ebp_demo):
    card = DataStore(ebp_demo).load_card("2023")
    client = web_app(ebp_demo).test_client()
    html = client.get("/metodologia?edicion=2023&lang=es").get_data(as_text=True)
    ebp = card["ebp"]
    assert 'data-estimator="ebp"' in html and "data-ebp-summary" in html
    assert f"{ebp['sigma_u']:.3f}" in html and f"{ebp['sigma_u_ci'][0]:.3f}" in html
    assert "Sintético (MIRTI)" in html and "EBP (efectos de área)" in html
    rows = DataStore(ebp_demo).load_edition("2023").rows
    n_direct = int((rows["probability_direct"].notna() & rows["probability"].notna()).sum())
    n_cal = len(card["diagnostics"]["calibration"])
    assert html.count("<circle") == n_direct + n_cal  # scatter points + calibration points
    assert "data-truth-coverage" in html
    male = next(f for f in ebp["fixed_effects"] if f["name"] == "male")
    assert "data-ebp-fixed" in html and f"{male['estimate']:.3f}" in html
    english = client.get("/metodologia?edicion=2023&lang=en").get_data(as_text=True)
    assert "Diagnostics of the area-effects model" in english


@pytest.mark.slow
def test_municipality_page_names_the_estimator_and_shows_both(ebp_demo):
    rows = DataStore(ebp_demo).load_edition("2023").rows
    row = rows[rows["sampled"].astype(bool) & rows["probability"].notna()].iloc[0]
    client = web_app(ebp_demo).test_client()
    html = client.get(f"/municipio/{row['cvegeo']}?edicion=2023&lang=es").get_data(as_text=True)
    assert 'data-estimator="ebp"' in html and "data-synthetic" in html
    assert f"{row['probability_synthetic'] * 100:.1f} %" in html
    assert f"{row['probability'] * 100:.1f} %" in html
    assert f"con {int(row['n_survey'])} niñas y niños en la encuesta" in html


def test_synthetic_edition_page_says_synthetic(tmp_path):
    from webdata import build_fake_atlas

    data = build_fake_atlas(tmp_path / "atlas")
    client = web_app(data).test_client()
    html = client.get("/metodologia?lang=es").get_data(as_text=True)
    assert 'data-estimator="synthetic"' in html and "data-ebp-summary" not in html


@pytest.mark.slow
def test_comparison_accepts_ebp_editions(ebp_demo):
    """Comparison reads probability and se: EBP editions compare like synthetic ones."""
    from riskmap.model.compare import compare

    store = DataStore(ebp_demo)
    result = compare(store.load_edition("2019"), store.load_edition("2023"), store=store)
    changes = result.changes
    assert len(changes) > 0 and changes["diff"].notna().any()
    html = web_app(ebp_demo).test_client().get("/comparar?a=2019&b=2023&lang=es")
    assert html.status_code == 200


def test_trend_of_ebp_editions_says_it_decomposes_the_synthetic_model(ebp_demo):
    """The decomposition re-scores coefficients and census records (the synthetic model):
    with EBP editions the page says that their area effects are not decomposed."""
    client = web_app(ebp_demo).test_client()
    html = client.get("/tendencias?a=2017&b=2023&lang=es").get_data(as_text=True)
    assert 'data-note="ebp"' in html and "efectos de área" in html
    html = client.get("/tendencias?a=2017&b=2023&lang=en").get_data(as_text=True)
    assert "area effects" in html
