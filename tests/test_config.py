from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from bodycamd.cli import main
from bodycamd.config import (
    Config,
    DaemonConfig,
    all_keys,
    example_toml,
    load_config,
    parse_config,
    reference_rows,
    to_toml,
)
from bodycamd.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def parse(text: str, path: Path = Path("/etc/bodycamd/bodycamd.toml")) -> Config:
    return parse_config(text.encode(), path)


def test_defaults_when_file_is_empty() -> None:
    assert parse("") == Config()


def test_every_key_round_trips_through_toml(tmp_path: Path) -> None:
    original = parse(
        'hardware = "simulated"\n[device]\nname = "cam-7"\nstate_dir = "/srv/state"\n'
        '[evidence]\ndevelopment_keys = true\n[daemon]\nstop_timeout = 2.5\nlog_level = "debug"\n'
    )
    again = parse(to_toml(original))
    assert again == original
    rendered = tomllib.loads(to_toml(Config()))
    flat = {f"{s}.{k}": v for s, t in rendered.items() if isinstance(t, dict) for k, v in t.items()}
    flat.update({k: v for k, v in rendered.items() if not isinstance(v, dict)})
    assert sorted(flat) == sorted(all_keys())


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    config = parse('[device]\nstate_dir = "var/state"\n', tmp_path / "c.toml")
    assert config.device.state_dir == tmp_path / "var" / "state"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[daemon]\nstop_timeout = "ten"\n',
            '/etc/bodycamd/bodycamd.toml: daemon.stop_timeout: expected a number, got string "ten"',
        ),
        (
            "[daemon]\nstop_timeout = nan\n",
            "/etc/bodycamd/bodycamd.toml: daemon.stop_timeout: expected a finite number, "
            "got number nan",
        ),
        (
            "[recorder]\ndurability_interval = inf\n",
            "/etc/bodycamd/bodycamd.toml: recorder.durability_interval: expected a finite "
            "number, got number inf",
        ),
        (
            "[daemon]\nstop_timeout = 0\n",
            "/etc/bodycamd/bodycamd.toml: daemon.stop_timeout: 0 is out of range; "
            "expected 0.1 to 600.0",
        ),
        (
            "[devise]\nname = 'x'\n",
            "/etc/bodycamd/bodycamd.toml: devise.name: unknown key; did you mean device.name?",
        ),
        (
            "[daemon]\nstop_timout = 3\n",
            "/etc/bodycamd/bodycamd.toml: daemon.stop_timout: unknown key; "
            "did you mean daemon.stop_timeout?",
        ),
        (
            "[evidnce]\npublic_key = '/x'\n",
            "/etc/bodycamd/bodycamd.toml: evidnce.public_key: unknown key; "
            "did you mean evidence.public_key?",
        ),
        (
            'hardware = "raspberry"\n',
            '/etc/bodycamd/bodycamd.toml: hardware: expected "pi" or "simulated", '
            'got string "raspberry"',
        ),
        (
            "[evidence]\ndevelopment_keys = 1\n",
            "/etc/bodycamd/bodycamd.toml: evidence.development_keys: expected true or false, "
            "got integer 1",
        ),
        (
            'device = "x"\n',
            '/etc/bodycamd/bodycamd.toml: device: expected a [device] table, got string "x"',
        ),
        (
            "[daemon\nstop_timeout = 3\n",
            "/etc/bodycamd/bodycamd.toml: TOML syntax error: Expected ']' at the end of a "
            "table declaration (at line 1, column 8)",
        ),
    ],
)
def test_bad_input_gets_one_exact_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_misspelt_empty_section_is_suggested() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^/etc/bodycamd/bodycamd.toml: deamon: unknown key; "
        r"did you mean daemon\?$",
    ):
        parse("[deamon]\n")


def test_unknown_nested_key_suggests_across_sections() -> None:
    with pytest.raises(ConfigError, match=r"did you mean daemon\.log_level\?"):
        parse("[device]\nlog_level = 'info'\n")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read config: No such file"):
        load_config(tmp_path / "missing.toml")


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().daemon.stop_timeout = 3  # type: ignore[misc]
    assert DaemonConfig().stop_timeout == 10.0


def test_example_file_documents_every_key_with_its_default() -> None:
    example = ROOT / "config" / "bodycamd.example.toml"
    text = example.read_text()
    assert text == example_toml()
    uncommented = "\n".join(re.sub(r"^# ?(?=\w+ = )", "", line) for line in text.splitlines())
    assert parse(uncommented, example) == Config()
    for key in all_keys():
        assert f"{key.rsplit('.', 1)[-1]} = " in text, key


def test_configuration_doc_table_is_generated_from_the_schema() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text().splitlines()
    table = [line for line in doc if line.startswith("|")]
    assert table == reference_rows()
    assert len(table) == len(all_keys()) + 2


def test_check_config_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text('hardware = "simulated"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text("[recordr]\nsegment_seconds = 60\n")
    assert main(["check-config", str(good)]) == 0
    assert "good.toml: OK" in capsys.readouterr().out
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"bodycamd: {bad}: recordr.segment_seconds: unknown key; "
        "did you mean recorder.segment_seconds?\n"
    )
    assert err.count("\n") == 1


def test_check_config_show_prints_the_effective_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('hardware = "simulated"\n[recorder]\nsegment_seconds = 30.0\n')
    assert main(["check-config", "--show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert parse(shown, path) == parse_config(path.read_bytes(), path)
    assert "segment_seconds = 30.0" in shown and 'quota = "90%"' in shown


def test_bad_regex_and_size_values_are_named() -> None:
    with pytest.raises(ConfigError, match=r"session\.personnel_pattern: not a valid regular"):
        parse('[session]\npersonnel_pattern = "[0-9"\n')
    with pytest.raises(ConfigError, match=r'storage\.quota: expected a size like "90%"'):
        parse('[storage]\nquota = "lots"\n')
    with pytest.raises(ConfigError, match=r"storage\.quota: expected a percentage above 0"):
        parse('[storage]\nquota = "150%"\n')


def test_dock_settings_moved_out_of_gpio_are_refused_naming_the_new_key() -> None:
    with pytest.raises(ConfigError) as refused:
        parse('[gpio]\ndock_endpoint = "ingest.local:443"\n')
    message = str(refused.value)
    assert message.endswith(
        "gpio.dock_endpoint: moved; write it as endpoint in the [dock] section (dock.endpoint)"
    )
    assert "\n" not in message
    config = parse('[dock]\nsource = "endpoint"\nendpoint = "ingest.local:443"\n')
    assert (config.dock.source, config.dock.endpoint) == ("endpoint", "ingest.local:443")
