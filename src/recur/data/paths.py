"""Where recur looks for datasets on disk.

One resolution order, used by every reader, the downloader and the CLI:

1. an explicit path passed by the caller (``--data-root``, ``data_root=...``);
2. the ``RECUR_DATA`` environment variable;
3. a ``shared/datasets`` folder next to the working directory or next to the source
   checkout (``../shared/datasets``), where the project keeps its benchmark files;
4. ``~/.cache/recur/datasets``.

Downloads go to :func:`download_root` (explicit, ``$RECUR_DATA``, else the cache), never
into the shared folder.

    >>> from recur.data import data_root, find_dataset
    >>> find_dataset("imdb")            # -> Path(".../datasets/imdb") or None
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "RECUR_DATA"

# The repository root of a source checkout (src/recur/data/paths.py -> parents[3]); the
# shared benchmark folder sits beside it. Module-level so tests can point it elsewhere.
_REPO_ROOT: Path | None = Path(__file__).resolve().parents[3]
_SHARED_RELATIVE = Path("..") / "shared" / "datasets"
_CACHE_RELATIVE = Path(".cache") / "recur" / "datasets"


def _shared_candidates() -> list[Path]:
    """``../shared/datasets`` relative to the working directory, then to the repository."""
    candidates = [Path.cwd() / _SHARED_RELATIVE]
    if _REPO_ROOT is not None and (_REPO_ROOT / "pyproject.toml").is_file():
        candidates.append(_REPO_ROOT / _SHARED_RELATIVE)
    return [path.resolve() for path in candidates]


def _cache_root() -> Path:
    return Path.home() / _CACHE_RELATIVE


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder that holds (or will hold) the datasets.

    Args:
        explicit: a folder chosen by the caller; wins over everything else. It is returned
            even if it does not exist yet (a download may be about to create it).

    Returns:
        The first of: ``explicit``, ``$RECUR_DATA``, an existing ``../shared/datasets``
        (relative to the working directory, then to the source checkout), and
        ``~/.cache/recur/datasets``. The path is absolute; only the shared candidates
        are required to exist.
    """
    if explicit is not None:
        if str(explicit) == "":
            raise ValueError("data root must be a non-empty path, got ''")
        return Path(explicit).expanduser().resolve()
    from_env = os.environ.get(ENV_VAR, "")
    if from_env:
        return Path(from_env).expanduser().resolve()
    for candidate in _shared_candidates():
        if candidate.is_dir():
            return candidate
    return _cache_root()


def download_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where downloads go: ``explicit``, else ``$RECUR_DATA``, else the user cache.

    Never the shared benchmark folder: that one is curated by hand (its README keeps the
    official test splits out of it), so nothing recur fetches is written there.
    """
    if explicit is not None or os.environ.get(ENV_VAR, ""):
        return data_root(explicit)
    return _cache_root()


def dataset_folders(name: str, explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every existing ``<root>/<name>`` folder, in resolution order.

    With ``explicit`` only that root is searched (a caller who names a folder means it);
    otherwise ``$RECUR_DATA``, the shared folders and the cache are all tried, so a
    dataset downloaded to the cache is found even when a shared folder exists.
    """
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"dataset name must be a plain folder name, got {name!r}")
    if explicit is not None:
        roots = [data_root(explicit)]
    else:
        roots = []
        from_env = os.environ.get(ENV_VAR, "")
        if from_env:
            roots.append(Path(from_env).expanduser().resolve())
        roots += _shared_candidates()
        roots.append(_cache_root())
    found: list[Path] = []
    for root in roots:
        if (root / name).is_dir() and root / name not in found:
            found.append(root / name)
    return found


def find_dataset(name: str, explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the first folder of dataset ``name`` (e.g. ``"imdb"``), or ``None``.

    See :func:`dataset_folders` for where it looks.
    """
    folders = dataset_folders(name, explicit)
    return folders[0] if folders else None
