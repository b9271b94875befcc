"""Download and unpack dataset archives: resumable, checksummed, atomic.

    >>> from recur.data import download, extract, download_dataset
    >>> path = download(url, "cache/aclImdb_v1.tar.gz", sha256="c40f74...")  # resumes
    >>> extract(path, "cache/imdb")                   # -> [Path("cache/imdb/aclImdb")]
    >>> download_dataset("imdb")       # both, into download_root(); -> .../datasets/imdb

How :func:`download` behaves, and why:

* bytes stream (urllib, 64 KiB chunks, a tqdm bar that ``progress=False`` turns off) into
  ``<dest>.part``; only a complete file whose sha256 matches is renamed to ``dest``
  (``os.replace``, atomic), so ``dest`` is never half-written;
* an existing ``.part`` is resumed with an HTTP ``Range: bytes=<size>-`` request. A server
  that ignores Range answers 200 with the whole file: the ``.part`` is then rewritten from
  the start. A 416 (the ``.part`` is not a prefix we can extend) also restarts;
* a dropped connection or a short body is retried (``retries`` times, waiting
  ``retry_wait * 2**attempt`` seconds), each retry resuming where the last one stopped;
* a sha256 mismatch removes the ``.part`` and raises :class:`ChecksumError`: a corrupt
  file must not be resumed or used;
* an existing ``dest`` whose sha256 matches is returned at once (no network).

:func:`extract` unpacks tar archives (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``,
``.tar.xz``) into a staging folder and moves the top-level entries into place. A member
with an absolute path, a ``..`` component, a link pointing outside the destination, or a
device node is refused before anything is written (CVE-2007-4559); Python's ``"data"``
extraction filter (PEP 706) is applied as well.

Note for this project: the aclImdb archive holds the official IMDB **test** split, which
the shared benchmark folder deliberately keeps out; the evaluation protocol decides when
it may be fetched. Downloads never go into the shared folder (see
:func:`recur.data.paths.download_root`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from recur.data.paths import download_root

PathLike = str | os.PathLike[str]

_CHUNK = 1 << 16
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(OSError):
    """A download that could not be completed (the ``.part`` file is kept for resuming).

    An ``OSError``, like urllib's own errors, so ``except OSError`` covers being offline.
    """


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the expected sha256 (the file was removed)."""


class _Interrupted(Exception):
    """The body ended early or the connection broke: worth a resumed retry."""


@dataclass(frozen=True)
class RemoteDataset:
    """Where a dataset archive lives and what it unpacks to.

    Attributes:
        url: the archive's address.
        sha256: hex digest of the archive.
        filename: the archive's file name on disk.
        folder: the top-level folder the archive unpacks to.
        description: one line for ``recur data`` listings.
        citation: the paper to cite.
    """

    url: str
    sha256: str
    filename: str
    folder: str
    description: str
    citation: str


DATASETS: dict[str, RemoteDataset] = {
    "imdb": RemoteDataset(
        url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
        filename="aclImdb_v1.tar.gz",
        folder="aclImdb",
        description="IMDB Large Movie Review Dataset v1.0: 25k train + 25k test reviews, "
        "binary sentiment (aclImdb layout, 84 MB archive)",
        citation="Maas et al. 2011, Learning Word Vectors for Sentiment Analysis, ACL (HLT)",
    ),
}


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": "recur-downloader", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    # A fresh opener per call reads the proxy settings of the environment *now*.
    opener = urllib.request.build_opener()
    return opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)


def _fetch_once(url: str, part: Path, progress: bool, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (or rewrite it when the server ignores Range)."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:  # our .part is no prefix the server can extend
            part.unlink()
            return _fetch_once(url, part, progress, timeout)
        if err.code >= 500:
            raise _Interrupted(f"HTTP {err.code} {err.reason}") from err
        raise DownloadError(f"downloading {url} failed: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        if isinstance(err.reason, socket.gaierror):  # name lookup failed: offline, no retry
            raise DownloadError(f"downloading {url} failed: {err.reason}") from err
        raise _Interrupted(str(err)) from err
    except (OSError, http.client.HTTPException) as err:
        raise _Interrupted(str(err)) from err

    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        if offset and response.status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            if match is None or int(match.group(1)) != offset:
                response.close()
                part.unlink()  # the server resumed somewhere else: start over
                return _fetch_once(url, part, progress, timeout)
            total = int(match.group(3)) if match.group(3) != "*" else None
            mode = "ab"
        else:  # 200: a fresh download, or a server that does not do Range
            offset, mode = 0, "wb"
            total = length
        if total is None and length is not None:
            total = offset + length
        with (
            open(part, mode) as f,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            try:
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                raise _Interrupted(str(err)) from err
            finally:
                f.flush()
                os.fsync(f.fileno())
    size = part.stat().st_size
    if total is not None and size != total:
        # http.client returns b"" when a connection closes early instead of raising.
        raise _Interrupted(f"got {size} of {total} bytes")


def download(
    url: str,
    dest: PathLike,
    sha256: str | None = None,
    progress: bool = True,
    *,
    retries: int = 3,
    retry_wait: float = 1.0,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to the file ``dest``; see the module docstring for the behaviour.

    Args:
        url: an ``http://`` or ``https://`` address.
        dest: the file to create (its folder is created too).
        sha256: expected hex digest; ``None`` skips the check (and then an existing
            ``dest`` is trusted as complete).
        progress: show a tqdm progress bar.
        retries: resumed retries after a broken connection or a server error (5xx).
        retry_wait: base of the exponential wait between retries, in seconds.
        timeout: socket timeout per request, in seconds.

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        ChecksumError: the bytes do not match ``sha256`` (the download is removed).
        DownloadError: HTTP 4xx, or still failing after ``retries`` retries (the
            ``.part`` file is kept, so calling again resumes).
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {url!r}")
    if sha256 is not None:
        sha256 = sha256.lower()
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, got {retries!r}")
    dest = Path(dest)
    if dest.is_dir():
        raise IsADirectoryError(f"dest must be a file path, got the folder {dest}")
    if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")

    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, progress, timeout)
            break
        except _Interrupted as err:
            kept = part.stat().st_size if part.exists() else 0
            if attempt == retries:
                raise DownloadError(
                    f"downloading {url} failed after {attempt + 1} attempts ({err}); "
                    f"{kept} bytes kept in {part}, call download() again to resume"
                ) from err
            time.sleep(retry_wait * 2**attempt)

    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            part.unlink()
            raise ChecksumError(
                f"sha256 of {url} is {got}, expected {sha256}; the download was removed"
            )
    os.replace(part, dest)
    return dest


def _check_member(member: tarfile.TarInfo, archive: Path) -> PurePosixPath:
    """The member's path inside the destination, or an error if it would escape it."""
    path = PurePosixPath(member.name)
    where = f"refusing to extract {archive}: member {member.name!r}"
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{where} would be written outside the destination")
    if member.isdev() or member.isfifo():
        raise ValueError(f"{where} is a device or FIFO")
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        # Symlinks resolve from the member's folder, hard links from the archive root.
        base = path.parent if member.issym() else PurePosixPath()
        depth = len([p for p in base.parts if p != "."])
        for part in link.parts:
            if part == "..":
                depth -= 1
            elif part != ".":
                depth += 1
            if depth < 0:
                break
        if link.is_absolute() or depth < 0:
            raise ValueError(f"{where} links to {member.linkname!r}, outside the destination")
    return path


def extract(archive: PathLike, dest: PathLike) -> list[Path]:
    """Unpack the tar ``archive`` into the folder ``dest``, refusing unsafe members.

    The archive is unpacked into a staging folder inside ``dest`` and each top-level
    entry is then renamed into place, so an interrupted extraction leaves no partial
    folder behind. An entry that already exists in ``dest`` is an error (never
    overwritten).

    Returns:
        The top-level paths created in ``dest``, sorted.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    try:
        tar = tarfile.open(archive, "r:*")
    except tarfile.TarError as err:
        raise ValueError(f"{archive} is not a tar archive this extractor can read ({err})") from err
    with tar:
        members = tar.getmembers()
        tops: set[str] = set()
        for member in members:
            parts = [p for p in _check_member(member, archive).parts if p != "."]
            if parts:
                tops.add(parts[0])
        if not tops:
            raise ValueError(f"{archive} is empty")
        existing = sorted(str(dest / top) for top in tops if (dest / top).exists())
        if existing:
            raise FileExistsError(f"not extracting {archive}: {existing} already exist")
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
        try:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, members=members, filter="data")
            else:  # Python < 3.11.4: _check_member above is the protection
                tar.extractall(staging, members=members)
            for top in sorted(tops):
                os.replace(staging / top, dest / top)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [dest / top for top in sorted(tops)]


def download_dataset(name: str, root: PathLike | None = None, progress: bool = True) -> Path:
    """Download and unpack dataset ``name`` of :data:`DATASETS`.

    The archive goes to ``<root>/<name>/<filename>`` (kept, so the folder can be
    re-extracted) and unpacks to ``<root>/<name>/<folder>``, e.g.
    ``~/.cache/recur/datasets/imdb/aclImdb``. Nothing is fetched if that folder exists.
    ``root`` defaults to :func:`recur.data.paths.download_root` (pass ``None`` rather
    than ``data_root()``, which may name the read-only shared folder).

    Returns:
        The dataset folder ``<root>/<name>``, as :func:`recur.data.paths.find_dataset`
        returns it (so ``read_imdb(root)`` reads it).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    spec = DATASETS[name]
    folder = download_root(root) / name
    target = folder / spec.folder
    if target.is_dir():
        return folder
    archive = download(spec.url, folder / spec.filename, spec.sha256, progress)
    extract(archive, folder)
    if not target.is_dir():
        raise DownloadError(f"{archive} did not unpack to {spec.folder}/ as expected")
    return folder
