"""The feature jobs: from the manifest and the alignment to the stores of :mod:`serflow.shards`.

One module per kind of job (the workflow scripts are thin wrappers around them), so each store's code identity
covers only the code that writes it (:mod:`serflow.provenance`):

* :mod:`.acoustic` / :mod:`.transformer`: one shard of utterances (a contiguous block of the labelled utterances in
  ``utt_id`` order), written as ``shard-NNNNN.safetensors`` plus its record ``parts/shard-NNNNN.json`` (the sha256
  the job wrote) and two small Parquet parts (``parts/utterances-NNNNN``, ``parts/dropped-NNNNN``);
* :mod:`.finalize`: verifies every shard against the hash its job recorded (never re-certifies what is on disk),
  merges the parts and writes ``index.parquet`` and, last, ``manifest.json``;
* :mod:`.glove`, :mod:`.word_ids`, :mod:`.bert_tokens` and :mod:`.spans`: a whole store in one job (vectorised,
  seconds for IEMOCAP).

Nothing is lost silently: every labelled utterance of the manifest is either stored or listed in the store's
``dropped.parquet`` with the reason (unreadable audio, too short for one frame, no aligned words, non-finite
features, ...), and the manifest's ``meta.counts`` reconciles ``selected = stored + dropped``.
"""
