"""serflow: a reproducible pipeline for multimodal (audio + text) speech emotion recognition."""

__version__ = "0.1.0"
