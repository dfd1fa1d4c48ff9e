"""Readers against small fixtures written in each data set's published layout."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.errors import DatasetLayoutError, MidiError, OutputExistsError
from models.manifest import audio_path, read_manifest
from tests.conftest import write_midi
from training.corpus.render import import_dataset, render_dataset
from training.datasets import deam, emobank, emomusic, emopia, pmemo, vgmidi
from training.datasets.common import split_groups


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.strip() + "\n")
    return path


def _tone(path: Path, seconds: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(np.arange(int(seconds * 16000)) / 10), 16000, format="WAV")
    return path


@pytest.fixture
def vgmidi_root(tmp_path: Path) -> Path:
    root = tmp_path / "vgmidi"
    rows = ["piece_key,midi_file,name,measures,duration_s,measure_index,n_annotators,valence_mean,valence_std,"
            "arousal_mean,arousal_std"]
    pieces = {"p0": "Mario_NES_Super Mario Bros_Overworld.mid", "p1": "Zelda_N64_Ocarina_Lullaby.mid",
              "p2": "Other_PC_Tetris Attack_Theme.mid"}
    for key, midi in pieces.items():
        write_midi(root / "midi" / midi, [(0, 2, 60), (2, 2, 64), (4, 4, 67)])
        for bar in range(2):
            rows.append(f"{key},{midi},{midi[:-4]},2,4.0,{bar},30,{0.5 - bar},0.1,{-0.2 * bar},0.2")
    _write(root / "dynamic_annotations.csv", "\n".join(rows))
    return root


def test_vgmidi_bars_become_timed_points_at_bar_centres(vgmidi_root: Path):
    clips = {c.id: c for c in vgmidi.read(vgmidi_root)}
    clip = clips["vgmidi-p0"]
    np.testing.assert_allclose(clip.curve, [[1.0, 0.5, 0.0], [3.0, -0.5, -0.2]])
    np.testing.assert_allclose(clip.curve_std, [[1.0, 0.1, 0.2], [3.0, 0.1, 0.2]])
    assert clip.label_type == "dynamic" and clip.artist == "Super Mario Bros"
    assert vgmidi.series_of("Other_PC_Tetris Attack_Theme.mid") == "Other/Tetris"
    assert clips["vgmidi-p1"].extra["series"] == "Zelda"


def test_group_splits_never_share_a_group_and_hit_their_shares():
    groups = {f"series{i}": 10 for i in range(20)}
    splits = split_groups(groups)
    counts = {s: sum(groups[g] for g, x in splits.items() if x == s) for s in ("train", "val", "test")}
    assert counts == {"train": 140, "val": 20, "test": 40}


def test_emopia_quadrants_are_categorical_points(tmp_path: Path):
    root = tmp_path / "emopia"
    for clip in ("Q2_abc_1", "Q4_xyz_2"):
        write_midi(root / "midi" / f"{clip}.mid", [(0, 1, 60)])
    _write(root / "labels.csv", "clip,quadrant,split\nQ2_abc_1,2,train\nQ4_xyz_2,4,val")
    clips = emopia.read(root)
    assert [c.curve.tolist() for c in clips] == [[[0.0, -0.5, 0.5]], [[0.0, 0.5, -0.5]]]
    assert [c.label_type for c in clips] == ["categorical", "categorical"]
    assert clips[0].tags[0] == "Q2" and clips[1].split == "val" and clips[0].extra["song"] == "abc"
    assert emopia.quadrant_of(0.3, -0.1) == 4 and emopia.quadrant_of(-0.3, 0.1) == 2


def test_emobank_ratings_map_from_1_5(tmp_path: Path):
    _write(tmp_path / "emobank.csv", 'id,split,V,A,D,text\na,train,5.0,1.0,3.0,"I won, finally!"')
    (sentence,) = emobank.read(tmp_path)
    assert (sentence.valence, sentence.arousal, sentence.dominance) == (1.0, -1.0, 0.0)
    assert sentence.text == "I won, finally!"


@pytest.fixture
def deam_root(tmp_path: Path) -> Path:
    root = tmp_path / "deam"
    song_level = root / deam.ANNOTATIONS / "song_level"
    _write(song_level / "static_annotations_averaged_songs_1_2000.csv",
           "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n2,7.0,1.2,3.0,0.8\n3,5,1,5,1")
    _write(song_level / "static_annotations_averaged_songs_2000_2058.csv",
           "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n2005,1.0,2.0,9.0,0.4")
    dynamic = root / deam.DYNAMIC
    _write(dynamic / "valence.csv", "song_id,sample_15000ms,sample_15500ms,sample_16000ms\n2,0.1,0.2,0.3\n"
           "2005,-0.5,-0.6,")
    _write(dynamic / "arousal.csv", "song_id,sample_15000ms,sample_15500ms,sample_16000ms\n2,-0.1,-0.2,-0.3\n"
           "2005,0.5,0.6,")
    for song in (2, 3, 2005):
        _tone(root / deam.AUDIO / f"{song}.mp3")  # WAV bytes; the reader only checks that the file exists
    return root


def test_deam_dynamic_starts_at_15_s_and_static_maps_from_1_9(deam_root: Path):
    clips = {c.id: c for c in deam.read(deam_root)}
    np.testing.assert_allclose(clips["deam-2"].curve, [[15.0, 0.1, -0.1], [15.5, 0.2, -0.2], [16.0, 0.3, -0.3]])
    assert clips["deam-2"].extra["static"] == [0.5, -0.5]
    assert clips["deam-2005"].curve.shape == (2, 3) and clips["deam-2005"].split == "test"
    static = clips["deam-3"]
    assert static.label_type == "static" and static.curve.tolist() == [[0.0, 0.0, 0.0]]
    np.testing.assert_allclose(static.curve_std, [[0.0, 0.25, 0.25]])


def test_pmemo_maps_from_0_1_with_std(tmp_path: Path):
    root = tmp_path / "pmemo"
    _write(root / "metadata.csv", "musicId,fileName,title,artist,album,duration,chorus_start_time,chorus_end_time\n"
           "1,1.mp3,Song,Singer,Album,200,10,40\n4,4.mp3,Other,Band,Album,100,5,30")
    _write(root / pmemo.STATIC, "musicId,Arousal(mean),Valence(mean)\n1,0.75,0.25\n4,0.5,0.5")
    _write(root / pmemo.STATIC_STD, "musicId,Arousal(std),Valence(std)\n1,0.1,0.2\n4,0.05,0.05")
    _write(root / pmemo.DYNAMIC, "musicId,frameTime,Arousal(mean),Valence(mean)\n1,15.5,1.0,0.0\n1,15.0,0.5,0.5")
    _write(root / pmemo.DYNAMIC_STD, "musicId,frameTime,Arousal(std),Valence(std)\n1,15.0,0.1,0.1\n1,15.5,0.2,0.2")
    for music_id in (1, 4):
        _tone(root / "chorus" / f"{music_id}.mp3")
    clips = {c.id: c for c in pmemo.read(root)}
    np.testing.assert_allclose(clips["pmemo-1"].curve, [[15.0, 0.0, 0.0], [15.5, -1.0, 1.0]])
    np.testing.assert_allclose(clips["pmemo-1"].curve_std, [[15.0, 0.2, 0.2], [15.5, 0.4, 0.4]])
    assert clips["pmemo-1"].extra["static"] == [-0.5, 0.5] and clips["pmemo-1"].title == "Song"
    np.testing.assert_allclose(clips["pmemo-4"].curve_std, [[0.0, 0.1, 0.1]])


def test_emomusic_cont_files_and_evaluation_split(tmp_path: Path):
    root = tmp_path / "emomusic"
    _write(root / "annotations/static_annotations.csv",
           "song_id,mean_arousal,std_arousal,mean_valence,std_valence\n2,9,1,1,2\n3,5,0.4,5,0.8")
    header = "song_id,sample_15000ms,sample_15500ms"
    _write(root / "annotations/arousal_cont_average.csv", f"{header}\n2,0.4,0.5")
    _write(root / "annotations/valence_cont_average.csv", f"{header}\n2,-0.4,-0.5")
    _write(root / "annotations/arousal_cont_std.csv", f"{header}\n2,0.1,0.1")
    _write(root / "annotations/valence_cont_std.csv", f"{header}\n2,0.2,0.2")
    _write(root / "annotations/songs_info.csv",
           "song_id,file_name,Artist,Song title,start of the segment (min.sec),end of the segment (min.sec),"
           "Genre,Mediaeval 2013 set\n2,2.mp3,Someone,A Song,1.00,1.45,Rock,evaluation\n3,3.mp3,X,Y,0,0.45,Pop,"
           "development")
    for song in (2, 3):
        _tone(root / "clips_45seconds" / f"{song}.mp3")
    clips = {c.id: c for c in emomusic.read(root)}
    np.testing.assert_allclose(clips["emomusic-2"].curve, [[15.0, -0.4, 0.4], [15.5, -0.5, 0.5]])
    assert clips["emomusic-2"].split == "test" and clips["emomusic-2"].artist == "Someone"
    assert clips["emomusic-2"].extra["static"] == [-1.0, 1.0]
    assert clips["emomusic-3"].label_type == "static" and clips["emomusic-3"].split != "test"


@pytest.mark.parametrize("reader", [vgmidi.read, emopia.read, deam.read, pmemo.read, emomusic.read, emobank.read])
def test_unknown_layout_names_the_missing_file(tmp_path: Path, reader):
    (tmp_path / "somewhere").mkdir()
    (tmp_path / "somewhere" / "readme.txt").write_text("not a data set")
    with pytest.raises(DatasetLayoutError, match="missing; this folder does not have the data set's published"):
        reader(tmp_path / "somewhere")


def test_missing_media_is_named(deam_root: Path, vgmidi_root: Path):
    (deam_root / deam.AUDIO / "3.mp3").unlink()
    with pytest.raises(DatasetLayoutError, match="3.mp3: audio for DEAM song 3 not found"):
        deam.read(deam_root)
    (vgmidi_root / "midi" / "Zelda_N64_Ocarina_Lullaby.mid").unlink()
    with pytest.raises(DatasetLayoutError, match="Lullaby.mid: MIDI file named in"):
        vgmidi.read(vgmidi_root)


def test_render_writes_audio_and_manifest(vgmidi_root: Path, tmp_path: Path):
    manifest = render_dataset(dataset="vgmidi", root=vgmidi_root, out=tmp_path / "out", workers=1, progress=False)
    clips = read_manifest(manifest, check_audio=True)
    assert len(clips) == 3
    info = sf.info(audio_path(manifest, clips[0]))
    assert (info.samplerate, info.channels) == (16000, 1) and info.duration == pytest.approx(5.0, abs=0.01)
    assert clips[0].extra["renderer"] == "builtin" and clips[0].extra["source"].endswith(".mid")
    with pytest.raises(OutputExistsError):
        render_dataset(dataset="vgmidi", root=vgmidi_root, out=tmp_path / "out", progress=False)


def test_a_corrupt_midi_stops_the_render_and_leaves_nothing(vgmidi_root: Path, tmp_path: Path):
    (vgmidi_root / "midi" / "Zelda_N64_Ocarina_Lullaby.mid").write_bytes(b"\x00" * 20)
    out = tmp_path / "out"
    with pytest.raises(MidiError, match="Lullaby.mid"):
        render_dataset(dataset="vgmidi", root=vgmidi_root, out=out, workers=1, progress=False)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_import_writes_a_manifest_with_relative_audio(deam_root: Path, tmp_path: Path):
    manifest = import_dataset(dataset="deam", root=deam_root, out=tmp_path / "sets" / "deam.jsonl")
    clips = read_manifest(manifest, check_audio=True)
    assert {c.id for c in clips} == {"deam-2", "deam-3", "deam-2005"}
    assert not Path(clips[0].audio).is_absolute()
    with pytest.raises(DatasetLayoutError, match="unknown audio data set 'mystery'"):
        import_dataset(dataset="mystery", root=deam_root, out=tmp_path / "x.jsonl")


def test_render_can_keep_only_some_splits(vgmidi_root: Path, tmp_path: Path):
    every = read_manifest(render_dataset(dataset="vgmidi", root=vgmidi_root, out=tmp_path / "all", workers=1,
                                         progress=False))
    kept = read_manifest(render_dataset(dataset="vgmidi", root=vgmidi_root, out=tmp_path / "train", workers=1,
                                        progress=False, splits=("train",), renderer="builtin-varied"))
    assert [c.id for c in kept] == [c.id for c in every if c.split == "train"] and kept
    assert {c.extra["renderer"] for c in kept} == {"builtin-varied"}


def test_the_default_recipe_adds_varied_renders_of_the_midi_train_pieces_only(vgmidi_root: Path, tmp_path: Path):
    from training.default_model import prepare

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "vgmidi").symlink_to(vgmidi_root)
    size = {"n": 4, "seconds": 2, "seed": 0}
    assert prepare(shared=shared, work=tmp_path / "plain", synth_size=size).varied == ()
    sources = prepare(shared=shared, work=tmp_path / "work", synth_size=size, augment=True)
    plain = read_manifest(sources.vgmidi)
    renderers = set()
    for varied in sources.varied:  # the built-in synthesizer's, and FluidSynth's (scripts/system-deps installs it)
        assert [c.id for c in read_manifest(varied)] == [c.id for c in plain if c.split == "train"]
        renderers |= {c.extra["renderer"] for c in read_manifest(varied)}
    assert renderers == {"builtin-varied", "fluidsynth-varied"}
    held_out = read_manifest(sources.vgmidi_fluidsynth)  # val and test pieces, on the renderer never trained on
    assert [c.id for c in held_out] == [c.id for c in plain if c.split in ("val", "test")]
    assert {c.split for c in held_out} == {c.split for c in plain} - {"train"}
    assert {c.extra["renderer"] for c in held_out} == {"fluidsynth"}
