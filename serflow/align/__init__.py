"""Forced alignment: word and phone timestamps for every utterance, behind one interface.

Backends (``mfa``, ``kaldi``, ``iemocap``) all return an :class:`~serflow.align.types.AlignResult`;
the workflow turns that into ``words.parquet`` / ``phones.parquet`` and the CLI into MFA-style
TextGrids.
"""
