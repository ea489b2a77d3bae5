"""The offline ``kaldi`` alignment backend: a flat-start monophone GMM-HMM trained on the corpus itself.

For machines without the Montreal Forced Aligner (its Kaldi bindings are not on PyPI): Kaldi's own
GMM-HMM code through the ``kaldi-hmm-gmm`` wheel, in the manner of ``steps/train_mono.sh``, then a
final Viterbi alignment read out as word and phone boundaries.
"""

from .aligner import BACKEND, align_corpus
from .train import TrainConfig

__all__ = ["BACKEND", "TrainConfig", "align_corpus"]
