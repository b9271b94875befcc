"""The downloader against a local HTTP server (never the network), and safe extraction."""

import hashlib
import io
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from recur.data import (
    ChecksumError,
    DownloadError,
    RemoteDataset,
    download,
    download_dataset,
    extract,
    find_dataset,
    read_aclimdb,
    read_imdb,
)

# recur.data.download is the function; module-level names come from the module itself.
from recur.data.download import DATASETS


def make_archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# Incompressible filler so the archive is ~200 KB: several read chunks, room to cut.
FILLER = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
ARCHIVE = make_archive(
    {
        "aclImdb/train/pos/0_9.txt": b"A wonderful film.<br /><br />See it.",
        "aclImdb/train/neg/0_1.txt": b"Dull.",
        "aclImdb/filler.bin": FILLER,
    }
)
ARCHIVE_SHA256 = hashlib.sha256(ARCHIVE).hexdigest()


@dataclass
class ServerState:
    files: dict[str, bytes]
    ranges: bool = True  # honour Range requests
    drop_after: int | None = None  # send this many body bytes, then hang up
    drop_times: int = 0  # ... on this many responses
    requests: list[dict[str, str]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: the connection closes after each response, so a cut body is visible.
    def do_GET(self):
        state: ServerState = self.server.state
        state.requests.append({"path": self.path, "range": self.headers.get("Range", "")})
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        requested = self.headers.get("Range")
        start = 0
        if requested and state.ranges:
            start = int(requested.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if state.drop_times and state.drop_after is not None:
            state.drop_times -= 1
            payload = payload[: state.drop_after]
        self.wfile.write(payload)

    def log_message(self, format, *args):  # keep the test output quiet
        pass


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.state = ServerState(files={"/aclImdb_v1.tar.gz": ARCHIVE})
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/aclImdb_v1.tar.gz"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def fetch(server, dest, **kwargs):
    kwargs.setdefault("sha256", ARCHIVE_SHA256)
    return download(server.url, dest, progress=False, retry_wait=0, **kwargs)


# ----------------------------------------------------------------------------- download


def test_full_download_is_verified_and_renamed_atomically(server, tmp_path):
    dest = tmp_path / "sub" / "a.tar.gz"
    assert fetch(server, dest) == dest
    assert dest.read_bytes() == ARCHIVE
    assert not (tmp_path / "sub" / "a.tar.gz.part").exists()
    assert server.state.requests == [{"path": "/aclImdb_v1.tar.gz", "range": ""}]


def test_resumes_a_partial_file_with_a_range_request(server, tmp_path):
    dest = tmp_path / "a.tar.gz"
    (tmp_path / "a.tar.gz.part").write_bytes(ARCHIVE[:70_000])
    fetch(server, dest)
    assert dest.read_bytes() == ARCHIVE
    assert server.state.requests[0]["range"] == "bytes=70000-"


def test_dropped_connection_is_retried_from_where_it_stopped(server, tmp_path):
    server.state.drop_after, server.state.drop_times = 50_000, 2
    dest = fetch(server, tmp_path / "a.tar.gz", retries=2)
    assert dest.read_bytes() == ARCHIVE
    assert [r["range"] for r in server.state.requests] == ["", "bytes=50000-", "bytes=100000-"]


def test_out_of_retries_keeps_the_part_file_and_a_later_call_resumes(server, tmp_path):
    server.state.drop_after, server.state.drop_times = 50_000, 1
    dest = tmp_path / "a.tar.gz"
    with pytest.raises(DownloadError, match="50000 bytes kept"):
        fetch(server, dest, retries=0)
    assert (tmp_path / "a.tar.gz.part").stat().st_size == 50_000
    assert not dest.exists()
    fetch(server, dest)
    assert dest.read_bytes() == ARCHIVE
    assert server.state.requests[-1]["range"] == "bytes=50000-"


def test_checksum_mismatch_is_an_error_and_removes_the_bad_file(server, tmp_path):
    dest = tmp_path / "a.tar.gz"
    with pytest.raises(ChecksumError, match=f"expected {'0' * 64}"):
        fetch(server, dest, sha256="0" * 64)
    assert not dest.exists()
    assert not (tmp_path / "a.tar.gz.part").exists()


def test_corrupt_partial_file_is_caught_by_the_checksum(server, tmp_path):
    (tmp_path / "a.tar.gz.part").write_bytes(b"\0" * 1000)  # not a prefix of the archive
    with pytest.raises(ChecksumError):
        fetch(server, tmp_path / "a.tar.gz")
    assert not (tmp_path / "a.tar.gz.part").exists()  # so the next call starts clean
    fetch(server, tmp_path / "a.tar.gz")


def test_server_without_range_support_falls_back_to_a_full_download(server, tmp_path):
    server.state.ranges = False
    (tmp_path / "a.tar.gz.part").write_bytes(ARCHIVE[:70_000])
    dest = fetch(server, tmp_path / "a.tar.gz")
    assert dest.read_bytes() == ARCHIVE  # rewritten from the start, not appended
    assert server.state.requests[0]["range"] == "bytes=70000-"  # asked, got a 200


def test_part_file_longer_than_the_file_restarts_after_416(server, tmp_path):
    (tmp_path / "a.tar.gz.part").write_bytes(ARCHIVE + b"junk")
    dest = fetch(server, tmp_path / "a.tar.gz")
    assert dest.read_bytes() == ARCHIVE
    assert [r["range"] for r in server.state.requests] == [f"bytes={len(ARCHIVE) + 4}-", ""]


def test_verified_existing_file_is_not_downloaded_again(server, tmp_path):
    dest = tmp_path / "a.tar.gz"
    dest.write_bytes(ARCHIVE)
    fetch(server, dest)
    assert server.state.requests == []


def test_download_errors_are_os_errors():
    assert issubclass(DownloadError, OSError) and issubclass(ChecksumError, DownloadError)


def test_http_404_is_an_error_without_retries(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url + ".missing", tmp_path / "x", progress=False, retry_wait=0)
    assert len(server.state.requests) == 1


def test_only_http_urls_and_hex_digests_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="http"):
        download("file:///etc/passwd", tmp_path / "x")
    with pytest.raises(ValueError, match="64 hex digits"):
        download("http://127.0.0.1/x", tmp_path / "x", sha256="abc")


# ----------------------------------------------------------------------------- extract


def test_extract_unpacks_the_archive(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(ARCHIVE)
    created = extract(archive, tmp_path / "out")
    assert created == [tmp_path / "out" / "aclImdb"]
    assert read_aclimdb(created[0]).texts == ["Dull.", "A wonderful film. See it."]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["aclImdb"]  # no staging


def evil_archive(tmp_path, member: tarfile.TarInfo) -> str:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("data/ok.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return path


def member(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (member("../escaped.txt"), "outside the destination"),
        (member("data/../../escaped.txt"), "outside the destination"),
        (member("/tmp/recur-absolute-escape.txt"), "outside the destination"),
        (member("data/link", tarfile.SYMTYPE, "../../escaped.txt"), "links to"),
        (member("data/abs", tarfile.SYMTYPE, "/etc/passwd"), "links to"),
        (member("data/hard", tarfile.LNKTYPE, "../escaped.txt"), "links to"),
        (member("data/dev", tarfile.CHRTYPE), "device"),
    ],
)
def test_extract_refuses_path_traversal(tmp_path, bad, message):
    archive = evil_archive(tmp_path, bad)
    out = tmp_path / "deep" / "out"
    with pytest.raises(ValueError, match=message):
        extract(archive, out)
    assert not out.exists()  # checked before anything is written
    assert not (tmp_path / "deep" / "escaped.txt").exists()


def test_extract_allows_links_that_stay_inside(tmp_path):
    archive = evil_archive(tmp_path, member("data/sub/link", tarfile.SYMTYPE, "../ok.txt"))
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "sub" / "link").read_text() == "ok"


def test_extract_never_overwrites(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(ARCHIVE)
    (tmp_path / "out" / "aclImdb").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="already exist"):
        extract(archive, tmp_path / "out")


def test_extract_rejects_non_archives(tmp_path):
    path = tmp_path / "a.tar.gz"
    path.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="not a tar archive"):
        extract(path, tmp_path / "out")


# ----------------------------------------------------------------------------- registry


def test_imdb_registry_entry():
    spec = DATASETS["imdb"]
    assert spec.url == "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    assert spec.sha256 == "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"


def test_download_dataset_fetches_once_then_reuses(server, tmp_path, monkeypatch):
    spec = RemoteDataset(
        url=server.url,
        sha256=ARCHIVE_SHA256,
        filename="aclImdb_v1.tar.gz",
        folder="aclImdb",
        description="test copy",
        citation="-",
    )
    monkeypatch.setitem(DATASETS, "imdb", spec)
    folder = download_dataset("imdb", tmp_path, progress=False)
    assert folder == tmp_path.resolve() / "imdb" == find_dataset("imdb", tmp_path)
    assert read_imdb(tmp_path).labels == [0, 1]  # found as <root>/imdb/aclImdb/train
    assert download_dataset("imdb", tmp_path, progress=False) == folder
    assert len(server.state.requests) == 1


def test_download_dataset_unknown_name():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        download_dataset("mnist")
