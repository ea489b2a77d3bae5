"""Whisper transcription: locating models, two interchangeable backends, sharded runs and WER."""
