"""Level rules (mirti, significance, cortes:A,B), level certainty, and re-levelling."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from scipy.special import logit

from riskmap.errors import BadParameter, InputError
from riskmap.model import levels
from riskmap.model.rules import (RULE_NAMES, get_rule, level_certainty, level_of, relevel,
                                 uncertain)

R = 0.10


def scores() -> pd.DataFrame:
    """Seven municipalities: five with information, one below 30 records, one without any."""
    p = [0.05, 0.10, 0.12, 0.20, 0.30, 0.15, np.nan]
    se = [0.01, 0.01, 0.02, 0.03, 0.02, 0.05, np.nan]
    return pd.DataFrame({
        "probability": p, "se": se,
        "ci_low": [0.04, 0.085, 0.09, 0.15, 0.26, 0.07, np.nan],
        "ci_high": [0.065, 0.12, 0.16, 0.26, 0.34, 0.29, np.nan],
        "n_records": [100, 100, 100, 100, 100, 29, 0],
    }, index=list("abcdefg"))


def test_mirti_rule_on_hand_made_data():
    got, cutoffs = get_rule("mirti").apply(scores(), R, min_records=30)
    # Informed P: 0.05 0.10 0.12 0.20 0.30; mean 0.154; squared deviations sum to 0.03832,
    # so the sample SD is sqrt(0.03832 / 4) = 0.0978775 and the upper cut 0.2518775.
    assert_allclose([cutoffs["mean"], cutoffs["sd"], cutoffs["high"]],
                    [0.154, 0.0978775, 0.2518775], atol=1e-7)
    assert cutoffs["low"] == R
    assert got.tolist() == ["bajo", "bajo", "medio", "medio", "alto", "sin_informacion",
                            "sin_informacion"]  # P == r is bajo (P <= r)
    assert got.name == "level" and got.index.tolist() == list("abcdefg")
    # the minimum of records moves municipality f in, which moves the mean and SD too
    got10, cut10 = get_rule("mirti").apply(scores(), R, min_records=10)
    assert got10["f"] == "medio" and cut10["mean"] == pytest.approx(0.92 / 6)


def test_mirti_upper_cut_never_below_the_national_rate():
    flat = pd.DataFrame({"probability": [0.30, 0.31, 0.32], "n_records": [50, 50, 50]})
    got, cutoffs = get_rule("mirti").apply(flat, 0.40)
    assert cutoffs["high"] == 0.40 and got.tolist() == ["bajo", "bajo", "bajo"]


def test_significance_rule_on_hand_made_data():
    got, cutoffs = get_rule("significance").apply(scores(), R)
    assert got.tolist() == ["bajo", "medio", "medio", "alto", "alto", "sin_informacion",
                            "sin_informacion"]
    assert cutoffs == {"low": R, "high": R}


def test_cortes_rule_reproduces_a_published_legend():
    # Estado de México 2018: Alto (12.3 - 17.5) Medio (7.6 - 12.2) Bajo (2.6 - 7.5)
    legend = pd.DataFrame({"probability": [0.026, 0.075, 0.076, 0.122, 0.123, 0.175, 0.5],
                           "n_records": 100})
    rule = get_rule(" Cortes:7.5, 12.2 ")
    assert rule.spec == "cortes:7.5,12.2" and rule.parameters == {"low_pct": 7.5,
                                                                  "high_pct": 12.2}
    got, cutoffs = rule.apply(legend, 0.131)
    assert got.tolist() == ["bajo", "bajo", "medio", "medio", "alto", "alto", "alto"]
    assert_allclose([cutoffs["low"], cutoffs["high"]], [0.075, 0.122])
    # the reference rate plays no part
    assert rule.apply(legend, 0.5)[0].tolist() == got.tolist()


@pytest.mark.parametrize("spec", ["mirti", "significance", "cortes:5,15"])
def test_too_few_records_is_sin_informacion_under_every_rule(spec):
    got, _ = get_rule(spec).apply(scores(), R, min_records=30)
    assert got[["f", "g"]].tolist() == ["sin_informacion"] * 2


@pytest.mark.parametrize("spec, message", [
    ("jenks", r"invalid value 'jenks' for 'levels'; allowed: mirti, significance, cortes:A,B"),
    ("cortes", "expected two cut-offs"),
    ("cortes:5", "expected two cut-offs"),
    ("cortes:5,10,15", "expected two cut-offs"),
    ("cortes:12,7", "the lower cut-off must be below the upper one"),
    ("cortes:7,7", "the lower cut-off must be below the upper one"),
    ("cortes:-1,5", "between 0 and 100"),
    ("cortes:5,101", "between 0 and 100"),
    ("cortes:nan,5", "between 0 and 100"),
    ("cortes:a,b", "must be numbers"),
    ("mirti:3", "takes no parameters"),
])
def test_bad_rule_strings(spec, message):
    with pytest.raises(BadParameter, match=message) as info:
        get_rule(spec)
    assert info.value.status == 400 and info.value.exit_code == 2
    assert "\n" not in info.value.message


def test_registry_names_are_normalised_and_listed():
    assert get_rule(None).spec == "mirti" and get_rule("").spec == "mirti"
    assert get_rule(" MIRTI ").spec == "mirti"
    assert get_rule("Significance").spec == "significance"
    assert RULE_NAMES == ("mirti", "significance", "cortes:A,B")
    with pytest.raises(BadParameter, match="for 'regla'"):
        get_rule("x", "regla")
    # the registry is part of levels' interface too
    assert levels.get_rule is get_rule and levels.RULE_NAMES == RULE_NAMES
    for spec in ("mirti", "significance", "cortes:1,2"):
        doc = type(get_rule(spec)).__doc__
        assert doc and len(doc) > 40


@pytest.mark.parametrize("spec", ["mirti", "significance", "cortes:7.5,12.2"])
def test_card_entry_names_rule_cutoffs_and_texts(spec):
    rule = get_rule(spec)
    got, cutoffs = rule.apply(scores(), R)
    entry = rule.describe(cutoffs, R, 30)
    assert entry["id"] == spec.split(":")[0] and entry["spec"] == spec
    assert entry["parameters"]["min_records"] == 30
    assert entry["parameters"]["reference_value"] == R
    assert set(entry["cutoffs"]) >= {"low", "high"}
    assert set(entry["text"]) == {"es", "en"}
    assert entry["inferred"] is (spec == "mirti")
    high = f"{100 * cutoffs['high']:.1f}"
    assert high in entry["text"]["es"] and high in entry["text"]["en"]
    if spec == "mirti":
        assert "inferida" in entry["text"]["es"] and "inferred" in entry["text"]["en"]


def _oracle(p, se, lower, upper):
    """Direct scipy computation: the true P ~ expit(N(logit p, se / (p (1 - p))))."""
    dist = stats.norm(loc=logit(p), scale=se / (p * (1 - p)))
    lo = -np.inf if lower == 0 else logit(lower)
    hi = np.inf if upper == 1 else logit(upper)
    return dist.cdf(hi) - dist.cdf(lo)


def test_level_certainty_matches_a_direct_scipy_computation():
    frame = scores()
    got, cutoffs = get_rule("mirti").apply(frame, R)
    certainty = level_certainty(frame["probability"], frame["se"], got, cutoffs)
    bands = {"bajo": (0, cutoffs["low"]), "medio": (cutoffs["low"], cutoffs["high"]),
             "alto": (cutoffs["high"], 1)}
    for code in "abcde":
        expect = _oracle(frame.at[code, "probability"], frame.at[code, "se"],
                         *bands[got[code]])
        assert_allclose(certainty[code], expect, rtol=1e-10, atol=1e-12)
    assert certainty[["f", "g"]].isna().all()  # sin información: empty
    # P exactly on the cut-off r with se > 0: half of its distribution lies below
    assert_allclose(certainty["b"], 0.5)
    assert certainty.name == "level_certainty"


def test_level_certainty_monte_carlo():
    rng = np.random.default_rng(3)
    p, se = 0.18, 0.025
    draws = 1 / (1 + np.exp(-rng.normal(logit(p), se / (p * (1 - p)), 400_000)))
    got = level_certainty([p], [se], ["medio"], {"low": 0.13, "high": 0.2})[0]
    assert abs(got - np.mean((draws > 0.13) & (draws <= 0.2))) < 0.003


def test_level_certainty_edge_cases_and_flag():
    cut = {"low": 0.1, "high": 0.2}
    got = level_certainty([0.15, 0.15, 0.25, 0.15, 0.15], [0.0, 0.0, np.nan, 0.01, 0.01],
                          ["medio", "alto", "alto", "sin_informacion", "medio"], cut)
    assert got.iloc[0] == 1.0 and got.iloc[1] == 0.0  # zero SE: in or out of the band
    assert math.isnan(got.iloc[2]) and math.isnan(got.iloc[3])
    assert 0.99 < got.iloc[4] < 1
    assert uncertain([0.79, 0.8, np.nan, 0.2]).tolist() == [True, False, False, True]
    # significance: medio has no band of its own
    assert level_certainty([0.1], [0.01], ["medio"], {"low": 0.1, "high": 0.1})[0] == 0


def test_relevel_uses_the_card_and_refuses_imported_editions():
    frame = scores()
    card = {"edition": "x", "national_rate": {"estimate": R},
            "rule": {"id": "significance", "parameters": {"min_records": 10}}}
    got, certainty, rule = relevel(frame, card, "mirti")
    assert got["f"] == "medio"  # min_records 10 comes from the card
    assert rule["spec"] == "mirti" and rule["parameters"]["min_records"] == 10
    assert certainty.notna().sum() == 6
    with pytest.raises(InputError, match="imported: its levels are kept as published"):
        relevel(frame, dict(card, kind="imported"), "mirti")
    with pytest.raises(InputError, match="no national rate"):
        relevel(frame, {"edition": "x"}, "mirti")
    with pytest.raises(BadParameter):
        relevel(frame, card, "cortes:9,3")


def test_level_of_a_pooled_estimate_follows_the_stored_rule():
    mirti = {"id": "mirti", "cutoffs": {"low": 0.10, "high": 0.20}}
    assert [level_of(p, 0.01, mirti, R) for p in (0.10, 0.15, 0.21)] == \
        ["bajo", "medio", "alto"]
    sig = {"id": "significance", "cutoffs": {"low": R, "high": R}}
    assert [level_of(p, 0.01, sig, R) for p in (0.07, 0.105, 0.14)] == \
        ["bajo", "medio", "alto"]
    assert level_of(0.14, 0.01, None, R) == "alto"  # an old card without a rule entry


# -- published editions: relevel round trip, atomicity -------------------------------------------
@pytest.fixture()
def published(tmp_path):
    from cli_inputs import published_data

    return published_data(tmp_path)


def test_relevel_round_trip(published, capsys):
    from cli_inputs import run
    from riskmap.publish.store import DataStore

    store = DataStore(published)
    before = store.load_edition("2023")
    assert before.card["rule"]["id"] == "mirti"
    assert (before.rows["level_rule"] == "mirti").all()
    code, out, err = run(["relevel", "--edition", "2023", "--levels", "significance",
                          "--data-dir", published], capsys)
    assert code == 0, err
    assert "re-classified under level rule significance" in out
    after = store.load_edition("2023")
    rate = after.card["national_rate"]["estimate"]
    informed = after.rows["level"] != "sin_informacion"
    rows = after.rows[informed]
    expect = np.where(rows["ci_low"] > rate, "alto",
                      np.where(rows["ci_high"] < rate, "bajo", "medio"))
    assert rows["level"].tolist() == expect.tolist()
    assert (after.rows["level_rule"] == "significance").all()
    assert after.card["rule"]["id"] == "significance"
    assert after.card["relevelled_from"] == "mirti" and "relevelled" in after.card
    assert after.card["level_counts"] == after.level_counts()
    assert store.load_card("2023")["rule"]["id"] == "significance"
    # nothing but the classification changes
    for col in ("probability", "se", "ci_low", "ci_high", "rank_national", "children"):
        pd.testing.assert_series_equal(after.rows[col], before.rows[col])
    assert (informed == (before.rows["level"] != "sin_informacion")).all()
    # and back: the original classification and certainty again
    code, _, err = run(["relevel", "--edition", "2023", "--levels", "mirti",
                        "--data-dir", published], capsys)
    assert code == 0, err
    again = store.load_edition("2023")
    assert again.rows["level"].tolist() == before.rows["level"].tolist()
    assert_allclose(again.rows["level_certainty"], before.rows["level_certainty"])
    assert again.card["rule"]["cutoffs"] == pytest.approx(before.card["rule"]["cutoffs"])


def test_relevel_bad_input_exits_2_with_one_line(published, capsys):
    from cli_inputs import run
    from test_bad_input import error_line
    from test_pipeline import tree_hashes

    hashes = tree_hashes(published)
    for argv, message in (
            (["--levels", "cortes:12,7"], "the lower cut-off must be below the upper one"),
            (["--levels", "nivel"], "allowed: mirti, significance, cortes:A,B"),
            (["--levels", "cortes:5,150"], "between 0 and 100")):
        code, _, err = run(["relevel", "--edition", "2023", "--data-dir", published, *argv],
                           capsys)
        assert code == 2 and message in error_line(err)
    code, _, err = run(["relevel", "--edition", "1999", "--levels", "mirti",
                        "--data-dir", published], capsys)
    assert code == 2 and "published: 2023" in error_line(err)
    assert tree_hashes(published) == hashes


def test_relevel_failing_mid_write_leaves_the_old_classification(published, monkeypatch):
    import pyogrio

    from riskmap.publish import store as store_module
    from riskmap.publish.relevel import relevel_published
    from riskmap.publish.store import DataStore

    path = DataStore(published).edition_path("2023")
    old_bytes = path.read_bytes()
    real = pyogrio.write_dataframe
    calls = []

    def failing(df, target, *args, **kwargs):
        calls.append(kwargs.get("layer"))
        if len(calls) == 2:  # the municipios layer is written, the file is half done
            raise OSError(28, "No space left on device")
        return real(df, target, *args, **kwargs)

    monkeypatch.setattr(store_module.pyogrio, "write_dataframe", failing)
    with pytest.raises(OSError):
        relevel_published(published, "2023", "significance")
    monkeypatch.undo()
    assert calls == ["municipios", "factores"]
    assert path.read_bytes() == old_bytes
    edition = DataStore(published).load_edition("2023")
    assert (edition.rows["level_rule"] == "mirti").all()
    assert edition.card["rule"]["id"] == "mirti"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


KILL_SCRIPT = """
import os, signal, sys
import pyogrio
from riskmap.publish import store
from riskmap.publish.relevel import relevel_published

real = pyogrio.write_dataframe
calls = []

def killed(df, target, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(df, target, *args, **kwargs)

store.pyogrio.write_dataframe = killed
relevel_published(sys.argv[1], "2023", "significance")
"""


def test_relevel_killed_mid_write_leaves_the_old_classification_serving(published):
    from riskmap.publish.store import DataStore

    path = DataStore(published).edition_path("2023")
    old_bytes = path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(published)],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert proc.returncode == -9, proc.stderr
    assert path.read_bytes() == old_bytes
    store = DataStore(published)
    assert store.edition_names() == ["2023"]  # the orphaned temporary file is not listed
    assert (store.load_edition("2023").rows["level_rule"] == "mirti").all()


# -- the default rule gives MIRTI-like shares ------------------------------------------------------
def alto_shares(store) -> dict:
    out = {}
    for name in store.edition_names():
        counts = store.load_edition(name).level_counts()
        informed = sum(counts[k] for k in ("alto", "medio", "bajo"))
        out[name] = {k: counts[k] / informed for k in ("alto", "medio", "bajo")}
    return out


def test_demo_alto_share_is_mirti_like(demo_store):
    shares = alto_shares(demo_store)
    print("demo shares under mirti:", shares)
    assert set(shares) == {"2017", "2019", "2023"}
    for name, share in shares.items():
        assert 0.08 <= share["alto"] <= 0.20, (name, share)
        assert demo_store.load_card(name)["rule"]["id"] == "mirti"


def test_build_with_a_bad_rule_exits_2_before_reading_anything(published, capsys, tmp_path):
    from cli_inputs import build_args, run
    from test_bad_input import error_line
    from test_pipeline import tree_hashes, write_inputs

    paths = write_inputs(tmp_path / "in2")
    hashes = tree_hashes(published)
    for rule, message in (("jenks", "invalid value 'jenks' for 'levels'; allowed: mirti, "
                                    "significance, cortes:A,B"),
                          ("cortes:20,10", "the lower cut-off must be below the upper one"),
                          ("cortes:0,100.5", "between 0 and 100")):
        code, _, err = run(build_args(paths, published, "2024", "--levels", rule), capsys)
        assert code == 2
        assert message in error_line(err)
        assert not err.startswith("[")  # failed before the first step
    assert tree_hashes(published) == hashes


def test_build_with_cut_offs_stores_them(published, capsys, tmp_path):
    from cli_inputs import build_args, run
    from riskmap.publish.store import DataStore
    from test_pipeline import write_inputs

    paths = write_inputs(tmp_path / "in3")
    code, out, err = run(build_args(paths, published, "2024", "--levels", "cortes:10,25"),
                         capsys)
    assert code == 0, err
    assert "level rule cortes:10,25" in out
    ed = DataStore(published).load_edition("2024")
    assert ed.card["rule"]["spec"] == "cortes:10,25"
    assert ed.card["rule"]["cutoffs"] == {"low": 0.10, "high": 0.25}
    rows = ed.rows[ed.rows["level"] != "sin_informacion"]
    expect = np.where(rows["probability"] <= 0.10, "bajo",
                      np.where(rows["probability"] > 0.25, "alto", "medio"))
    assert rows["level"].tolist() == expect.tolist()
    assert (ed.rows["level_rule"] == "cortes:10,25").all()
