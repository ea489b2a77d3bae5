"""Acoustic feature extractors against independent references, and their batch, error and loading contracts.

What is checked, and to what tolerance (the observed differences are 10-100x smaller):

* ``logmel64``, ``gban52``, ``mfcc120``: against librosa computed directly from the documented
  definition (``melspectrogram`` / ``power_to_db`` / ``mfcc`` / ``delta``), on synthetic speech and on
  a chirp in noise. Log-mel: |diff| < 1e-3 dB for bins within 60 dB of the utterance's peak and
  < 1e-2 dB everywhere (float32 rounding grows relative to very small powers). MFCC / deltas:
  |diff| < 2e-3 absolute (values reach several hundred).
* ``mfcc39``: openSMILE compared with itself proves nothing, so: (1) frame count
  ``floor((n - 400) / 240) + 1`` (a 3.12 s clip gives 207 frames); (2) c0..c12 against an independent
  numpy HTK-style MFCC on the same framing (16-bit input scale, per-frame pre-emphasis 0.97, Hamming,
  |FFT 512|, 26 HTK mel bands ``librosa.filters.mel(htk=True, norm=None)``, natural log, DCT with
  HTK's sqrt(2/N) scaling, lifter 22): correlation over frames > 0.999 for every coefficient and
  |diff| < 0.5 (the two mel filterbanks differ slightly in how bin edges are rounded); (3) deltas are
  exactly the +-2-frame regression of the statics with edge replication, accelerations the regression
  of the deltas except for openSMILE's last two frames; (4) the .conf's own defaults equal the Python
  defaults; (5) a changed param reaches openSMILE.
* Batch path == single path, bit for bit, with frame counts equal to ``frame_count``; too-short,
  non-finite and malformed input raise :class:`FeatureError`; repeated runs give identical bytes;
  stereo 44.1 kHz files are down-mixed, resampled and recorded by ``load_audio``.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

librosa = pytest.importorskip("librosa")
pytest.importorskip("torch")

from serflow.features import load_audio  # noqa: E402
from serflow.features.acoustic import (  # noqa: E402
    EXTRACTORS,
    MFCC39_CONFIG,
    Extractor,
    FeatureError,
    Gban52,
    LogMel64,
    Mfcc39,
    Mfcc120,
    Waveform,
    get_extractor,
)
from serflow.features.audio import AudioError  # noqa: E402

SR = 16000


def _chirp(seconds: float, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """A rising tone in noise: every band carries energy, no digital silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    tone = np.sin(2 * np.pi * (150 + 40 * seed) * t * (1 + 0.8 * t))
    return (level * tone + 0.03 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """About 3.8 s of espeak-ng speech at 16 kHz (it has pauses: near-silent frames included)."""
    from serflow.corpora.synth.espeak import synthesize

    x, rate = synthesize("The quick brown fox jumps over the lazy dog, and then it rests.", seed=1)
    return soxr.resample(x, rate, SR).astype(np.float32)


@pytest.fixture(scope="module")
def signals(speech: np.ndarray) -> list[np.ndarray]:
    quiet_start = speech.copy()
    quiet_start[: speech.size // 2] *= 1e-5  # mfcc120's per-utterance top_db clipping bites here
    return [speech, _chirp(2.0, 1), quiet_start, _chirp(0.7, 2)]


# --------------------------------------------------------------------------------------------------
# references


def _librosa_logmel64(y: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=512, hop_length=160, pad_mode="reflect", n_mels=64, fmin=50, fmax=8000
    )
    return librosa.power_to_db(mel, top_db=None).T


def _librosa_gban52(y: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=512, win_length=400, hop_length=160, window="hamming", n_mels=26, fmax=6500
    )
    logmel = librosa.power_to_db(mel, top_db=None)
    mfcc = librosa.feature.mfcc(S=logmel, n_mfcc=13)
    return np.vstack([logmel, mfcc, librosa.feature.delta(mfcc)]).T


def _librosa_mfcc120(y: np.ndarray) -> np.ndarray:
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=40, n_fft=400, hop_length=160, n_mels=40)
    return np.vstack([mfcc, librosa.feature.delta(mfcc), librosa.feature.delta(mfcc, order=2)]).T


def _htk_mfcc13(y: np.ndarray) -> np.ndarray:
    """HTK-style c0..c12 on openSMILE's framing, written from the HTK book's definitions."""
    x = np.clip(y, -1.0, 32767 / 32768).astype(np.float64) * 32768.0
    size, step = 400, 240
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[::step]
    emphasised = np.concatenate([frames[:, :1] * (1 - 0.97), frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1)
    magnitude = np.abs(np.fft.rfft(emphasised * np.hamming(size), 512))
    bank = librosa.filters.mel(sr=SR, n_fft=512, n_mels=26, fmin=0.0, fmax=8000.0, htk=True, norm=None)
    logmel = np.log(np.maximum(magnitude @ bank.T, 1e-8))
    n = np.arange(26)
    dct = np.sqrt(2 / 26) * np.cos(np.pi * np.arange(13)[:, None] * (n[None, :] + 0.5) / 26)
    lifter = 1 + 11 * np.sin(np.pi * np.arange(13) / 22)
    return (logmel @ dct.T) * lifter


def _regression(c: np.ndarray, half: int = 2) -> np.ndarray:
    """HTK delta regression over +-half frames, edge frames replicated."""
    padded = np.pad(c, ((half, half), (0, 0)), mode="edge")
    t = len(c)
    num = sum(k * (padded[half + k : half + k + t] - padded[half - k : half - k + t]) for k in range(1, half + 1))
    return num / (2 * sum(k * k for k in range(1, half + 1)))


# --------------------------------------------------------------------------------------------------
# registry


def test_registry_and_params() -> None:
    assert set(EXTRACTORS) == {"mfcc39", "gban52", "logmel64", "mfcc120", "waveform"}
    dims = {"mfcc39": 39, "gban52": 52, "logmel64": 64, "mfcc120": 120, "waveform": 1}
    for name, cls in EXTRACTORS.items():
        ex = get_extractor(name)
        assert isinstance(ex, cls) and isinstance(ex, Extractor)
        assert ex.name == name
        assert ex.dims == dims[name]
        assert ex.params["sample_rate"] == SR
        assert type(ex)(**ex.params).params == ex.params  # params are complete: they rebuild the extractor
    assert get_extractor("logmel64", n_mels=32).dims == 32
    assert get_extractor("mfcc39", n_ceps=12).dims == 36
    with pytest.raises(ValueError, match="unknown feature extractor 'mfcc13'"):
        get_extractor("mfcc13")
    with pytest.raises(TypeError):
        get_extractor("logmel64", nfft=1024)
    with pytest.raises(ValueError, match="whole number of samples"):
        Mfcc39(frame_step_s=0.01501)


# --------------------------------------------------------------------------------------------------
# agreement with the references


def test_logmel64_matches_librosa(signals: list[np.ndarray]) -> None:
    ex = LogMel64()
    for y in signals[:2]:
        ours, ref = ex.extract(y), _librosa_logmel64(y)
        assert ours.dtype == np.float32 and ours.shape == ref.shape == (1 + y.size // 160, 64)
        loud = ref > ref.max() - 60
        assert np.abs(ours - ref)[loud].max() < 1e-3
        assert np.abs(ours - ref).max() < 1e-2


def test_gban52_matches_librosa(signals: list[np.ndarray]) -> None:
    ex = Gban52()
    for y in signals[:2]:
        ours, ref = ex.extract(y), _librosa_gban52(y)
        assert ours.shape == ref.shape == (1 + y.size // 160, 52)
        logmel, ref_logmel = ours[:, :26], ref[:, :26]
        assert np.abs(logmel - ref_logmel)[ref_logmel > ref_logmel.max() - 60].max() < 1e-3
        assert np.abs(ours - ref).max() < 2e-3


def test_mfcc120_matches_librosa(signals: list[np.ndarray]) -> None:
    ex = Mfcc120()
    for y in signals[:3]:  # the third has its first half 100 dB down: top_db clipping is active
        ours, ref = ex.extract(y), _librosa_mfcc120(y)
        assert ours.shape == ref.shape == (1 + y.size // 160, 120)
        assert np.abs(ours - ref).max() < 2e-3
    shortest = _chirp(ex.min_samples / SR, 3)  # exactly one delta window of frames: all edge handling
    assert np.abs(ex.extract(shortest) - _librosa_mfcc120(shortest)).max() < 2e-3


def test_mfcc39_frames_cepstra_and_deltas() -> None:
    ex = Mfcc39()
    y = _chirp(3.12, 4)
    feats = ex.extract(y)
    assert feats.shape == (207, 39) == (ex.frame_count(y.size), ex.dims)
    assert ex.frame_count(y.size) == (y.size - 400) // 240 + 1

    statics, deltas, accels = feats[:, :13].astype(np.float64), feats[:, 13:26], feats[:, 26:]
    ref = _htk_mfcc13(y)
    assert ref.shape == statics.shape
    for k in range(13):  # column k is c_k (openSMILE's c1..c12, c0 order is undone)
        assert np.corrcoef(ref[:, k], statics[:, k])[0, 1] > 0.999, k
    assert np.abs(ref - statics).max() < 0.5

    assert np.abs(deltas - _regression(statics)).max() < 1e-4
    assert np.abs(accels - _regression(deltas.astype(np.float64)))[:-2].max() < 1e-4


def test_mfcc39_conf_defaults_and_params() -> None:
    import opensmile

    y = _chirp(1.0, 5)
    ex = Mfcc39()
    bare = opensmile.Smile(feature_set=str(MFCC39_CONFIG), feature_level="mfcc39")  # the .conf's own defaults
    raw = bare(np.clip(y, -1, 32767 / 32768), SR)[0]
    assert np.array_equal(ex.extract(y), np.ascontiguousarray(raw[ex._columns].T))

    faster = Mfcc39(frame_step_s=0.01, delta_window=3)
    assert faster.extract(y).shape == (faster.frame_count(y.size), 39) == ((16000 - 400) // 160 + 1, 39)
    np.testing.assert_allclose(faster.frame_times(2), [0.0125, 0.0225])


def test_waveform_is_the_signal() -> None:
    y = _chirp(0.5, 6)
    out = Waveform().extract(y)
    assert out.shape == (y.size, 1) and out.dtype == np.float32
    assert np.array_equal(out[:, 0], y)
    assert not np.shares_memory(out, y)


# --------------------------------------------------------------------------------------------------
# batch path, errors, determinism


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_batch_equals_single(name: str, signals: list[np.ndarray]) -> None:
    ex = get_extractor(name)
    batch_in = [*signals, _chirp(ex.min_samples / SR + 1e-9, 7), signals[1][:12345]]
    batch = ex.extract_batch(batch_in)
    assert len(batch) == len(batch_in)
    for y, got in zip(batch_in, batch, strict=True):
        single = ex.extract(y)
        assert got.shape == single.shape == (ex.frame_count(y.size), ex.dims)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        assert np.array_equal(got, single)
    assert ex.extract_batch([]) == []


def test_batch_chunking_does_not_change_values(signals: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    whole = Mfcc120().extract_batch(signals)
    monkeypatch.setattr(Mfcc120, "batch_samples", 1)  # one signal per STFT call
    for a, b in zip(whole, Mfcc120().extract_batch(signals), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_too_short_raises(name: str) -> None:
    ex = get_extractor(name)
    need = ex.min_samples
    ok = _chirp(1.0, 8)[:need]
    assert ex.extract(ok).shape == (ex.frame_count(need), ex.dims)
    with pytest.raises(FeatureError, match=rf"signal too short: {need - 1} samples .* at least {need}") as err:
        ex.extract(ok[:-1])
    assert err.value.index is None
    with pytest.raises(FeatureError) as err:
        ex.extract_batch([ok, ok[:-1]])
    assert err.value.index == 1
    assert ex.frame_count(need) >= 1


def test_min_samples_are_one_window_and_one_delta_window() -> None:
    assert Mfcc39().min_samples == 400
    assert LogMel64().min_samples == 512
    assert Gban52().min_samples == Mfcc120().min_samples == 8 * 160  # 9 frames for the width-9 delta
    assert Waveform().min_samples == 1


def test_bad_input_raises() -> None:
    ex = LogMel64()
    y = _chirp(0.5, 9)
    bad = y.copy()
    bad[100] = np.nan
    with pytest.raises(FeatureError, match="NaN or infinite samples"):
        ex.extract(bad)
    bad[100] = np.inf
    with pytest.raises(FeatureError, match="NaN or infinite samples"):
        Mfcc39().extract(bad)
    with pytest.raises(FeatureError, match="1-D mono"):
        ex.extract(np.stack([y, y]))
    with pytest.raises(FeatureError, match="float samples"):
        ex.extract((y * 32767).astype(np.int16))


def test_nonfinite_output_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    ex = Waveform()
    monkeypatch.setattr(Waveform, "_compute", lambda self, s: [np.full((x.size, 1), np.nan, np.float32) for x in s])
    with pytest.raises(FeatureError, match="features contain NaN or infinite values"):
        ex.extract(_chirp(0.1))


def test_full_scale_input_does_not_wrap_in_opensmile() -> None:
    y = _chirp(1.0, 10)
    loud = np.clip(y * 10, -1.0, 1.0)  # samples at exactly +-1.0
    feats = Mfcc39().extract(loud)
    assert np.isfinite(feats).all() and feats.shape == (Mfcc39().frame_count(loud.size), 39)


@pytest.mark.parametrize("name", ["logmel64", "mfcc39", "mfcc120", "gban52"])
def test_deterministic(name: str, signals: list[np.ndarray]) -> None:
    first = get_extractor(name).extract_batch(signals)
    second = get_extractor(name).extract_batch(signals)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, second, strict=True))


def test_frame_times() -> None:
    np.testing.assert_allclose(LogMel64().frame_times(3), [0.0, 0.01, 0.02])
    np.testing.assert_allclose(Mfcc39().frame_times(3), [0.0125, 0.0275, 0.0425])
    np.testing.assert_allclose(Waveform().frame_times(2), [0.0, 1 / SR])


# --------------------------------------------------------------------------------------------------
# loading


def test_load_audio_downmixes_and_resamples(tmp_path, speech: np.ndarray) -> None:
    rate = 44100
    mono = soxr.resample(speech, SR, rate).astype(np.float32) * 0.5
    stereo = np.stack([mono, mono * 0.5], axis=1)
    path = tmp_path / "stereo44.wav"
    sf.write(path, stereo, rate, subtype="PCM_16")

    y, info = load_audio(path)
    assert info == {"downmixed_from": 2, "resampled_from": 44100}
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - mono.size * SR / rate) <= 1
    stored, _ = sf.read(path, dtype="float32")
    expected = soxr.resample(stored.mean(axis=1, dtype=np.float32), rate, SR)
    np.testing.assert_allclose(y, expected, atol=1e-6)
    # and the converted signal is usable by every extractor
    assert LogMel64().extract(y).shape == (1 + y.size // 160, 64)

    same = tmp_path / "mono16.wav"
    sf.write(same, speech, SR, subtype="FLOAT")
    y16, info16 = load_audio(same)
    assert info16 == {} and np.array_equal(y16, speech)

    y8, info8 = load_audio(same, sr=8000)
    assert info8 == {"resampled_from": 16000} and abs(y8.size - speech.size / 2) <= 1


def test_load_audio_errors(tmp_path) -> None:
    with pytest.raises(AudioError, match="missing"):
        load_audio(tmp_path / "nope.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all")
    with pytest.raises(AudioError, match="unreadable"):
        load_audio(junk)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), SR)
    with pytest.raises(AudioError, match="no samples"):
        load_audio(empty)
