"""The trainer and evaluation shared by every model: one design, whatever the model reads.

A model (:mod:`serflow.models`) says which feature stores it reads and how its batch is laid out; this
package does the rest, the same way for all of them:

- :mod:`~serflow.train.config`: the ``train:`` and ``models:`` config sections, the per-corpus override,
  and how a model's hyperparameters are assembled (config + feature dims measured from the stores);
- :mod:`~serflow.train.data`: loading the stores for one fold, dropping (with the reason) utterances a
  store lacks or ``prepare()`` refuses;
- :mod:`~serflow.train.loop`: seeded training with Adam, Keras-style lr decay, early stopping and model
  selection on the validation split only;
- :mod:`~serflow.train.metrics`: WA, UA, macro-F1, per-class recall, confusion;
- :mod:`~serflow.train.checkpoint`: safetensors checkpoints with a JSON of their config and metrics;
- :mod:`~serflow.train.run`: one fold job (all seeds) and the per-model results file.

The results schema is in ``docs/results.md``. Importing this package does not import torch; the modules
that need it do.
"""

from serflow.train.config import (
    OptimSettings,
    TrainSettings,
    check_hparams,
    dim_hparams,
    family_settings,
    merge_train_config,
)
from serflow.train.metrics import classification_metrics, confusion_matrix

__all__ = [
    "OptimSettings",
    "TrainSettings",
    "check_hparams",
    "classification_metrics",
    "confusion_matrix",
    "dim_hparams",
    "family_settings",
    "merge_train_config",
]
