"""torchreid, imported offline and quietly: the one place this package imports it from.

torchreid 0.2.5 is a repackaging laid out as ``torchreid.reid.*``; importing it pulls in gdown
and tensorboard and warns that its Cython rank evaluation is missing (the Python one is used).
It reports progress with ``print``: :func:`quiet` turns that into DEBUG log lines.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

from .. import offline

offline.configure()

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Cython evaluation", category=UserWarning)
    from torchreid.reid import data, engine, metrics, models, optim, utils  # noqa: E402

__all__ = ["data", "engine", "metrics", "models", "optim", "utils", "quiet"]

log = logging.getLogger("stagetrack.reid.torchreid")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Capture torchreid's prints inside the block and log them at DEBUG level."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            if line.strip():
                log.debug("%s", line)
