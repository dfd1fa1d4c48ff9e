"""FluidSynth: the General MIDI soundfonts it plays, one render of a MIDI file, and a MIDI file re-orchestrated.

The ``fluidsynth`` renderer plays Debian's FluidR3 (``SOUNDFONTS``); ``fluidsynth-varied`` plays other soundfonts
(``VARIED_SOUNDFONTS``), so that FluidR3's renders stay a timbre set the training never heard (the cross-renderer
check, docs/experiments.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from models.errors import MidiError, RendererUnavailableError
from training.corpus.synth import SR

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
# fluidsynth-varied's soundfonts -> the Debian package that installs each (scripts/system-deps).
VARIED_SOUNDFONTS = {"/usr/share/sounds/sf2/TimGM6mb.sf2": "timgm6mb-soundfont"}
FLUIDSYNTH_GAIN = 1.0
DRUM_CHANNEL = 9
MELODIC_PROGRAMS = 96  # General MIDI programs 0-95: pianos to synth pads, no sound effects


def soundfont() -> Path:
    """The General MIDI soundfont: ``MOODSPACE_SOUNDFONT`` or Debian's fluid-soundfont-gm."""
    candidates = [os.environ.get("MOODSPACE_SOUNDFONT", ""), *SOUNDFONTS]
    for candidate in filter(None, candidates):
        if Path(candidate).is_file():
            return Path(candidate)
    raise RendererUnavailableError(
        "no General MIDI soundfont found: install Debian's fluid-soundfont-gm "
        "(apt-get install fluidsynth fluid-soundfont-gm), set MOODSPACE_SOUNDFONT, or use --renderer builtin"
    )


def varied_soundfonts() -> list[Path]:
    """Every soundfont of ``VARIED_SOUNDFONTS``; all must be installed, so that a render is the same everywhere."""
    missing = [package for path, package in VARIED_SOUNDFONTS.items() if not Path(path).is_file()]
    if missing:
        raise RendererUnavailableError(f"the fluidsynth-varied renderer needs Debian's {', '.join(missing)} "
                                       f"(apt-get install {' '.join(missing)})")
    return [Path(path) for path in VARIED_SOUNDFONTS]


def fluidsynth_binary() -> str:
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise RendererUnavailableError(
            "FluidSynth is not installed: apt-get install fluidsynth fluid-soundfont-gm, or use --renderer builtin"
        )
    return binary


def run_fluidsynth(midi: Path, font: Path) -> np.ndarray:
    """Mono float32 audio at ``SR`` of ``midi`` played with ``font``, as long as FluidSynth makes it."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        command = [fluidsynth_binary(), "-ni", "-q", "-g", str(FLUIDSYNTH_GAIN), "-r", str(SR), "-T", "wav",
                   "-F", str(wav), str(font), str(midi)]
        result = subprocess.run(command, capture_output=True, timeout=600, check=False)
        if result.returncode != 0 or not wav.is_file():
            raise MidiError(f"{midi}: FluidSynth failed ({result.stderr.decode(errors='replace').strip()[:200]})")
        y, sr = sf.read(wav, dtype="float32", always_2d=True)
    assert sr == SR, sr
    return y.mean(axis=1)


def reorchestrate(midi: Path, out: Path, *, programs: dict[int, int], transpose: int) -> Path:
    """``midi`` with each melodic channel's General MIDI program replaced by ``programs[channel]`` (from its
    start on) and every melodic note moved by ``transpose`` semitones; the drum channel as it was."""
    song = mido.MidiFile(midi)
    for track in song.tracks:
        for message in track:
            if getattr(message, "channel", DRUM_CHANNEL) == DRUM_CHANNEL:
                continue
            if message.type == "program_change":
                message.program = programs[message.channel]
            elif message.type in ("note_on", "note_off"):
                message.note = int(np.clip(message.note + transpose, 0, 127))
    first = [mido.Message("program_change", channel=c, program=p, time=0) for c, p in programs.items()
             if c != DRUM_CHANNEL]
    song.tracks[0][0:0] = first
    _silence_at_the_end(song)
    song.save(out)
    return out


def _silence_at_the_end(song: mido.MidiFile) -> None:
    """Release every note where the song ends, and stop every voice a little later: a note a piano score never
    ends (a note-on without its note-off) fades out on a piano but holds forever on an organ or a pad, and
    FluidSynth renders until the last voice is silent."""
    end = max(sum(message.time for message in track) for track in song.tracks)  # ticks
    track = song.tracks[0]
    while track and track[-1].type == "end_of_track":
        track.pop()
    released = [mido.Message("control_change", channel=c, control=control, value=0, time=0)
                for c in range(16) for control in (64, 123)]  # pedal up, all notes off
    released[0].time = max(0, end - sum(message.time for message in track))
    silenced = [mido.Message("control_change", channel=c, control=120, value=0, time=0) for c in range(16)]
    silenced[0].time = 8 * song.ticks_per_beat  # all sound off, after the releases (past the render's tail)
    track.extend([*released, *silenced, mido.MetaMessage("end_of_track", time=0)])
