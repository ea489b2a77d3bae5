#!/usr/bin/env python3
"""Write dvc.yaml from the Snakefile, or check that it is up to date (serflow/dvc_pipeline.py).

    .venv/bin/python scripts/dvc_stages.py            # (re)write dvc.yaml
    .venv/bin/python scripts/dvc_stages.py --check    # exit 1, with a diff, when dvc.yaml is stale (make lint)

Run it after changing the workflow's targets (rule all, train.models, a new corpus) or the config keys
and files a stage depends on. It only parses the Snakefile: no data, a few seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serflow.dvc_pipeline import DEFAULT_CONFIG, GENERATOR, difference, generate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    parser.add_argument("--out", default="dvc.yaml", help="the file, relative to the repository (default: dvc.yaml)")
    parser.add_argument(
        "--configfile",
        default=None,
        help=f"a config file (relative to the repository) instead of {DEFAULT_CONFIG}: the stages pass it to "
        "Snakemake and read their parameters from it",
    )
    args = parser.parse_args(argv)
    text = generate(ROOT, args.configfile)
    out = ROOT / args.out
    if args.check:
        diff = difference(text, out.read_text(encoding="utf-8") if out.exists() else None, args.out)
        if diff:
            sys.stdout.write(diff)
            how = f".venv/bin/python {GENERATOR}" + (f" --configfile {args.configfile}" if args.configfile else "")
            print(
                f"\n{args.out} is stale: the Snakefile and config give the version above. Run `{how}`.", file=sys.stderr
            )
            return 1
        print(f"{args.out} is up to date with the Snakefile.")
        return 0
    if out.exists() and out.read_text(encoding="utf-8") == text:
        print(f"{args.out} unchanged.")
    else:
        out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({text.count(chr(10))} lines).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
