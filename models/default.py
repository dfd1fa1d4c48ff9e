"""Where the built-in default model lives, and how a bundle name resolves to a folder."""

from __future__ import annotations

from pathlib import Path

from models.bundle import BundleError

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default_bundle"


def resolve_bundle(name: str | Path | None) -> Path:
    """``None`` or ``"default"``: the built-in model; anything else: a bundle folder."""
    if name is None or str(name) == "default":
        if not (DEFAULT_BUNDLE / "config.json").is_file():
            raise BundleError(f"the built-in model is missing ({DEFAULT_BUNDLE}); train it with `make model` "
                              "or set MOODSPACE_BUNDLE to a bundle folder")
        return DEFAULT_BUNDLE
    path = Path(name)
    if not path.is_dir():
        raise BundleError(f"{path}: bundle folder not found")
    return path
