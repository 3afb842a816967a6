"""Issue 11 item 5: one configuration (pydantic-settings). Files, CAUSALCAST_* environment
variables (nested with ``__``) and command-line overrides are all honoured, in a documented
order, and `causalcast config show` says where each effective value came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from causalcast.cli import main
from causalcast.config import load_settings, settings_sources


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out, err = capsys.readouterr()
    return (stop.value.code or 0), out, err


def test_nested_environment_variable_is_honoured():
    s = load_settings(environ={"CAUSALCAST_FEATURES__LOOKBACK": "20",
                               "CAUSALCAST_FEATURES__HORIZONS": "10,1",
                               "CAUSALCAST_API_KEY": "other components read this"})
    assert s.features.lookback == 20 and s.features.horizons == (1, 10)
    assert load_settings(environ={"CAUSALCAST_FEATURES__HORIZONS": "[5, 2]"}
                         ).features.horizons == (2, 5)


def test_precedence_default_file_environment_command_line(tmp_path: Path):
    toml = tmp_path / "s.toml"
    toml.write_text("seed = 7\n[features]\nlookback = 30\n[split]\nembargo = 9\n")
    env = {"CAUSALCAST_FEATURES__LOOKBACK": "20", "CAUSALCAST_CONFIG": str(toml)}
    settings, sources = settings_sources(overrides={"seed": 1}, environ=env)
    assert (settings.seed, settings.features.lookback, settings.split.embargo) == (1, 20, 9)
    assert sources["seed"] == {"value": 1, "source": "command line"}
    assert sources["features.lookback"] == {"value": 20,
                                            "source": "env CAUSALCAST_FEATURES__LOOKBACK"}
    assert sources["split.embargo"] == {"value": 9, "source": f"file {toml}"}
    assert sources["split.n_folds"] == {"value": 5, "source": "default"}


def test_a_misspelt_nested_variable_is_refused_by_name():
    with pytest.raises(ValidationError, match="lokback"):
        load_settings(environ={"CAUSALCAST_FEATURES__LOKBACK": "20"})


def test_config_show_json_names_every_source(tmp_path, monkeypatch, capsys):
    toml = tmp_path / "s.toml"
    toml.write_text("[split]\nembargo = 9\n")
    monkeypatch.setenv("CAUSALCAST_FEATURES__LOOKBACK", "20")
    code, out, err = run_cli(["config", "show", "--json", "--config", str(toml)], capsys)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["features.lookback"]["value"] == 20
    assert shown["features.lookback"]["source"] == "env CAUSALCAST_FEATURES__LOOKBACK"
    assert shown["split.embargo"]["source"] == f"file {toml}"
    code, out, _ = run_cli(["config", "show"], capsys)
    assert code == 0 and "CAUSALCAST_FEATURES__LOOKBACK" in out.replace("\n", "")


def test_config_show_bad_file_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("[features\n")
    code, _, err = run_cli(["config", "show", "--config", str(tmp_path / "bad.toml")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "bad.toml" in err


@pytest.mark.slow
def test_train_honours_the_environment_and_the_flag_wins(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAUSALCAST_FEATURES__LOOKBACK", "20")
    for out, flags, expected in ((tmp_path / "env", [], 20),
                                 (tmp_path / "flag", ["--lookback", "24"], 24)):
        code, _, err = run_cli(["train", "--data", "synthetic:1,300", "--models", "naive",
                                "--out", str(out), "--quiet", "--json", *flags], capsys)
        assert code == 0, err
        meta = json.loads(next(out.rglob("model.json")).read_text())
        assert json.dumps(meta).count(f'"lookback": {expected}') >= 1
        assert '"lookback": 60' not in json.dumps(meta)
