"""The command lines a person types: options where they type them, one-line failures with
the documented exit codes, and the README's commands as pasted."""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bodycamd import cli, ctl
from bodycamd.control.client import CANDIDATES, Connection
from bodycamd.errors import ControlFailed
from tests.conftest import Daemon, write_config
from tests.test_control import wait_for_footage

ROOT = Path(__file__).resolve().parent.parent
BUSY = b'{"v":1,"id":null,"ok":false,"error":{"code":"busy","message":"more than 16"}}\n'


def test_options_before_or_after_the_command(tmp_path: Path) -> None:
    parser = cli.build_parser()
    config = str(tmp_path / "f.toml")
    for argv in (
        ["run", "--config", config, "--debug"],
        ["--debug", "run", "--config", config],
        ["--config", config, "--debug", "run"],
    ):
        args = parser.parse_args(argv)
        assert args.debug is True and args.config == Path(config), argv
    args = parser.parse_args(["--config", config, "audit", "verify"])
    assert args.config == Path(config)  # not overwritten by audit's own default
    assert "config" not in parser.parse_args(["audit", "verify"])  # the default comes later
    control = ctl.build_parser()
    for argv in (["status", "--json"], ["--json", "status"], ["sim", "dock", "--json"]):
        assert control.parse_args(argv).json is True, argv
    assert control.parse_args(["status", "--socket", "x.sock"]).socket == Path("x.sock")


@pytest.mark.parametrize(
    "argv", [["sim", "press", "5"], ["sim", "hold"], ["sim", "hold", "61"], ["sim", "hold", "x"]]
)
def test_sim_arguments_are_checked(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        ctl.build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("bodycamctl")


def test_help_pages_describe_arguments(capsys: Any) -> None:
    for argv, words in (
        (["sim", "hold", "--help"], ["how long, 0 to 60 seconds"]),
        (["login", "--help"], ["personnel number, 6-8 digits"]),
        (["sim", "--help"], ["press", "camera-fault", "make the camera fail"]),
    ):
        with pytest.raises(SystemExit):
            ctl.build_parser().parse_args(argv)
        out = capsys.readouterr().out
        assert all(word in out for word in words), (argv, out)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["keys", "show", "--help"])
    assert "--config" in capsys.readouterr().out


def test_missing_default_config_is_a_one_line_hint(
    capsys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the default path, pointed where nothing is installed (whatever this machine has)
    monkeypatch.setattr(cli, "DEFAULT_CONFIG_PATH", tmp_path / "etc" / "bodycamd.toml")
    for argv in (["keys", "show"], ["audit", "verify"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "pass --config FILE" in err, err


def test_pi_hardware_without_lgpio_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path).read_text().replace('"simulated"', '"pi"')
    path = tmp_path / "pi.toml"
    path.write_text(config)
    # sys.modules["lgpio"] = None: import lgpio fails as where it is not installed
    code = (
        "import sys; sys.modules['lgpio'] = None; from bodycamd.cli import main; "
        f"sys.exit(main(['run', '--config', {str(path)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.splitlines()[-1]
    # off a Pi the board model is the first thing missing; on a Pi without lgpio, lgpio is.
    # Either way: one line that says what is missing and what to do.
    assert last.startswith(
        (
            "bodycamd: cannot import lgpio, which the configured hardware needs",
            "bodycamd: gpio: cannot read the board model from /proc/device-tree/model",
        )
    ), last


def test_busy_and_close_is_one_line_exit_1(capsys: Any) -> None:
    """The daemon answered busy and hung up before the request was written: the write
    fails (EPIPE), the answer is still read, and that is exit 1, not a traceback."""
    ours, daemon = socket.socketpair()
    daemon.sendall(BUSY)
    daemon.close()
    connection = Connection.over(ours)
    answer = connection.request("status")
    connection.close()
    assert answer["error"]["code"] == "busy"
    args = ctl.build_parser().parse_args(["status"])
    assert ctl._report(args, answer, sys.stdout) == ctl.EXIT_FAILED
    assert capsys.readouterr().err == "bodycamctl: more than 16 (busy)\n"


def test_connection_reset_is_one_line() -> None:
    ours, daemon = socket.socketpair()
    ours.sendall(b"unread by the daemon\n")
    daemon.close()  # closed with unread data: the next read is ECONNRESET
    connection = Connection.over(ours)
    with pytest.raises(ControlFailed, match=r"^(lost the connection|bodycamd closed)"):
        connection.request("status")
    connection.close()


def test_unreachable_names_every_socket_tried(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BODYCAMD_SOCKET", raising=False)
    monkeypatch.chdir(tmp_path)
    assert ctl.main(["status"]) == ctl.EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for path in CANDIDATES:
        assert str(path) in err
    (tmp_path / "var" / "run").mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind("var/run/control.sock")  # exists, nobody listens
    stale.close()
    assert ctl.main(["status"]) == ctl.EXIT_UNREACHABLE
    assert "var/run/control.sock (Connection refused)" in capsys.readouterr().err


def test_readme_commands_parse_as_pasted() -> None:
    text = (ROOT / "README.md").read_text()
    joined = text.replace("\\\n", " ")
    lines = re.findall(r"^    (\.venv/bin/bodycam\S+ .*?)(?:\s{2,}#.*)?$", joined, re.MULTILINE)
    assert len(lines) >= 8
    for line in lines:
        assert "<" not in line, line
        program, *argv = shlex.split(line)
        parser = cli.build_parser() if program.endswith("bodycamd") else ctl.build_parser()
        parser.parse_args(argv)  # exits 2 on a usage error


def test_shift_with_options_after_the_command(daemon: Daemon, capsys: Any) -> None:
    sock = ["--socket", str(daemon.socket)]
    assert ctl.main(["login", "123456", *sock]) == 0
    assert ctl.main(["record", "start", *sock]) == 0
    wait_for_footage(daemon.socket, 4.5)
    assert ctl.main(["record", "stop", *sock]) == 0
    capsys.readouterr()
    assert ctl.main(["status", "--json", *sock]) == 0
    assert json.loads(capsys.readouterr().out)["result"]["state"]["officer"] == "123456"
    segments = sorted((daemon.state_dir / "ready").glob("*/*.seg"))
    assert len(segments) >= 2
    assert cli.main(["evidence", "inspect", *map(str, segments)]) == 0
    out = capsys.readouterr().out
    assert out.count("\nfile:") + out.startswith("file:") == len(segments)


def test_sim_press_reports_what_the_press_did(daemon: Daemon, capsys: Any) -> None:
    """Before: `sim press` while logged out said "simulated press", exit 0, and the refusal
    was only a WARNING in the daemon's log. Now the caller gets the refusal and its code."""
    sock = ["--socket", str(daemon.socket)]
    assert ctl.main([*sock, "sim", "press"]) == ctl.EXIT_REFUSED
    err = capsys.readouterr().err
    assert err.startswith("bodycamctl: the button's start was refused") and "(not_logged_in)" in err
    assert ctl.main([*sock, "login", "123456"]) == 0
    capsys.readouterr()
    assert ctl.main([*sock, "sim", "press"]) == 0
    assert capsys.readouterr().out == "press: recording started\n"
    assert ctl.main([*sock, "sim", "press"]) == 0
    assert capsys.readouterr().out.startswith("press: nothing happened")
    assert ctl.main([*sock, "sim", "hold", "3.2"]) == 0
    # within 0.5 s of the last press the hold's press is a double press: a marker, then stop
    assert capsys.readouterr().out in {
        "hold: recording stopped\n",
        "hold: marker added, recording stopped\n",
    }
    assert ctl.main([*sock, "--json", "sim", "press"]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == {"action": "press", "button": ["start"]}
    assert ctl.main([*sock, "sim", "hold", "3.2"]) == 0
