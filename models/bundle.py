"""A bundle is a folder that rebuilds its model exactly:

    config.json      asdict(ModelConfig)
    weights.pt       the state dict (feature statistics included)
    metrics.json     what training and evaluation measured
    MODEL_CARD.md    data, metrics, limits (optional)
    version          "<name>-<first 12 hex of the sha256 of the weights and config>" (a config change that
                     changes readings, such as ``class_reading``, is a new version)

``load_bundle`` builds ``CrossModalModel(ModelConfig.from_dict(config))`` and loads the weights: sizes always
come from the config, never from tensor shapes.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.atomic import atomic_directory
from models.config import ModelConfig
from models.encoders import CrossModalModel
from models.errors import MoodspaceError


class BundleError(MoodspaceError):
    """A bundle folder is missing files or does not match its config."""


@dataclass
class Bundle:
    model: CrossModalModel
    config: ModelConfig
    version: str
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def _weights_bytes(model: CrossModalModel) -> bytes:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def save_bundle(model: CrossModalModel, out: str | Path, *, name: str = "moodspace",
                metrics: dict[str, Any] | None = None, model_card: str | None = None) -> Bundle:
    """Write the bundle atomically (a temporary folder renamed into place; an existing bundle is replaced)."""
    out = Path(out)
    weights, config = _weights_bytes(model), json.dumps(model.config.to_dict(), indent=2)
    version = f"{name}-{hashlib.sha256(weights + config.encode()).hexdigest()[:12]}"
    with atomic_directory(out, overwrite=True) as tmp:
        (tmp / "weights.pt").write_bytes(weights)
        (tmp / "config.json").write_text(config)
        (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2))
        (tmp / "version").write_text(version + "\n")
        if model_card:
            (tmp / "MODEL_CARD.md").write_text(model_card)
    return Bundle(model, model.config, version, metrics or {}, out)


def load_bundle(path: str | Path) -> Bundle:
    """Rebuild the model from ``config.json`` and load ``weights.pt``; eval mode, CPU."""
    path = Path(path)
    for name in ("config.json", "weights.pt", "version"):
        if not (path / name).is_file():
            raise BundleError(f"{path}: not a model bundle ({name} missing)")
    config = ModelConfig.from_dict(json.loads((path / "config.json").read_text()))
    model = CrossModalModel(config)
    state = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise BundleError(f"{path}: weights do not match config.json ({error})") from error
    model.eval()
    metrics_path = path / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return Bundle(model, config, (path / "version").read_text().strip(), metrics, path)
