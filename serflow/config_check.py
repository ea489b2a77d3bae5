"""The workflow's config against ``config/schema.yaml``: values coerced to the schema's types, errors in one line.

Two things Snakemake's own ``validate`` does not do:

* **Coercion.** ``snakemake --config 'train={"threads": 4}'`` parses the value with YAML's *base* loader, so
  every value nested inside arrives as a string (``"4"``) and fails the schema with "'4' is not of type
  'integer'". :func:`coerce` walks the config beside the schema and, where the schema does not accept a string
  but does accept an integer, number, boolean or null, converts a string that reads as one. A string where the
  schema wants a string is never touched. (``--configfile`` with a YAML file has no such problem.)
* **One clear line per error.** :func:`check` reports the most relevant schema error as
  ``config key <dotted.path>: <what is wrong>``, naming the closest valid key for a misspelt one, instead of
  Snakemake's dump of the whole schema.

``rules/common.smk`` runs both before Snakemake's ``validate`` (which then fills the defaults).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"
_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class ConfigError(ValueError):
    """The config does not match the schema; the message is one line naming the key."""


def load_schema(path: str | Path = SCHEMA) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, got {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _types(node: Mapping[str, Any]) -> set[str]:
    if "type" in node:
        kind = node["type"]
        return set(kind) if isinstance(kind, list) else {kind}
    if "enum" in node:
        return {_json_type(v) for v in node["enum"]}
    return set()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _convert(text: str, types: set[str]) -> Any:
    """``text`` as the first of ``types`` it reads as, or ``text`` itself."""
    lowered = text.strip().lower()
    if "null" in types and lowered in ("null", "~", "none"):
        return None
    if "boolean" in types and lowered in ("true", "false"):
        return lowered == "true"
    if "integer" in types and _INT.match(text.strip()):
        return int(text)
    if "number" in types and _FLOAT.match(text.strip()):
        return float(text)
    return text


def coerce(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """``value`` with strings converted where the schema wants a number, boolean or null (see module docstring)."""
    root = root if root is not None else schema
    node = _resolve(schema, root)
    if isinstance(value, str):
        types = _types(node)
        if types and "string" not in types:
            return _convert(value, types)
        return value
    if isinstance(value, Mapping):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, Mapping) else None)
            out[key] = coerce(item, sub, root) if sub is not None else item
        return out
    if isinstance(value, list) and isinstance(node.get("items"), Mapping):
        return [coerce(item, node["items"], root) for item in value]
    return value


def _dotted(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _allowed_keys(error: Any) -> list[str]:
    return sorted(error.schema.get("properties", {}))


def describe(error: Any) -> str:
    """One line for a ``jsonschema`` error: the dotted key, the bad value, what was expected."""
    where = _dotted(error.absolute_path)
    if error.validator == "additionalProperties":
        unexpected = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = _allowed_keys(error)
        lines = []
        for key in unexpected:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            prefix = f"{where}." if error.absolute_path else ""
            lines.append(f"config key {prefix}{key} is unknown{hint} (valid keys there: {', '.join(allowed)})")
        return "; ".join(lines)
    if error.validator == "required":
        return f"config key {where}: {error.message}"
    return f"config key {where} = {error.instance!r}: {error.message}"


def check(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` with one line for the most relevant schema violation of ``config``."""
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema)
    errors = list(validator_cls(schema).iter_errors(config))
    if not errors:
        return
    best = jsonschema.exceptions.best_match(errors)
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    raise ConfigError(describe(best) + more)
