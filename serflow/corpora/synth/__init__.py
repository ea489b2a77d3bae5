"""Synthetic emotional speech written in IEMOCAP's own layout (the built-in demo corpus)."""
