"""Walk-forward evaluation from prediction files (issue 6 items 1-4, 7-9).

One walk-forward run on a synthetic universe with a planted signal (Bayes ceiling about 0.62
at h = 1) is trained once per module with `run_job` (5 folds; naive, drift, ridge and a small
LSTM), then every test reads its prediction files only.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from causalcast.audit import check_fit_isolation
from causalcast.cli import app
from causalcast.data.resolve import resolve_source
from causalcast.evaluation import EvaluationInputError
from causalcast.evaluation import ensemble as ens
from causalcast.evaluation.loading import load_prediction_set
from causalcast.evaluation.promotion import promotion_metrics
from causalcast.evaluation.report import write_report
from causalcast.evaluation.walkforward import evaluate_predictions
from causalcast.registry import GateRefused, Lineage, Registry
from causalcast.training.job import JobSpec, run_job
from causalcast.training.predictions import load_predictions
from tests.support.frames import weights_file

DATA = "synthetic:8,1500,0.38,7"
FOLDS = 5
MODELS = {"naive": {}, "drift": {}, "ridge": {},
          "lstm": {"model_params": {"hidden": 16}, "train_params": {"epochs": 3, "patience": 2}}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("wf")
    for model, extra in MODELS.items():
        for fold in range(FOLDS):
            r = run_job(JobSpec(model=model, data=DATA, out_dir=str(out), n_folds=FOLDS,
                                fold=fold, horizons=(1, 5), lookback=12, threads=1, **extra))
            assert r.status == "ok", r.traceback
    return out


@pytest.fixture(scope="module")
def source():
    return resolve_source(DATA)


@pytest.fixture(scope="module")
def result(run_dir, source):
    frames, universe = source
    return evaluate_predictions(run_dir, frames, audit_passed=True, ceiling=universe,
                                label="synthetic")


@pytest.mark.slow
def test_learned_models_reach_the_ceiling_and_beat_naive_baselines_do_not(result):
    assert result["data"]["n_folds"] == FOLDS and result["audit"]["passed"] is True
    assert json.loads(json.dumps(result, allow_nan=False)) == result   # plain JSON
    for model in ("lstm", "ridge", "ensemble"):
        m = result["models"][model]["metrics"]["1"]
        ceiling = m["ceiling"]["accuracy"]
        assert 0.60 < ceiling < 0.64 and m["ceiling"]["kind"] == "exact on these bars"
        assert m["direction"]["accuracy"] >= 0.95 * ceiling, (model, m["direction"], ceiling)
        assert m["direction"]["ci_low"] < m["direction"]["accuracy"] < m["direction"]["ci_high"]
        assert m["dm_vs_naive"]["p_a_better"] < 0.001
        assert m["direction_test"]["p_value"] < 0.001
        assert m["dm_vs_naive"]["h"] == 1 and result["models"][model]["metrics"]["5"][
            "dm_vs_naive"]["lag"] == 4
        assert result["models"][model]["beats_naive"] is True
        assert result["models"][model]["grade"]["shown"] == \
            result["models"][model]["grade"]["computed"]
        assert len(m["folds"]) == FOLDS
        for key in ("nll", "crps", "coverage", "brier", "reliability", "price"):
            assert key in m
    for baseline in ("naive", "drift"):
        assert result["models"][baseline]["beats_naive"] is False
        assert result["models"][baseline]["grade"]["shown"] == "F"
    summary = "\n".join(result["summary"])
    assert "drift does not beat the naive baseline" in summary
    assert "lstm beats the naive baseline" in summary
    assert result["leaderboard"][0]["model"] not in ("naive", "drift")
    bh = result["buy_and_hold"]["stats"]
    assert result["models"]["ridge"]["backtest"]["stats"]["sharpe"] > bh["sharpe"]
    assert result["models"]["ridge"]["backtest"]["fill"] == "next_open"


@pytest.mark.slow
def test_pooled_numbers_match_an_independent_computation(run_dir, result, source):
    _, universe = source
    files = sorted(run_dir.glob("ridge/*/fold*/predictions.parquet"))
    assert len(files) == FOLDS
    pooled = pd.concat([load_predictions(f) for f in files])
    test = pooled[pooled["split"] == "test"]
    up_called = test["mean_1"] > 1e-6 * test["scale_1"]
    acc = float((up_called == (test["y_1"] > 0)).mean())
    m = result["models"]["ridge"]["metrics"]["1"]
    assert m["n"] == len(test) and m["direction"]["accuracy"] == pytest.approx(acc, abs=1e-12)
    # DM at h = 1 with HLN is the one-sample t-test of the per-date mean loss differential.
    f = np.where(np.abs(test["mean_1"]) <= 1e-6 * test["scale_1"], 0.0, test["mean_1"])
    d = pd.Series((test["y_1"] - f) ** 2 - test["y_1"] ** 2).groupby(test["date"].values).mean()
    t = stats.ttest_1samp(d.to_numpy(), 0.0, alternative="less")
    assert m["dm_vs_naive"]["statistic"] == pytest.approx(t.statistic, rel=1e-9)
    assert m["dm_vs_naive"]["p_a_better"] == pytest.approx(t.pvalue, rel=1e-6, abs=1e-300)
    # The exact ceiling on the very test bars, weighted over symbols.
    total = sum(universe.ceiling([s], part["position"].to_numpy()) * len(part)
                for s, part in test.groupby("symbol"))
    assert m["ceiling"]["accuracy"] == pytest.approx(total / len(test), rel=1e-12)


@pytest.mark.slow
def test_no_grade_above_f_without_a_passed_audit(run_dir, source):
    frames, universe = source
    res = evaluate_predictions(run_dir, frames, audit_passed=None, ceiling=universe,
                               ensemble=None, models=["ridge", "naive"])
    grade = res["models"]["ridge"]["grade"]
    assert grade["computed"] != "F" and grade["shown"] == "F" and not grade["gate_passed"]
    assert "the leakage audit did not pass" in grade["reasons"]
    assert res["summary"][0].startswith("The leakage audit not run")
    assert set(res["models"]) == {"ridge", "naive"} and res["ensemble"] == {}


@pytest.mark.slow
def test_ensemble_weights_never_read_a_test_row(run_dir, result, monkeypatch):
    """The instrumented test: the rows handed to the fit are recorded, and poisoning every
    test row (NaN targets, absurd forecasts) leaves the weights bit-identical."""
    models = load_prediction_set(run_dir)
    candidates = ens.default_candidates(models)
    assert candidates == ["lstm", "ridge"]
    seen: list[pd.DataFrame] = []
    real = ens.fold_weights

    def spy(rows, *args, **kwargs):
        seen.append(rows[["fold", "symbol", "date", "split"]].copy())
        return real(rows, *args, **kwargs)

    monkeypatch.setattr(ens, "fold_weights", spy)
    weights = ens.fit_ensemble_weights(models, candidates)
    read = pd.concat(seen)
    assert set(read["split"]) == {"val"}
    test_keys = set(map(tuple, models["ridge"].split("test")[["fold", "symbol", "date"]]
                        .itertuples(index=False)))
    assert not test_keys & set(map(tuple, read[["fold", "symbol", "date"]]
                                   .itertuples(index=False)))
    assert weights == ens.fit_ensemble_weights(ens.poison_test_rows(models), candidates)
    monkeypatch.undo()

    # The isolation check passes for the real fit and fails for a fit that peeks at test rows.
    check = check_fit_isolation(lambda ms: ens.fit_ensemble_weights(ms, candidates), models,
                                ens.poison_test_rows, subject="ensemble")
    assert check.passed and result["ensemble"]["isolation_check"]["passed"]

    def leaky(ms):
        wide = ens.wide_table(ms, candidates, [1])
        return ens.fit_weights(wide["y_1"], wide[[f"mean_1@{m}" for m in candidates]])

    bad = check_fit_isolation(leaky, models, ens.poison_test_rows, subject="leaky")
    assert not bad.passed and "NaN" in bad.detail
    with pytest.raises(EvaluationInputError, match="validation rows only"):
        ens.fold_weights(ens.wide_table(models, candidates, [1]), candidates, 1)

    # Applied to test rows exactly as fitted; reported against the best single model.
    pred, _ = ens.build_ensemble(models, candidates)
    row = pred.table.iloc[0]
    w = weights[int(row["fold"])][1]
    members = {m: models[m].split("test").set_index(["symbol", "date"]).loc[
        (row["symbol"], row["date"]), "mean_1"] for m in candidates}
    assert row["mean_1"] == pytest.approx(sum(w[m] * members[m] for m in candidates))
    assert all(abs(sum(by_h[1].values()) - 1) < 1e-9 for by_h in weights.values())
    e = result["ensemble"]
    assert e["best_single"] in candidates and set(e["vs_best_single"]) == {"1", "5"}
    assert 0 <= e["vs_best_single"]["1"]["p_ensemble_better"] <= 1


@pytest.mark.slow
def test_report_is_one_self_contained_file_with_the_same_numbers(result, tmp_path):
    path = write_report([result, {**result, "label": "second section"}], tmp_path / "r.html")
    text = path.read_text()
    images = re.findall(r'src="data:image/png;base64,', text)
    assert len(images) == 8                       # 4 figures per section
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "drift does not beat the naive baseline" in text
    for heading in ("Leaderboard", "Backtest", "Ensemble", "Accuracy per fold"):
        assert heading in text
    embedded = re.search(r'<script type="application/json" id="causalcast-results">(.*?)'
                         r"</script>", text, flags=re.S).group(1)
    assert json.loads(embedded.replace("<\\/", "</"))[0] == result
    assert json.loads(path.with_suffix(".json").read_text())[1]["label"] == "second section"


@pytest.mark.slow
def test_cli_evaluate_and_report(run_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--predictions", str(run_dir), "--data", DATA,
                              "--audit-cuts", "2", "--lookback", "12", "--ensemble", "none",
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["audit"]["status"] == "passed" and out["data"]["synthetic"] is True
    assert out["models"]["lstm"]["grade"]["gate_passed"] is True
    res = runner.invoke(app, ["report", "--predictions", str(run_dir), "--out",
                              str(tmp_path / "rep.html"), "--no-audit", "--cost-bps", "10"])
    assert res.exit_code == 0, res.output
    assert "does not beat" in res.output and (tmp_path / "rep.json").exists()
    saved = json.loads((tmp_path / "rep.json").read_text())
    assert saved["cost_bps"] == 10 and saved["audit"]["status"] == "not run"
    assert saved["models"]["ridge"]["backtest"]["fill"] == "next_close"   # no bars given
    res = runner.invoke(app, ["report", "--result", str(tmp_path / "rep.json"), "--out",
                              str(tmp_path / "again.html")])
    assert res.exit_code == 0 and (tmp_path / "again.html").exists()
    # A registry run: its recorded audit and its prediction folder are used.
    reg = Registry.open(tmp_path / "home")
    run = reg.start_run("wf", config={"out_dir": str(run_dir)})
    reg.record_audit(run, {"passed": False, "n_checks": 3, "n_failures": 1})
    reg.close()
    res = runner.invoke(app, ["evaluate", "--run", run, "--home", str(tmp_path / "home"),
                              "--ensemble", "none", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["audit"]["status"] == "failed" and out["data"]["n_folds"] == FOLDS
    assert out["models"]["lstm"]["grade"]["shown"] == "F"
    # The training runner records its output folder as "out" (train --parallel --out X).
    from causalcast.cli.evaluate import run_predictions_dir

    with Registry.open(tmp_path / "home") as reg:
        runner_run = reg.start_run("rn", config={"spec": {}, "out": str(run_dir)})
        assert run_predictions_dir(reg.get_run(runner_run), tmp_path / "home") == run_dir
    res = runner.invoke(app, ["evaluate", "--predictions", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "does not exist" in " ".join(res.output.split())


@pytest.mark.slow
def test_promotion_refuses_a_model_that_does_not_beat_naive(result, tmp_path):
    reg = Registry.open(tmp_path / "home")
    try:
        lineage = Lineage("a" * 64, {"lookback": 12}, {"n_folds": FOLDS})
        ridge = reg.register_version("ridge", weights_file(1), {},
                                     promotion_metrics(result, "ridge"), lineage)
        drift = reg.register_version("drift", weights_file(2), {},
                                     promotion_metrics(result, "drift"), lineage)
        promoted = reg.promote(ridge.ref, reason="significant")
        assert {g.gate: g.passed for g in promoted.gates} == {
            "leakage_audit": True, "beats_naive_baseline": True, "significant_vs_naive": True}
        with pytest.raises(GateRefused, match=r"significant_vs_naive.*does not beat the naive"):
            reg.promote(drift.ref)
        # The opt-in grade gate reads the honest grade.
        assert reg.check_gates(ridge.version_id, ["grade_shown"])[0].passed
        assert not reg.check_gates(drift.version_id, ["grade_shown"])[0].passed
    finally:
        reg.close()
    with pytest.raises(EvaluationInputError, match="not in the evaluation"):
        promotion_metrics(result, "nope")


def test_prediction_sets_refuse_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_prediction_set(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no predictions\.parquet"):
        load_prediction_set(tmp_path / "empty")
    r = run_job(JobSpec(model="naive", data="synthetic:2,700,0.3,1", out_dir=str(tmp_path / "a"),
                        horizons=(1,), lookback=12))
    assert r.status == "ok"
    copy = tmp_path / "b" / "naive" / "global" / "fold0"
    copy.mkdir(parents=True)
    shutil.copy(r.predictions, copy / "predictions.parquet")
    with pytest.raises(EvaluationInputError, match="in more than one file"):
        load_prediction_set(tmp_path / "a", tmp_path / "b")
    one = evaluate_predictions(tmp_path / "a")
    assert one["data"]["n_folds"] == 1 and "Only 1 fold(s)" in one["summary"][1]
    assert one["ensemble"]["skipped"].startswith("needs two or more")
