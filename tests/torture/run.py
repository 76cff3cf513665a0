"""`make torture`: kill the daemon while it records, at random moments and at every fsync of a
segment roll, then check every recording as a court would (`bodycamd evidence verify`,
`bodycamd audit verify`) and print what was found:

    kills, segments, verdicts by kind, worst footage lost per kill (target <= 1 s), and
    anything unexplained (target 0: a chain fault the device did not sign for, a file in
    quarantine, a failed verify).

Footage lost by a kill = the kill's wall time minus the end the recovered recording carries
(a torn footer's end is its last checkpoint's wall time; a placeholder's is the previous
segment's end). Usage:
    .venv/bin/python -m tests.torture.run [--kills 30] [--seed 2026] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bodycamd.evidence.chain import ChainLink, assess_chain, group_by_recording
from bodycamd.evidence.reader import scan_segment
from tests.conftest import NotifySocket, control_request, write_config

SEGMENT_SECONDS = 2.0


@dataclass
class Tally:
    kills: list[tuple[str, int]] = field(default_factory=list)  # (how, wall ns of the kill)
    lost_s: list[float] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)
    roll_fsyncs: int = 0
    before_first_segment: int = 0  # killed before the first keyframe's segment was on flash


class Run:
    """One daemon life: start (its start-up recovery runs), log in, record."""

    def __init__(
        self, work: Path, notify: NotifySocket, roll_point: int = -1, *, record: bool = True
    ) -> None:
        self.mark = work / "roll-passed"
        self.mark.unlink(missing_ok=True)
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(notify.path),
            "TORTURE_ROLL_POINT": str(roll_point),
            "TORTURE_MARK": str(self.mark),
        }
        config = work / "bodycamd.toml"
        self.log = (work / "daemon.log").open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.torture.launcher", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        notify.wait_for("READY")
        self.control = work / "run" / "control.sock"
        self.recording = ""
        if record:
            self.record()

    def record(self) -> None:
        assert control_request(self.control, "login", personnel_number="123456")["ok"]
        answer = control_request(self.control, "record_start")
        assert answer["ok"], answer
        self.recording = str(answer["result"]["recording_id"])

    def kill(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.log.close()
        return time.time_ns()

    def wait_for_self_kill(self, timeout: float) -> int | None:
        """The wall time the daemon died by its own hook, or None if the roll passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                return time.time_ns()
            if self.mark.exists():
                return None
            time.sleep(0.01)
        raise TimeoutError("the daemon neither rolled nor died")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.log.close()
        if code != 0:
            raise RuntimeError(f"the daemon exited {code}; see daemon.log")


def recording_end(state: Path, recording: str) -> tuple[int | None, int]:
    """End wall time (ns) of the recording as recovered, and its segment count (None, 0
    when the kill came before its first segment reached flash)."""
    verdicts = [scan_segment(path) for path in sorted(state.glob(f"ready/{recording}/*.seg"))]
    if not verdicts:
        return None, 0
    last = max(verdicts, key=lambda v: v.header.segment_index)
    return last.end_wall_ns, len(verdicts)


def torture(work: Path, kills: int, seed: int, points: list[int] | None = None) -> int:
    """`points`: only these roll crash points (default: every one, until a roll outlives
    the point asked for)."""
    rng = random.Random(seed)
    write_config(work)  # 2 s segments, 5 s pre-event, simulated hardware
    state = work / "state"
    notify = NotifySocket(work / "notify.sock")
    try:
        return _torture(work, state, notify, rng, kills, points)
    finally:
        notify.sock.close()


def _torture(
    work: Path,
    state: Path,
    notify: NotifySocket,
    rng: random.Random,
    kills: int,
    points: list[int] | None,
) -> int:
    tally = Tally()

    def after_kill(how: str, killed: Run, when: int) -> Run:
        """The next start recovers what the kill left; measure it before recording again."""
        run = Run(work, notify, record=False)
        end, segments = recording_end(state, killed.recording)
        tally.kills.append((how, when))
        if end is None:
            tally.before_first_segment += 1
            print(f"  {how}: killed before the recording's first segment was on flash")
        else:
            tally.lost_s.append((when - end) / 1e9)
            print(f"  {how}: {segments} segment(s), lost {(when - end) / 1e9:.2f} s")
        run.record()
        return run

    run = Run(work, notify)
    for number in range(kills):
        time.sleep(rng.uniform(0.2, 2.5))  # the power goes at a random moment
        when = run.kill()
        run = after_kill(f"random kill {number + 1}", run, when)
    for point in points if points is not None else range(1000):
        run.kill()  # a fresh recording for each roll point
        run = Run(work, notify, roll_point=point)
        when = run.wait_for_self_kill(SEGMENT_SECONDS + 30)
        if when is None:
            tally.roll_fsyncs = point // 2
            break
        run = after_kill(f"roll fsync point {point}", run, when)
    run.stop()
    return report(work, state, tally)


def report(work: Path, state: Path, tally: Tally) -> int:
    files = sorted(state.glob("ready/*/*.seg"))
    links, statuses = [], Counter()
    for path in files:
        verdict = scan_segment(path)
        statuses["placeholder" if verdict.placeholder else verdict.status] += 1
        links.append(ChainLink(str(path), verdict))
    endings, faults = Counter(), Counter()
    for group in group_by_recording(links).values():
        chain = assess_chain(group)
        endings[chain.ending] += 1
        faults.update(fault.kind for fault in chain.faults)
        tally.unexplained += [f"{chain.recording_id}: {f.message}" for f in chain.unexplained]
    tally.unexplained += [f"quarantined: {p}" for p in state.glob("quarantine/*") if p.is_file()]
    config = str(work / "bodycamd.toml")
    verify = subprocess.run(
        [sys.executable, "-m", "bodycamd.cli", "evidence", "verify", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    audit = subprocess.run(
        [sys.executable, "-m", "bodycamd.cli", "audit", "verify", "--config", config],
        capture_output=True,
        text=True,
        check=False,
    )
    if verify.returncode:
        tally.unexplained.append("evidence verify failed: " + verify.stdout[-500:])
    if audit.returncode:
        tally.unexplained.append("audit verify failed: " + (audit.stdout + audit.stderr)[-500:])
    kinds = Counter(how.split(" ")[0] for how, _ in tally.kills)
    worst = max(tally.lost_s, default=0.0)
    print(
        f"kills:        {len(tally.kills)} ({kinds['random']} at random moments, "
        f"{kinds['roll']} at the {tally.roll_fsyncs} fsyncs of a roll, before and after each)"
    )
    print(
        f"segments:     {len(files)} ({', '.join(f'{v} {k}' for k, v in sorted(statuses.items()))})"
    )
    print(
        f"recordings:   {sum(endings.values())} ending "
        + ", ".join(f"{k}: {v}" for k, v in sorted(endings.items()))
    )
    print("chain faults: " + (", ".join(f"{k}: {v}" for k, v in sorted(faults.items())) or "none"))
    if tally.lost_s:
        print(
            f"footage lost: worst {worst:.2f} s per kill (target <= 1 s), median "
            f"{statistics.median(tally.lost_s):.2f} s; {tally.before_first_segment} kill(s) "
            "came before the recording's first segment (nothing recorded yet to lose)"
        )
    print(f"evidence verify exit {verify.returncode}, audit verify exit {audit.returncode}")
    print(f"unexplained:  {len(tally.unexplained)} (target 0)")
    for line in tally.unexplained:
        print(f"  {line}")
    return 1 if tally.unexplained else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30, help="random kills (default 30)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument(
        "--points", help="only these roll crash points, comma-separated (default: all)"
    )
    args = parser.parse_args(argv)
    points = [int(p) for p in args.points.split(",")] if args.points else None
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return torture(args.keep, args.kills, args.seed, points)
    with tempfile.TemporaryDirectory(prefix="bodycamd-torture-") as work:
        return torture(Path(work), args.kills, args.seed, points)


if __name__ == "__main__":
    sys.exit(main())
