"""Invariant 3 (split first, augment after) and the full leakage audit, including a planted
augmentation-before-split leak."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from causalcast.audit import check_isolation, run_audit
from causalcast.augment import BatchAugmenter, bootstrap_training_bars
from causalcast.config import AugmentConfig, FeatureConfig, SplitConfig
from causalcast.data.sources import write_ohlcv
from causalcast.features.pipeline import align_fold, common_calendar, prepare_symbol
from causalcast.splits import make_folds
from causalcast.windows import WindowSet, build_window_set

CFG = FeatureConfig(lookback=20, horizons=(1, 5))


def _setup(universe):
    prepared = [prepare_symbol(s, f, CFG) for s, f in universe.frames.items()]
    calendar = common_calendar(prepared)
    fold = make_folds(calendar, CFG, SplitConfig(n_folds=2))[0]
    return prepared, {p.symbol: align_fold(fold, calendar, p) for p in prepared}


def test_bootstrap_uses_training_bars_only(universe):
    prepared, folds = _setup(universe)
    p = prepared[0]
    aug = AugmentConfig(enabled=True, bootstrap_copies=2, block_size=10, seed=3)
    copies = bootstrap_training_bars(p, universe.frames[p.symbol], folds[p.symbol], CFG, aug)
    assert len(copies) == 2
    frame = universe.frames[p.symbol]
    train_moves = np.log(frame["close"] / frame["close"].shift(1)).iloc[1:folds[p.symbol]
                                                                       .train.stop]
    for copy in copies:
        moves = np.diff(np.log(copy.close))
        assert len(copy.close) == folds[p.symbol].train.stop - 1
        # Every resampled close-to-close move is one of the training range's moves.
        assert np.isin(np.round(moves, 10), np.round(train_moves.to_numpy(), 10)).all()


def test_batch_augmenter_is_seeded_and_off_by_default():
    x = np.ones((4, 10, 3), dtype=np.float32)
    assert BatchAugmenter(AugmentConfig()) (x) is x
    on = AugmentConfig(enabled=True, seed=1)
    a, b = BatchAugmenter(on)(x), BatchAugmenter(on)(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, x)


def test_evaluation_windows_identical_with_augmentation(universe):
    prepared, folds = _setup(universe)

    def build(aug: AugmentConfig) -> WindowSet:
        extra = [c for p in prepared for c in bootstrap_training_bars(
            p, universe.frames[p.symbol], folds[p.symbol], CFG, aug)]
        return build_window_set(prepared, folds, extra)[0]

    aug = AugmentConfig(enabled=True, bootstrap_copies=2, seed=1)
    assert check_isolation(build, aug).passed
    on = build(aug)
    assert len(on.samples["train"]) > len(build(AugmentConfig()).samples["train"])


def test_augmentation_before_split_is_caught(universe):
    """The reviewed system jittered the whole series before splitting."""
    prepared, folds = _setup(universe)

    def leaky_build(aug: AugmentConfig) -> WindowSet:
        ws = build_window_set(prepared, folds)[0]
        if aug.enabled:  # augment every row, evaluation rows included
            rng = np.random.default_rng(aug.seed)
            noisy = ws.features + rng.normal(0, aug.jitter_std, ws.features.shape)
            ws = WindowSet(np.ascontiguousarray(noisy, dtype=np.float32), ws.targets,
                           ws.lookback, ws.offsets, ws.samples, ws.symbol_of_row, ws.symbols)
        return ws

    check = check_isolation(leaky_build, AugmentConfig(enabled=True, seed=1))
    assert not check.passed and "val windows differ" in check.detail


def test_full_audit_passes_on_clean_data(universe):
    report = run_audit(universe.frames, n_cuts=6)
    assert report.passed, report.failures[:3]
    kinds = {c.name for c in report.checks}
    assert kinds == {"prefix", "perturb", "purge", "scaler", "isolation"}


def test_audit_cli_json_and_exit_code(universe, tmp_path):
    write_ohlcv(universe.frames, tmp_path)
    ok = subprocess.run([sys.executable, "-m", "causalcast.cli", "audit", "--data",
                         str(tmp_path), "--cuts", "4", "--json"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    payload = json.loads(ok.stdout)
    assert payload["passed"] and payload["n_failures"] == 0
