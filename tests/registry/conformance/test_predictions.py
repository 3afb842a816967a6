"""The prediction log's store methods (schema migrations 3 and 4), for every metadata store: a
batch is all-or-nothing, the horizons of one answer are one row, outcomes are written once
per (answer, horizon), retention deletes with outcomes, and a schema-3 log migrates whole."""

from __future__ import annotations

import pytest

from causalcast.registry import Lineage, NewPrediction, RegistryError
from tests.registry.conformance.backends import Backend


def _row(version_id: int, as_of: str, at: str, mean: float = 0.01) -> NewPrediction:
    return NewPrediction(version_id, "AAA", as_of, 1, 100.0, mean, 0.02, 5.0,
                         {"horizon": 1, "p_up": 0.6}, at, False, "service", "ok")


def test_prediction_log_round_trip(backend: Backend) -> None:
    with backend.open() as reg:
        v = reg.register_version("m/global", b"bytes", {}, {},
                                 Lineage("0" * 64, {}, {}, model="m"))
        meta = reg.meta
        with pytest.raises(RegistryError):
            meta.append_predictions([_row(v.version_id, "2020-01-02", "2026-01-01"),
                                     _row(v.version_id, "2020-01-03", "2026-01-01",
                                          mean=float("inf"))])
        assert meta.predictions() == []
        assert meta.append_predictions([_row(v.version_id, "2020-01-02", "2025-01-01"),
                                        _row(v.version_id, "2020-01-03", "2026-01-01")]) == 2
        first, second = meta.predictions(v.version_id)
        assert first.forecast == {"horizon": 1, "p_up": 0.6} and first.df == 5.0
        assert meta.record_outcomes([(second.forecast_id, 1, -0.01, "2020-01-06")]) == 1
        assert meta.record_outcomes([(second.forecast_id, 1, 0.5, "2020-01-06")]) == 0
        assert [p.answer_id for p in meta.predictions(scored=True)] == \
            [second.answer_id]
        assert meta.predictions(scored=True)[0].realised == -0.01
        assert [p.answer_id for p in meta.predictions(scored=False)] == \
            [first.answer_id]
        assert [p.answer_id for p in meta.predictions(since="2025-06-01")] == \
            [second.answer_id]
        assert meta.prune_predictions("2025-06-01") == 1
        assert [p.answer_id for p in meta.predictions()] == [second.answer_id]


def _open_at_schema_3(backend: Backend, monkeypatch: pytest.MonkeyPatch):
    """The backend opened by a causalcast that knows migrations 1-3 only (the per-horizon
    log), as a registry written before migration 4 would be."""
    import causalcast.registry.postgres_store as pg
    import causalcast.registry.sqlite_store as sq

    module = sq if backend.kind == "sqlite+files" else pg
    with monkeypatch.context() as m:
        m.setattr(module, "MIGRATIONS", module.MIGRATIONS[:3])
        m.setattr(module, "LATEST", 3)
        return backend.open()


def test_migration_4_turns_each_old_row_into_a_one_horizon_answer(
        backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """A schema-3 log (one row per horizon) keeps every forecast and outcome: each old row
    becomes a one-horizon forecast and its answer, both under the old id; new ones get ids
    after them (the PostgreSQL identities are moved past the copy)."""
    reg = _open_at_schema_3(backend, monkeypatch)
    v = reg.register_version("m/global", b"bytes", {}, {}, Lineage("0" * 64, {}, {}, model="m"))
    old = [(v.version_id, "AAA", f"2020-01-0{d}", h, 100.0 + d, 0.001 * d * h, 0.02 * h,
            None if h == 1 else 4.0, f'{{"horizon": {h}, "p_up": 0.{d}}}', f"2025-01-0{d}",
            d % 2, "service", "ok") for d in (2, 3) for h in (1, 5)]
    columns = ("version_id, symbol, as_of, horizon, last_close, mean, scale, df, forecast_json, "
               "requested_at, cached, source, monitor_status")
    if backend.kind == "sqlite+files":
        import sqlite3

        db = sqlite3.connect(reg.meta.path)
        db.executemany(f"INSERT INTO predictions ({columns}) VALUES "
                       f"({', '.join('?' * 13)})", old)
        db.execute("INSERT INTO prediction_outcomes VALUES (3, -0.02, '2020-01-09', 'now')")
        db.commit()
        db.close()
    else:
        import psycopg

        with psycopg.connect(backend.home) as db:
            db.cursor().executemany(
                f"INSERT INTO predictions ({columns}) VALUES "
                f"({', '.join('%s::jsonb' if i == 8 else '%s' for i in range(13))})", old)
            db.execute("INSERT INTO prediction_outcomes VALUES (3, -0.02, '2020-01-09', "
                       "'now')")
    reg.close()

    with backend.open() as reg:                       # migration 4 runs here
        assert reg.meta.schema_version() == 4
        got = reg.meta.predictions()
        assert [(p.answer_id, p.forecast_id, p.horizon) for p in got] == \
            [(1, 1, 1), (2, 2, 5), (3, 3, 1), (4, 4, 5)]
        for p, row in zip(got, old, strict=True):
            assert (p.symbol, p.as_of, p.last_close, p.df, p.requested_at, p.cached) == \
                (row[1], row[2], row[4], row[7], row[9], bool(row[10]))
            assert (p.mean, p.scale) == (pytest.approx(row[5], rel=1e-14),
                                         pytest.approx(row[6], rel=1e-14))
            assert p.forecast == {"horizon": row[3], "p_up": float(row[8][-4:-1])}
        scored = reg.meta.predictions(scored=True)
        assert [(p.answer_id, p.horizon, p.realised) for p in scored] == [(3, 1, -0.02)]
        assert reg.meta.append_predictions([_row(v.version_id, "2020-01-06", "2026-01-01")]) == 1
        last = reg.meta.predictions()[-1]
        assert (last.answer_id, last.forecast_id) == (5, 5)


def test_the_horizons_of_one_answer_are_one_row_scored_one_by_one(backend: Backend) -> None:
    with backend.open() as reg:
        v = reg.register_version("m/global", b"bytes", {}, {},
                                 Lineage("0" * 64, {}, {}, model="m"))
        answer = [NewPrediction(v.version_id, "AAA", "2020-01-02", h, 100.0, 0.001 * h,
                                0.01 * h, None, {"horizon": h}, "2026-01-01", True, "service")
                  for h in (1, 5, 10)]
        assert reg.meta.append_predictions(answer) == 1            # one answer, one row
        got = reg.meta.predictions()
        assert [(p.answer_id, p.horizon, p.mean) for p in got] == \
            [(1, 1, 0.001), (1, 5, 0.005), (1, 10, 0.01)]
        assert reg.meta.record_outcomes([(1, 5, 0.03, "2020-01-09")]) == 1
        assert [p.horizon for p in reg.meta.predictions(scored=True)] == [5]
        assert [p.horizon for p in reg.meta.predictions(scored=False)] == [1, 10]
        assert reg.meta.record_outcomes([(1, 1, 0.01, "2020-01-03"),
                                         (1, 10, 0.0, "2020-01-16")]) == 2
        assert reg.meta.predictions(scored=False) == []
        with pytest.raises(RegistryError, match=r"outcomes\[0\]\.horizon"):
            reg.meta.record_outcomes([(1, 0, 0.01, "2020-01-03")])
