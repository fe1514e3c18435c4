"""An official list compared with a modelled edition, as an analyst does it: counts that agree
in every table, untestable changes shown as such, the rule warning, both directions, the
default pair of editions, and the municipality history across an imported edition."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
from webdata import SPLITS, build_fake_atlas, web_app

from riskmap.cli import main
from riskmap.publish.store import DataStore


# -- the scenario on the demo: a published 2015-geography list vs a 2020 edition ------
@pytest.fixture(scope="module")
def official(demo_dir, tmp_path_factory):
    """The demo plus ``mirti2017``: a list published on the 2015 geography with the MIRTI
    shares (about 16 % alto, 20 % bajo), some blanks, imported with import-edition."""
    root = tmp_path_factory.mktemp("official")
    data = root / "data"
    shutil.copytree(demo_dir, data)
    store = DataStore(data)
    store.load_vintage("2015").to_file(root / "municipios_2015.gpkg", driver="GPKG")
    rows = store.load_edition("2017").rows
    p = rows["probability"].to_numpy()
    level = np.where(p > np.nanquantile(p, 0.84), "Alto",
                     np.where(p <= np.nanquantile(p, 0.20), "Bajo", "Medio")).astype(object)
    level[np.isnan(p)] = ""
    level[:5] = ""  # blanks, as the published list has (sin información)
    listing = pd.DataFrame({"CVEGEO": rows["cvegeo"], "NIVEL": level})
    path = root / "mirti2017.csv"
    listing.to_csv(path, index=False)
    with pytest.raises(SystemExit) as exc:
        main(["import-edition", "--edition", "mirti2017", "--year", "2017", "--levels",
              str(path), "--boundaries", str(root / "municipios_2015.gpkg"), "--vintage",
              "2015", "--data-dir", str(data), "--source", "STPS, MIRTI 2017"])
    assert exc.value.code == 0
    own = (pd.Series(level).replace({"": "sin_informacion"}).str.lower().value_counts())
    return data, own


def test_counts_agree_in_every_table(official):
    from riskmap.model.compare import compare

    data, own = official
    store = DataStore(data)
    a, b = store.load_edition("mirti2017"), store.load_edition("2023")
    comp = compare(a, b, store)
    # The list's own figures are kept ...
    assert comp.counts["mirti2017"].to_dict() == {lvl: int(own.get(lvl, 0))
                                                 for lvl in comp.counts.index}
    # ... and every other table counts each municipality of the 2020 geography once.
    n_b = len(b.rows)
    t = comp.transitions
    assert t.to_numpy().sum() == n_b
    aligned = comp.aligned_counts
    assert (t.sum(axis=1).to_numpy() == aligned["mirti2017"].to_numpy()).all()
    assert (t.sum(axis=0).to_numpy() == aligned["2023"].to_numpy()).all()
    assert (aligned["2023"] == comp.counts["2023"]).all()
    bs = comp.by_state
    assert bs["municipios"].sum() == n_b
    assert bs["alto_a"].sum() == aligned.at["alto", "mirti2017"]
    assert bs["alto_b"].sum() == aligned.at["alto", "2023"]
    assert len(comp.left_alto) == aligned.at["alto", "mirti2017"] - t.at["alto", "alto"]
    assert len(comp.entered_alto) == aligned.at["alto", "2023"] - t.at["alto", "alto"]
    # The difference between own and aligned counts is the 12 new municipalities, each
    # with its parent's published level.
    note = next(n for n in comp.notes if n["kind"] == "derived")
    assert note["count"] == 12 and [n["kind"] for n in comp.notes] == ["derived"]
    ch = comp.changes.set_index("cvegeo")
    parent_levels = ch.loc[note["codes"], "level_a"].value_counts()
    diff = aligned["mirti2017"] - comp.counts["mirti2017"]
    assert diff.to_dict() == {lvl: int(parent_levels.get(lvl, 0)) for lvl in diff.index}
    # Published levels carry no standard errors: no change is tested, none is "0".
    assert not comp.testable and comp.summary()["aumento"] is None
    assert comp.rules == {"a": "publicado", "b": b.card["rule"]["id"]}
    assert [w["kind"] for w in comp.warnings()] == ["different_rules", "untestable"]


def test_comparison_page_shows_agreeing_counts_and_says_why(official):
    data, own = official
    client = web_app(data).test_client()
    html = client.get("/comparar?a=mirti2017&b=2023&lang=es").get_data(as_text=True)
    api = client.get("/api/v1/comparar?a=mirti2017&b=2023").get_json()["data"]
    counts = api["counts"]
    assert counts["alto"]["a"] == own["alto"]
    totals = api["transition_totals"]
    assert totals["rows"] == {k: v["a_aligned"] for k, v in counts.items()}
    assert totals["columns"] == {k: v["b"] for k, v in counts.items()}
    assert sum(s["alto_a"] for s in api["by_state"]) == counts["alto"]["a_aligned"]
    alto_alto = api["transitions"]["alto"]["alto"]
    assert api["summary"]["left_alto"] == counts["alto"]["a_aligned"] - alto_alto
    # Page: own and aligned counts, the reason, the matrix and state totals.
    table = html.split("data-counts")[1].split("</table>")[0]
    row = re.search(r'badge alto[^<]*</span></td><td class="num">([\d,]+)</td>'
                    r'<td class="num">([\d,]+)</td>', table)
    assert row.groups() == (f"{counts['alto']['a']:,}", f"{counts['alto']['a_aligned']:,}")
    assert ("12 municipios creados después de mirti2017 toman el nivel de su municipio de "
            "origen") in html
    matrix = html.split("data-matrix")[1].split("</table>")[0]
    assert f'<td class="total">{totals["total"]:,}</td>' in matrix
    states = html.split("data-states")[1].split("</table>")[0].split("<tfoot>")[1]
    assert f'<td class="num">{counts["alto"]["a_aligned"]:,}</td>' in states
    assert f"Salieron de nivel alto ({api['summary']['left_alto']})" in html
    # Untestable changes read "—", never 0; the change map shows level transitions.
    assert api["summary"]["aumento"] is None and api["by_state"][0]["aumento"] is None
    assert "data-untestable" in html and states.count("—") == 2
    assert "Subió de nivel" in html and "Cambio de nivel" in html
    # The editions classify differently: the page and the API say so.
    assert 'data-warning="rules"' in html and "niveles publicados" in html
    assert api["same_rule"] is False
    assert api["warnings"][0]["kind"] == "different_rules"
    # The table of changes: untested changes are empty, the level transition is given.
    import io

    csv = pd.read_csv(io.StringIO(client.get("/api/v1/comparar?a=mirti2017&b=2023&formato=csv")
                                  .get_data(as_text=True)), dtype=str)
    assert len(csv) == totals["total"]
    known = csv[(csv["level_a"] != "sin_informacion") & (csv["level_b"] != "sin_informacion")]
    assert known["change"].isna().all() and set(known["level_change"]) <= {"sube", "baja",
                                                                            "igual"}
    assert "Fuente: STPS, MIRTI 2017." in csv["source"].iloc[0]


def test_change_map_values_are_level_transitions_when_untestable(official):
    from riskmap.web.atlas import get_atlas
    from riskmap.web.pages import _change_values

    data, _ = official
    app = web_app(data)
    with app.test_request_context("/?lang=es"):
        comp = get_atlas().comparison("mirti2017", "2023")
        values = _change_values(comp.changes, "mirti2017", "2023", "level_change")
    keys = {v[0] for v in values.values()}
    assert keys <= {"sube", "baja", "igual", "sin_informacion"} and {"sube", "baja"} <= keys
    html = app.test_client().get("/comparar?a=mirti2017&b=2023").get_data(as_text=True)
    assert '"keyColours": {"sube"' in html or '"sube": "#' in html


# -- the fake atlas: both directions, default pair, history ------------------------------------
@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return build_fake_atlas(tmp_path_factory.mktemp("fake"))


def test_reverse_direction_lists_the_created_municipalities(fake):
    client = web_app(fake).test_client()
    html = client.get("/comparar?a=2023&b=2017&lang=es").get_data(as_text=True)
    assert 'data-direction="newer_to_older"' in html
    assert "toma el valor de su municipio de origen" not in html
    assert "se juntan con el municipio del que se separaron" in html
    created = html.split("Municipios creados entre ediciones (2)")[1].split("</ul>")[0]
    for new, (parent, name) in SPLITS.items():
        assert f"{name} ({new})" in created
        assert f"en la geografía de 2017 es parte de {parent}" in created
        assert f"/municipio/{new}?edicion=2023" in created  # it exists in 2023 only
    api = client.get("/api/v1/comparar?a=2023&b=2017").get_json()["data"]
    assert api["direction"] == "newer_to_older"
    assert sorted(c["cvegeo"] for c in api["created"]) == sorted(SPLITS)
    assert api["notes"][0]["kind"] == "pooled" and api["notes"][0]["count"] == 2
    forward = client.get("/comparar?a=2017&b=2023&lang=es").get_data(as_text=True)
    assert 'data-direction="older_to_newer"' in forward
    assert "toma el valor de su municipio de origen" in forward


@pytest.mark.parametrize("query, status, pair", [
    ("", 200, ("2017", "2023")),
    ("a=2017", 200, ("2017", "2023")),
    ("b=2023", 200, ("2017", "2023")),
    ("a=2023", 400, None),   # the latest edition alone: nothing newer to compare it with
    ("b=2017", 400, None),   # the oldest alone: nothing older
])
def test_default_pair_never_compares_an_edition_with_itself(fake, query, status, pair):
    client = web_app(fake).test_client()
    response = client.get(f"/api/v1/comparar?{query}")
    assert response.status_code == status
    body = response.get_json()
    if pair:
        assert (body["editions"]["a"], body["editions"]["b"]) == pair
    else:
        assert body["ok"] is False and body["status"] == 400 and body["errors"]
        assert "missing parameter" in body["error"]
    assert client.get(f"/comparar?{query}").status_code == status


def test_history_compares_across_an_imported_edition(tmp_path):
    from riskmap.inegi.imported import import_edition
    from riskmap.web.atlas import Atlas

    path = build_fake_atlas(tmp_path)
    store = DataStore(path)
    rows = store.load_edition("2023").rows
    listing = pd.DataFrame({"cvegeo": rows["cvegeo"], "level": rows["level"]})
    store.publish_edition(import_edition("2019", listing, store.load_vintage("2020"),
                                         vintage="2020", sources=["STPS"]))
    atlas = Atlas(path)
    hist = atlas.history("22006")
    assert [h["edition"] for h in hist] == ["2017", "2019", "2023"]
    assert hist[1]["change"] is None and hist[1]["kind"] == "imported"
    last = hist[2]
    assert last["compared_with"] == "2017" and last["change"] is not None
    a, b = atlas.municipality("2017", "22006"), atlas.municipality("2023", "22006")
    np.testing.assert_allclose(last["change"]["diff"], b["probability"] - a["probability"])
    html = web_app(path).test_client().get("/municipio/22006?lang=es").get_data(as_text=True)
    assert "sin datos para comparar" not in html
    assert 'data-compared-with="2017"' in html and "frente a 2017" in html
    assert "el cambio no puede probarse" in html


def test_parent_history_says_the_older_row_covered_more(fake):
    from riskmap.web.atlas import Atlas

    atlas = Atlas(fake)
    for new, (parent, _) in SPLITS.items():
        hist = atlas.history(parent)
        assert hist[0]["edition"] == "2017" and hist[0]["larger"] == [new]
        assert hist[1]["larger"] == []
    assert atlas.history("22002")[0]["larger"] == []
    html = web_app(fake).test_client().get("/municipio/22001?lang=es").get_data(as_text=True)
    assert "abarcaba un territorio mayor: incluía el de 22011" in html
    html = web_app(fake).test_client().get("/municipio/22001?lang=en").get_data(as_text=True)
    assert "larger territory" in html


def test_one_significance_test_for_history_and_comparison():
    """The atlas keeps no second test: history and compare_editions share one z (Z95)."""
    from test_compare import edition

    import riskmap.web.atlas as atlas_module
    from riskmap.model import compare
    from riskmap.model.score import Z95

    assert compare.Z == Z95
    for name in ("Z_CHANGE", "_CHANGE_WORDS", "change"):
        assert not hasattr(atlas_module, name)
    assert not hasattr(atlas_module.Atlas, "_map_code")
    # |d| / sd = 1.95998: significant at z = 1.959964, not at a rounded 1.96.
    sd = 0.01
    diff = 1.95998 * sd
    se = sd / np.sqrt(2)
    a = edition("a", "v", [("01001", "medio", 0.2, se)])
    b = edition("b", "v", [("01001", "medio", 0.2 + diff, se)])
    row = compare.compare_editions(a, b).changes.iloc[0]
    mine = compare.change({"probability": 0.2, "se": se}, {"probability": 0.2 + diff, "se": se})
    assert row["change"] == mine["change"] == "aumento"
