"""CLI conventions (issue 11, item 6): `--json` on every command, documented in docs/cli.md;
one way to name the bars (`--data`), with one help text for `--data`, `--store` and `--chain`.

The commands are found by walking the Typer app, so a new command without `--json` (or
without a row in the docs table) fails here without editing this file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer

from causalcast.cli import app, main
from causalcast.cli.sources import CHAIN_FORMS, DATA_FORMS, STORE_FORMS

ROOT = Path(__file__).resolve().parents[2]

#: Commands that are documented as having no `--json`, with the reason. None today: the
#: long-running ones (`serve`, `watch`, `retrain --schedule`) print their startup object.
NO_JSON: dict[str, str] = {}


def leaf_commands() -> dict[str, object]:
    leaves: dict[str, object] = {}

    def walk(command, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if not subs:
            leaves[" ".join(path)] = command
        for name, sub in sorted((subs or {}).items()):
            if not getattr(sub, "hidden", False):
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return leaves


LEAVES = leaf_commands()


def documented() -> dict[str, tuple[str, list[str]]]:
    """docs/cli.md's "What --json prints" table: command -> (kind, the keys it names first)."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("## What `--json` prints", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"^\| `([a-z -]+)` \| (object|list|mapping|one line)\b(.*)\|$", line)
        if m:
            # the keys before the first "(" or ";": the ones always present
            head = re.split(r"[(;]", m.group(3), maxsplit=1)[0]
            rows[m.group(1)] = (m.group(2), re.findall(r"`([A-Za-z_]+)`", head))
    return rows


DOCS = documented()


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out, err = capsys.readouterr()
    return (stop.value.code or 0), out, err


def test_the_walk_and_the_docs_table_agree():
    assert len(LEAVES) > 35 and {"serve", "watch", "data compact", "monitor prune"} <= set(LEAVES)
    assert set(DOCS) == set(LEAVES) - set(NO_JSON), "docs/cli.md's --json table is out of date"


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_every_command_accepts_json(name):
    if name in NO_JSON:
        pytest.skip(NO_JSON[name])
    options = {opt: p for p in LEAVES[name].params for opt in getattr(p, "opts", [])}
    assert "--json" in options, f"`causalcast {name}` has no --json"
    flag = options["--json"]
    assert flag.is_flag and not flag.hidden and flag.default is False


def test_every_input_option_explains_its_forms_the_same_way():
    """--data, --store and --chain end their help with the one shared list of forms."""
    forms = {"--data": DATA_FORMS, "--store": STORE_FORMS, "--chain": CHAIN_FORMS}
    seen = {opt: [] for opt in forms}
    for name, command in LEAVES.items():
        for p in command.params:
            for opt in set(getattr(p, "opts", [])) & set(forms):
                assert (p.help or "").endswith(f"Forms: {forms[opt]}."), (name, opt, p.help)
                seen[opt].append(name)
    bar_readers = {"train", "predict", "evaluate", "report", "tune", "audit", "features",
                   "data validate", "serve", "monitor score", "monitor status", "retrain",
                   "watch"}
    assert bar_readers <= set(seen["--data"])
    assert {"data import", "options chain list", "serve"} <= set(seen["--store"])
    assert {"options iv", "options surface", "options strategy"} <= set(seen["--chain"])


def _keys_of(kind: str, obj) -> list[set[str]]:
    """The key sets a documented row speaks of: the object, each list item, each value."""
    if kind in ("object", "one line"):
        return [set(obj)]
    if kind == "list":
        return [set(item) for item in obj]
    return [set(value) for value in obj.values()]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from causalcast.registry import Registry

    Registry.open(tmp_path / "home", create=True).close()
    (tmp_path / "q.csv").write_text("spot,strike,tau,sigma\n100,100,1,0.2\n")
    return tmp_path


# (command, argv after the command, a check on the parsed output beyond the documented keys)
REPRESENTATIVE = [
    ("config show", [], lambda o: o["features.lookback"]["source"] == "default"),
    ("synth", ["--out", "syn", "--symbols", "2", "--bars", "300"],
     lambda o: o["symbols"] == ["SYN000", "SYN001"]),
    ("data validate", ["--data", "synthetic:2,300", "--lookback", "10", "--horizons", "1"],
     lambda o: o["ok"] and o["symbols"]["SYN001"]["n_bars"] == 300),
    ("features", ["--data", "synthetic:1,300", "--lookback", "10", "--horizons", "1"],
     lambda o: o["SYN000"]["bars"] == 300),
    ("monitor prune", ["--home", "home", "--keep-days", "1"], lambda o: o["deleted"] == 0),
    ("options price", ["--spot", "100", "--strike", "100", "--tau", "1", "--sigma", "0.2",
                       "--method", "closed"], lambda o: 7.9 < o["price"] < 8.0),
    ("options batch", ["q.csv", "out.csv", "--method", "closed"], lambda o: o["rows"] == 1),
]


@pytest.mark.parametrize(("name", "args", "check"), REPRESENTATIVE,
                         ids=[r[0] for r in REPRESENTATIVE])
def test_json_output_parses_and_has_the_documented_keys(name, args, check, workdir, capsys):
    code, out, err = run_cli([*name.split(), *args, "--json"], capsys)
    assert code == 0, err
    parsed = json.loads(out)   # stdout holds the JSON and nothing else
    kind, keys = DOCS[name]
    assert keys, name
    for present in _keys_of(kind, parsed):
        assert set(keys) <= present, (name, set(keys) - present)
    assert check(parsed)


def test_store_compact_json(workdir, capsys):
    code, out, err = run_cli(["synth", "--out", "syn", "--symbols", "1", "--bars", "50"],
                             capsys)
    assert code == 0, err
    lines = (workdir / "syn" / "SYN000.csv").read_text().splitlines(keepends=True)
    (workdir / "first").mkdir()
    (workdir / "first" / "SYN000.csv").write_text("".join(lines[:31]))
    for folder in ("first", "syn"):    # two appends: two files to merge
        code, out, err = run_cli(["data", "import", folder, "--store", "st", "--json"], capsys)
        assert code == 0, err
    imported = json.loads(out)
    code, out, err = run_cli(["data", "compact", "--store", "st", "--json"], capsys)
    assert code == 0, err
    compacted = json.loads(out)
    assert set(DOCS["data compact"][1]) <= set(compacted)
    assert compacted["store"] == str((workdir / "st").resolve())
    assert compacted["version"] > imported["version"]


def test_deprecated_spellings_still_work_with_one_note(workdir, capsys):
    from causalcast.cli.sources import data_source

    # --synthetic N,BARS took its seed from --seed; the note names the --data equivalent
    assert data_source(None, "2,400", 3) == "synthetic:2,400,0.325,3"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--data synthetic:2,400,0.325,3" in err
    code, _, err = run_cli(["synth", "--out", "syn", "--symbols", "1", "--bars", "300"],
                           capsys)
    assert code == 0, err
    old = run_cli(["data", "validate", "syn", "--lookback", "10", "--json"], capsys)
    new = run_cli(["data", "validate", "--data", "syn", "--lookback", "10", "--json"], capsys)
    assert old[0] == new[0] == 0 and old[1] == new[1]
    assert old[2].startswith("deprecated:") and old[2].count("\n") == 1 and new[2] == ""
    code, _, err = run_cli(["data", "validate", "syn", "--data", "syn"], capsys)
    assert code == 2 and "give only --data" in err
    code, _, err = run_cli(["predict", "--data", "syn", "--synthetic", "1"], capsys)
    assert code == 2 and err.startswith("error: --data and the deprecated --synthetic")


@pytest.mark.parametrize("argv", [["predict", "--model", "runs"], ["data", "validate"],
                                  ["audit"]])
def test_missing_data_is_one_line_naming_the_forms(argv, workdir, capsys):
    code, out, err = run_cli([*argv, "--json"], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--data" in err
