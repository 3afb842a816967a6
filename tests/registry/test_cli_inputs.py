"""Issue 12 item 5 for the registry and its home: bad ids and homes are one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from causalcast.cli import app

runner = CliRunner()
SYNTHETIC = ["--data", "synthetic:2,300,0.3,1", "--models", "naive"]


def _one_line_error(args: list[str], *words: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    joined = result.output.replace("\n", "")
    assert all(w in joined for w in words), result.output


def test_a_run_id_that_is_a_path_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "deep" / "home"
    # the error names the flag the user typed and the value refused
    _one_line_error(["train", *SYNTHETIC, "--run-id", "../../x", "--home", str(home)],
                    "--run-id", "'../../x'")
    _one_line_error(["train", *SYNTHETIC, "--run-id", "a/../../b", "--home", str(home)],
                    "--run-id")
    assert not (tmp_path / "x").exists() and not (tmp_path / "deep" / "x").exists()
    assert not (home / "runs").exists()


@pytest.mark.parametrize("command", [["train", *SYNTHETIC], ["run"], ["registry", "list"],
                                     ["registry", "verify"], ["registry", "gc"],
                                     ["registry", "backup", "/tmp/never-written"]])
def test_a_home_that_cannot_exist_is_one_line(command: list[str]) -> None:
    _one_line_error([*command, "--home", "/proc/x"], "/proc/x")
    assert not Path("/tmp/never-written").exists()


def test_a_home_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "a-file"
    home.write_text("not a folder")
    _one_line_error(["train", *SYNTHETIC, "--home", str(home)], str(home))
    _one_line_error(["registry", "list", "--home", str(home)], str(home))
    assert home.read_text() == "not a folder"
