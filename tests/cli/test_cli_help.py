"""`--help` and `-h` of every command and group answer (exit 0, usage on stdout), found by
walking the Typer app, so a new command is covered without editing this file."""

from __future__ import annotations

import re

import pytest
import typer

from causalcast.cli import app, main


def command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command, path: list[str]) -> None:
        paths.append(path)
        for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
            if not getattr(sub, "hidden", False):
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


PATHS = command_paths()


def test_the_walk_finds_the_commands():
    names = {" ".join(p) for p in PATHS}
    assert {"train", "serve", "config show", "registry list", "options price",
            "data import"} <= names
    assert len(PATHS) > 30


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "causalcast" for p in PATHS])
def test_help_of_every_command(path, capsys):
    for flag in ("--help", "-h"):
        with pytest.raises(SystemExit) as stop:
            main([*path, flag])
        out, err = capsys.readouterr()
        assert (stop.value.code or 0) == 0, err
        assert "Usage: causalcast" in out and " ".join(["causalcast", *path]) in out
        # boolean flags take no value placeholder (`--json`, not `--json <bool>`); typer
        # gives its own --help one, which is left as typer draws it
        ours = "\n".join(line for line in out.splitlines() if "--help" not in line)
        assert not re.search(r"<bool>|\bBOOLEAN\b", ours), out


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert (stop.value.code or 0) == 0
    assert capsys.readouterr().out.strip() == f"causalcast {version('causalcast')}"
