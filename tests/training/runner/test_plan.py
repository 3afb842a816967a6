"""Planning a run: fold selection, job keys, version names, refusal of bad descriptions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.registry import ALL_SYMBOLS
from causalcast.registry.checks import check_name
from causalcast.training.plan import (
    FINAL,
    FINAL_FOLD,
    PlanError,
    RunSpec,
    parse_folds,
    plan_run,
    version_name,
)


def test_parse_folds():
    assert parse_folds(None, 1) == (FINAL,)
    assert parse_folds(None, 3) == (0, 1, 2)
    assert parse_folds("0", 1) == (FINAL,)          # the single split is the final fit
    assert parse_folds("all,final", 3) == (0, 1, 2, FINAL)
    assert parse_folds("2, 0,2", 3) == (2, 0)
    with pytest.raises(PlanError, match="folds: expected fold numbers"):
        parse_folds("last", 3)
    with pytest.raises(PlanError, match="nothing selected"):
        parse_folds(" , ", 3)


def test_plan_keys_dirs_and_names(tmp_path):
    spec = RunSpec(data="synthetic:2,400", models=("ridge", "lstm"),
                   scopes=("per-symbol", "global"), folds=(0, 2, FINAL), n_folds=3)
    jobs = plan_run(spec, ["AAA", "BRK.B"], tmp_path)
    assert len(jobs) == 3 * 2 * 3
    # global first, deep models before closed-form baselines (longest first)
    assert jobs[0].key == (ALL_SYMBOLS, "lstm", 0) and jobs[0].scope == "global"
    assert [j.key.model for j in jobs[:6]] == ["lstm"] * 3 + ["ridge"] * 3
    final = next(j for j in jobs if j.key == ("BRK.B", "ridge", FINAL_FOLD))
    assert final.name == "ridge/BRK.B" and final.label == "ridge/BRK.B/final"
    assert (final.spec.n_folds, final.spec.fold, final.spec.symbols) == (1, 0, ("BRK.B",))
    assert final.job_dir == tmp_path / "final" / "ridge" / "BRK.B" / "fold0"
    walk = next(j for j in jobs if j.key == (ALL_SYMBOLS, "ridge", 2))
    assert walk.name == "ridge/global/fold2" and walk.spec.n_folds == 3
    assert walk.spec.symbols == ("AAA", "BRK.B")
    assert walk.job_dir == tmp_path / "walk" / "ridge" / "global" / "fold2"
    # one symbol: the global model is the per-symbol model, planned once
    assert len(plan_run(spec, ["AAA"], tmp_path)) == 2 * 3


@settings(max_examples=40, deadline=None)
@given(symbols=st.lists(st.text(alphabet="ABCXYZ^.=-_ 1", min_size=1, max_size=6),
                        min_size=1, max_size=5, unique=True),
       models=st.lists(st.sampled_from(["naive", "drift", "ridge", "lstm", "tcn", "mamba"]),
                       min_size=1, max_size=4, unique=True),
       scopes=st.lists(st.sampled_from(["per-symbol", "global"]), min_size=1, max_size=2,
                       unique=True),
       folds=st.lists(st.sampled_from([0, 1, 2, 3, FINAL]), min_size=1, max_size=5,
                      unique=True))
def test_plan_invariants(tmp_path_factory, symbols, models, scopes, folds):
    """Every (scope, model, fold) exactly once, unique keys, folders and valid names."""
    spec = RunSpec(data="x", models=tuple(models), scopes=tuple(scopes), folds=tuple(folds),
                   n_folds=4)
    symbols = [s.upper() for s in symbols]
    if len(set(symbols)) != len(symbols):
        return
    jobs = plan_run(spec, symbols, tmp_path_factory.getbasetemp() / "plan")
    n_scopes = 1 if len(symbols) == 1 else (
        ("global" in scopes) + ("per-symbol" in scopes) * len(symbols))
    assert len(jobs) == n_scopes * len(models) * len(folds)
    assert len({j.key for j in jobs}) == len(jobs)
    assert len({j.job_dir for j in jobs}) == len(jobs)
    assert len({j.name for j in jobs}) == len(jobs)
    for job in jobs:
        check_name(job.name, "version name")
        assert job.spec.threads == 1 and job.spec.resume


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"models": ("gru",)}, "unknown name 'gru'"),
    ({"models": ()}, "at least one model"),
    ({"models": ("lstm", "lstm")}, "duplicates"),
    ({"scopes": ("both",)}, "scopes: choose"),
    ({"folds": (5,), "n_folds": 3}, "fold 5 out of range"),
    ({"n_folds": 0}, "n_folds"),
    ({"profile": "huge"}, "profile"),
    ({"horizons": (0,)}, "horizon"),
    ({"model_params": {"tcn": {"channels": 4}}}, "not among the run's models"),
])
def test_bad_descriptions_are_refused(kwargs, message):
    with pytest.raises(PlanError, match=message):
        RunSpec(**{"data": "synthetic:2,400", "models": ("lstm",), **kwargs})


def test_spec_round_trip():
    spec = RunSpec(data="synthetic:2,400", models=("lstm",), symbols=("aaa",),
                   folds=("all", FINAL), n_folds=2, model_params={"lstm": {"hidden": 8}})
    assert spec.symbols == ("AAA",) and spec.folds == (0, 1, FINAL)
    assert RunSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(PlanError, match="unknown fields"):
        RunSpec.from_dict({**spec.to_dict(), "colour": "red"})
    assert version_name("tcn", "^GSPC", 1).startswith("tcn/x_GSPC-")
    assert version_name("tcn", "^GSPC", 1) != version_name("tcn", "_GSPC", 1)
    assert version_name("tcn", "BRK.B", FINAL) == "tcn/BRK.B"
