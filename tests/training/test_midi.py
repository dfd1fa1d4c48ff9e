from pathlib import Path

import numpy as np
import pytest

from models.errors import MidiError, RendererUnavailableError
from tests.conftest import write_midi
from training.corpus.midi import RENDERERS, TAIL, check_renderer, read_midi
from training.corpus.synth import SR


@pytest.fixture
def melody(tmp_path: Path) -> Path:
    # 120 BPM: a beat is 0.5 s. C4 for one beat, E4 for one beat under the pedal (held to beat 4), G4 last.
    return write_midi(tmp_path / "m.mid", [(0, 1, 60), (1, 1, 64), (4, 2, 67)], pedal=(1, 4))


def test_read_midi_times_pitches_and_pedal(melody: Path):
    notes, duration = read_midi(melody)
    assert [n.pitch for n in notes] == [60, 64, 67]
    np.testing.assert_allclose([n.start for n in notes], [0.0, 0.5, 2.0])
    np.testing.assert_allclose([n.end for n in notes], [0.5, 2.0, 3.0])  # E4 held by the pedal until beat 4
    assert duration == pytest.approx(3.0)


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_renderers_give_the_midi_length_plus_tail_at_a_sane_level(melody: Path, renderer: str):
    y, duration = RENDERERS[renderer](melody)
    assert duration == pytest.approx(3.0)
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.size == int((duration + TAIL) * SR)
    rms_db = 20 * np.log10(np.sqrt(np.mean(y**2)))
    assert -45 < rms_db < -6 and np.abs(y).max() <= 1.0
    # Sound where notes play, near-silence well after the last release.
    assert np.abs(y[: SR // 2]).max() > 10 * np.abs(y[-SR // 10 :]).max()


def test_builtin_renderer_is_louder_for_higher_velocity(tmp_path: Path):
    import mido

    quiet = write_midi(tmp_path / "q.mid", [(0, 2, 60)])
    loud = mido.MidiFile(quiet)
    for message in loud.tracks[0]:
        if message.type == "note_on":
            message.velocity = 127
    loud.save(tmp_path / "l.mid")
    levels = [np.sqrt(np.mean(RENDERERS["builtin"](p)[0] ** 2)) for p in (quiet, tmp_path / "l.mid")]
    assert levels[1] > 1.3 * levels[0]


def test_bad_midi_files_are_named(tmp_path: Path):
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06garbage" + bytes(range(40)))
    with pytest.raises(MidiError, match="corrupt.mid"):
        read_midi(corrupt)
    with pytest.raises(MidiError, match="missing.mid: MIDI file not found"):
        read_midi(tmp_path / "missing.mid")
    empty = write_midi(tmp_path / "empty.mid", [])
    with pytest.raises(MidiError, match="empty.mid: the MIDI file holds no notes"):
        read_midi(empty)


def test_unknown_renderer_is_refused():
    with pytest.raises(RendererUnavailableError, match="unknown renderer 'timidity'"):
        check_renderer("timidity")


def test_fluidsynth_absence_asks_for_the_packages(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(RendererUnavailableError, match="apt-get install fluidsynth fluid-soundfont-gm"):
        check_renderer("fluidsynth")


def test_the_varied_renderer_is_reproducible_per_file_and_differs_across_files(tmp_path: Path):
    from training.corpus.midi import production, render_builtin_varied

    notes = [(0, 1, 60), (1, 1, 64), (2, 2, 67)]
    paths = [write_midi(tmp_path / f"piece{i}.mid", notes) for i in range(6)]
    first, again = render_builtin_varied(paths[0])[0], render_builtin_varied(paths[0])[0]
    np.testing.assert_array_equal(first, again)
    renders = [render_builtin_varied(p)[0] for p in paths]
    plain = RENDERERS["builtin"](paths[0])[0]
    # Same notes, other productions: the spectra differ (timbre, transposition, tilt), not only the level.
    spectra = [np.abs(np.fft.rfft(y[: SR * 2])) for y in [plain, *renders]]
    shapes = [s / np.linalg.norm(s) for s in spectra]
    assert all(float(shapes[0] @ s) < 0.98 for s in shapes[1:])
    drawn = [production(seed) for seed in range(40)]
    assert {p.transpose for p in drawn} >= {-3, 0, 3} and len({p.timbres[0] for p in drawn}) >= 6
    assert any(p.band is not None for p in drawn) and any(p.band is None for p in drawn)


def test_reorchestration_changes_programs_and_key_but_not_the_drums(tmp_path: Path):
    import mido

    from training.corpus.fluidsynth import reorchestrate

    source = write_midi(tmp_path / "p.mid", [(0, 1, 60), (1, 1, 64)])
    song = mido.MidiFile(source)
    song.tracks[0].insert(0, mido.Message("note_on", channel=9, note=36, velocity=90, time=0))
    song.tracks[0].insert(1, mido.Message("note_off", channel=9, note=36, velocity=0, time=10))
    song.save(source)
    out = reorchestrate(source, tmp_path / "o.mid", programs={c: 40 + c for c in range(16)}, transpose=2)
    notes, _ = read_midi(out)
    melodic = [n for n in notes if n.channel != 9]
    assert [n.pitch for n in melodic] == [62, 66] and {n.program for n in melodic} == {40 + melodic[0].channel}
    assert [n.pitch for n in notes if n.channel == 9] == [36]


def test_the_fluidsynth_varied_renderer_is_reproducible_per_file_and_differs_across_files(tmp_path: Path):
    notes = [(0, 1, 60), (1, 1, 64), (2, 2, 67)]
    paths = [write_midi(tmp_path / f"piece{i}.mid", notes) for i in range(4)]
    render = RENDERERS["fluidsynth-varied"]
    np.testing.assert_array_equal(render(paths[0])[0], render(paths[0])[0])
    spectra = [np.abs(np.fft.rfft(render(p)[0][: SR * 2])) for p in paths]
    shapes = [s / np.linalg.norm(s) for s in spectra]
    assert all(float(shapes[0] @ s) < 0.98 for s in shapes[1:])


def test_the_fluidsynth_varied_renderer_names_its_missing_soundfont(monkeypatch):
    monkeypatch.setattr("training.corpus.fluidsynth.VARIED_SOUNDFONTS", {"/nowhere/x.sf2": "some-soundfont"})
    with pytest.raises(RendererUnavailableError, match="apt-get install some-soundfont"):
        check_renderer("fluidsynth-varied")


def test_a_note_never_ended_still_lets_fluidsynth_finish_on_a_sustained_program(tmp_path: Path):
    """A score's note-on without its note-off fades on a piano but holds forever on an organ: FluidSynth, which
    renders until the last voice is silent, wrote gigabytes for two VGMIDI pieces before the song's end released
    every note."""
    import subprocess

    import mido

    from training.corpus.fluidsynth import VARIED_SOUNDFONTS, fluidsynth_binary, reorchestrate

    song = mido.MidiFile(ticks_per_beat=480)
    song.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=100, time=0),
                                       mido.Message("note_on", note=64, velocity=100, time=480),
                                       mido.Message("note_off", note=64, velocity=0, time=480)]))
    song.save(tmp_path / "hanging.mid")
    organ = reorchestrate(tmp_path / "hanging.mid", tmp_path / "organ.mid", programs=dict.fromkeys(range(16), 19),
                          transpose=0)
    wav = tmp_path / "out.wav"
    subprocess.run([fluidsynth_binary(), "-ni", "-q", "-r", str(SR), "-T", "wav", "-F", str(wav),
                    next(iter(VARIED_SOUNDFONTS)), str(organ)], timeout=10, check=True, capture_output=True)
    assert wav.stat().st_size < 4 * SR * 30  # seconds of audio, not hours
