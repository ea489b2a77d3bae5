"""The manifest: one row per labelled utterance, the table every later stage starts from.

Readers return a :class:`ReadResult`: the manifest plus the quarantine list (``issues``). Nothing a
reader sees is dropped silently: every labelled utterance is either a manifest row or an issue row
with ``action == "dropped"``, so ``labelled == len(manifest) + n_dropped`` always reconciles. Other
actions: ``repaired`` (kept, with what was fixed), ``noted`` (kept as it is, but odd: an empty
transcript), ``skipped`` (a stray file, e.g. a copy of a label
file, that is not part of the corpus: not read, one row per file).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from serflow.io import write_parquet, write_text

MANIFEST_SCHEMA = pa.schema(
    [
        ("utt_id", pa.string()),
        ("session", pa.int32()),
        ("speaker", pa.string()),
        ("gender", pa.string()),
        ("dialog", pa.string()),
        ("improvised", pa.bool_()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("audio_path", pa.string()),
        ("duration", pa.float64()),
        ("sample_rate", pa.int32()),
        ("channels", pa.int32()),
        ("raw_label", pa.string()),
        ("label", pa.string()),
        ("valence", pa.float64()),
        ("arousal", pa.float64()),
        ("dominance", pa.float64()),
        ("transcript", pa.string()),
    ]
)
MANIFEST_COLUMNS = tuple(MANIFEST_SCHEMA.names)
ISSUE_COLUMNS = ("utt_id", "path", "line", "action", "reason")


class CorpusError(ValueError):
    """A corpus cannot be read at all (wrong root, a line that does not parse): the message names the file."""


@dataclass(frozen=True)
class LabelMap:
    """The configured classes and merges: ``label = merge.get(raw, raw)`` if it is a class, else null."""

    labels: tuple[str, ...]
    merge: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.merge.values()) - set(self.labels))
        if unknown:
            raise ValueError(f"merge targets {unknown} are not among the labels {list(self.labels)}")

    @classmethod
    def of(cls, labels: Sequence[str], merge: Mapping[str, str] | None = None) -> LabelMap:
        return cls(tuple(labels), dict(merge or {}))

    def apply(self, raw: str) -> str | None:
        mapped = self.merge.get(raw, raw)
        return mapped if mapped in self.labels else None


class IssueLog:
    """Collects quarantined or repaired utterances with the file, line and reason."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def drop(self, utt_id: str | None, path: Path | str, line: int | None, reason: str) -> None:
        self._add(utt_id, path, line, "dropped", reason)

    def repair(self, utt_id: str | None, path: Path | str, line: int | None, reason: str) -> None:
        self._add(utt_id, path, line, "repaired", reason)

    def note(self, utt_id: str | None, path: Path | str, line: int | None, reason: str) -> None:
        """Something odd that is kept as it is (an empty transcript): listed so it is never a surprise later."""
        self._add(utt_id, path, line, "noted", reason)

    def skip(self, path: Path | str, reason: str) -> None:
        """A file that is not part of the corpus (a stray copy beside the label files): not read, and no turn of
        it is counted, since its turns are not the corpus's."""
        self._add(None, path, None, "skipped", reason)

    def _add(self, utt_id: str | None, path: Path | str, line: int | None, action: str, reason: str) -> None:
        self.rows.append({"utt_id": utt_id, "path": str(path), "line": line, "action": action, "reason": reason})

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=list(ISSUE_COLUMNS))
        df["line"] = df["line"].astype("Int64")
        return df


@dataclass
class ReadResult:
    """What a corpus reader returns."""

    manifest: pd.DataFrame
    issues: pd.DataFrame

    @property
    def n_dropped(self) -> int:
        return int((self.issues["action"] == "dropped").sum())

    def summary(self) -> str:
        m = self.manifest
        labelled = m["label"].notna()
        per_class = m.loc[labelled, "label"].value_counts().sort_index().to_dict()
        n_repaired = int((self.issues["action"] == "repaired").sum())
        n_skipped = int((self.issues["action"] == "skipped").sum())
        skipped = f", {n_skipped} stray file(s) skipped" if n_skipped else ""
        return (
            f"{len(m) + self.n_dropped} labelled utterances read: {len(m)} in the manifest "
            f"({int(labelled.sum())} in the configured classes {per_class}), "
            f"{self.n_dropped} quarantined, {n_repaired} repaired{skipped}; "
            f"{m['speaker'].nunique()} speakers, {m['duration'].sum() / 3600:.2f} h of audio"
        )


def to_table(manifest: pd.DataFrame, label_map: LabelMap, corpus_format: str) -> pa.Table:
    """The manifest as an Arrow table with the fixed schema and the label config in its metadata."""
    ordered = manifest.loc[:, list(MANIFEST_COLUMNS)].sort_values("utt_id", kind="stable")
    table = pa.Table.from_pandas(ordered, schema=MANIFEST_SCHEMA, preserve_index=False)
    meta = {
        b"serflow.format": corpus_format.encode(),
        b"serflow.labels": json.dumps(list(label_map.labels)).encode(),
        b"serflow.merge": json.dumps(dict(label_map.merge), sort_keys=True).encode(),
    }
    return table.replace_schema_metadata(meta)


def write_manifest(
    result: ReadResult, label_map: LabelMap, corpus_format: str, out: Path | str, issues_out: Path | str | None = None
) -> None:
    """Write the manifest Parquet and (always, even when empty) the issues TSV beside it."""
    out = Path(out)
    write_parquet(to_table(result.manifest, label_map, corpus_format), out)
    if issues_out is None:
        issues_out = out.with_name(out.stem + "_issues.tsv")
    write_text(result.issues.to_csv(sep="\t", index=False, lineterminator="\n"), issues_out)


def read_manifest(path: Path | str) -> pd.DataFrame:
    return pd.read_parquet(path)


def describe(manifest: pd.DataFrame) -> str:
    """A human summary of a manifest: utterances, hours, and class counts per session."""
    labelled = manifest[manifest["label"].notna()]
    table = pd.crosstab(labelled["session"], labelled["label"], margins=True, margins_name="all")
    lines = [
        f"{len(manifest)} utterances ({len(labelled)} in the configured classes), "
        f"{manifest['speaker'].nunique()} speakers, {manifest['duration'].sum() / 3600:.2f} h of audio "
        f"({manifest['duration'].mean():.2f} s per utterance)",
        "utterances per session and class:",
        table.to_string(),
    ]
    return "\n".join(lines)
