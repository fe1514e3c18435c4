"""The shared publishing orchestration: store vintages + crosswalks, build/label/publish."""

from __future__ import annotations

import warnings

import pytest

from riskmap.errors import InputError
from riskmap.ingest.boundaries import read_boundaries
from riskmap.inegi.iter import read_iter
from riskmap.publish.builders import EditionJob, publish_editions, store_vintages
from riskmap.inegi.simulate import EDITIONS, SimConfig, simulate_mexico
from riskmap.spec import load_spec
from riskmap.publish.store import DataStore

from pipeline_inputs import small_country as _small_country


@pytest.fixture()
def world(tmp_path):
    bpath, tpath, _ = _small_country(tmp_path)
    boundaries = read_boundaries(bpath)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the municipality without census data
        sim = simulate_mexico(boundaries, read_iter(tpath), seed=1,
                              config=SimConfig(n_census=6000, n_survey=6000,
                                               editions=(EDITIONS[2],)))
    return boundaries, sim


def test_store_vintages_dissolves_states_and_stores_crosswalks(tmp_path, world):
    boundaries, _ = world
    old = boundaries.iloc[:-1]  # one municipality fewer in the older vintage
    store = DataStore(tmp_path / "data")
    timings = store_vintages(store, {"2020": (boundaries, None), "2015": (old, None)},
                             [("2015", "2020")])
    assert store.vintage_names() == ["2015", "2020"]
    assert sorted(store.load_vintage("2020", layer="estados")["cve_ent"]) == ["19", "20"]
    cw = store.load_crosswalk("2015", "2020")
    assert set(cw["cvegeo_from"]) == set(old["cvegeo"])
    assert set(timings) == {"store_geography", "crosswalk"}
    # no crosswalk asked, none stored or timed
    other = DataStore(tmp_path / "other")
    assert set(store_vintages(other, {"2020": (boundaries, None)})) == {"store_geography"}
    assert not (tmp_path / "other" / "crosswalks").exists()


def test_publish_editions_labels_and_records_file_names(tmp_path, world):
    boundaries, sim = world
    store = DataStore(tmp_path / "data")
    store_vintages(store, {"2020": (boundaries, None)})
    seen = []
    job = EditionJob("2023", 2023, "2020", sim["surveys"]["2023"], sim["census"], boundaries,
                     [{"name": "test records", "kind": "survey", "synthetic": True}],
                     survey_file="s.parquet", census_file="c.parquet",
                     label=lambda card: card.update(marked=True))
    published, timings = publish_editions(store, [job], load_spec(), synthetic=True,
                                          progress=seen.append, message="edition {edition}!")
    assert list(published) == ["2023"] and published["2023"].exists()
    assert set(timings) == {"edition_2023"}
    card = store.load_card("2023")
    assert card["marked"] is True and card["synthetic"] is True
    assert seen[0] == "edition 2023!" and len(seen) > 1  # the pipeline's own steps follow
    assert len(store.load_edition("2023").rows) == len(boundaries)
    # the file names travel with the records into error messages
    bad = sim["census"].copy()
    bad.loc[bad.index[0], "cvegeo"] = "32999"
    job.census, job.edition = bad, "2024"
    with pytest.raises(InputError, match="c.parquet"):
        publish_editions(store, [job], load_spec(), synthetic=True)
    assert "2024" not in store.edition_names()
