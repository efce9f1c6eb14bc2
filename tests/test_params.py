"""params.yaml is complete (every config field is there), documented (one comment per key) and valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from stagetrack import configtypes
from stagetrack.config import STAGES, Params, load_params
from stagetrack.data.config import SourceConfig
from stagetrack.stageconfig import SourceMix

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def _leaf_paths(data: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out |= _leaf_paths(value, path) if isinstance(value, dict) and value else {path}
    return out


def test_params_yaml_loads():
    params = load_params(PARAMS)
    assert params.lr > 0 and set(params.sources) >= {"dancetrack", "bdd", "visdrone"}


def test_every_config_field_is_in_params_yaml():
    data = yaml.safe_load(PARAMS.read_text())
    present = _leaf_paths(data)
    dict_fields = {"class_map", "detector", "reid", "assoc", "data", "sources"}
    missing = []
    for path in configtypes.field_paths(Params):
        if path.split(".")[-1] in dict_fields and path.count(".") <= 1 and path.startswith("stage"):
            continue  # per-stage overrides and mixes are checked below
        if path == "sources":
            continue
        if not any(p == path or p.startswith(path + ".") for p in present):
            missing.append(path)
    for name in data["sources"]:
        for field in configtypes.field_paths(SourceConfig):
            if field not in data["sources"][name]:
                missing.append(f"sources.{name}.{field}")
    for stage in STAGES:
        for source, mix in data[stage]["data"].items():
            for field in configtypes.field_paths(SourceMix):
                if field not in mix:
                    missing.append(f"{stage}.data.{source}.{field}")
    assert not missing, f"config fields missing from params.yaml: {missing}"


def test_every_key_has_a_comment():
    uncommented = []
    for n, line in enumerate(PARAMS.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if re.match(r"^[A-Za-z_][\w-]*:", stripped) and "#" not in line:
            if not line.rstrip().endswith(":"):  # a section header may carry its comment or not
                uncommented.append(f"{n}: {stripped}")
    assert not uncommented, "params.yaml keys without a one-line comment:\n" + "\n".join(uncommented)
