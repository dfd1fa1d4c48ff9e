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
