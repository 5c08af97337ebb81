"""`python -m udf_service.bench [--quick] [--only economy,...] [--json out.json]`: the table.

Every section starts what it needs on loopback and stops it again. Figures are measured, never
asserted: the exit status is 0 when every section ran (whether or not a goal was met) and 1 when
one could not run at all.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from . import SECTIONS
from .common import Figure, machine, print_markdown, print_table


def run(
    quick: bool = False,
    only: Sequence[str] | None = None,
    json_path: str | None = None,
    out: Any = None,
    markdown: bool = False,
) -> int:
    """Run the sections (all, or `only`), print the table to `out`, optionally write JSON; exit status."""
    out = out or sys.stdout
    names = list(only or SECTIONS)
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    info = machine()
    started = time.perf_counter()
    figures: list[Figure] = []
    timings: dict[str, float] = {}
    failed = []
    for name in names:
        section_started = time.perf_counter()
        _progress(f"bench: {name} ...")
        try:
            figures += _section(name)(quick)
        except Exception as exc:  # one broken section must not hide the others' figures
            failed.append(name)
            figures.append(
                Figure(section=name, name="section failed", measured=f"{type(exc).__name__}: {exc}")
            )
            _progress(traceback.format_exc())
        timings[name] = time.perf_counter() - section_started
        _progress(f" {timings[name]:.1f} s\n")
    seconds = time.perf_counter() - started
    mode = "quick" if quick else "full"
    print(
        f"sixsense-udf bench ({mode}): {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"{info['date']}, load average at start {info['loadavg_at_start']:.2f}\n",
        file=out,
    )
    (print_markdown if markdown else print_table)(figures, out)
    print(
        f"\n{len(names)} sections in {seconds:.1f} s: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()),
        file=out,
    )
    if json_path:
        document = {
            "machine": info,
            "mode": mode,
            "seconds": seconds,
            "sections": timings,
            "failed": failed,
            "figures": [figure.as_dict() for figure in figures],
        }
        with open(json_path, "wb") as handle:
            handle.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 1 if failed else 0


def _section(name: str) -> Callable[[bool], list[Figure]]:
    import importlib

    return importlib.import_module(f"{__package__}.{name}").run


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(text)
        sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m udf_service.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes: a few seconds per section (CI)")
    parser.add_argument("--only", default=None, help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--json", dest="json_path", default=None, help="also write every figure to this file")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    try:
        return run(args.quick, only, args.json_path, markdown=args.markdown)
    except ValueError as exc:
        parser.error(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
