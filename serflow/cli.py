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
    result = read_corpus(args.format, args.root, labels=labels, merge=merge, strict=args.strict)
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
    split = {"train": args.split_train, "valid": args.split_valid, "seed": args.split_seed}
    folds = make_folds(
        manifest, args.protocols, seed=args.seed, validation_fraction=args.validation_fraction, random_split=split
    )
    write_parquet(fold_table(folds), args.out)
    print(fold_summary(folds, manifest).to_string(index=False))
    print(f"folds: {args.out}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    own = {"iemocap": {"utterances", "preset"}, "tess": {"words", "no_nested_copy"}}
    other = "tess" if args.layout == "iemocap" else "iemocap"
    for name in sorted(own[other]):
        if getattr(args, name) not in (None, False):
            raise SystemExit(f"serflow corpus synth: --{name.replace('_', '-')} is for --layout {other}")
    if args.layout == "tess":
        from serflow.corpora.synth.tess import synthesize_tess

        summary = synthesize_tess(
            Path(args.out),
            words=20 if args.words is None else args.words,
            seed=args.seed,
            nested_copy=not args.no_nested_copy,
            jobs=args.jobs,
        )
    else:
        from serflow.corpora.synth.corpus import synthesize_corpus

        summary = synthesize_corpus(
            Path(args.out),
            utterances=1000 if args.utterances is None else args.utterances,
            seed=args.seed,
            preset=args.preset or "moderate",
            jobs=args.jobs,
            progress=sys.stderr.isatty(),
            sessions=args.sessions,
        )
    print(summary)
    print(f"corpus: {args.out} (read it with: serflow corpus manifest --format {args.layout} --root {args.out})")
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from serflow.corpora.baseline import linear_baseline

    scores = linear_baseline(pd.read_parquet(args.manifest), seed=args.seed)
    print(json.dumps(scores, indent=2))
    return 0


def _cmd_transcribe(args: argparse.Namespace) -> int:
    import pandas as pd

    from serflow.asr.backends import get_backend
    from serflow.asr.models import resolve_model
    from serflow.asr.run import transcribe_manifest
    from serflow.asr.wer import word_error_rates
    from serflow.io import write_json, write_parquet, write_text

    manifest = pd.read_parquet(args.manifest)
    model = resolve_model(args.backend, args.model, args.model_path)
    language = None if args.language in ("", "none", "null") else args.language
    backend = get_backend(
        args.backend, model, device=args.device, threads=args.threads, beam_size=args.beam_size, language=language
    )
    table, failures = transcribe_manifest(manifest, backend, args.shard, args.shards)
    write_parquet(table, args.out)
    failures_path = args.out.with_name(args.out.stem + "_failures.tsv")
    write_text(failures.to_csv(sep="\t", index=False, lineterminator="\n"), failures_path)
    print(f"{table.num_rows} utterances transcribed, {len(failures)} failed: {args.out} ({failures_path})")
    if args.shards == 1:
        wer = word_error_rates(manifest, table.to_pandas())
        write_json(wer, args.out.with_suffix(".wer.json"))
        print(f"WER against the gold transcripts: {wer['overall']['wer']:.3f} ({args.out.with_suffix('.wer.json')})")
    return 0


def _cmd_align(args: argparse.Namespace) -> int:
    from serflow.align.corpus_view import read_corpus_dir
    from serflow.align.report import write_cli_outputs
    from serflow.align.run import AlignOptions, align

    items, problems = read_corpus_dir(args.corpus_dir)
    for problem in problems:
        print(f"serflow align: skipped: {problem}", file=sys.stderr)
    options = AlignOptions(
        jobs=args.jobs,
        seed=args.seed,
        mfa_bin=args.mfa_bin,
        mfa_dictionary=args.dictionary,
        mfa_acoustic_model=None if args.acoustic_model == "none" else args.acoustic_model,
        iemocap_root=args.iemocap_root,
        iemocap_fallback=args.fallback,
        work_dir=args.out_dir / ".mfa_work",
        progress=sys.stderr.isatty(),
    )
    result = align(args.backend, items, options)
    print(write_cli_outputs(result, items, args.out_dir))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import yaml

    from serflow.corpora.settings import corpus_text_source
    from serflow.features.plan import plan
    from serflow.models import get_spec
    from serflow.train.checks import corpus_settings
    from serflow.train.config import family_section, reduced_settings
    from serflow.train.run import FoldJob, FoldOutputs, fold_settings, train_fold
    from serflow.train.tasks import split_run

    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    model, task = split_run(args.model)  # a run: cnn14, or cnn14@vad for a dimensional task
    spec = get_spec(model)
    settings = corpus_settings(config, args.corpus, model)
    family = family_section(config, args.corpus, spec.family)
    stores = dict(item.split("=", 1) for item in args.store or [])
    for name in spec.features:  # the configured store (with the family's own parameters) unless given
        stores.setdefault(name, plan(config, args.corpus, name, (family.get("stores") or {}).get(name)).directory)
    corpus = config["corpora"][args.corpus]
    scale = (corpus.get("dimensions") or {}).get("scale")
    job = FoldJob(
        corpus=args.corpus,
        model=args.model,
        protocol=args.protocol or settings.protocol,
        fold=args.fold,
        classes=tuple(corpus["labels"]),
        stores=stores,
        manifest=args.manifest or Path(f"data/{args.corpus}/manifest.parquet"),
        folds=args.folds or Path(f"data/{args.corpus}/folds.parquet"),
        train=settings,
        family_config=family,
        reduced=reduced_settings(config, args.corpus, spec.family),
        task=task,
        scale=tuple(scale) if scale else None,
        text_source=corpus_text_source(config, args.corpus),
        label_merge=corpus.get("merge", {}),
        fold_settings=fold_settings(config.get("folds"), args.protocol or settings.protocol),
    )
    record = train_fold(job, FoldOutputs.under(args.out))
    keys = ("ua", "wa") if "ua" in record else ("ccc",)
    scores = ", ".join(f"{key.upper()} {record[key]:.4f}" for key in keys)
    print(f"fold {record['fold']} ({record['test_group']}): {scores} -> {args.out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from serflow.io import write_json
    from serflow.train.evaluate import evaluate_model

    metrics = sorted(args.folds_dir.glob("fold*/metrics.json"))
    results = evaluate_model(metrics, [m.with_name("run.json") for m in metrics if m.with_name("run.json").exists()])
    write_json(results, args.out)
    keys = ("ua", "wa") if "ua" in results else ("ccc",)
    scores = ", ".join(f"{key.upper()} {results[key]:.4f} +- {results[key + '_std']:.4f}" for key in keys)
    print(f"{results['model']}: {scores} -> {args.out}")
    return 0


def _cmd_results(args: argparse.Namespace) -> int:
    from serflow.train.table import load_results, results_table

    paths = args.files or sorted(Path("results").glob("*.json"))
    paths = [p for p in paths if not Path(p).name.endswith("_summary.json")]
    if not paths:
        print("serflow: no result files (results/*.json); run the workflow first", file=sys.stderr)
        return 1
    print(results_table(load_results(paths), markdown=args.markdown), end="")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import json

    from serflow.report.comparison import asr_wer, compare, leaderboard_rows, load_entries, write_comparison
    from serflow.report.figures import load_paper_figures
    from serflow.report.plots import plot_leaderboard

    checkout = args.results[0].resolve().parent.parent  # results/, models/ and data/ are siblings in a checkout
    entries, skipped = load_entries(args.results, args.models or checkout / "models")
    if not entries:
        print("serflow: error: no categorical result among the files", file=sys.stderr)
        return 2
    corpus = entries[0].result["corpus"]
    wer_file = args.wer
    if wer_file is None:  # the corpus's Whisper's WER beside the results, if there is exactly one
        found = sorted((checkout / "data" / corpus / "asr").glob("*.wer.json"))
        wer_file = found[0] if len(found) == 1 else None
    wer = None
    if wer_file is not None:
        wer = asr_wer(json.loads(wer_file.read_text(encoding="utf-8")), wer_file.name.removesuffix(".wer.json"))
    report = compare(entries, load_paper_figures(), wer, args.alpha, args.correction, skipped)
    prefix = args.out or args.results[0].resolve().parent / f"{corpus}_comparison"
    paths = [Path(f"{prefix}.{ext}") for ext in ("md", "csv", "json", "png")]
    write_comparison(report, *paths[:3])
    plot_leaderboard(
        leaderboard_rows(report), paths[3], f"{corpus}: UA on the common test set", len(entries[0].result["labels"])
    )
    print(paths[0].read_text(encoding="utf-8"), end="")
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    import json

    from serflow.models.describe import DescribeError, format_model_list, model_rows

    try:
        rows = model_rows(args.family)
    except DescribeError as exc:
        print(f"serflow: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else format_model_list(rows), end="\n" if args.json else "")
    return 0


def _cmd_models_describe(args: argparse.Namespace) -> int:
    import json

    from serflow.models.describe import DescribeError, describe_model, format_description

    try:
        info = describe_model(
            args.name, config=args.config, sets=args.set, outputs=args.outputs, dims=args.dims, depth=args.depth
        )
    except DescribeError as exc:
        print(f"serflow: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=2) if args.json else format_description(info), end="\n" if args.json else "")
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
    manifest.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first label line or file that cannot be read (default: quarantine it with the reason)",
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
        help="CV folds (loso_session, loso_speaker; random_split, not speaker-independent)",
        description="Write leave-one-session-out and leave-one-speaker-out folds with a seeded, stratified "
        "validation split, and on request MultiModal-ER's random_split (one fold, stratified 70/15/15, the same "
        "speakers in every split) (long format: protocol, fold, test_group, utt_id, split).",
    )
    folds.add_argument("--manifest", required=True, type=Path)
    folds.add_argument("--out", required=True, type=Path)
    folds.add_argument(
        "--protocols",
        nargs="+",
        choices=["loso_session", "loso_speaker", "random_split"],
        default=["loso_session", "loso_speaker"],
    )
    folds.add_argument("--seed", type=int, default=0)
    folds.add_argument("--validation-fraction", type=float, default=0.1)
    folds.add_argument("--split-train", type=float, default=0.7, help="random_split: train share of each class")
    folds.add_argument("--split-valid", type=float, default=0.15, help="random_split: valid share (the rest is test)")
    folds.add_argument("--split-seed", type=int, default=42, help="random_split: seed of the shuffle")
    folds.set_defaults(func=_cmd_folds)

    synth = steps.add_parser(
        "synth",
        help="write a synthetic demo corpus in IEMOCAP's or TESS's layout",
        description="Synthesise emotional speech offline with espeak-ng. Layout iemocap: 10 voices = 5 sessions x 2 "
        "speakers, per-class prosody, emotional and ambiguous sentences, gain and noise, in an IEMOCAP_full_release-"
        "shaped tree. Layout tess: 2 voices x words x 7 emotions saying 'Say the word <word>.', emotion in the "
        "prosody only, in TESS's folders (with the nested second copy unless --no-nested-copy). Same arguments, "
        "same bytes.",
    )
    synth.add_argument("--out", required=True, type=Path, help="folder to create")
    synth.add_argument("--layout", choices=["iemocap", "tess"], default="iemocap", help="on-disk layout (and reader)")
    synth.add_argument("--utterances", type=int, help="iemocap: labelled turns in the whole corpus (default 1000)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--preset", choices=["moderate", "strong"], help="iemocap: how strong the prosody (moderate)")
    synth.add_argument(
        "--sessions", type=int, default=5, help="iemocap: sessions, 2..5, two speakers each (default 5, as IEMOCAP)"
    )
    synth.add_argument("--words", type=int, help="tess: target words, 1..200 (default 20: 280 utterances)")
    synth.add_argument(
        "--no-nested-copy", action="store_true", help="tess: no second copy of the set in a nested folder"
    )
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

    transcribe = commands.add_parser(
        "transcribe",
        help="Whisper ASR of a manifest's utterances, with word timestamps",
        description="Transcribe every utterance of a manifest with Whisper (word timestamps on), write a Parquet "
        "file (utt_id, text, words, language, avg_logprob, no_speech_prob), the failures beside it, and the "
        "WER against the gold transcripts.",
    )
    transcribe.add_argument("--manifest", required=True, type=Path)
    transcribe.add_argument("--out", required=True, type=Path, help="output .parquet")
    transcribe.add_argument("--backend", choices=["faster-whisper", "openai-whisper"], default="faster-whisper")
    transcribe.add_argument("--model", default="tiny.en", help="Whisper model name (tiny.en ... large-v3)")
    transcribe.add_argument(
        "--model-path",
        help="a local model (faster-whisper folder or openai-whisper .pt); default: the offline model where installed "
        "(base is assembled once from its two packages into ./models/whisper/)",
    )
    transcribe.add_argument("--language", default="en", help="language passed to Whisper ('none': detect)")
    transcribe.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    transcribe.add_argument("--threads", type=int, default=1, help="CPU threads")
    transcribe.add_argument("--beam-size", type=int, default=5)
    transcribe.add_argument("--shard", type=int, default=0, help="this job's shard (0-based)")
    transcribe.add_argument("--shards", type=int, default=1, help="number of shards the manifest is split into")
    transcribe.set_defaults(func=_cmd_transcribe)

    align = commands.add_parser(
        "align",
        help="forced alignment of an MFA-layout corpus to word/phone TextGrids",
        description="Like `mfa align`: CORPUS_DIR holds speaker folders with <utt>.wav and <utt>.lab; OUT_DIR "
        "receives <speaker>/<utt>.TextGrid with tiers `words` and `phones`, plus failures.tsv and oovs.tsv.",
    )
    align.add_argument("corpus_dir", type=Path)
    align.add_argument("out_dir", type=Path)
    align.add_argument("--backend", choices=["kaldi", "mfa", "iemocap"], default="kaldi")
    align.add_argument("--jobs", type=int, default=1, help="worker processes")
    align.add_argument("--seed", type=int, default=0)
    align.add_argument("--mfa-bin", default="mfa", help="mfa backend: the mfa executable")
    align.add_argument("--dictionary", default="english_us_arpa", help="mfa backend: pronunciation dictionary")
    align.add_argument(
        "--acoustic-model", default="english_us_arpa", help="mfa backend: acoustic model ('none': train one)"
    )
    align.add_argument("--iemocap-root", type=Path, help="iemocap backend: the IEMOCAP_full_release folder")
    align.add_argument("--fallback", choices=["kaldi", "mfa", "none"], default="kaldi", help="iemocap backend")
    align.set_defaults(func=_cmd_align)

    train = commands.add_parser(
        "train",
        help="train a model on one cross-validation fold (every configured seed)",
        description="What the workflow's train job does: read the config's train/models sections, the model's "
        "feature stores (the configured versions unless --store), the manifest and folds; write metrics.json, "
        "predictions.parquet, history.tsv, run.json and checkpoints/ into --out.",
    )
    train.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    train.add_argument("--corpus", required=True)
    train.add_argument("--model", required=True, help="a registered model, or model@task (cnn14@vad)")
    train.add_argument("--fold", required=True, type=int, help="1-based fold number")
    train.add_argument("--protocol", help="default: the config's train.protocol")
    train.add_argument("--store", action="append", metavar="NAME=DIR", help="a feature store folder; repeatable")
    train.add_argument("--manifest", type=Path, help="default: data/<corpus>/manifest.parquet")
    train.add_argument("--folds", type=Path, help="default: data/<corpus>/folds.parquet")
    train.add_argument("--out", required=True, type=Path, help="the fold's output folder")
    train.set_defaults(func=_cmd_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="aggregate a model's folds into its results JSON",
        description="Read <folds-dir>/fold*/metrics.json (and run.json) and write the per-model results "
        "(schema: docs/results.md).",
    )
    evaluate.add_argument("--folds-dir", required=True, type=Path, help="models/<corpus>/<model>/<protocol>")
    evaluate.add_argument("--out", required=True, type=Path)
    evaluate.set_defaults(func=_cmd_evaluate)

    results = commands.add_parser(
        "results",
        help="print WA / UA per model from result files",
        description="A table of results/{corpus}_{model}.json files: WA and UA (means over folds; +- std over "
        "seeds when there are several), the spread over folds, utterances scored and dropped.",
    )
    results.add_argument("files", nargs="*", type=Path, help="result files (default: results/*.json)")
    results.add_argument("--markdown", action="store_true", help="a Markdown table")
    results.set_defaults(func=_cmd_results)

    compare = commands.add_parser(
        "compare",
        help="every model on the same test utterances, with paired tests (results/{corpus}_comparison.*)",
        description="Score every categorical model of RESULTS_JSON again on the test utterances that all models of "
        "its protocol scored (from the folds' predictions.parquet), with WA / UA / macro-F1, their std over folds and "
        "seeds, own-n scores, dropped counts, parameters, training time and the paper's figure; a paired t-test over "
        "matched (fold, seed) scores says which models the best cannot be told apart from. Writes PREFIX.md, .csv, "
        ".json and .png (docs/comparison.md).",
    )
    compare.add_argument("results", nargs="+", type=Path, metavar="RESULTS_JSON", help="results/{corpus}_{run}.json")
    compare.add_argument(
        "--out", type=Path, metavar="PREFIX", help="output prefix (default: <results folder>/{corpus}_comparison)"
    )
    compare.add_argument("--models", type=Path, help="the models/ folder of the folds (default: beside results/)")
    compare.add_argument(
        "--wer", type=Path, help="the ASR's .wer.json (default: data/{corpus}/asr/*.wer.json beside results/ if one)"
    )
    compare.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    compare.add_argument(
        "--correction", choices=["holm", "none"], default="holm", help="over the best model's comparisons (holm)"
    )
    compare.set_defaults(func=_cmd_compare)

    models = commands.add_parser("models", help="list the registered models, or describe one without any data")
    model_steps = models.add_subparsers(dest="step", required=True, metavar="STEP")
    models_list = model_steps.add_parser(
        "list",
        help="every registered model: family, stores read, paper row, description",
        description="Every model selectable by name in train.models, grouped by family: the feature stores it "
        "reads, the row of its paper's tables it reproduces, and what it is.",
    )
    models_list.add_argument("--family", help="only this family's models (e.g. gban)")
    models_list.add_argument("--json", action="store_true", help="a JSON list instead of the table")
    models_list.set_defaults(func=_cmd_models_list)
    models_describe = model_steps.add_parser(
        "describe",
        help="build a model on the meta device: module tree, parameter counts, its settings",
        description="Build NAME as the trainer would (the config's models.<family> section, the variant's flags, "
        "the stores' dims) on torch's meta device: no data, no memory, no weights read. Prints the module tree, "
        "parameters per top-level module (trainable and frozen) and the model's own settings()/describe().",
    )
    models_describe.add_argument("name", help="a registered model name (serflow models list)")
    models_describe.add_argument(
        "--config", type=Path, help="config whose models.<family> section is used (default: config/config.yaml)"
    )
    models_describe.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="one hyperparameter, value as YAML; repeatable"
    )
    models_describe.add_argument(
        "--outputs", type=int, help="classes (outputs) of the head (default: the demo corpus's labels, 4)"
    )
    models_describe.add_argument(
        "--dims",
        action="append",
        metavar="STORE=D",
        help="a feature store's dims (default: the offline stores', e.g. glove 50; glove=300 is the paper's)",
    )
    models_describe.add_argument("--depth", type=int, default=4, help="levels of the module tree shown (default 4)")
    models_describe.add_argument("--json", action="store_true", help="everything as JSON")
    models_describe.set_defaults(func=_cmd_models_describe)
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
    except ValueError as exc:  # a bad value given by the user (an unknown model, a setting out of range): one line
        if args.verbose:
            raise
        print(f"serflow {args.command}: error: {exc} (--verbose: the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
