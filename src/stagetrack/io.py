"""Atomic file output and content hashing.

Everything the pipeline writes (checkpoints, manifests, metrics, images of the built sets) goes
through these helpers: data lands in a temporary file in the same directory and is renamed over
the target only once complete, so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` if the block succeeds.

    ``suffix`` defaults to the target's suffix so that libraries which infer the format from
    the file name (cv2.imwrite, torch.save) behave as they would on the real path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.tmp.", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get normal permissions
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def torch_bytes(obj: Any) -> bytes:
    """``torch.save(obj)`` as bytes. Saved to a file, torch names the archive's inner folder
    after the file, so writing through a randomly named temporary file gave equal weights
    different bytes; in memory the folder is always ``archive``. Strings are interned first
    (:func:`intern_strings`), so the bytes do not depend on which equal strings were one object."""
    import torch

    buf = io.BytesIO()
    torch.save(intern_strings(obj), buf)
    return buf.getvalue()


def intern_strings(obj: Any, seen: set[int] | None = None) -> Any:
    """``obj`` with every string in its graph interned (containers changed in place).

    pickle writes an object it has seen before as a back-reference, by identity: two equal strings
    that are one object in a run that built its model from source literals and two objects in a
    run that rebuilt it from a checkpoint (a resumed run) pickle to different bytes. With every
    string interned, equal strings are one object in both.
    """
    import torch

    if isinstance(obj, str):
        return sys.intern(obj)
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (torch.Tensor, type, types.FunctionType, types.ModuleType)):
        return obj
    seen.add(id(obj))
    if isinstance(obj, dict):
        items = [(intern_strings(k, seen), intern_strings(v, seen)) for k, v in obj.items()]
        obj.clear()
        obj.update(items)
    elif isinstance(obj, list):
        obj[:] = [intern_strings(v, seen) for v in obj]
    elif type(obj) is tuple:
        return tuple(intern_strings(v, seen) for v in obj)
    elif hasattr(obj, "__dict__"):
        try:
            intern_strings(vars(obj), seen)
        except TypeError:  # objects whose __dict__ is a read-only proxy
            pass
    return obj


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    """``torch.save`` to ``path`` atomically, with bytes that depend on ``obj`` alone."""
    atomic_write_bytes(path, torch_bytes(obj))


def read_image(path: str | Path) -> Any:
    """A BGR uint8 image (``cv2.imread``), or a :class:`DataError` naming the file."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        from .errors import DataError

        raise DataError("unreadable image", file=path)
    return image


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, 2-space indent, trailing newline (stable diffs and hashes)."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_json_default) + "\n"


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths reach metrics dicts often enough to accept them here, once.
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    if isinstance(obj, Path):
        return obj.as_posix()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(root: str | Path, exclude: tuple[str, ...] = ()) -> str:
    """Hash of a directory: every file's relative POSIX path and content, in sorted order.

    Names in ``exclude`` (relative paths) are skipped, e.g. the lock file that stores the hash.
    """
    root = Path(root)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if rel in exclude:
            continue
        digest.update(rel.encode())
        digest.update(b"\0")
        digest.update(sha256_file(file).encode())
        digest.update(b"\n")
    return digest.hexdigest()
