"""Keep every third-party library off the network, configured once, here.

Call :func:`configure` before importing ultralytics, torchreid, dvc or dvclive (the CLI and the
stage scripts do it first thing). What each library would otherwise do, and what stops it:

* ultralytics: DNS look-ups for its online check at import (``YOLO_OFFLINE=1``), pip
  auto-install (also ``YOLO_OFFLINE``), a settings file in the home folder (``YOLO_CONFIG_DIR``
  points into the project's ``.cache``), downloading ``Arial.ttf`` during dataset checks (a
  local copy of matplotlib's DejaVuSans is placed where it looks first), hub/sync/DVC callbacks
  (switched off in :func:`configure_ultralytics`), and its CUDA AMP check that loads a
  downloaded checkpoint (the detector wrapper passes ``amp=False`` unless a local file exists).
* torchreid: ``pretrained=True`` downloads from Google Drive; the wrapper always passes
  ``pretrained=False`` and loads local weights itself. ``TORCH_HOME`` points into ``.cache``
  so that nothing would land in the home folder even by accident.
* dvc / dvclive: anonymous usage analytics (``DVC_NO_ANALYTICS``; ``.dvc/config`` also sets
  ``core.analytics = false``) and Studio live metrics (``DVC_STUDIO_OFFLINE``).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

_ENV = {
    "YOLO_OFFLINE": "1",
    "YOLO_VERBOSE": "False",
    "DVC_NO_ANALYTICS": "1",
    "DVC_STUDIO_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "GIT_TERMINAL_PROMPT": "0",
    # OpenMP threads sleep instead of spinning while idle: measured 1.3x faster training on a
    # quiet 2-core machine with 2 threads, and far less slowdown when other processes compete
    "OMP_WAIT_POLICY": "PASSIVE",
}

_configured: Path | None = None


def cache_dir() -> Path:
    """The project-local cache (``$STAGETRACK_CACHE`` or ``./.cache``), created on demand."""
    path = Path(os.environ.get("STAGETRACK_CACHE", ".cache")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def configure(threads: int | None = None) -> Path:
    """Set the environment so that no library reaches the network. Idempotent.

    ``threads`` sets OMP/MKL threads (ultralytics forces 1 at import when unset) unless
    :mod:`.numerics` pinned them; the default is the pinned count, else every core. Returns the
    cache directory.
    """
    global _configured
    if _configured is not None:
        return _configured
    cache = cache_dir()
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache))
    os.environ.setdefault("TORCH_HOME", str(cache / "torch"))
    os.environ.setdefault("MPLCONFIGDIR", str(cache / "matplotlib"))
    from .numerics import thread_count

    n = str(threads or thread_count())
    os.environ.setdefault("OMP_NUM_THREADS", n)
    os.environ.setdefault("MKL_NUM_THREADS", n)
    _install_font(cache / "Ultralytics")
    _configured = cache
    return cache


def _install_font(ultra_dir: Path) -> None:
    """Put a local font where ultralytics' ``check_font`` looks before downloading."""
    import matplotlib

    src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    ultra_dir.mkdir(parents=True, exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        dst = ultra_dir / name
        if not dst.exists():
            tmp = dst.with_suffix(".tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)


def configure_ultralytics() -> None:
    """Import ultralytics offline and switch off its hub, sync and logger integrations."""
    configure()
    from ultralytics import settings

    off = {k: False for k in ("sync", "hub", "dvc", "tensorboard", "wandb", "mlflow", "clearml",
                             "comet", "neptune", "raytune") if k in settings}
    if any(settings.get(k) for k in off):
        settings.update(off)
    logging.getLogger("ultralytics").setLevel(logging.WARNING)
