"""Corpus readers (IEMOCAP, TESS), the manifest schema, folds and the synthetic demo corpus."""
