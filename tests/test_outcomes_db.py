"""Outcomes database (SQLite and PostgreSQL): migrations, users, imports, integrity."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from outcome_helpers import csv_bytes, visit_rows, xlsx_bytes
from riskmap.errors import BadParameter, InputError
from riskmap.outcomes import db, users, visits


@pytest.fixture
def engine(db_url):
    yield db.get_engine(db_url)
    db.dispose_all()


def test_migrations_create_the_schema_once(engine):
    names = set(sa.inspect(engine).get_table_names())
    assert {"users", "api_tokens", "visits", "audit", "login_failures", "workplaces",
            "worklists", "alembic_version"} <= names
    db.upgrade(engine)  # a second upgrade is a no-op
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0003"


def test_users_roles_tokens(engine):
    users.add_user(engine, "ana", "inspector", "correct horse battery")
    with pytest.raises(InputError, match="already exists"):
        users.add_user(engine, "ana", "admin", "another long password")
    with pytest.raises(BadParameter, match="allowed: inspector, admin"):
        users.add_user(engine, "bo", "boss", "another long password")
    with pytest.raises(BadParameter, match="at least 10"):
        users.add_user(engine, "bo", "admin", "short")
    assert users.authenticate(engine, "ana", "correct horse battery").role == "inspector"
    assert users.authenticate(engine, "ana", "wrong") is None
    assert users.authenticate(engine, "nobody", "correct horse battery") is None
    token = users.issue_token(engine, "ana")
    assert users.user_by_token(engine, token).name == "ana"
    with engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(sa.text(
            "SELECT u.password_hash, t.token_hash FROM users u JOIN api_tokens t "
            "ON t.user_id = u.id")) for v in row)
    assert token not in stored and "correct horse battery" not in stored
    assert stored.startswith("$argon2id$")
    second = users.issue_token(engine, "ana")
    assert users.user_by_token(engine, token) is None  # a new token revokes the old one
    users.disable_user(engine, "ana")
    assert users.authenticate(engine, "ana", "correct horse battery") is None
    assert users.user_by_token(engine, second) is None
    assert [u["disabled"] for u in users.list_users(engine)] == [True]


def test_throttle_after_ten_failures(engine):
    t0 = dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone.utc)
    keys = ["user:ana", "ip:10.0.0.1"]
    for i in range(9):
        users.record_failure(engine, keys, t0 + dt.timedelta(seconds=i))
    assert users.throttled(engine, keys, t0 + dt.timedelta(seconds=10)) is None
    users.record_failure(engine, keys, t0 + dt.timedelta(seconds=9))
    until = users.throttled(engine, ["ip:10.0.0.1"], t0 + dt.timedelta(seconds=10))
    assert until == t0 + users.WINDOW
    assert users.throttled(engine, keys, t0 + users.WINDOW + dt.timedelta(seconds=1)) is None


def test_import_csv_and_xlsx_idempotent(engine):
    rows = visit_rows(50)
    result = visits.import_bytes(engine, csv_bytes(rows, "latin-1"), "a.csv", "ana")
    assert (result.inserted, result.unchanged) == (50, 0)
    again = visits.import_bytes(engine, xlsx_bytes(rows), "a.xlsx", "ana")
    assert (again.inserted, again.unchanged) == (0, 50)
    stored = visits.frame(engine)
    assert len(stored) == 50 and stored["folio"].is_unique
    pd.testing.assert_series_equal(stored.sort_values("folio")["nna_encontrados"]
                                   .reset_index(drop=True),
                                   rows["nna_encontrados"].astype("int64"), check_names=False)
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(sa.text("SELECT actor FROM audit"))]
    assert actions == ["ana", "ana"]


def test_changed_folio_is_a_conflict_and_nothing_lands(engine):
    visits.import_bytes(engine, csv_bytes(visit_rows(10)), "a.csv", "ana")
    changed = visit_rows(12)
    changed.loc[3, "nna_encontrados"] = 9
    with pytest.raises(visits.ImportRefused, match="1 conflicting folio") as exc:
        visits.import_bytes(engine, csv_bytes(changed), "b.csv", "ana")
    assert "F0000003" in exc.value.errors[0]
    assert visits.count(engine) == 10  # the two new rows did not land either
    assert visits.frame(engine).set_index("folio").loc["F0000003", "nna_encontrados"] == 3


@pytest.mark.parametrize("column, value, expected", [
    ("folio", "", "non-empty text"),
    ("cvegeo", "1A001", "5-digit"),
    ("fecha", "2024-02-30", "YYYY-MM-DD"),
    ("fecha", "01/03/2024", "YYYY-MM-DD"),
    ("fecha", "2999-01-01", "not in the future"),
    ("establecimientos", "0", "integer >= 1"),
    ("nna_encontrados", "-1", "integer >= 0"),
    ("nna_encontrados", "2.5", "integer >= 0"),
    ("nna_peligroso", "7", "at most nna_encontrados"),
    ("sector", "99", "SCIAN"),
    ("notas", "x" * 2001, "2,000 characters"),
])
def test_bad_rows_refuse_the_whole_file(engine, column, value, expected):
    rows = visit_rows(5)
    rows[column] = rows[column].astype(object)
    rows.loc[2, column] = value
    with pytest.raises(visits.ImportRefused, match=expected) as exc:
        visits.import_bytes(engine, csv_bytes(rows), "bad.csv", "ana")
    assert f"bad.csv, row 4, column '{column}'" in exc.value.errors[0]
    assert visits.count(engine) == 0


def test_all_bad_rows_listed_and_duplicates_in_file(engine):
    rows = visit_rows(6)
    rows = rows.astype(str)
    rows.loc[1, "folio"] = rows.loc[0, "folio"]
    rows.loc[4, "establecimientos"] = "many"
    with pytest.raises(visits.ImportRefused) as exc:
        visits.import_bytes(engine, csv_bytes(rows), "dup.csv", "ana")
    assert len(exc.value.errors) == 2
    assert "row 3, column 'folio'" in exc.value.errors[0] and "also row 2" in exc.value.errors[0]
    assert "row 6, column 'establecimientos'" in exc.value.errors[1]


def test_limits(engine, monkeypatch):
    with pytest.raises(visits.TooLarge, match="10 MB") as exc:
        visits.read_table(b"x" * (visits.MAX_BYTES + 1), "big.csv")
    assert exc.value.status == 413
    monkeypatch.setattr(visits, "MAX_ROWS", 10)
    with pytest.raises(visits.TooLarge, match="limit is 10 rows"):
        visits.read_table(csv_bytes(visit_rows(11)), "many.csv")
    with pytest.raises(visits.ImportRefused, match="missing column"):
        visits.import_bytes(engine, b"folio,cvegeo\nA,01001\n", "cols.csv", "ana")


def test_hostile_strings_stored_verbatim_and_exported_neutralised(engine, tmp_path):
    rows = visit_rows(3)
    rows.loc[0, "folio"] = "=HYPERLINK(\"http://x\")"
    rows.loc[1, "folio"] = "1'; DROP TABLE visits; --"
    rows.loc[2, "notas"] = "@SUM(A1:A9) <script>alert(1)</script> \"; DELETE FROM users; --"
    visits.import_bytes(engine, csv_bytes(rows), "evil.csv", "ana")
    stored = visits.frame(engine).set_index("folio")
    assert set(stored.index) == set(rows["folio"])
    assert stored.loc[rows.loc[2, "folio"], "notas"] == rows.loc[2, "notas"]
    for suffix in (".csv", ".xlsx"):
        out = visits.export(engine, tmp_path / f"out{suffix}")
        back = (pd.read_csv(out, dtype=str) if suffix == ".csv"
                else pd.read_excel(out, dtype=str))
        assert "'=HYPERLINK(\"http://x\")" in set(back["folio"])
        assert "'@SUM(A1:A9) <script>alert(1)</script> \"; DELETE FROM users; --" in set(
            back["notas"])
        assert "1'; DROP TABLE visits; --" in set(back["folio"])
    assert visits.count(engine) == 3


def test_recently_visited(engine):
    rows = visit_rows(4, when=dt.date(2025, 6, 30))
    rows["fecha"] = ["2025-06-30", "2025-01-10", "2024-06-01", "2025-06-01"]
    visits.import_bytes(engine, csv_bytes(rows), "r.csv", "ana", today=dt.date(2025, 7, 1))
    assert visits.recently_visited(engine, 180, today=dt.date(2025, 7, 1)) == {"01001", "01002"}
    assert visits.recently_visited(engine, 0, today=dt.date(2025, 7, 1)) == set()


def test_stats_frame_matches_frame(engine):
    visits.import_bytes(engine, csv_bytes(visit_rows(25)), "a.csv", "ana")
    full = visits.frame(engine)[list(visits.STATS_FIELDS)].sort_values("folio")
    fast = visits.stats_frame(engine).sort_values("folio")
    pd.testing.assert_frame_equal(full.reset_index(drop=True), fast.reset_index(drop=True))


def test_upgrade_from_the_first_revision_keeps_the_data(db_url):
    """A database left at revision 0001 (visits stored) upgrades to head on first use."""
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    assert "workplaces" not in sa.inspect(engine).get_table_names()
    visits.import_bytes(engine, csv_bytes(visit_rows(5)), "a.csv", "ana")  # data at 0001
    engine.dispose()
    upgraded = db.get_engine(db_url)
    assert "workplaces" in sa.inspect(upgraded).get_table_names()
    assert visits.count(upgraded) == 5
    db.dispose_all()


def test_upgrade_from_0002_with_data_then_worklists_work(db_url):
    """A database at 0002 (accounts, visits, workplaces stored) gains the worklist table on
    first use; the data stays, worklists save per user and go away with a downgrade."""
    from alembic import command
    from alembic.config import Config

    from riskmap.outcomes import worklists

    engine = sa.create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    assert "worklists" not in sa.inspect(engine).get_table_names()
    visits.import_bytes(engine, csv_bytes(visit_rows(7)), "a.csv", "ana")
    visits.replace_workplaces(engine, b"cvegeo,count\n01001,4\n", "k.csv", "root")
    ana = users.add_user(engine, "ana", "inspector", "a long password")
    engine.dispose()
    upgraded = db.get_engine(db_url)
    assert "worklists" in sa.inspect(upgraded).get_table_names()
    assert visits.count(upgraded) == 7 and len(visits.stored_workplaces(upgraded)) == 1
    assert users.authenticate(upgraded, "ana", "a long password") == ana
    worklists.save(upgraded, ana, "norte", "edicion=2023&visitas=5", "2023")
    with pytest.raises(InputError, match="already have a worklist named 'norte'"):
        worklists.save(upgraded, ana, "norte ", "edicion=2023&visitas=9", "2023")
    assert [w["query"] for w in worklists.list_for(upgraded, ana)] == ["edicion=2023&visitas=5"]
    db.dispose_all()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert "worklists" not in sa.inspect(engine).get_table_names()
    assert visits.count(engine) == 7
    engine.dispose()


def test_workplace_table_replace(engine):
    assert visits.stored_workplaces(engine) is None
    assert visits.replace_workplaces(engine, b"cvegeo,count\n1001,4\n02001,9\n", "k.csv",
                                     "root") == 2
    table = visits.stored_workplaces(engine).set_index("cvegeo")["count"].to_dict()
    assert table == {"01001": 4, "02001": 9}
    with pytest.raises(InputError, match="k.csv, column 'count', row 3"):
        visits.replace_workplaces(engine, b"cvegeo,count\n1001,4\n02001,0\n", "k.csv", "root")
    with pytest.raises(InputError, match="appears twice"):
        visits.replace_workplaces(engine, b"cvegeo,count\n1001,4\n01001,5\n", "k.csv", "root")
    assert visits.stored_workplaces(engine).set_index("cvegeo")["count"].to_dict() == table
