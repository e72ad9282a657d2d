"""A content-addressed, write-once store for contract documents.

An artifact lives at ``root/sha256/<first two hex>/<sha256><extension>``. A
file is written to a temporary name in its final directory, then renamed
over the final name, so a reader sees either nothing or all of it.

Making it durable is a second step: `place` writes and renames, and hands
back the sync (the file, then its directory) to run where waiting on the
disk costs nothing, while `put` does both. Until the sync, a power loss can
leave the final name empty or short; the next `place` or `put` of the same
bytes sees that the file does not hold them and writes it again, and `get`
refuses bytes that do not match their sha256.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from contracts.errors import TransientError
from contracts.models import Document

_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/json": ".json",
    "text/plain": ".txt",
}
_OTHER_EXTENSION = ".bin"
_SEARCHED_EXTENSIONS = (*_EXTENSIONS.values(), _OTHER_EXTENSION)
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Artifacts never change once written; readable by every worker on the volume.
_FILE_MODE = 0o444
_READ_CHUNK = 1 << 20


class ArtifactStoreError(TransientError):
    """The store could not read or write an artifact; a retry may succeed."""


class ArtifactNotFoundError(ArtifactStoreError):
    """No artifact is stored under the requested sha256."""


@dataclass(frozen=True, slots=True)
class Placed:
    """A document readers can find, and the step that makes it durable."""

    document: Document
    # Blocks on the disk; raises ArtifactStoreError if the sync fails.
    sync: Callable[[], None]


class ArtifactStore(Protocol):
    """Where rendered documents are kept, addressed by their sha256."""

    def put(self, data: bytes, media_type: str) -> Document:
        """Store the bytes once, durably, and describe where they are."""
        ...

    def place(self, data: bytes, media_type: str) -> Placed:
        """Store the bytes once where readers find them; durable after `sync`."""
        ...

    def get(self, sha256: str) -> bytes:
        """Return the bytes stored under a sha256."""
        ...

    def exists(self, sha256: str) -> bool:
        """Tell whether an artifact is stored under a sha256."""
        ...


class FileArtifactStore:
    """An artifact store in a directory, shared by every worker that mounts it."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root).absolute()

    def put(self, data: bytes, media_type: str) -> Document:
        """Store the bytes durably unless an intact copy is already there."""
        placed = self.place(data, media_type)
        placed.sync()
        return placed.document

    def place(self, data: bytes, media_type: str) -> Placed:
        """Store the bytes unless an intact copy is already there; sync later.

        The sync is returned even for a copy already there: the process that
        wrote it may have stopped before syncing it.
        """
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest, _extension(media_type))
        changed: tuple[Path, ...] = (path.parent,)
        try:
            if not _holds(path, digest, len(data)):
                changed = _write_atomically(path, data)
        except OSError as exc:
            raise ArtifactStoreError(f"cannot store artifact at {path}: {exc}") from exc
        document = Document(
            uri=path.as_uri(), sha256=digest, media_type=media_type, size=len(data)
        )
        return Placed(document, partial(_sync, path, changed))

    def get(self, sha256: str) -> bytes:
        """Return the stored bytes, checked against their sha256."""
        path = self._find(sha256)
        if path is None:
            raise ArtifactNotFoundError(f"no artifact with sha256 {sha256}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArtifactStoreError(f"cannot read artifact {path}: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ArtifactStoreError(f"artifact {path} does not match its sha256")
        return data

    def exists(self, sha256: str) -> bool:
        """Tell whether a file is stored under the sha256 (its content unchecked)."""
        return self._find(sha256) is not None

    def _path(self, sha256: str, extension: str) -> Path:
        return self._root / "sha256" / sha256[:2] / f"{sha256}{extension}"

    def _find(self, sha256: str) -> Path | None:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a lowercase hex sha256: {sha256!r}")
        try:
            for extension in _SEARCHED_EXTENSIONS:
                path = self._path(sha256, extension)
                if path.is_file():
                    return path
        except OSError as exc:
            raise ArtifactStoreError(
                f"cannot look up artifact {sha256}: {exc}"
            ) from exc
        return None


def _extension(media_type: str) -> str:
    essence = media_type.split(";", 1)[0].strip().lower()
    return _EXTENSIONS.get(essence, _OTHER_EXTENSION)


def _holds(path: Path, sha256: str, size: int) -> bool:
    """Tell whether the file is there, whole and uncorrupted."""
    try:
        if path.stat().st_size != size:
            return False
    except FileNotFoundError:
        return False
    return _file_sha256(path) == sha256


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(path: Path, data: bytes) -> tuple[Path, ...]:
    """Write the file; return the directories whose entries changed."""
    changed = [path.parent, *_make_directories(path.parent)]
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as target:
            target.write(data)
            os.fchmod(target.fileno(), _FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    return tuple(changed)


def _make_directories(directory: Path) -> list[Path]:
    """Create `directory` and its missing parents; return the parents of those."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    if missing:
        directory.mkdir(parents=True, exist_ok=True)
    # A new directory is durable only once the entry in its parent is synced.
    return [created.parent for created in missing]


def _sync(path: Path, directories: tuple[Path, ...]) -> None:
    """Make a placed file durable, and its name in each changed directory."""
    try:
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
        for directory in directories:
            _sync_directory(directory)
    except OSError as exc:
        raise ArtifactStoreError(f"cannot sync artifact {path}: {exc}") from exc


def _sync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry itself is synced.
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
