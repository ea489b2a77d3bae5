"""The ``serflow`` command line: every pipeline step is also callable by hand.

Each subcommand is a thin shell over a package function (the same one the workflow's scripts call),
so that a result made by Snakemake can be reproduced, or debugged, one step at a time.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from serflow import __version__

IEMOCAP_DEFAULT_LABELS = "ang,hap,neu,sad"


def _parse_merge(items: Sequence[str]) -> dict[str, str]:
    merge = {}
    for item in items:
        raw, sep, target = item.partition("=")
        if not sep or not raw or not target:
            raise argparse.ArgumentTypeError(f"--merge expects RAW=CLASS (e.g. exc=hap), got {item!r}")
        merge[raw] = target
    return merge


def _cmd_manifest(args: argparse.Namespace) -> int:
    from serflow.corpora.manifest import LabelMap, write_manifest
    from serflow.corpora.readers import read_corpus
    from serflow.corpora.tess import TESS_LABELS

    if args.labels is None:
        labels = IEMOCAP_DEFAULT_LABELS.split(",") if args.format == "iemocap" else list(TESS_LABELS)
    else:
        labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    merge = _parse_merge(args.merge or [])
    if args.merge is None and not args.no_merge and args.format == "iemocap":
        merge = {"exc": "hap"}  # the standard 4-class convention (5,531 utterances)
    result = read_corpus(args.format, args.root, labels=labels, merge=merge)
    write_manifest(result, LabelMap.of(labels, merge), args.format, args.out, args.issues)
    issues_path = args.issues or Path(args.out).with_name(Path(args.out).stem + "_issues.tsv")
    print(result.summary())
    print(f"manifest: {args.out}\nissues:   {issues_path} ({len(result.issues)} rows)")
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    import pandas as pd

    from serflow.corpora.manifest import describe

    manifest = pd.read_parquet(args.manifest)
    print(f"{args.manifest}:")
    print(describe(manifest))
    issues = args.manifest.with_name(args.manifest.stem + "_issues.tsv")
    if issues.exists():
        table = pd.read_csv(issues, sep="\t")
        counts = table["action"].value_counts().to_dict() if len(table) else {}
        print(f"issues: {issues} ({len(table)} rows: {counts or 'none'})")
    return 0


def _cmd_folds(args: argparse.Namespace) -> int:
    import pandas as pd

    from serflow.corpora.folds import fold_summary, fold_table, make_folds
    from serflow.io import write_parquet

    manifest = pd.read_parquet(args.manifest)
    folds = make_folds(manifest, args.protocols, seed=args.seed, validation_fraction=args.validation_fraction)
    write_parquet(fold_table(folds), args.out)
    print(fold_summary(folds, manifest).to_string(index=False))
    print(f"folds: {args.out}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from serflow.corpora.synth.corpus import synthesize_corpus

    summary = synthesize_corpus(
        Path(args.out),
        utterances=args.utterances,
        seed=args.seed,
        preset=args.preset,
        jobs=args.jobs,
        progress=sys.stderr.isatty(),
    )
    print(summary)
    print(f"corpus: {args.out} (read it with: serflow corpus manifest --format iemocap --root {args.out})")
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from serflow.corpora.baseline import linear_baseline

    scores = linear_baseline(pd.read_parquet(args.manifest), seed=args.seed)
    print(json.dumps(scores, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serflow",
        description="Reproducible multimodal speech emotion recognition: corpus -> ASR -> alignment -> "
        "features -> cross-validated models. The workflow (snakemake) calls these same steps.",
    )
    parser.add_argument("--version", action="version", version=f"serflow {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    corpus = commands.add_parser("corpus", help="read corpora into manifests, make folds, synthesise the demo corpus")
    steps = corpus.add_subparsers(dest="step", required=True, metavar="STEP")

    manifest = steps.add_parser(
        "manifest",
        help="one Parquet row per labelled utterance (+ an issues TSV)",
        description="Read a corpus into a manifest Parquet (one row per labelled utterance) and write the "
        "quarantined or repaired utterances, with reasons, to an issues TSV beside it.",
    )
    manifest.add_argument("--format", required=True, choices=["iemocap", "tess"], help="corpus layout")
    manifest.add_argument("--root", required=True, type=Path, help="IEMOCAP_full_release folder, or TESS folder")
    manifest.add_argument("--out", required=True, type=Path, help="manifest .parquet to write")
    manifest.add_argument("--issues", type=Path, help="issues TSV (default: <out stem>_issues.tsv beside --out)")
    manifest.add_argument(
        "--labels", help=f"comma-separated classes (default iemocap: {IEMOCAP_DEFAULT_LABELS}; tess: all seven)"
    )
    manifest.add_argument(
        "--merge",
        action="append",
        metavar="RAW=CLASS",
        help="merge a raw label into a class; repeatable (default for iemocap: exc=hap)",
    )
    manifest.add_argument(
        "--no-merge", action="store_true", help="merge nothing (IEMOCAP without exc: 4,490 utterances, as GBAN's code)"
    )
    manifest.set_defaults(func=_cmd_manifest)

    describe = steps.add_parser(
        "describe",
        help="summarise a manifest: utterances, hours, classes per session, issues",
        description="Print a manifest's size, hours of audio, class counts per session, and its issues count.",
    )
    describe.add_argument("manifest", type=Path, help="manifest .parquet")
    describe.set_defaults(func=_cmd_describe)

    folds = steps.add_parser(
        "folds",
        help="speaker-independent CV folds (loso_session, loso_speaker)",
        description="Write leave-one-session-out and leave-one-speaker-out folds with a seeded, stratified "
        "validation split (long format: protocol, fold, test_group, utt_id, split).",
    )
    folds.add_argument("--manifest", required=True, type=Path)
    folds.add_argument("--out", required=True, type=Path)
    folds.add_argument("--protocols", nargs="+", default=["loso_session", "loso_speaker"])
    folds.add_argument("--seed", type=int, default=0)
    folds.add_argument("--validation-fraction", type=float, default=0.1)
    folds.set_defaults(func=_cmd_folds)

    synth = steps.add_parser(
        "synth",
        help="write the synthetic demo corpus in IEMOCAP's layout",
        description="Synthesise emotional speech offline with espeak-ng (10 voices = 5 sessions x 2 speakers, "
        "per-class prosody, emotional and ambiguous sentences, gain and noise) into an IEMOCAP_full_release-"
        "shaped tree. Same arguments, same bytes.",
    )
    synth.add_argument("--out", required=True, type=Path, help="folder to create")
    synth.add_argument("--utterances", type=int, default=1000, help="labelled turns in the whole corpus")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--preset", choices=["moderate", "strong"], default="moderate", help="how strong the prosody")
    synth.add_argument("--jobs", type=int, default=1, help="worker processes (output does not depend on it)")
    synth.set_defaults(func=_cmd_synth)

    baseline = steps.add_parser(
        "baseline",
        help="how separable a corpus is: linear models on audio, text and both",
        description="Logistic regression on MFCC-120 mean+std (audio), TF-IDF (text) and both, with 5 folds "
        "grouped by speaker; prints unweighted accuracy per modality and chance.",
    )
    baseline.add_argument("--manifest", required=True, type=Path)
    baseline.add_argument("--seed", type=int, default=0)
    baseline.set_defaults(func=_cmd_baseline)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    from serflow.corpora.manifest import CorpusError

    try:
        return args.func(args)
    except CorpusError as exc:
        print(f"serflow: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"serflow: error: no such file: {exc.filename or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
