"""A tiny, randomly initialised RoBERTa, built locally and deterministically, as a test stand-in.

No RoBERTa weights can be had offline here, yet the RoBERTa code path (byte-level BPE offsets,
``<s>``/``</s>`` specials, position ids offset by the padding index) must run in tests exactly as it
would on ``roberta-base``. So we build a 2-layer, 32-wide RoBERTa with a byte-level BPE tokenizer
trained on a fixed list of sentences, save both with ``save_pretrained`` and load them back through
the very same ``from_pretrained`` path the real model takes. Its features are meaningless: the
``config.json`` carries ``"serflow_random_init": true`` so nothing downstream can mistake it for
a trained model. The same seed gives the same bytes, so a cached copy can be rebuilt at will.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

RANDOM_INIT_MARKER = "serflow_random_init"
SEED_KEY = "serflow_seed"
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # RoBERTa's ids 0..4
MAX_LENGTH = 512
_VOCAB_SIZE = 512
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
# Enough text for a few hundred BPE merges; fixed, so the tokenizer (and its bytes) never changes.
TRAINING_SENTENCES = (
    "I can't believe you did that to me.",
    "That's wonderful news, I'm so happy for you!",
    "Get out of my house right now.",
    "I miss her every single day.",
    "Okay, fine, whatever you say.",
    "Why would anybody do something like that?",
    "We have to go, it's already five thirty.",
    "Oh really? Tell me everything about it.",
    "She was tired and sad after the long trip.",
    "He laughed so hard that he started crying.",
    "Listen, I never said that I was angry with you.",
    "The weather is lovely and the children are playing outside.",
    "Please don't shout, the baby is finally asleep.",
    "This is absolutely unbelievable, I'm furious!",
    "Thank you, thank you so much, this means a lot.",
    "I don't know what to think anymore.",
    "Are you serious? That's the best surprise ever.",
    "Nothing ever changes around here, it's so boring.",
    "Excuse me, could you repeat the question?",
    "They were frightened by the noise in the dark hallway.",
)


def build_tiny_roberta(out_dir: str | os.PathLike[str], seed: int = 0) -> Path:
    """Build the tiny random-init RoBERTa into ``out_dir`` and return it; same seed, same bytes.

    The model is written to a temporary sibling and moved into place whole, so a killed build or two
    concurrent jobs never leave a half-written folder. An existing ``out_dir`` is replaced only if it
    is empty or an earlier tiny model: anything else raises rather than being deleted.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not is_random_init(out_dir):
        raise FileExistsError(f"{out_dir} exists and is not a serflow tiny model; refusing to overwrite it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        vocab_size = _save_tokenizer(tmp)
        _save_model(tmp, vocab_size, seed)
        make_shareable(tmp)
        move_into_place(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def ensure_tiny_roberta(out_dir: str | os.PathLike[str], seed: int = 0) -> Path:
    """``out_dir`` holding the tiny RoBERTa for ``seed``: reused when complete, (re)built otherwise."""
    out_dir = Path(out_dir)
    if _is_complete(out_dir) and _config(out_dir).get(SEED_KEY) == seed:
        return out_dir
    return build_tiny_roberta(out_dir, seed)


def is_random_init(model_dir: str | os.PathLike[str]) -> bool:
    """True when ``model_dir`` is a local model whose config carries the random-init marker."""
    return bool(_config(Path(model_dir)).get(RANDOM_INIT_MARKER, False))


def _config(model_dir: Path) -> dict[str, object]:
    try:
        return json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _is_complete(model_dir: Path) -> bool:
    return all((model_dir / name).is_file() for name in _REQUIRED_FILES) and is_random_init(model_dir)


def _save_tokenizer(folder: Path) -> int:
    """Train the byte-level BPE tokenizer on the fixed sentences and save it; returns its vocab size."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=True)
    bpe.train_from_iterator(
        list(TRAINING_SENTENCES),
        vocab_size=_VOCAB_SIZE,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    bos, eos = bpe.token_to_id("<s>"), bpe.token_to_id("</s>")
    bpe.post_processor = RobertaProcessing(("</s>", eos), ("<s>", bos), trim_offsets=True, add_prefix_space=True)
    tokenizer = RobertaTokenizerFast(
        tokenizer_object=bpe._tokenizer,  # the wrapped tokenizers.Tokenizer; the wrapper has no public getter
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        add_prefix_space=True,
        model_max_length=MAX_LENGTH,
    )
    tokenizer.save_pretrained(folder)
    return bpe.get_vocab_size()


def _save_model(folder: Path, vocab_size: int, seed: int) -> None:
    """Initialise the model under ``seed`` (without disturbing the caller's RNG) and save it."""
    import torch
    from transformers import RobertaConfig, RobertaModel

    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH + 2,  # RoBERTa's positions start after the padding index
        type_vocab_size=1,
        pad_token_id=SPECIAL_TOKENS.index("<pad>"),
        bos_token_id=SPECIAL_TOKENS.index("<s>"),
        eos_token_id=SPECIAL_TOKENS.index("</s>"),
    )
    setattr(config, RANDOM_INIT_MARKER, True)
    setattr(config, SEED_KEY, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RobertaModel(config)  # with its pooler, so loading it back initialises nothing at random
    model.save_pretrained(folder)


def make_shareable(folder: Path) -> None:
    """mkdtemp and the safetensors writer create private modes; the model is an ordinary shared artifact."""
    folder.chmod(0o755)
    for item in folder.iterdir():
        item.chmod(0o644)


def move_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename the finished build onto ``out_dir``; if a concurrent build won, keep the winner (same bytes)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    try:
        os.rename(tmp, out_dir)
    except OSError:
        if not _is_complete(out_dir):
            raise
