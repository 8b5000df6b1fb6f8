"""Run every benchmark present: ``.venv/bin/python -m bench`` (or ``make bench``, or ``bench/run_all``).

Each ``bench/b<N>_<name>.py`` module is run in its own process (``python -m bench.<module>``), in
order, so one benchmark's caches, connections or memory never colour another's. Its output is shown
as it comes and kept in ``bench/out/<module>.log``; a summary at the end gives each one's wall time
and exit status, headed by the machine, command and date that ``bench/RESULTS.md`` records.

    python -m bench                 # all of them
    python -m bench b1 b3           # only those whose module name starts with b1 or b3
    python -m bench --list          # what would run
    python -m bench b2 -- --units 500   # arguments after -- go to every selected benchmark
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODULE = re.compile(r"^b\d+_\w+\.py$")


def modules() -> list[str]:
    """Benchmark modules present, in their number order (b1, b2, … b10)."""
    names = [p.stem for p in HERE.iterdir() if MODULE.match(p.name)]
    return sorted(names, key=lambda n: (int(re.match(r"b(\d+)", n).group(1)), n))  # type: ignore[union-attr]


def machine() -> str:
    """One line for RESULTS.md: CPU model and count, memory, OS, Python and SQLite versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load {os.getloadavg()[0]:.1f}"
    return (f"{cpu} × {os.cpu_count()}{mem}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}{load}")


def run(name: str, extra: list[str], out_dir: Path) -> tuple[int, float]:
    cmd = [sys.executable, "-m", f"bench.{name}", *extra]
    print(f"\n=== {name}: {shlex.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / f"{name}.log").open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        rc = proc.wait()
    return rc, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("only", nargs="*", help="module name prefixes (b1, b3_trace, …); default: all")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="where the logs go (bench/out)")
    args = ap.parse_args(argv)
    chosen = [m for m in modules() if not args.only or any(m.startswith(p) for p in args.only)]
    if args.list:
        print("\n".join(chosen))
        return 0
    if not chosen:
        print(f"no benchmark matches {args.only}; present: {', '.join(modules())}", file=sys.stderr)
        return 2
    started = datetime.now().astimezone()
    header = [f"machine: {machine()}", f"date:    {started:%Y-%m-%d %H:%M %Z}",
              f"command: python -m bench {shlex.join(argv + (['--', *extra] if extra else []))}".rstrip()]
    print("\n".join(header), flush=True)
    results = [(name, *run(name, extra, args.out)) for name in chosen]
    print("\n=== summary")
    print("\n".join(header))
    for name, rc, secs in results:
        print(f"  {name:<20} {'ok' if rc == 0 else f'FAILED (exit {rc})':<18} {secs:8.1f} s   log: {args.out / (name + '.log')}")
    return 0 if all(rc == 0 for _, rc, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
