import pytest
import sqlalchemy as sa

from app.db import downgrade, upgrade

TABLES = {"tracks", "embeddings", "jobs", "alembic_version"}


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_go_up_down_and_up_again(database_url: str):
    upgrade(database_url)
    assert _tables(database_url) == TABLES
    downgrade(database_url, "base")
    assert _tables(database_url) == {"alembic_version"}
    upgrade(database_url)
    assert _tables(database_url) == TABLES


def test_one_active_job_per_kind_is_enforced_by_the_schema(database_url: str):
    upgrade(database_url)
    engine = sa.create_engine(database_url)
    insert = sa.text("INSERT INTO jobs (id, kind, state, progress, message, result, created_at) "
                     "VALUES (:id, 'reindex', :state, 0, '', '{}', CURRENT_TIMESTAMP)")
    try:
        with engine.begin() as connection:
            connection.execute(insert, {"id": "a", "state": "running"})
            connection.execute(insert, {"id": "b", "state": "succeeded"})
            connection.execute(insert, {"id": "c", "state": "failed"})
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(insert, {"id": "d", "state": "queued"})
    finally:
        engine.dispose()


def test_the_migrated_schema_is_the_one_the_tables_declare(database_url: str):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from app.tables import Base

    upgrade(database_url)
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_tracks_added_before_tempo_and_key_keep_their_rows(database_url: str):
    upgrade(database_url, "01ed248489f5")
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO tracks (title, artist, duration_s, audio_path, content_hash, source, tags, added_at) "
                "VALUES ('old', '', 3.0, 'a.wav', 'h', 'upload', '[]', CURRENT_TIMESTAMP)"))
        upgrade(database_url)
        with engine.connect() as connection:
            row = connection.execute(sa.text("SELECT title, tempo_bpm, key, mode FROM tracks")).one()
    finally:
        engine.dispose()
    assert tuple(row) == ("old", None, None, None)
