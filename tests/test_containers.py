"""No Docker engine runs here, so the container files are checked against the code they start: ports, commands,
environment names, health check path, user, and the torch pin."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from app.main import create_app
from app.settings import Settings
from moodspace import cli

ROOT = Path(__file__).resolve().parents[1]


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _json_command(value: str) -> list[str]:
    return yaml.safe_load(value)


def test_dockerfile_uses_cpu_torch_pinned_like_the_project():
    pins = [d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
            if d.startswith("torch")]
    runs = " ".join(arg for name, arg in _dockerfile() if name == "RUN")
    assert pins == ["torch==2.13.0"] and "torch==2.13.0" in runs
    assert "download.pytorch.org/whl/cpu" in runs


def test_dockerfile_copies_every_package_and_runs_as_a_user():
    instructions = _dockerfile()
    copied = " ".join(arg for name, arg in instructions if name == "COPY")
    for part in ("models", "training", "app", "moodspace", "migrations", "alembic.ini", "pyproject.toml"):
        assert part in copied, part
    users = [arg for name, arg in instructions if name == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_dockerfile_port_command_and_healthcheck_match_the_app():
    instructions = dict(_dockerfile())
    command = _json_command(instructions["CMD"])
    assert command[:2] == ["moodspace", "serve"] and "serve" in cli.sub_app("app.cli").list_commands(None)  # type: ignore[arg-type]
    port = command[command.index("--port") + 1]
    assert instructions["EXPOSE"] == port and command[command.index("--host") + 1] == "0.0.0.0"
    path = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", instructions["HEALTHCHECK"])
    assert path is not None and path.group(1) == port
    assert path.group(2) in create_app(Settings()).openapi()["paths"]


def test_compose_environment_names_are_settings(compose: dict):
    api = compose["services"]["api"]
    fields = {f"MOODSPACE_{name.upper()}" for name in Settings.model_fields}
    names = set(api["environment"])
    assert names <= fields, names - fields
    assert {"MOODSPACE_DATABASE_URL", "MOODSPACE_DATA_DIR"} <= names


def test_compose_database_matches_the_postgres_service(compose: dict):
    api, db = compose["services"]["api"], compose["services"]["db"]
    url = api["environment"]["MOODSPACE_DATABASE_URL"]
    match = re.fullmatch(r"postgresql\+psycopg://(\w+):(\w+)@(\w+):5432/(\w+)", url)
    assert match is not None
    user, password, host, database = match.groups()
    assert host == "db" and db["image"].startswith("postgres")
    assert (user, password, database) == (db["environment"]["POSTGRES_USER"], db["environment"]["POSTGRES_PASSWORD"],
                                          db["environment"]["POSTGRES_DB"])
    assert api["depends_on"]["db"]["condition"] == "service_healthy"


def test_compose_migrates_then_serves_on_the_published_port(compose: dict):
    api = compose["services"]["api"]
    script = shlex.split(api["command"][-1])
    assert script[:3] == ["alembic", "upgrade", "head"]
    serve = script[script.index("moodspace"):]
    assert serve[:2] == ["moodspace", "serve"]
    published = api["ports"][0].split(":")[-1]
    assert serve[serve.index("--port") + 1] == published == dict(_dockerfile())["EXPOSE"]


def test_compose_volumes_keep_data(compose: dict):
    assert set(compose["volumes"]) == {"pgdata", "appdata", "milvusdata"}
    assert "appdata:/data" in compose["services"]["api"]["volumes"]
    assert compose["services"]["api"]["environment"]["MOODSPACE_DATA_DIR"] == "/data"
    assert any(v.startswith("pgdata:") for v in compose["services"]["db"]["volumes"])
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"data", ".venv", ".git"} <= set(ignored)


def test_the_milvus_profile_serves_the_same_catalogue_with_its_index_in_milvus(compose: dict):
    api, milvus, plain = (compose["services"][name] for name in ("api-milvus", "milvus", "api"))
    assert api["profiles"] == milvus["profiles"] == ["milvus"] and "profiles" not in plain
    fields = {f"MOODSPACE_{name.upper()}" for name in Settings.model_fields}
    assert set(api["environment"]) <= fields, set(api["environment"]) - fields
    settings = Settings(**{name.removeprefix("MOODSPACE_").lower(): value
                           for name, value in api["environment"].items() if value and "${" not in str(value)})
    assert settings.index_kind == "milvus" and not settings.milvus_is_embedded  # several workers may share it
    assert settings.milvus_target == "http://milvus:19530" and milvus["command"][-1] == "standalone"
    assert api["environment"]["MOODSPACE_DATABASE_URL"] == plain["environment"]["MOODSPACE_DATABASE_URL"]
    assert api["depends_on"]["milvus"]["condition"] == "service_healthy"
    assert "9091/healthz" in " ".join(milvus["healthcheck"]["test"])
    script = shlex.split(api["command"][-1])
    assert script[:3] == ["alembic", "upgrade", "head"] and "--workers" in script
    assert api["ports"][0].split(":")[-1] == script[script.index("--port") + 1]


def test_dockerfile_installs_the_pretrained_front_end_like_the_makefile():
    makefile = re.search(r"--no-deps .*?(musicnn==[\d.]+)", (ROOT / "Makefile").read_text())
    runs = " ".join(arg for name, arg in _dockerfile() if name == "RUN")
    assert makefile is not None and f"--no-deps {makefile.group(1)}" in runs
