"""Where a full `rasa train` spends its time: seconds per graph node.

Trains from scratch (an empty, temporary Rasa cache, so nothing is reused) with
`--debug`, and reads Rasa's own graph log: each node logs "running" before its
function and its hooks log "on_after_node" after it, so the gap is that node's
time. Prints the nodes sorted by time, the whole wall time and the peak
resident memory of the training process.

    .venv/bin/python bench/train_profile.py                      # config.yml as scripts/train.sh uses it
    .venv/bin/python bench/train_profile.py --config other.yml --out build/bench/other.tar.gz
    .venv/bin/python bench/train_profile.py --json build/bench/train_profile.json

Then `bench/nlu_eval.py --model <out>` gives the held-out accuracy of what was trained.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bot.fingerprint import write_training_config  # noqa: E402

TS = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d+)?)"
LINE = re.compile(TS + r" .*?Node '([^']+)' running '([^']+)'")
AFTER = re.compile(TS + r" .*?on_after_node' running for node '([^']+)'")


def stamp(text: str) -> float:
    whole, _, fraction = text.replace(",", ".").partition(".")
    return datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").timestamp() + float("0." + (fraction or "0"))


def node_times(log: str) -> dict[str, dict]:
    """{node: {"fn": Class.fn, "s": seconds}} from a `rasa train --debug` log."""
    started: dict[str, tuple[float, str]] = {}
    out: dict[str, dict] = {}
    for line in log.splitlines():
        m = LINE.match(line)
        if m:
            started[m.group(2)] = (stamp(m.group(1)), m.group(3))
            continue
        m = AFTER.match(line)
        if m and m.group(2) in started and m.group(2) not in out:
            t0, fn = started[m.group(2)]
            out[m.group(2)] = {"fn": fn, "s": stamp(m.group(1)) - t0}
    return out


# Rasa's own log lines that open each phase of `rasa train`, in order.
PHASES = [("reading and validating the domain and data", "Started validating domain and training data"),
          ("fingerprinting the graph (reads the data again)", "Running the train graph in fingerprint mode"),
          ("running the components that changed", "Running the pruned train graph with real node execution"),
          ("packing the model", "Start to created model package"),
          (None, "Model package created")]


def phase_times(log: str) -> list[tuple[str, float]]:
    """Seconds of each phase, from the timestamps of the lines that open them."""
    at: dict[str, float] = {}
    for line in log.splitlines():
        m = re.match(TS, line)
        if not m:
            continue
        for _, marker in PHASES:
            if marker in line and marker not in at:
                at[marker] = stamp(m.group(1))
    out = []
    for (name, marker), (_, following) in zip(PHASES, PHASES[1:]):
        if marker in at and following in at:
            out.append((name, at[following] - at[marker]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config.yml")
    ap.add_argument("--out", default="build/bench/profiled.tar.gz", help="where the trained model goes")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Rasa logs through coloredlogs; its date format then carries milliseconds.
    env = dict(os.environ, RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="3",
               COLOREDLOGS_DATE_FORMAT="%Y-%m-%d %H:%M:%S.%f")
    subprocess.run([sys.executable, "-m", "bot.build"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="train-profile-") as tmp:
        config = Path(tmp) / "config.yml"
        write_training_config(ROOT / args.config, config)
        env["RASA_CACHE_DIRECTORY"] = str(Path(tmp) / "cache")
        cmd = [str(ROOT / ".venv/bin/rasa"), "train", "--config", str(config), "--domain", "domain.yml",
               "--data", "data", "--out", str(out.parent), "--fixed-model-name", out.name.replace(".tar.gz", ""),
               "--debug"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        return proc.returncode
    log = proc.stdout + "\n" + proc.stderr
    out.with_suffix(".log").write_text(log, encoding="utf-8")
    times = node_times(log)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    load = os.getloadavg()[0]
    print(f"config {args.config}: rasa train {wall:.0f} s wall, peak RSS {peak_mib:.0f} MiB, "
          f"load average {load:.1f} on {os.cpu_count()} cores at the end")
    phases = phase_times(log)
    print("phases:")
    for name, seconds in phases:
        print(f"  {seconds:7.1f} s  {100 * seconds / wall:5.1f} %  {name}")
    logged = sum(seconds for _, seconds in phases)
    print(f"  {wall - logged:7.1f} s  {100 * (wall - logged) / wall:5.1f} %  before the first log line: Python and Rasa's imports")
    print("components (inside the phase that runs them):")
    for node, t in sorted(times.items(), key=lambda kv: -kv[1]["s"]):
        if t["s"] >= 0.5:
            print(f"  {t['s']:7.1f} s  {100 * t['s'] / wall:5.1f} %  {node:45s} {t['fn']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "config": args.config, "wall_s": wall, "peak_rss_mib": peak_mib, "load_avg_end": load,
            "phases": dict(phases), "nodes": times}, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
