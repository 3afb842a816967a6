"""Every bad command-line input is one clear line on stderr and exit 2, never a traceback
(issue 12, item 5). Each case runs the real entry point, `causalcast.cli.main`, in-process."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from causalcast.cli import main


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out, err = capsys.readouterr()
    code = stop.value.code
    return (0 if code is None else code), out, err


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "BIN.csv").write_bytes(b"\x00\x01\xff\xfe\x80garbage")
    (tmp_path / "EMPTY.csv").write_bytes(b"")
    (tmp_path / "BAD.parquet").write_bytes(b"PAR1 not really parquet")
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "q.csv").write_text("spot,strike,tau,sigma\n100,100,1,0.2\n")
    return tmp_path


# (argv with {tmp} for the fixture folder, text the one line must contain)
CASES = [
    (["train", "--data", "synthetic:abc", "--out", "{tmp}/o", "--models", "naive"],
     "numbers expected in 'synthetic:abc'"),
    (["train", "--data", "synthetic:2,600,0.3,1,5", "--out", "{tmp}/o", "--models", "naive"],
     "N_SYMBOLS[,BARS[,STRENGTH[,SEED]]]"),
    (["train", "--data", "synthetic:1,300", "--out", "{tmp}/o", "--models", ""],
     "at least one model"),
    (["train", "--data", "synthetic:1,300", "--out", "{tmp}/o", "--models", " , "],
     "at least one model"),
    (["train", "--data", "synthetic:1,300", "--models", "naive", "--run-id", "../../x",
      "--home", "{tmp}/h"], "--run-id"),
    (["train", "--data", "synthetic:1,300", "--models", "naive", "--home", "/proc/x"],
     "/proc/x"),
    (["train", "--data", "{tmp}/BIN.csv", "--out", "{tmp}/o", "--models", "naive"],
     "BIN.csv"),
    (["synth", "--out", "/dev/null", "--symbols", "1", "--bars", "100"], "/dev/null"),
    (["synth", "--out", "{tmp}/s", "--strength", "inf", "--symbols", "1", "--bars", "100"],
     "strength"),
    (["synth", "--out", "{tmp}/s", "--strength", "nan", "--symbols", "1", "--bars", "100"],
     "--strength"),
    (["audit", "--data", "sample:msft", "--config", "{tmp}/a_folder"], "a_folder"),
    (["audit", "--data", "sample:msft", "--config", "{tmp}/absent.toml"], "absent.toml"),
    (["options", "batch", "{tmp}/q.csv", "{tmp}/a_file/out.csv", "--method", "closed"],
     "a_file/out.csv"),
    (["options", "batch", "{tmp}/absent.csv", "{tmp}/out.csv", "--method", "closed"],
     "absent.csv"),
    (["data", "validate", "--data", "{tmp}/BIN.csv"], "BIN.csv"),
    (["data", "validate", "--data", "{tmp}/EMPTY.csv"], "EMPTY.csv"),
    (["data", "validate", "--data", "{tmp}/BAD.parquet"], "BAD.parquet"),
    (["serve", "--port", "99999"], "--port"),
    (["serve", "--port", "0"], "--port"),
    (["train", "--no-such-option"], "--no-such-option"),
    (["synth", "--symbols", "many", "--out", "{tmp}/s"], "--symbols"),
]


@pytest.mark.parametrize(("argv", "expected"), CASES,
                         ids=[" ".join(a[:2]) + f" #{i}" for i, (a, _) in enumerate(CASES)])
def test_bad_input_is_one_line_and_exit_2(argv, expected, files, capsys):
    argv = [a.replace("{tmp}", str(files)) for a in argv]
    before = sorted(p.name for p in files.iterdir())
    code, _, err = run_cli(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert expected.replace("{tmp}", str(files)) in lines[0]
    # nothing the failing command could have left behind (no half-written output)
    assert sorted(p.name for p in files.iterdir()) == before


def test_non_finite_strength_is_refused_in_python_too():
    from causalcast.data.synthetic import make_universe

    for bad in (math.inf, math.nan, -0.1):
        with pytest.raises(ValueError, match="strength"):
            make_universe(1, 50, bad)


def test_error_text_is_printed_verbatim(capsys):
    import typer

    from causalcast.cli.common import fail

    with pytest.raises(typer.Exit):
        fail("needs pip install 'causalcast[bench]' and [bold]x[/bold]")
    err = capsys.readouterr().err
    assert "'causalcast[bench]'" in err and "[bold]x[/bold]" in err


def test_output_files_are_group_readable(tmp_path):
    from causalcast.io import atomic_write_text

    mask = os.umask(0o022)
    os.umask(mask)
    path = atomic_write_text(tmp_path / "out.txt", "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_tables_to_a_pipe_never_cut_numbers(monkeypatch, capsys):
    """Captured stdout is not a terminal: even with COLUMNS=30 the table keeps whole rows."""
    monkeypatch.setenv("COLUMNS", "30")
    code, out, err = run_cli(["options", "price", "--spot", "100", "--strike", "105.123",
                              "--tau", "0.5", "--sigma", "0.2", "--kind", "both",
                              "--method", "closed"], capsys)
    assert code == 0, err
    assert "…" not in out
    rows = [line for line in out.splitlines() if "closed" in line]
    assert len(rows) == 2 and all(len(r.split("│")) == 10 for r in rows), out
    assert all(cell.strip() for r in rows for cell in r.split("│")[1:-1])
