"""The prediction log's store methods (schema migration 3), for every metadata store: a
batch is all-or-nothing, outcomes are written once, retention deletes with outcomes."""

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
        assert meta.record_outcomes([(second.prediction_id, -0.01, "2020-01-06")]) == 1
        assert meta.record_outcomes([(second.prediction_id, 0.5, "2020-01-06")]) == 0
        assert [p.prediction_id for p in meta.predictions(scored=True)] == \
            [second.prediction_id]
        assert meta.predictions(scored=True)[0].realised == -0.01
        assert [p.prediction_id for p in meta.predictions(scored=False)] == \
            [first.prediction_id]
        assert [p.prediction_id for p in meta.predictions(since="2025-06-01")] == \
            [second.prediction_id]
        assert meta.prune_predictions("2025-06-01") == 1
        assert [p.prediction_id for p in meta.predictions()] == [second.prediction_id]
