"""The project's exception types.

Every error a user can cause (bad params, malformed dataset files, a corrupt checkpoint, a
changed validation set) is a :class:`StagetrackError` that carries where it happened: the file,
the line, the field or key, and, where there is a fixed set, the allowed values. The CLI turns
it into one clear line and a non-zero exit, with no traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class StagetrackError(Exception):
    """A user-facing error. ``str(err)`` is the one line the CLI prints."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        allowed: Iterable[object] | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.allowed = list(allowed) if allowed is not None else None
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line is not None else "")
        parts = [p for p in (where, self.field) if p]
        text = (": ".join(parts) + ": " if parts else "") + self.message
        if self.allowed is not None:
            text += f" (allowed: {', '.join(map(str, self.allowed))})"
        if self.hint:
            text += f"; {self.hint}"
        return text


class ConfigError(StagetrackError):
    """params.yaml (or a CLI override) has an unknown key, a wrong type or a bad value."""


class DataError(StagetrackError):
    """A dataset file is missing, unreadable or malformed."""


class LockError(StagetrackError):
    """The locked validation/test manifest was violated (leak, changed hash, unknown video)."""


class CheckpointError(StagetrackError):
    """A checkpoint is missing, truncated, corrupt or incompatible with the run."""


class TrainingAlarm(StagetrackError):
    """Training stopped itself: non-finite loss, collapse or another alarm that is fatal."""
