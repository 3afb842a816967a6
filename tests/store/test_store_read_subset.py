"""Reading a subset of symbols whose bars were committed in different files: only the asked
symbols come back, each with exactly its own bars (a dictionary unified over files names
symbols the filter left without rows; they must not appear as empty series)."""

from __future__ import annotations

import numpy as np

from causalcast.data.resolve import resolve_source
from causalcast.store import BarStore
from causalcast.store.frames import load_frames


def test_a_subset_read_returns_only_the_asked_symbols_with_their_bars(tmp_path):
    many, _ = resolve_source("synthetic:4,300,0.3,3")
    other, _ = resolve_source("synthetic:1,500,0.3,4")
    store = BarStore(tmp_path)
    store.write(many)                                   # one file: four symbols
    store.write({"LATER": other["SYN000"]})             # a second file: one symbol
    for asked in (["LATER"], ["SYN002"], ["SYN001", "LATER"]):
        got = store.read_many(asked)
        assert sorted(got) == sorted(asked)
        for s in asked:
            want = other["SYN000"] if s == "LATER" else many[s]
            np.testing.assert_array_equal(got[s]["close"].to_numpy(), want["close"].to_numpy())
    frames = load_frames(tmp_path, ["LATER"], min_bars=500)
    assert list(frames) == ["LATER"] and len(frames["LATER"]) == 500
