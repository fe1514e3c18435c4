"""Level rules on the web: comparisons under one rule, level certainty on pages, maps and API,
and the methodology page's statement of the rule."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

from riskmap.model.rules import get_rule, level_certainty
from riskmap.publish.store import DataStore
from webdata import build_fake_atlas, web_app


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The fake atlas: editions 2017 and 2023 stored under the significance rule."""
    return build_fake_atlas(tmp_path_factory.mktemp("rules-web"))


@pytest.fixture(scope="module")
def client(data_dir):
    return web_app(data_dir).test_client()


@pytest.fixture(scope="module")
def imported_client(tmp_path_factory):
    return web_app(build_fake_atlas(tmp_path_factory.mktemp("rules-imp"),
                                    imported_2023=True)).test_client()


def mirti_counts(data_dir, name) -> dict:
    """Oracle: the mirti rule applied by hand to the stored rows."""
    ed = DataStore(data_dir).load_edition(name)
    rows, r = ed.rows, ed.card["national_rate"]["estimate"]
    informed = (rows["n_records"] >= 30) & rows["probability"].notna()
    p = rows.loc[informed, "probability"]
    high = max(p.mean() + p.std(ddof=1), r)
    level = np.where(p <= r, "bajo", np.where(p > high, "alto", "medio"))
    counts = pd.Series(level).value_counts()
    return {"alto": int(counts.get("alto", 0)), "medio": int(counts.get("medio", 0)),
            "bajo": int(counts.get("bajo", 0)), "sin_informacion": int((~informed).sum())}


def test_api_compares_under_mirti_by_default(client, data_dir):
    body = client.get("/api/v1/comparar?a=2017&b=2023").get_json()
    assert body["ok"] and body["rule"] == "mirti" and body["data"]["rule"] == "mirti"
    uses = body["data"]["levels"]
    assert uses["a"]["stored"] == "significance" and uses["a"]["used"] == "mirti"
    assert uses["a"]["relevelled"] and uses["b"]["relevelled"]
    assert "inferida" in uses["a"]["text"]["es"]
    for key, name in (("a", "2017"), ("b", "2023")):
        expect = mirti_counts(data_dir, name)
        assert {lv: c[key] for lv, c in body["data"]["counts"].items()} == expect
        assert uses[key]["counts"] == expect
        assert {lv: c[key] for lv, c in body["data"]["counts_by_rule"]["mirti"].items()} \
            == expect
        stored = DataStore(data_dir).load_edition(name).level_counts()
        assert {lv: c[key] for lv, c in
                body["data"]["counts_by_rule"]["significance"].items()} == stored
    assert "regla=mirti" in body["links"]["self"]


def test_api_rule_choice_and_csv(client, data_dir):
    body = client.get("/api/v1/comparar?a=2017&b=2023&regla=significance").get_json()
    assert body["rule"] == "significance"
    assert not body["data"]["levels"]["a"]["relevelled"]
    stored = DataStore(data_dir).load_edition("2017").level_counts()
    assert {lv: c["a"] for lv, c in body["data"]["counts"].items()} == stored
    cut = client.get("/api/v1/comparar?a=2017&b=2023&regla=Cortes:10,20").get_json()
    assert cut["rule"] == "cortes:10,20"
    assert list(cut["data"]["counts_by_rule"]) == ["cortes:10,20", "mirti", "significance"]
    ed = DataStore(data_dir).load_edition("2023")
    p = ed.rows.loc[ed.rows["level"] != "sin_informacion", "probability"]
    assert cut["data"]["counts"]["alto"]["b"] == int((p > 0.20).sum())
    assert cut["data"]["counts"]["bajo"]["b"] == int((p <= 0.10).sum())
    res = client.get("/api/v1/comparar?a=2017&b=2023&regla=significance&formato=csv")
    df = pd.read_csv(io.BytesIO(res.data), dtype={"cvegeo": str})
    assert set(df["level_rule_a"]) == {"significance"} == set(df["level_rule_b"])


@pytest.mark.parametrize("regla, message", [
    ("jenks", "allowed: mirti, significance, cortes:A,B"),
    ("cortes:30,10", "the lower cut-off must be below the upper one"),
    ("cortes:1,200", "between 0 and 100")])
@pytest.mark.parametrize("path", ["/api/v1/comparar", "/comparar"])
def test_bad_rule_is_a_400_with_the_error_shape(client, path, regla, message):
    res = client.get(f"{path}?a=2017&b=2023&regla={regla}",
                     headers={"Accept": "application/json"})
    assert res.status_code == 400
    body = res.get_json()
    if body is not None:
        assert body["ok"] is False and body["status"] == 400 and message in body["error"]
    else:
        assert message in res.get_data(as_text=True)


def test_compare_page_says_which_editions_were_relevelled(client, data_dir):
    html = client.get("/comparar?a=2017&b=2023&lang=es").get_data(as_text=True)
    assert "guardada con la regla significance; reclasificada con la regla mirti" in html
    assert 'data-rule-col="mirti"' in html and 'data-rule-col="significance"' in html
    table = re.search(r"data-counts-by-rule>.*?<tbody>(.*?)</tbody>", html, re.S).group(1)
    numbers = [int(n.replace(",", "")) for n in re.findall(r'class="num">([\d,]+)<', table)]
    # the alto row: mirti a, b, then significance a, b (signed differences do not match)
    expect = [mirti_counts(data_dir, "2017")["alto"], mirti_counts(data_dir, "2023")["alto"]]
    stored = [DataStore(data_dir).load_edition(n).level_counts()["alto"]
              for n in ("2017", "2023")]
    assert numbers[:4] == expect + stored
    same = client.get("/comparar?a=2017&b=2023&regla=significance&lang=es").get_data(as_text=True)
    assert "reclasificada" not in same and "guardada con la regla significance." in same
    english = client.get("/comparar?a=2017&b=2023&lang=en").get_data(as_text=True)
    assert "re-classified under rule mirti for this comparison" in english


def test_imported_edition_keeps_published_levels(imported_client):
    body = imported_client.get("/api/v1/comparar?a=2017&b=2023").get_json()
    use = body["data"]["levels"]["b"]
    assert use["used"] == "publicado" and not use["relevelled"]
    by_rule = body["data"]["counts_by_rule"]
    assert {lv: c["b"] for lv, c in by_rule["mirti"].items()} == \
        {lv: c["b"] for lv, c in by_rule["significance"].items()}
    html = imported_client.get("/comparar?a=2017&b=2023&lang=es").get_data(as_text=True)
    assert "conserva sus niveles publicados («publicado»)" in html
    code = body["data"]["by_state"] and imported_client.get(
        "/api/v1/ediciones/2023/municipios.json?nivel=alto").get_json()["data"][0]["cvegeo"]
    page = imported_client.get(f"/municipio/{code}?edicion=2023&lang=es").get_data(as_text=True)
    assert "no permite calcular su certeza" in page and "data-certainty" not in page


def test_atlas_caches_relevelled_editions_per_file_and_rule(data_dir):
    from riskmap.web.atlas import Atlas

    atlas = Atlas(data_dir)
    first = atlas.under_rule("2017", "mirti")
    assert atlas.under_rule("2017", " MIRTI ") is first
    assert atlas.under_rule("2017", "significance") is atlas.edition("2017")
    assert atlas.under_rule("2017", "cortes:5,9") is not first
    assert (first.rows["level_rule"] == "mirti").all()
    assert atlas.edition("2017").rows["level_rule"].eq("significance").all()  # untouched


def test_municipality_page_shows_certainty_and_flags_uncertain_levels(client, data_dir):
    ed = DataStore(data_dir).load_edition("2023")
    rows = ed.rows.set_index("cvegeo")
    sure = rows[(rows["level"] == "alto") & (rows["level_certainty"] >= 0.8)].index[0]
    unsure = rows[rows["level_certainty"] < 0.8].index[0]
    html = client.get(f"/municipio/{sure}?edicion=2023&lang=es").get_data(as_text=True)
    assert "Certeza del nivel" in html and "data-uncertain" not in html
    assert "(regla significance)" in html
    html = client.get(f"/municipio/{unsure}?edicion=2023&lang=es").get_data(as_text=True)
    assert "data-uncertain" in html and "Nivel incierto" in html
    blank = rows[rows["level"] == "sin_informacion"].index[0]
    html = client.get(f"/municipio/{blank}?edicion=2023&lang=es").get_data(as_text=True)
    assert "data-certainty" not in html


def test_api_rows_and_certainty_layer(client, data_dir):
    body = client.get("/api/v1/ediciones/2023/municipios.json?per_page=500").get_json()
    rows = pd.DataFrame(body["data"]).set_index("cvegeo")
    stored = DataStore(data_dir).load_edition("2023").rows.set_index("cvegeo")
    assert (rows["level_rule"] == "significance").all()
    np.testing.assert_allclose(rows["level_certainty"].astype(float),
                               stored.loc[rows.index, "level_certainty"])
    assert body["meta"]["provenance"]["rule_text"]["es"]
    html = client.get("/?capa=certeza&lang=es").get_data(as_text=True)
    assert 'data-legend="certeza"' in html and "Certeza del nivel" in html
    assert 'value="certeza" selected' in html
    assert "Regla de niveles de la edición 2023" in html  # every page names the rule


def test_openapi_lists_the_rule_values(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    params = {p["name"]: p for p in doc["paths"]["/comparar"]["get"]["parameters"]}
    schema = params["regla"]["schema"]
    assert schema["default"] == "mirti"
    assert schema["anyOf"][0]["enum"] == ["mirti", "significance"]
    assert re.fullmatch(schema["anyOf"][1]["pattern"], "cortes:7.5,12.2")
    props = doc["components"]["schemas"]["Municipio"]["properties"]
    assert {"level_rule", "level_certainty"} <= set(props)


def test_methodology_page_states_rule_cutoffs_and_evidence(demo_dir):
    client = web_app(demo_dir).test_client()
    card = DataStore(demo_dir).load_card("2023")
    html = client.get("/metodologia?edicion=2023&lang=es").get_data(as_text=True)
    assert 'data-rule="mirti"' in html
    high = f"{100 * card['rule']['cutoffs']['high']:.1f} %"
    low = f"{100 * card['rule']['cutoffs']['low']:.1f} %"
    assert f'data-cut="high">{high}<' in html and f'data-cut="low">{low}<' in html
    assert "Alto (12.3 – 17.5) Medio (7.6 – 12.2) Bajo (2.6 – 7.5)" in html
    assert "Alto (13 – 17) Medio (9 – 12) Bajo (4 – 8)" in html
    assert "inferida, no publicada" in html and "20.1 %" in html and "16.1 %" in html
    english = client.get("/metodologia?edicion=2023&lang=en").get_data(as_text=True)
    assert "inferred, not published" in english


def test_certainty_of_stored_demo_rows_matches_the_rule(demo_store):
    ed = demo_store.load_edition("2019")
    cut = ed.card["rule"]["cutoffs"]
    again = level_certainty(ed.rows["probability"], ed.rows["se"], ed.rows["level"], cut)
    np.testing.assert_allclose(ed.rows["level_certainty"], again, rtol=1e-9)
    level, _ = get_rule("mirti").apply(ed.rows, ed.card["national_rate"]["estimate"])
    assert level.tolist() == ed.rows["level"].tolist()


def test_history_names_the_rule_of_each_edition(client):
    body = client.get("/api/v1/ediciones/2023/municipios.json?per_page=1").get_json()
    code = body["data"][0]["cvegeo"]
    history = client.get(f"/api/v1/ediciones/2023/municipios/{code}").get_json()["data"]
    assert [h["level_rule"] for h in history["history"]] == ["significance"] * len(
        history["history"])


def test_relevel_refuses_an_imported_edition(tmp_path, capsys):
    from cli_inputs import run
    from test_bad_input import error_line
    from test_pipeline import tree_hashes

    root = build_fake_atlas(tmp_path, imported_2023=True)
    hashes = tree_hashes(root)
    code, _, err = run(["relevel", "--edition", "2023", "--levels", "mirti",
                        "--data-dir", root], capsys)
    assert code == 2
    assert "edition 2023 is imported: its levels are kept as published" in error_line(err)
    assert tree_hashes(root) == hashes
    # a modelled edition of the same directory re-levels
    code, out, _ = run(["relevel", "--edition", "2017", "--levels", "mirti",
                        "--data-dir", root], capsys)
    assert code == 0 and "significance" not in out
    assert DataStore(root).load_card("2017")["relevelled_from"] == "significance"
