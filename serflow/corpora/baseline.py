"""How separable is a corpus? Linear baselines on audio, text and both.

Why: a demo corpus is only useful for multimodal claims if neither modality alone solves it and
fusion adds something. These numbers (logistic regression on pooled MFCCs, TF-IDF on transcripts,
and the two concatenated; folds grouped by speaker) say which regime a corpus is in, cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

SAMPLE_RATE = 16000
N_MFCC = 40
N_FOLDS = 5


def mfcc_stats(path: str | Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """MFCC-120 (40 MFCC + delta + delta-delta), mean and std over frames: a 240-dim vector."""
    import librosa

    y, _ = librosa.load(str(path), sr=sr)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC)
    width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2))  # delta needs an odd width <= frames
    if width >= 3:
        d1 = librosa.feature.delta(mfcc, width=width)
        d2 = librosa.feature.delta(mfcc, order=2, width=width)
    else:
        d1 = d2 = np.zeros_like(mfcc)
    feats = np.vstack([mfcc, d1, d2])
    return np.concatenate([feats.mean(axis=1), feats.std(axis=1)]).astype(np.float64)


C = 10.0


def _classifier(seed: int) -> LogisticRegression:
    # Balanced class weights: UA (mean recall) is the reported metric and the classes are imbalanced.
    return LogisticRegression(max_iter=5000, C=C, class_weight="balanced", random_state=seed)


def _fold_blocks(
    audio: np.ndarray, texts: np.ndarray, train: np.ndarray, test: np.ndarray
) -> dict[str, tuple[sparse.csr_matrix | np.ndarray, sparse.csr_matrix | np.ndarray]]:
    """Train/test matrices per model, fitted on the training fold only.

    Both blocks are scaled to a unit expected row norm (standardised audio divided by the square root
    of its width; TF-IDF rows are L2-normalised), so that neither modality dominates the shared L2
    penalty once they are concatenated, and each single-modality model sees exactly its fused block.
    """
    scaler = StandardScaler().fit(audio[train])
    width = np.sqrt(audio.shape[1])
    a_train, a_test = scaler.transform(audio[train]) / width, scaler.transform(audio[test]) / width
    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    t_train, t_test = tfidf.fit_transform(texts[train]), tfidf.transform(texts[test])
    return {
        "audio": (a_train, a_test),
        "text": (t_train, t_test),
        "fusion": (
            sparse.hstack([sparse.csr_matrix(a_train), t_train]).tocsr(),
            sparse.hstack([sparse.csr_matrix(a_test), t_test]).tocsr(),
        ),
    }


def _fold_scores(
    audio: np.ndarray, texts: Sequence[str], y: np.ndarray, groups: np.ndarray, seed: int
) -> dict[str, list[float]]:
    """Per-fold UA of the audio, text and concatenated models on the same speaker-grouped folds."""
    scores: dict[str, list[float]] = {"audio": [], "text": [], "fusion": []}
    n_folds = min(N_FOLDS, len(np.unique(groups)))
    text_arr = np.asarray(texts, dtype=object)
    for train, test in GroupKFold(n_splits=n_folds).split(audio, y, groups):
        for name, (x_train, x_test) in _fold_blocks(audio, text_arr, train, test).items():
            pred = _classifier(seed).fit(x_train, y[train]).predict(x_test)
            scores[name].append(float(balanced_accuracy_score(y[test], pred)))
    return scores


def linear_baseline(manifest: pd.DataFrame, seed: int = 0) -> dict:
    """Unweighted accuracy of linear models on audio, text and both, 5 folds grouped by speaker.

    Uses the rows with a non-null ``label``; needs the columns ``speaker``, ``audio_path``, ``label``
    and ``transcript``. Returns the mean UA per modality (``audio_ua``, ``text_ua``, ``fusion_ua``),
    the per-fold values, ``chance`` (1 / number of classes), the classes and the row count.
    """
    missing = {"speaker", "audio_path", "label", "transcript"} - set(manifest.columns)
    if missing:
        raise KeyError(f"manifest lacks columns {sorted(missing)}")
    df = manifest[manifest["label"].notna()].reset_index(drop=True)
    if df["speaker"].nunique() < 2:
        raise ValueError("need at least two speakers for speaker-grouped folds")
    audio = np.vstack([mfcc_stats(p) for p in df["audio_path"]])
    y = df["label"].astype(str).to_numpy()
    classes = sorted(set(y))
    scores = _fold_scores(audio, df["transcript"].fillna("").astype(str).tolist(), y, df["speaker"].to_numpy(), seed)
    result: dict = {
        "n": len(df),
        "classes": classes,
        "chance": 1.0 / len(classes),
        "folds": len(scores["audio"]),
    }
    for name, values in scores.items():
        result[f"{name}_ua"] = float(np.mean(values))
        result[f"{name}_ua_folds"] = values
    return result


def synthetic_manifest(root: str | Path, utterances: int, seed: int, preset: str = "moderate") -> pd.DataFrame:
    """The manifest of a generated synthetic corpus, from the generator's own plan (no parsing).

    For measuring the generator itself; the pipeline reads the tree with the IEMOCAP reader. The
    label column holds the 4-class label (exc merged into hap, other labels null).
    """
    from serflow.corpora.synth.corpus import iter_plan_rows, plan_corpus

    return pd.DataFrame(list(iter_plan_rows(plan_corpus(utterances, seed, preset), Path(root))))
