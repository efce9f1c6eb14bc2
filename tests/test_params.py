"""params.yaml is complete (every config field is there), documented (one comment per key) and valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from conftest import leaf_paths

from stagetrack import configtypes
from stagetrack.config import STAGES, Params, load_params
from stagetrack.data.config import SourceConfig
from stagetrack.stageconfig import SourceMix

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def test_params_yaml_loads():
    params = load_params(PARAMS)
    assert params.lr > 0 and set(params.sources) >= {"dancetrack", "bdd", "visdrone"}


def test_every_config_field_is_in_params_yaml():
    data = yaml.safe_load(PARAMS.read_text())
    present = set(leaf_paths(data, empty_mappings=True))
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


# one dataclass serves several params sections: what its default must be is decided per field
_INSTANCES = [(re.compile(r"^stage[123]\."), "stage*."), (re.compile(r"^synth\.(bdd|dancetrack|visdrone)\."), "synth.*."),
              (re.compile(r"^sources\.[^.]+\."), "sources.*."), (re.compile(r"^stage\*\.data\.[^.]+\."), "stage*.data.*.")]
_OVERRIDES = re.compile(r"^stage[123]\.(detector|reid|assoc)(\.|$)")  # per-stage overrides of a section, {} by default


def _flat(data, prefix=""):
    out = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flat(value, path + "."))
        else:
            out[path] = value
    return out


def _generic(path: str) -> str:
    for pattern, repl in _INSTANCES:
        path = pattern.sub(repl, path)
    return path


def test_every_dataclass_default_equals_params_yaml():
    """The config dataclasses' own defaults (what library code and tests get without params.yaml)
    are params.yaml's values: one source of truth. A field of a class that serves several sections
    (the three stages, the synthetic domains, the sources, the stage mixes) whose sections set
    different values in params.yaml is per-section: params.yaml sets it in each (checked above)."""
    loaded = _flat(load_params(PARAMS).to_dict())
    defaults = _flat(Params().to_dict())
    element = {"sources.*.": _flat(configtypes.to_dict(SourceConfig())),
               "stage*.data.*.": _flat(configtypes.to_dict(SourceMix()))}
    by_generic: dict[str, set] = {}
    for path, value in loaded.items():
        by_generic.setdefault(_generic(path), set()).add(repr(value))
    drift = []
    for path, value in sorted(loaded.items()):
        if _OVERRIDES.match(path):
            continue
        generic = _generic(path)
        if path in defaults:
            default = defaults[path]
        else:
            prefix = next((p for p in element if generic.startswith(p)), None)
            assert prefix is not None, f"{path}: no dataclass default found"
            default = element[prefix][generic[len(prefix):]]
        if default != value and len(by_generic[generic]) == 1:
            drift.append(f"{path}: dataclass default {default!r}, params.yaml {value!r}")
    assert not drift, "dataclass defaults that differ from params.yaml:\n" + "\n".join(drift)
