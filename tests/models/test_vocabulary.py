import numpy as np

from models.vocabulary import MUSIC_MOODS, mood_tags, vocabulary


def test_vocabulary_is_large_unique_and_on_the_plane():
    terms = vocabulary()
    names = [t.name for t in terms]
    assert len(terms) >= 24 and len(set(names)) == len(names)
    assert all(-1 <= t.valence <= 1 and -1 <= t.arousal <= 1 for t in terms)
    assert {"happy", "exciting", "tender", "calm", "sad", "angry", "scary"} <= set(names)


def test_circumplex_quadrants_follow_russell():
    by_name = {t.name: t for t in vocabulary()}
    assert by_name["delighted"].valence > 0 and by_name["delighted"].arousal > 0
    assert by_name["afraid"].valence < 0 and by_name["afraid"].arousal > 0
    assert by_name["depressed"].valence < 0 and by_name["depressed"].arousal < 0
    assert by_name["serene"].valence > 0 and by_name["serene"].arousal < 0


def test_mood_tags_put_each_prototype_first():
    for name, (v, a) in MUSIC_MOODS.items():
        assert mood_tags(v, a)[0] == name
    far = mood_tags(-1.0, -1.0)
    assert far and far[0] == "sad"
    assert np.isclose(len(mood_tags(0.0, 0.0, radius=0.0)), 1)
