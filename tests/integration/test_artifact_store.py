"""The file artifact store, against the real filesystem."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from contracts.errors import TransientError
from streams import artifacts
from streams.artifacts import (
    ArtifactNotFoundError,
    ArtifactStore,
    ArtifactStoreError,
    FileArtifactStore,
)

PDF = "application/pdf"
# The root user ignores permission bits; "nobody" on Debian-like systems.
UNPRIVILEGED_UID = 65534


def make_pdf(marker: str = "contrat") -> bytes:
    """Build bytes shaped like a small PDF."""
    return b"%PDF-1.4\n% " + marker.encode() + b"\n" + b"0" * 2048 + b"\n%%EOF\n"


def path_of(uri: str) -> Path:
    """Turn a file:// URI back into a path."""
    parsed = urlparse(uri)
    assert parsed.scheme == "file"
    return Path(unquote(parsed.path))


def overwrite(path: Path, data: bytes) -> None:
    """Replace a stored file's bytes in place, as a disk fault would."""
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    path.write_bytes(data)


@contextmanager
def without_root_privileges() -> Iterator[None]:
    """Drop the effective uid while inside, when the tests run as root."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(UNPRIVILEGED_UID)
    try:
        yield
    finally:
        os.seteuid(0)


def test_the_file_store_satisfies_the_store_protocol(tmp_path: Path) -> None:
    store: ArtifactStore = FileArtifactStore(tmp_path)

    assert not store.exists(hashlib.sha256(b"").hexdigest())


def test_put_describes_the_document_by_its_sha256(tmp_path: Path) -> None:
    data = make_pdf()

    document = FileArtifactStore(tmp_path).put(data, PDF)

    digest = hashlib.sha256(data).hexdigest()
    assert document.sha256 == digest
    assert document.size == len(data)
    assert document.media_type == PDF
    assert path_of(document.uri) == tmp_path / "sha256" / digest[:2] / f"{digest}.pdf"
    assert path_of(document.uri).read_bytes() == data


def test_the_constructor_creates_no_directory(tmp_path: Path) -> None:
    FileArtifactStore(tmp_path / "artifacts")

    assert not (tmp_path / "artifacts").exists()


def test_putting_the_same_bytes_twice_keeps_the_first_file(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    first = store.put(make_pdf(), PDF)
    before = path_of(first.uri).stat()

    second = store.put(make_pdf(), PDF)

    after = path_of(second.uri).stat()
    assert second == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list(path_of(first.uri).parent.iterdir()) == [path_of(first.uri)]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-1] + b"X", id="same size"),
        pytest.param(lambda data: data[:100], id="truncated"),
    ],
)
def test_a_corrupted_file_is_replaced_on_the_next_put(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    store = FileArtifactStore(tmp_path)
    data = make_pdf()
    path = path_of(store.put(data, PDF).uri)
    overwrite(path, damage(data))

    store.put(data, PDF)

    assert path.read_bytes() == data


def test_get_returns_the_stored_bytes(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    document = store.put(make_pdf(), PDF)

    assert store.get(document.sha256) == make_pdf()
    assert store.exists(document.sha256)


def test_get_of_an_unknown_sha256_says_it_is_not_found(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    store.put(make_pdf(), PDF)

    with pytest.raises(ArtifactNotFoundError):
        store.get(hashlib.sha256(b"never stored").hexdigest())


def test_get_refuses_bytes_that_no_longer_match_their_sha256(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    document = store.put(make_pdf(), PDF)
    overwrite(path_of(document.uri), make_pdf("altéré"))

    with pytest.raises(ArtifactStoreError):
        store.get(document.sha256)


def test_a_sha256_that_is_not_hex_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FileArtifactStore(tmp_path).exists("../../etc/passwd")


def test_a_media_type_without_a_known_extension_is_stored_as_bin(
    tmp_path: Path,
) -> None:
    store = FileArtifactStore(tmp_path)

    document = store.put(b"\x00\x01", "application/x-unknown")

    assert document.uri.endswith(".bin")
    assert store.get(document.sha256) == b"\x00\x01"


def test_a_read_only_directory_gives_a_retryable_store_error() -> None:
    # A fresh directory outside pytest's private tmp tree, so an unprivileged
    # user can reach it and fail for the one reason under test.
    base = Path(tempfile.mkdtemp(prefix="contractflow-ro-"))
    base.chmod(0o555)
    store = FileArtifactStore(base)
    try:
        with without_root_privileges(), pytest.raises(ArtifactStoreError) as caught:
            store.put(make_pdf(), PDF)
    finally:
        base.chmod(0o755)
        base.rmdir()

    assert isinstance(caught.value, TransientError)
    assert isinstance(caught.value.__cause__, PermissionError)


def test_a_placed_document_is_readable_before_its_sync(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    data = make_pdf()

    placed = store.place(data, PDF)

    assert store.get(placed.document.sha256) == data
    placed.sync()
    assert placed.document == store.put(data, PDF)


def test_placing_bytes_already_there_still_hands_back_their_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileArtifactStore(tmp_path)
    path = path_of(store.place(make_pdf(), PDF).document.uri)
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)

    store.place(make_pdf(), PDF).sync()

    # The file, then its directory: the first writer may never have synced.
    assert len(synced) == 2
    assert path.read_bytes() == make_pdf()


def test_a_sync_that_fails_is_a_retryable_store_error(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    placed = store.place(make_pdf(), PDF)
    path_of(placed.document.uri).unlink()

    with pytest.raises(ArtifactStoreError):
        placed.sync()


def test_the_first_document_also_syncs_the_directories_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "artifacts"
    synced: list[Path] = []
    monkeypatch.setattr(artifacts, "_sync_directory", synced.append)

    placed = FileArtifactStore(root).place(make_pdf(), PDF)
    placed.sync()

    shard = path_of(placed.document.uri).parent
    assert set(synced) == {shard, root / "sha256", root, tmp_path}
