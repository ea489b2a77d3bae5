"""What a model is, without any data: the catalogue as a table, and one model built on the meta device.

``serflow models list`` prints every registered model (family, the stores it reads, the paper's row, one line on
what it is); ``serflow models describe NAME`` builds one the way the trainer would (the config's
``models.<family>`` section, the variant's fixed flags, the stores' dims as ``audio_dim`` / ``text_dim``) but on
torch's ``meta`` device, so nothing is allocated and no weight file is read, and prints its module tree, its
parameter counts (trainable and frozen, per top-level child) and the model's own ``settings()`` / ``describe()``.
That is how a count of a paper's appendix is checked against what this code builds.

:func:`parameter_summary` is the count the trainer records with every result.

Nothing here imports torch at import time: the registry lookups of ``models list`` stay instant.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from serflow.models.registry import MODELS, ModelSpec, get_spec

DEFAULT_CONFIG = Path("config/config.yaml")
DEMO_CORPUS = "demo"
DEFAULT_OUTPUTS = 4  # the demo corpus's classes when the config gives none

# The dims of the offline stores (what the demo's features hold); --dims store=D sets another (glove=300: the paper's).
DEFAULT_DIMS: dict[str, int] = {
    "mfcc39": 39,
    "gban52": 52,
    "logmel64": 64,
    "mfcc120": 120,
    "waveform": 1,
    "glove": 50,
    "bert": 384,
    "bert_utt": 384,
    "roberta": 32,
    "roberta_utt": 32,
}
DEFAULT_DEPTH = 4  # levels of the module tree shown below the model itself
LOADED_ATTRIBUTES = ("encoder_meta",)  # what a model records about the pretrained parts it built (WavFusion)


class DescribeError(ValueError):
    """A user's mistake (unknown model, family, store or hyperparameter; a model that cannot be built): one line."""


# ---------------------------------------------------------------------- models list
def _paper_rows() -> dict[str, str]:
    from serflow.models.catalog import FAMILIES

    return {name: v.paper_row for family in FAMILIES for name, v in family.variants.items()}


def model_rows(family: str | None = None) -> list[dict[str, Any]]:
    """Every registered model (or those of ``family``), grouped by family in catalogue order."""
    families = list(dict.fromkeys(spec.family for spec in MODELS.values()))
    if family is not None and family not in families:
        raise DescribeError(f"no registered model is of family {family!r}; known families: {', '.join(families)}")
    rows = _paper_rows()
    return [
        {
            "name": spec.name,
            "family": spec.family,
            "features": list(spec.features),
            "paper_row": rows.get(spec.name, ""),
            "description": spec.description,
            "paper": spec.paper,
        }
        for fam in families
        if family in (None, fam)
        for spec in MODELS.values()
        if spec.family == fam
    ]


def format_model_list(rows: Sequence[Mapping[str, Any]]) -> str:
    """A table per family: name, stores read, paper row, description."""
    header = ("model", "stores", "paper row", "description")
    cells = [(r["name"], ", ".join(r["features"]), r["paper_row"] or "-", r["description"]) for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(3)]

    def line(values: Sequence[str]) -> str:
        return "  " + "  ".join(v.ljust(w) for v, w in zip(values[:3], widths, strict=True)) + "  " + values[3]

    out: list[str] = []
    for family in dict.fromkeys(r["family"] for r in rows):
        members = [c for c, r in zip(cells, rows, strict=True) if r["family"] == family]
        paper = next(r["paper"] for r in rows if r["family"] == family)
        out += [f"{family} ({len(members)}): {paper}", line(header).rstrip()]
        out += [line(c) for c in members]
        out.append("")
    out.append(f"{len(rows)} models; `serflow models describe NAME` builds one and counts its parameters")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------- parameters
def _count(parameters: Iterable[Any]) -> tuple[int, int]:
    trainable = frozen = 0
    for p in parameters:
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return trainable, frozen


def parameter_rows(module: Any) -> dict[str, dict[str, int]]:
    """``{name: {"trainable", "frozen"}}`` per top-level child module with parameters, and per parameter held by
    ``module`` itself."""
    rows = {name: _count(child.parameters()) for name, child in module.named_children()}
    rows.update({name: _count([p]) for name, p in module.named_parameters(recurse=False)})
    return {name: {"trainable": t, "frozen": f} for name, (t, f) in rows.items() if t + f}


def parameter_summary(module: Any) -> dict[str, Any]:
    """``{"total", "trainable", "by_module": {name: count}}`` of a module (meta or real tensors alike).

    ``by_module`` has one entry per top-level child module that has parameters and per parameter registered on
    ``module`` itself
    (e.g. an interaction matrix); a parameter shared by two children counts in both rows but once in the totals.
    """
    trainable, frozen = _count(module.parameters())
    return {
        "total": trainable + frozen,
        "trainable": trainable,
        "by_module": {name: r["trainable"] + r["frozen"] for name, r in parameter_rows(module).items()},
    }


def architecture(module: Any, depth: int = DEFAULT_DEPTH) -> list[tuple[str, int | None]]:
    """The module tree, compact: ``(line, parameters)`` per node down to ``depth`` levels; runs of identical
    siblings (a ModuleList of equal layers) are one line (``0-11: 12 x Layer``), parameter-free nodes have None."""
    lines: list[tuple[str, int | None]] = [(type(module).__name__, _numel(module))]
    _tree(module, 1, depth, lines)
    return lines


def _numel(module: Any) -> int | None:
    params = list(module.parameters())
    return sum(p.numel() for p in params) if params else None


def _label(module: Any) -> str:
    extra = module.extra_repr()
    return f"{type(module).__name__}({extra})" if extra else type(module).__name__


def _tree(module: Any, level: int, depth: int, lines: list[tuple[str, int | None]]) -> None:
    indent = "  " * level
    for name, p in module.named_parameters(recurse=False):
        lines.append((f"{indent}{name}: Parameter{list(p.shape)}", p.numel()))
    children = list(module.named_children())
    i = 0
    while i < len(children):
        name, child = children[i]
        signature = repr(child)
        j = i + 1
        while j < len(children) and name.isdigit() and children[j][0].isdigit() and repr(children[j][1]) == signature:
            j += 1
        run = j - i
        label = f"{name}:" if run == 1 else f"{name}-{children[j - 1][0]}: {run} x"
        inner = any(True for _ in child.children())
        more = " ..." if inner and level >= depth else ""
        count = _numel(child)
        lines.append((f"{indent}{label} {_label(child)}{more}", None if count is None else count * run))
        if inner and level < depth:
            _tree(child, level + 1, depth, lines)
        i = j


# ---------------------------------------------------------------------- models describe
def parse_assignments(items: Sequence[str] | None, option: str) -> dict[str, str]:
    """``["key=value", ...]`` -> ``{key: value}``; a malformed item is a DescribeError naming ``option``."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DescribeError(f"{option} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """``--set key=value``: each value read as YAML (``0.5``, ``true``, ``null``, ``[12, 20]``, ``paper``)."""
    import yaml

    out = {}
    for key, value in parse_assignments(items, "--set").items():
        try:
            out[key] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as exc:
            raise DescribeError(f"--set {key}: {value!r} is not a YAML value ({str(exc).splitlines()[0]})") from None
    return out


def parse_dims(items: Sequence[str] | None) -> dict[str, int]:
    """``--dims store=D``: a feature store's dims (the store must be one the trainer knows a role for)."""
    from serflow.train.config import store_role

    out = {}
    for store, value in parse_assignments(items, "--dims").items():
        try:
            role = store_role(store)
        except ValueError as exc:
            raise DescribeError(f"--dims {store}: {exc}") from None
        if role is None:
            raise DescribeError(f"--dims {store}: a structure table or token ids, without feature dims")
        try:
            out[store] = int(value)
        except ValueError:
            raise DescribeError(f"--dims {store}: expected a whole number, got {value!r}") from None
        if out[store] < 1:
            raise DescribeError(f"--dims {store}: dims must be >= 1, got {out[store]}")
    return out


def load_config(path: str | Path | None) -> tuple[dict[str, Any], str | None]:
    """The config (``path``, or ``config/config.yaml`` when present) and where it came from (None: none)."""
    import yaml

    if path is None:
        if not DEFAULT_CONFIG.is_file():
            return {}, None
        path = DEFAULT_CONFIG
    path = Path(path)
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}  # a missing file: FileNotFoundError
    if not isinstance(config, dict):
        raise DescribeError(f"{path}: not a YAML mapping")
    return config, str(path)


def default_outputs(config: Mapping[str, Any]) -> int:
    """The demo corpus's class count (the config's ``corpora.demo.labels``), else 4."""
    labels = ((config.get("corpora") or {}).get(DEMO_CORPUS) or {}).get("labels")
    return len(labels) if labels else DEFAULT_OUTPUTS


def resolve_hparams(
    spec: ModelSpec, section: Mapping[str, Any] | None, sets: Mapping[str, Any], dims: Mapping[str, int]
) -> tuple[dict[str, Any], dict[str, str], dict[str, int], list[str]]:
    """What the trainer would pass to the builder: the config section (``optim`` set aside), ``--set`` over it,
    the dims of the stores the model reads over both. Returns ``(hparams, source per key, dims used, notes)``."""
    from serflow.train.config import dim_hparams, family_settings, model_hparams

    try:
        configured, _ = family_settings(section)
    except (ValueError, TypeError) as exc:
        raise DescribeError(f"models.{spec.family}.optim: {exc}") from None
    for key, value in sets.items():
        if key in spec.fixed and spec.fixed[key] != value:
            raise DescribeError(
                f"--set {key}: fixed by the model name {spec.name!r} ({key}={spec.fixed[key]!r}); "
                f"pick the variant instead (`serflow models list --family {spec.family}`)"
            )
    known = {**DEFAULT_DIMS, **dims}
    used = {store: known[store] for store in spec.features if store in known}
    hparams, warnings = model_hparams({**configured, **sets}, used)
    source = {key: "config" for key in configured}
    source.update({key: "--set" for key in sets})
    source.update({key: "dims" for key in dim_hparams(used)})
    notes = [f"{w} (give the store's dims with --dims)" for w in warnings]
    unread = sorted(set(dims) - set(spec.features))
    if unread:
        notes.append(f"--dims {', '.join(unread)}: not read by {spec.name} (it reads {', '.join(spec.features)})")
    return hparams, source, used, notes


def build_on_meta(spec: ModelSpec, n_outputs: int, hparams: Mapping[str, Any]) -> Any:
    """``spec``'s model built on the meta device (no memory, no weights read); a failure is one DescribeError."""
    import torch

    from serflow.train.config import check_hparams

    try:
        check_hparams(spec.name, spec.builder(), hparams)
        with torch.device("meta"):
            return spec.create(n_outputs, **hparams)
    except Exception as exc:  # a builder's TypeError / ValueError, torch's RuntimeError: one line, no traceback
        message = " ".join(str(exc).split())
        raise DescribeError(f"model {spec.name!r} cannot be built: {type(exc).__name__}: {message}") from None


def builder_defaults(model: Any) -> dict[str, Any]:
    """The keyword defaults of the model class's constructor: what a hyperparameter not given is."""
    params = inspect.signature(type(model).__init__).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in (sorted(value) if isinstance(value, set | frozenset) else value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _model_reports(model: Any) -> dict[str, Any]:
    """The model's own ``settings()`` / ``describe()``, what it loaded, and its module's count helper."""
    reports: dict[str, Any] = {}
    for method in ("settings", "describe"):
        if callable(getattr(model, method, None)):
            reports[f"{method}()"] = _jsonable(getattr(model, method)())
    for attribute in LOADED_ATTRIBUTES:
        if isinstance(getattr(model, attribute, None), Mapping):
            reports[attribute] = _jsonable(getattr(model, attribute))
    helper = getattr(sys.modules.get(type(model).__module__), "parameter_counts", None)
    if callable(helper):
        counts = {"torch": helper(model)}
        if "keras" in inspect.signature(helper).parameters:
            counts["keras"] = helper(model, keras=True)
        reports["parameter_counts"] = {
            "helper": f"{type(model).__module__}.parameter_counts",
            **{part: {kind: c[part] for kind, c in counts.items()} for part in counts["torch"]},
        }
    return reports


def describe_model(
    name: str,
    *,
    config: str | Path | None = None,
    sets: Sequence[str] | None = None,
    outputs: int | None = None,
    dims: Sequence[str] | None = None,
    depth: int = DEFAULT_DEPTH,
) -> dict[str, Any]:
    """Everything ``serflow models describe`` prints, as JSON-able data (see the module docstring)."""
    try:
        spec = get_spec(name)
    except ValueError as exc:
        raise DescribeError(str(exc)) from None
    given_sets, given_dims = parse_sets(sets), parse_dims(dims)
    cfg, config_path = load_config(config)
    section = (cfg.get("models") or {}).get(spec.family)
    n_outputs = default_outputs(cfg) if outputs is None else outputs
    if n_outputs < 1:
        raise DescribeError(f"--outputs must be >= 1, got {n_outputs}")
    hparams, source, used, notes = resolve_hparams(spec, section, given_sets, given_dims)
    if config_path is None:
        notes.append(f"no {DEFAULT_CONFIG}: the builder's defaults, {n_outputs} outputs")
    elif section is None:
        notes.append(f"{config_path} has no models.{spec.family} section: the builder's defaults")
    model = build_on_meta(spec, n_outputs, hparams)
    given = {**hparams, **spec.fixed}
    source.update({key: "variant" for key in spec.fixed})
    defaults = {k: v for k, v in builder_defaults(model).items() if k not in given}
    rows = parameter_rows(model)
    summary = parameter_summary(model)
    return {
        "model": spec.name,
        "family": spec.family,
        "description": spec.description,
        "paper": spec.paper,
        "paper_row": _paper_rows().get(spec.name, ""),
        "features": list(spec.features),
        "dims": used,
        "outputs": n_outputs,
        "config": config_path,
        "hparams": {key: {"value": _jsonable(value), "from": source[key]} for key, value in given.items()},
        "defaults": _jsonable(defaults),
        "architecture": [{"line": line, "parameters": count} for line, count in architecture(model, depth)],
        "parameters": {
            **summary,
            "frozen": summary["total"] - summary["trainable"],
            "by_module_detail": rows,
        },
        "reports": _model_reports(model),
        "notes": notes,
    }


def _wrapped(label: str, items: Mapping[str, Any]) -> list[str]:
    text = ", ".join(f"{k}={v!r}" for k, v in items.items()) or "(none)"
    return textwrap.wrap(f"{label} {text}", width=116, initial_indent="  ", subsequent_indent="    ")


def _report_lines(value: Any, indent: str) -> list[str]:
    if isinstance(value, Mapping):
        if not value:
            return [f"{indent}(empty)"]
        width = max(len(str(k)) for k in value)
        return [f"{indent}{str(k).ljust(width)}  {v!r}" for k, v in value.items()]
    return [f"{indent}{value!r}"]


def format_description(info: Mapping[str, Any]) -> str:
    """The text ``serflow models describe`` prints."""
    reads = ", ".join(f"{s} ({info['dims'][s]})" if s in info["dims"] else s for s in info["features"])
    out = [
        f"{info['model']}: {info['description']}",
        f"  family {info['family']}, {info['paper_row'] or 'no paper row'}: {info['paper']}",
        f"  reads {reads}; {info['outputs']} outputs; built on the meta device (no data, no weights read)",
    ]
    out += [f"  note: {note}" for note in info["notes"]]
    out += ["", "hyperparameters"]
    by_source: dict[str, dict[str, Any]] = {}
    for key, entry in info["hparams"].items():
        by_source.setdefault(entry["from"], {})[key] = entry["value"]
    for source in ("variant", "config", "--set", "dims"):
        if source in by_source:
            out += _wrapped(f"{source}:", by_source[source])
    out += _wrapped("defaults:", info["defaults"])

    tree = info["architecture"]
    width = max(len(node["line"]) for node in tree)
    out += ["", "architecture".ljust(width) + "  parameters"]
    out += [
        f"  {node['line'].ljust(width)}  {'' if node['parameters'] is None else format(node['parameters'], ','):>12}"
        for node in tree
    ]

    params = info["parameters"]
    rows = params["by_module_detail"]
    width = max([len("module"), *map(len, rows)])
    out += ["", f"{'parameters'.ljust(width + 2)}  {'trainable':>12}  {'frozen':>12}  {'total':>12}"]
    for name, row in rows.items():
        t, f = row["trainable"], row["frozen"]
        out.append(f"  {name.ljust(width)}  {t:>12,}  {f:>12,}  {t + f:>12,}")
    out.append(f"  {'total'.ljust(width)}  {params['trainable']:>12,}  {params['frozen']:>12,}  {params['total']:>12,}")

    reports = dict(info["reports"])
    counts = reports.pop("parameter_counts", None)
    if counts:
        helper = counts.pop("helper")
        kinds = list(next(iter(counts.values())))
        width = max(len(part) for part in counts)
        keras = " (keras: each LSTM with one bias vector, as Keras counts it)" if "keras" in kinds else ""
        out += ["", f"{helper}(){keras}"]
        out.append(f"  {'part'.ljust(width)}" + "".join(f"  {kind:>12}" for kind in kinds))
        out += [f"  {part.ljust(width)}" + "".join(f"  {c[k]:>12,}" for k in kinds) for part, c in counts.items()]
    for title, value in reports.items():
        out += ["", title, *_report_lines(value, "  ")]
    return "\n".join(out) + "\n"
