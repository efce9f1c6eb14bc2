"""The locked install: requirements.lock pins every package, and agrees with requirements.txt."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def locked() -> dict[str, str]:
    out = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-!]+)", line.strip())
        assert match, f"requirements.lock: not an exact pin: {line!r}"
        out[canonicalize_name(match.group(1))] = match.group(2)
    return out


def test_every_requirement_is_locked_at_a_version_it_allows():
    pins = locked()
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in requirements.txt but not in requirements.lock (run `make lock`)"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"requirements.lock pins {req.name}=={pins[name]}, requirements.txt asks {req.specifier}"


def test_the_lock_pins_pip_and_the_machine_torch():
    pins = locked()
    assert "pip" in pins
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert "stagetrack" not in pins  # the project itself is installed editable, from the checkout


def test_a_missing_test_dependency_fails_under_ci_and_skips_elsewhere(monkeypatch):
    import pytest

    from conftest import require

    monkeypatch.setenv("CI", "true")
    with pytest.raises(ImportError):
        require("stagetrack_no_such_module")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require("stagetrack_no_such_module")
