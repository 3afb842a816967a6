"""Issue 12 defect 5: names can never become paths.

Symbols, run ids and model names reach the file system through one function,
`causalcast.registry.names.path_component`; two different names never share a folder.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from causalcast.training.plan import RunSpec, plan_run


def test_a_symbol_named_dotdot_with_two_models_gives_two_folders(tmp_path: Path) -> None:
    spec = RunSpec(data="synthetic:2,300,0.3,1", models=("naive", "drift"))
    jobs = plan_run(spec, ["..", "AAA"], tmp_path / "out")
    dirs = [j.job_dir for j in jobs]
    assert len(set(dirs)) == len(dirs) == 4
    root = (tmp_path / "out").resolve()
    for d in dirs:
        assert d.resolve().is_relative_to(root), d
        assert ".." not in d.relative_to(tmp_path / "out").parts


def test_reserved_and_separator_symbols_stay_inside_and_apart(tmp_path: Path) -> None:
    symbols = ["..", ".", "A/B", "A_B", "a\\b", "NUL", "CON", "global", "-x", "~", "AAA"]
    spec = RunSpec(data="synthetic:2,300,0.3,1", models=("naive",))
    jobs = plan_run(spec, symbols, tmp_path)
    dirs = [j.job_dir.relative_to(tmp_path) for j in jobs]
    assert len(set(dirs)) == len(dirs)
    for d in dirs:
        assert all(part not in ("", ".", "..") and "/" not in part and "\\" not in part
                   for part in d.parts), d


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=2, max_size=2, unique=True))
def test_two_different_names_never_share_a_component(names: list[str]) -> None:
    from causalcast.registry.names import path_component

    a, b = (path_component(n, "symbol") for n in names)
    assert a != b
    for part in (a, b):
        assert part not in (".", "..") and "/" not in part and "\\" not in part
        assert "\x00" not in part and 0 < len(part.encode()) <= 120


def test_a_symbol_named_global_never_shares_the_global_models_name_or_folder(
        tmp_path: Path) -> None:
    spec = RunSpec(data="synthetic:2,300,0.3,1", models=("naive",),
                   scopes=("global", "per-symbol"))
    jobs = plan_run(spec, ["global", "AAA"], tmp_path)
    assert len({j.name for j in jobs}) == len({j.job_dir for j in jobs}) == len(jobs) == 3
    assert "naive/global" in {j.name for j in jobs}  # the global model keeps its name
