from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.config import FrontEndConfig
from models.errors import AudioError
from models.frontend import frame_times, load_audio, make_frontend

CONFIG = FrontEndConfig()


def _wav(path: Path, y: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    sf.write(path, y, sr, subtype=subtype)
    return path


def test_decodes_resamples_and_mixes_to_mono(tmp_path: Path):
    t = np.arange(44100 * 2) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1) * 0.5
    y = load_audio(_wav(tmp_path / "a.wav", stereo, 44100), sr=16000)
    assert y.dtype == np.float32 and y.ndim == 1 and abs(y.size - 32000) <= 1
    assert np.sqrt(np.mean(y**2)) == pytest.approx(0.25 / np.sqrt(2), rel=0.05)
    from_bytes = load_audio((tmp_path / "a.wav").read_bytes(), sr=16000)
    np.testing.assert_array_equal(y, from_bytes)


def test_features_have_one_row_per_0_96_s():
    y = np.random.default_rng(0).normal(size=16000 * 10).astype(np.float32) * 0.1
    features = make_frontend(CONFIG)(y)
    assert features.shape == (10, 3 * CONFIG.n_mels) and np.isfinite(features).all()
    np.testing.assert_allclose(frame_times(3, CONFIG), [0.48, 1.44, 2.40])


def test_louder_and_brighter_audio_moves_the_features():
    t = np.arange(16000 * 3) / 16000
    sine = np.sin(2 * np.pi * 220 * t).astype(np.float32)
    square = np.sign(sine).astype(np.float32)
    frontend, n = make_frontend(CONFIG), CONFIG.n_mels
    quiet, loud, bright = frontend(0.05 * sine), frontend(0.5 * sine), frontend(0.5 * square)
    assert loud[:, :n].max() > quiet[:, :n].max() + 2  # log-mel energy rises with level
    assert bright[:, n // 2 : n].mean() > loud[:, n // 2 : n].mean() + 1  # upper bands fill with harmonics


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "empty|cannot decode"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)), "cannot decode"),
        (lambda p: _wav(p, np.full(20000, np.nan), 16000, "FLOAT"), "NaN"),
        (lambda p: _wav(p, np.zeros(8000), 16000), "need at least 0.96 s"),
        (lambda p: p.write_bytes(b"RIFF\xff\xff\xff\xffWAVEfmt " + bytes(30)), "cannot decode"),
    ],
    ids=["empty", "random-bytes", "nan", "too-short", "lying-header"],
)
def test_bad_audio_raises_a_domain_error_naming_the_file(tmp_path: Path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message) as error:
        load_audio(path, sr=16000)
    assert "bad.wav" in str(error.value)


def test_missing_file_and_empty_upload():
    with pytest.raises(AudioError, match="not found"):
        load_audio("/nonexistent/x.wav", sr=16000)
    with pytest.raises(AudioError, match="upload: the file is empty"):
        load_audio(b"", sr=16000)


def test_feature_sizes_come_from_the_front_end_config():
    from typing import get_args

    from models.config import FEATURE_SIZES, FrontEndName, ModelConfig
    from models.frontend import PRESETS, LogMelFrontEnd, frontend_config

    assert set(get_args(FrontEndName)) == set(PRESETS) == set(FEATURE_SIZES)
    logmel = frontend_config("logmel")
    assert ModelConfig().feature_size == logmel.n_features == LogMelFrontEnd(logmel).n_features == 3 * 64
    musicnn = ModelConfig().with_frontend(frontend_config("musicnn-msd-pool"))
    assert musicnn.feature_size == 953 and ModelConfig.from_dict(musicnn.to_dict()) == musicnn


def test_a_key_front_end_appends_key_and_tempo_to_its_base_frames():
    from models.frontend import frontend_config, make_frontend
    from tests.models.test_harmony import A_MINOR, progression

    y = progression(A_MINOR)
    keyed = make_frontend(frontend_config("student-msd-tags-key"))
    base = make_frontend(frontend_config("student-msd-tags"))(y)
    frames = keyed(y)
    assert frames.shape == (base.shape[0], 253) == (base.shape[0], keyed.n_features)
    assert np.allclose(frames[:, :250], base) and (frames[:, 250] < 0).all()  # A minor leans minor


def test_a_chords_front_end_appends_the_key_relative_chord_shares_to_its_base_frames():
    from models.frontend import frontend_config, make_frontend
    from tests.models.test_harmony import A_MINOR, progression

    y = progression(A_MINOR)
    chorded = make_frontend(frontend_config("musicnn-msd-tags-chords"))
    base = make_frontend(frontend_config("musicnn-msd-tags"))(y)
    frames = chorded(y)
    assert frames.shape == (base.shape[0], 275) == (base.shape[0], chorded.n_features)
    assert np.allclose(frames[:, :250], base) and np.allclose(frames[:, 250:].sum(axis=1), 1.0, atol=1e-5)
    # i iv V i: each frame's largest share is one of them (after the no-chord share and the 12 major triads come
    # the minor ones, each index 1 + 12 * quality + interval from the tonic)
    i, iv, v = 1 + 12 + 0, 1 + 12 + 5, 1 + 7
    assert set(frames[:, 250:].argmax(axis=1)) == {i, iv, v}


def test_hear_gives_the_front_ends_frames_and_the_tonality_the_service_stores():
    from models.frontend import frontend_config, hear, make_frontend
    from models.harmony import PITCHES, tonality
    from tests.models.test_harmony import A_MINOR, progression

    y = progression(A_MINOR)
    for name in ("musicnn-msd-tags-chords", "musicnn-msd-tags"):  # one chroma shared, and none to share
        frontend = make_frontend(frontend_config(name))
        frames, heard = hear(frontend, y)
        assert np.allclose(frames, frontend(y), atol=1e-6)
        assert heard == tonality(y, frontend.config.sr)
        assert (PITCHES[heard.key.tonic], heard.key.mode) == ("A", "minor")
