"""``python -m bench``: the benchmarks at real scale (``make bench``), or a smoke run of them.

    python -m bench                   # everything, full size; results in bench/results/latest.*
    python -m bench --smoke           # tiny sizes, one run each: checks the command, not speed
    python -m bench --only build,sync # some sections
    python -m bench synth ROOT        # just the synthetic cache (see bench/synth.py)

Synthetic data goes under ``--work`` (default ``bench/work/``, ignored by git)
and is reused by the next run when its parameters match.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import synth
from bench.core import FULL, SMOKE
from bench.harness import REPO
from bench.report import Results, write
from bench.run import main_run

SECTIONS = ("build", "scale", "extract", "sync")


def _echo(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def synth_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench synth",
        description="Write a synthetic cache with the real bucket's shape (bench/synth.py).",
    )
    parser.add_argument("root", type=Path, help="artifacts root to write cache/v1/... under")
    parser.add_argument(
        "--months",
        type=int,
        default=FULL.months,
        help="latest months of the real manifest at --scale (default 13)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="1.0 = real sizes (~232,000 city-ASN rows per month)",
    )
    parser.add_argument(
        "--older-scale",
        type=float,
        default=None,
        help="also write every older month of the manifest at this scale",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    written = synth.synth(
        args.root.absolute(), args.months, args.seed, args.scale, args.older_scale
    )
    print(
        f"{written.entries} entries, {written.rows:,} rows, {written.bytes / 1e6:,.1f} MB "
        f"under {args.root} in {time.perf_counter() - t0:.0f} s"
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["synth"]:
        synth_main(argv[1:])
        return
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes and one run per figure (make test runs this)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections of {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "bench" / "work",
        help="where synthetic data and logs go (default bench/work)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results",
        help="where {latest,smoke}.{json,md} go (default bench/results)",
    )
    args = parser.parse_args(argv)
    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    plan = SMOKE if args.smoke else FULL
    work = (args.work / "smoke" if args.smoke else args.work).absolute()
    results = Results(smoke=args.smoke)
    t0 = time.perf_counter()
    _echo(f"bench: {'smoke run' if args.smoke else 'full run'} in {work}")
    main_run(plan, work, results, _echo, sections)
    results.figures["total_s"] = round(time.perf_counter() - t0, 1)
    json_path, md_path, text = write(results, args.out, "smoke" if args.smoke else "latest")
    print(text)
    _echo(f"bench: wrote {json_path} and {md_path} ({results.figures['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
