"""Pinned numerics: the same floating-point results, to the byte, on any x86-64 machine.

The same program with the same seeds computes different floats on two machines (and sometimes
twice on one) wherever a library picks its kernels by the processor or splits a reduction by
the number of threads. Each such choice is fixed here, in the environment, *before* torch,
numpy or OpenCV load (they read these variables once, at load):

=====================  =========================================  ==================================
library                what would vary                            pinned by
=====================  =========================================  ==================================
torch (ATen)           vectorised CPU kernels: AVX2 or AVX512     ``ATEN_CPU_CAPABILITY=avx2``
MKL (torch's BLAS)     code path per CPU; run to run with         ``MKL_CBWR=AVX2``,
                       memory alignment and thread timing         ``MKL_ENABLE_INSTRUCTIONS=AVX2``
oneDNN (convolutions)  JIT kernels per instruction set            ``ONEDNN_MAX_CPU_ISA=AVX2``
numpy                  SIMD loops (AVX512 ``exp``/``log``/...)     ``NPY_DISABLE_CPU_FEATURES``
OpenBLAS (numpy BLAS)  kernel chosen per CPU                      ``OPENBLAS_CORETYPE=Haswell``
OpenCV                 dispatched AVX512 loops                    ``OPENCV_CPU_DISABLE``
threaded libraries     how a reduction is split over threads      ``*_NUM_THREADS`` = ``threads``
torch ops              non-deterministic algorithms               ``use_deterministic_algorithms``
=====================  =========================================  ==================================

AVX2 exists on every x86-64 server of the last decade; a machine without it runs torch's
portable kernels (and gets different bytes: :func:`report` says so). ``numerics.pin: false``
(params.yaml) leaves every library its fastest choice and all cores, for GPU boxes and quick
experiments: results then depend on the machine.

Entry points (the CLI, ``python -m stagetrack.assoc.train``, the tests' conftest, the bench)
call :func:`pin_for_argv` or :func:`pin` first thing. torch's own settings (threads,
deterministic algorithms) are applied the moment torch is imported, by a one-shot import hook,
so commands that never load torch do not pay for it. This module imports neither numpy nor torch.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CPU_LEVEL = "avx2"
# numpy 2.x dispatch targets above AVX2 (X86_V3); disabling one the CPU lacks is a no-op
_NUMPY_ABOVE_AVX2 = "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL"
# OpenCV's dispatched AVX512 targets (it prints a warning for names the CPU lacks: set only with AVX512)
_OPENCV_ABOVE_AVX2 = "AVX512-SKX,AVX512-ICL,AVX512-KNL,AVX512-KNM,AVX512-CNL,AVX512-CLX"


@dataclass(frozen=True)
class NumericsConfig:
    """``numerics:`` in params.yaml (values there; these defaults serve only tests and tools)."""

    pin: bool = True    # same bytes on any x86-64 machine (AVX2 kernels, fixed threads, deterministic ops)
    threads: int = 2    # CPU threads of torch, OpenMP, MKL and OpenBLAS when pinned (results depend on it)

    def validate(self) -> tuple[str, str] | None:
        if self.threads < 1:
            return "threads", f"must be >= 1, got {self.threads}"
        return None


_pinned: NumericsConfig | None = None


def pinned() -> NumericsConfig | None:
    """The config this process was pinned with, or None (not pinned / pinning relaxed)."""
    return _pinned if _pinned is not None and _pinned.pin else None


def thread_count() -> int:
    """CPU threads every library should use: the pinned count, else every core."""
    cfg = pinned()
    return cfg.threads if cfg else (os.cpu_count() or 1)


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def environment(cfg: NumericsConfig) -> dict[str, str]:
    """The variables :func:`pin` sets for ``cfg`` (empty when ``cfg.pin`` is false)."""
    if not cfg.pin:
        return {}
    n = str(cfg.threads)
    env = {
        "ATEN_CPU_CAPABILITY": CPU_LEVEL,
        "MKL_CBWR": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "DNNL_MAX_CPU_ISA": "AVX2",
        "NPY_DISABLE_CPU_FEATURES": _NUMPY_ABOVE_AVX2,
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "MKL_DYNAMIC": "FALSE",
        "OMP_DYNAMIC": "FALSE",
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    }
    if "avx512f" in _cpu_flags():
        env["OPENCV_CPU_DISABLE"] = _OPENCV_ABOVE_AVX2
    return env


def pin(cfg: NumericsConfig) -> dict[str, str]:
    """Fix this process's numerics (and its children's) as ``cfg`` says; returns what was set.

    Must run before numpy, torch and OpenCV are imported; a library already loaded is an error
    (its kernels are chosen), except under pytest's in-process calls where the conftest pinned
    first. ``OPENBLAS_CORETYPE`` is left as the environment has it if set (some machines set it
    to avoid broken kernels), else pinned to ``Haswell`` (AVX2).
    """
    global _pinned
    from .errors import ConfigError

    if _pinned is not None:
        if _pinned != cfg:
            raise ConfigError(f"this process was pinned with {_pinned}, now asked for {cfg}", field="numerics",
                              hint="one process, one numerics setting")
        return environment(cfg)
    env = environment(cfg)
    if env:
        loaded = [m for m in ("numpy", "torch", "cv2") if m in sys.modules]
        if loaded:
            raise ConfigError(f"{', '.join(loaded)} loaded before the numerics were pinned", field="numerics.pin",
                              hint="call stagetrack.numerics.pin() before importing them")
        os.environ.update(env)
        random.seed(0)  # Python seeds `random` from the OS at start-up; same reason as torch below
        if not os.environ.get("OPENBLAS_CORETYPE"):
            os.environ["OPENBLAS_CORETYPE"] = "Haswell"
        sys.meta_path.insert(0, _TorchHook())
    _pinned = cfg
    return env


def pin_for_argv(argv: list[str], default: str = "params.yaml") -> NumericsConfig:
    """Pin from the ``numerics:`` section of the params file a command line names.

    ``--params FILE`` (or ``--params=FILE``) if given, else ``./params.yaml`` if it exists; a
    command without params is pinned with the defaults. A bad section is a ConfigError with its
    file and line.
    """
    path: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--params" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--params="):
            path = arg.split("=", 1)[1]
    if path is None and Path(default).is_file():
        path = default
    cfg = read_config(path) if path and Path(path).is_file() else NumericsConfig()
    pin(cfg)
    return cfg


def pin_for_argv_or_exit(argv: list[str]) -> NumericsConfig:
    """:func:`pin_for_argv` for a module's ``__main__`` block: a bad params file exits 2, one line."""
    from .errors import StagetrackError

    try:
        return pin_for_argv(argv)
    except StagetrackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def read_config(path: str | Path) -> NumericsConfig:
    """The ``numerics:`` section of a params file, strictly typed (missing section: defaults)."""
    from . import configtypes

    data, lines = configtypes.load_yaml(path)
    section = (data or {}).get("numerics") or {}
    return configtypes.build(NumericsConfig, section, key="numerics", file=str(path), lines=lines)


def configure_torch() -> None:
    """torch's share of the pinning: thread counts and deterministic algorithms (idempotent)."""
    cfg = pinned()
    if cfg is None:
        return
    import torch

    # torch seeds its default generator from the OS at start-up: a draw that no code seeds would
    # differ between two identical runs. Start every pinned process from the same state instead
    # (each trained part still seeds itself from params).
    torch.manual_seed(0)
    if torch.get_num_threads() != cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already ran
        pass
    if not torch.are_deterministic_algorithms_enabled():
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # deterministic mode's NaN fill: no effect on results


def check_torch() -> None:
    """Raise if torch runs kernels above the pinned level (it was loaded before :func:`pin`)."""
    from .errors import ConfigError

    if pinned() is None or "torch" not in sys.modules:
        return
    import torch

    level = torch.backends.cpu.get_cpu_capability()
    if level not in ("AVX2", "DEFAULT"):
        raise ConfigError(f"torch runs {level} CPU kernels although numerics are pinned to {CPU_LEVEL}",
                          field="numerics.pin", hint="torch was imported before stagetrack.numerics.pin()")


def report() -> dict[str, Any]:
    """What this process runs with: for logs, metrics and the README's 'what is pinned'."""
    out: dict[str, Any] = {"pinned": pinned() is not None, "threads": thread_count()}
    keys = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS")
    out["env"] = {k: os.environ.get(k) for k in keys}
    if "torch" in sys.modules:
        import torch

        out["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        if out["pinned"] and out["torch_cpu_capability"] == "DEFAULT":
            log.warning("this CPU lacks AVX2: torch runs its portable kernels and results differ from AVX2 machines")
    return out


class _TorchHook(importlib.abc.MetaPathFinder):
    """Runs :func:`configure_torch` right after ``import torch`` finishes (then steps aside)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            configure_torch()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
