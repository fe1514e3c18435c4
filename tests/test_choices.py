"""Levels and states match ignoring case and accents, and a state name resolves to its code,
in the library, the web parameters, the API and the command line."""

from __future__ import annotations

import pandas as pd
import pytest

from riskmap.choices import match_choice, match_state
from riskmap.errors import BadParameter
from riskmap.ingest.boundaries import MX_STATES
from riskmap.publish.edition import LEVELS


@pytest.mark.parametrize("typed, level", [("Alto", "alto"), ("ALTO", "alto"), (" medio ", "medio"),
                                          ("Sin información", "sin_informacion"),
                                          ("SIN_INFORMACION", "sin_informacion")])
def test_levels_ignore_case_accents_and_separators(typed, level):
    assert match_choice("nivel", typed, LEVELS) == level


@pytest.mark.parametrize("typed, code", [("Chiapas", "07"), ("chiapas", "07"), ("7", "07"),
                                         ("Mexico", "15"), ("MÉXICO", "15"),
                                         ("ciudad de mexico", "09"), ("Nuevo Leon", "19"),
                                         ("veracruz", "30"), ("Michoacán", "16")])
def test_state_names_resolve_to_codes(typed, code):
    assert match_state("estado", typed, MX_STATES) == code


@pytest.mark.parametrize("typed, what", [("Baja", "ambiguous"), ("Atlantis", "invalid"),
                                         ("99", "invalid")])
def test_unknown_or_ambiguous_state_lists_valid_values(typed, what):
    with pytest.raises(BadParameter, match=f"{what} value '{typed}' for 'estado'.*"
                                           "allowed: 01, 02, 03") as exc:
        match_state("estado", typed, MX_STATES)
    if typed == "Baja":
        assert "(Baja California, Baja California Sur)" in exc.value.message
    with pytest.raises(BadParameter, match="allowed: alto, medio, bajo, sin_informacion"):
        match_choice("nivel", "altísimo", LEVELS)


def test_atlas_rows_take_names_in_any_case(atlas):
    expected = atlas.rows("2017", state="22", level="alto")
    for state, level in (("Querétaro", "Alto"), ("queretaro", "ALTO"), ("22", "alto")):
        pd.testing.assert_frame_equal(atlas.rows("2017", state=state, level=level), expected)


@pytest.mark.parametrize("query", ["estado=22&nivel=alto", "estado=Queretaro&nivel=Alto",
                                   "estado=QUERÉTARO&nivel=ALTO"])
def test_api_and_downloads_accept_names_and_any_case(client, atlas, query):
    expected = atlas.rows("2017", state="22", level="alto")["cvegeo"].tolist()
    body = client.get(f"/api/v1/ediciones/2017/municipios.json?{query}&per_page=500").get_json()
    assert body["ok"] and [r["cvegeo"] for r in body["data"]] == expected
    assert body["filters"] == {"estado": "22", "nivel": "alto"}  # canonical in links too
    csv = client.get(f"/descargas/2017.csv?{query}")
    assert csv.status_code == 200
    assert 'riskmap_2017_22_alto.csv' in csv.headers["Content-Disposition"]
    assert client.get(f"/?{query}").status_code == 200


def test_api_ambiguous_state_is_the_one_400(client):
    response = client.get("/api/v1/ediciones/2017/municipios.json?estado=Atlantis")
    body = response.get_json()
    assert response.status_code == 400 and body["ok"] is False
    assert "a state code or name" in body["error"] and "Chiapas" in body["error"]
    assert body["errors"] == ["estado: allowed values are 07, 12, 22, 30"]


def test_cli_export_takes_state_names_and_any_case(tmp_path, capsys):
    from cli_inputs import published_data, run

    data = published_data(tmp_path)
    out = tmp_path / "o.csv"
    code, _, err = run(["export", "--edition", "2023", "--format", "csv", "--level", "Alto",
                        "--state", "ESTADO PENON", "-o", out, "--data-dir", data], capsys)
    assert code == 0, err
    rows = pd.read_csv(out, encoding="utf-8-sig", dtype={"cve_ent": str})
    assert len(rows) and set(rows["level"]) == {"alto"} and set(rows["cve_ent"]) == {"02"}
    code, _, err = run(["export", "--edition", "2023", "--format", "csv", "--level", "ALTÍSIMO",
                        "-o", out, "--data-dir", data], capsys)
    assert code == 2 and "allowed: alto, medio, bajo, sin_informacion" in err


@pytest.mark.parametrize("typed", ["queretaro", "Querétaro", "22", "QUERETARO"])
def test_state_page_takes_a_name(client, typed):
    response = client.get(f"/estado/{typed}?capa=probabilidad")
    if typed == "22":
        assert response.status_code == 200
    else:
        assert response.status_code == 308
        assert response.headers["Location"].endswith("/estado/22?capa=probabilidad")
    assert client.get("/estado/atlantis").status_code == 404
