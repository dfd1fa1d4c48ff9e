from sqlalchemy.orm import sessionmaker

from app import catalog
from app.db import make_engine, upgrade


def test_track_search_reads_title_artist_and_tags_and_takes_wildcards_literally(database_url: str):
    upgrade(database_url)
    engine = make_engine(database_url)
    with sessionmaker(engine)() as session:
        for k, (title, artist, tags) in enumerate([("Rain", "Mira", ["sad", "calm"]), ("100% Joy", "Ode", ["happy"]),
                                                   ("Under_score", "Sadie", []), ("Storm", "Vale", ["angry"])]):
            catalog.add_track(session, title=title, artist=artist, duration_s=1.0, audio_path=f"a/{k}.wav",
                              content_hash=f"{k:064d}", source="test", tags=tuple(tags))
        session.commit()

        def titles(q: str) -> list[str]:
            return [t.title for t in catalog.list_tracks(session, limit=10, offset=0, query=q)[0]]

        assert titles("sad") == ["Rain", "Under_score"]  # a tag, and an artist ("Sadie")
        assert titles("%") == ["100% Joy"] and titles("_") == ["Under_score"]
        assert titles("HAPPY") == ["100% Joy"] and titles("nothing") == []
    engine.dispose()


def test_a_cue_list_searched_in_one_call_matches_cue_after_cue(database_url: str):
    """search_cue_list's one index call gives what searching each cue in turn, excluding the tracks earlier cues
    took, gives (the filtered path, here with every row allowed, runs cue after cue)."""
    import numpy as np

    from app.index import build_snapshot
    from app.search import search_cue_list
    from app.settings import Settings
    from models.scoring import Gaussians

    upgrade(database_url)
    engine = make_engine(database_url)
    rng = np.random.default_rng(4)
    n, d = 60, 6
    items = Gaussians(*(rng.normal(size=(n, d)).astype(np.float32) for _ in range(3)))
    with sessionmaker(engine)() as session:
        ids = []
        for i in range(n):
            track = catalog.add_track(session, title=f"t{i}", artist="a", duration_s=1.0, audio_path=f"a/{i}.wav",
                                      content_hash=f"{i:064d}", source="test", tags=())
            session.flush()
            catalog.add_embedding(session, track_id=track.id, model_version="v",
                                  gaussians=Gaussians(*(p[i] for p in items)), va=(0.1 * i % 1, 0.0, 0.0, 0.0),
                                  curve=[])
            ids.append(track.id)
        session.commit()
        snapshot = build_snapshot(model_version="v", track_ids=np.array(ids), gaussians=items)
        cues = [Gaussians(*(p[:1] for p in items)), Gaussians(*(p[:1] + 0.01 for p in items)),
                Gaussians(*(rng.normal(size=(1, d)) for _ in range(3)))]
        settings = Settings()
        together = search_cue_list(session, snapshot, cues, settings=settings, lam=0.5, k=8)
        in_turn = search_cue_list(session, snapshot, cues, settings=settings, lam=0.5, k=8,
                                  allowed=np.arange(n))
        assert [[r.track_id for r in cue] for cue in together] == [[r.track_id for r in cue] for cue in in_turn]
        flat = [r.track_id for cue in together for r in cue]
        assert len(flat) == len(set(flat)) == 24  # no track twice, every cue full
        assert together[0][0].title == "t0"  # the first cue is the first item itself
    engine.dispose()
