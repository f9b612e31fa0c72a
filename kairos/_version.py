"""The version ``kairos --version`` prints: the installed package's, else the source checkout's ``pyproject.toml``."""

from __future__ import annotations

from pathlib import Path

DISTRIBUTION = "kairos-cep"
#: the project file of a source checkout (absent where Kairos is installed from a wheel)
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def version() -> str:
    """The package metadata's version; run from a checkout that is not installed, ``pyproject.toml``'s;
    ``unknown`` if neither says."""
    from importlib import metadata  # only for --version: metadata's import costs a few ms

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return pyproject_version(PYPROJECT) or "unknown"


def pyproject_version(path: Path) -> str | None:
    """``[project] version`` of the ``pyproject.toml`` at ``path`` (None: no such file or key)."""
    import tomllib

    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    value = project.get("version")
    return value if isinstance(value, str) else None
