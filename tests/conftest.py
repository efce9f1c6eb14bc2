"""Every test process runs with the pipeline's pinned numerics (set before numpy and torch load)."""

from stagetrack import numerics

numerics.pin(numerics.NumericsConfig())


def require(module: str):
    """Import ``module`` for a test module: skip the module when it is missing on a developer's
    machine, but fail under CI (``CI`` set), where every test dependency must be installed."""
    import importlib
    import os

    import pytest

    if os.environ.get("CI"):
        return importlib.import_module(module)  # ImportError: the module errors, CI fails
    return pytest.importorskip(module, reason="test dependency in requirements.txt")
