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


def leaf_paths(data: dict, *, empty_mappings: bool, prefix: str = "") -> list[str]:
    """Dotted paths of a params document's leaves. ``empty_mappings``: whether an empty mapping
    (a stage's ``reid: {}`` overrides) counts as a leaf: it is a key params.yaml must carry, but
    no code reads a value from it."""
    out = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and (value or not empty_mappings):
            out += leaf_paths(value, empty_mappings=empty_mappings, prefix=path)
        else:
            out.append(path)
    return out
