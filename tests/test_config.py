"""The typed config: strict keys and types, exponent strings, per-stage overrides, line numbers."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Literal

import pytest

from stagetrack import configtypes
from stagetrack.config import load_params, parse_params
from stagetrack.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    rate: float = 0.1
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    n: int = 1
    flag: bool = False
    name: str = "x"
    sizes: list[int] = field(default_factory=list)
    maybe: float | None = None
    table: dict[str, str] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)


@pytest.mark.parametrize(
    "value, expected",
    [("1e-05", 1e-5), ("1e-5", 1e-5), ("-2.5E3", -2500.0), (3, 3.0), (0.25, 0.25), (".5", 0.5)],
)
def test_float_accepts_numbers_and_yaml11_exponent_strings(value, expected):
    # `dvc exp run -S lr=1e-5` writes `1e-05`, which PyYAML returns as a string
    assert configtypes.build(Inner, {"rate": value}).rate == expected


@pytest.mark.parametrize("value", ["fast", True, [1], "1e-5x"])
def test_float_rejects_non_numbers(value):
    with pytest.raises(ConfigError, match="inner.rate: expected a number"):
        configtypes.build(Outer, {"inner": {"rate": value}})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"n": "3"}, "n: expected an integer, got '3'"),
        ({"n": True}, "n: expected an integer"),
        ({"flag": "yes"}, "flag: expected true or false"),
        ({"name": 3}, "name: expected a string"),
        ({"sizes": 480}, "sizes: expected a list"),
        ({"sizes": [480, "x"]}, r"sizes\[1\]: expected an integer"),
        ({"inner": {"mode": "c"}}, r"inner.mode: invalid value 'c' \(allowed: a, b\)"),
        ({"inner": 5}, "inner: expected a mapping"),
    ],
)
def test_wrong_types_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        configtypes.build(Outer, data)


def test_unknown_key_names_key_line_and_suggestion():
    with pytest.raises(ConfigError) as err:
        configtypes.build(Outer, {"inner": {"rte": 1.0}}, file="params.yaml", lines={"inner.rte": 12})
    text = str(err.value)
    assert text.startswith("params.yaml:12: inner.rte: unknown key")
    assert "did you mean 'rate'?" in text


def test_lists_optionals_and_int_keys():
    cfg = configtypes.build(Outer, {"sizes": [480, 512], "maybe": None, "table": {1: "person"}})
    assert cfg.sizes == [480, 512]
    assert cfg.maybe is None
    assert cfg.table == {"1": "person"}  # YAML reads `1: person` with an int key


def test_yaml_line_map_points_at_nested_keys():
    text = "a: 1\nb:\n  c:\n    d: 2\n  e: [1, 2]\n"
    lines = configtypes.yaml_line_map(text)
    assert lines == {"a": 1, "b": 2, "b.c": 3, "b.c.d": 4, "b.e": 5, "b.e[0]": 5, "b.e[1]": 5}


def test_load_params_reports_file_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(textwrap.dedent("""\
        seed: 0
        lr: 1e-05
        detector:
          epochs: many
    """))
    with pytest.raises(ConfigError, match=r"params.yaml:4: detector.epochs: expected an integer, got 'many'"):
        load_params(path)


def test_invalid_yaml_names_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(ConfigError, match=r"params.yaml:\d+: invalid YAML"):
        load_params(path)


def test_exponent_lr_from_dvc_exp_is_a_float(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("lr: 1e-05\nstage2:\n  lr_scale: 0.5\n")
    params = load_params(path)
    assert isinstance(params.lr, float) and params.lr == 1e-5
    assert params.stage_lr("stage2") == pytest.approx(5e-6)


def test_stage_overrides_merge_over_global_section_and_are_validated(tmp_path):
    params = parse_params({"detector": {"epochs": 7, "imgsz": 320}, "stage2": {"detector": {"epochs": 2}}})
    assert params.stage_section("stage1", "detector").epochs == 7
    assert params.stage_section("stage2", "detector").epochs == 2
    assert params.stage_section("stage2", "detector").imgsz == 320
    path = tmp_path / "params.yaml"
    path.write_text("stage3:\n  detector:\n    epoch: 2\n")
    with pytest.raises(ConfigError, match=r"params.yaml:3: stage3.detector.epoch: unknown key.*did you mean 'epochs'"):
        load_params(path)


def test_stage_data_must_name_configured_sources():
    with pytest.raises(ConfigError, match="stage1.data.kitti: unknown source"):
        parse_params({"sources": {"bdd": {"format": "bdd", "root": "x"}},
                      "stage1": {"data": {"kitti": {"enabled": True, "frame_budget": 5}}}})


def test_private_fields_are_not_params():
    with pytest.raises(ConfigError, match="_file: unknown key"):
        parse_params({"_file": "x"})


@pytest.mark.parametrize("init", ["x.pt", "stage3", "models/stage1"])
def test_stage_init_must_be_null_or_an_earlier_stage(init):
    """A weights path here used to pass validation and be rejected mid-pipeline."""
    with pytest.raises(ConfigError, match=r"stage2.init: must be null or an earlier stage \(stage1\), got .*"
                                          r"detector.weights / reid.weights"):
        parse_params({"stage2": {"init": init}})


def test_tracker_history_shorter_than_the_scorers_is_an_error():
    with pytest.raises(ConfigError, match=r"tracker.history: 4 boxes kept per track, but the learned scorer reads "
                                          r"assoc.history = 8"):
        parse_params({"tracker": {"history": 4}, "assoc": {"history": 8}})
    assert parse_params({"tracker": {"history": 8}, "assoc": {"history": 8}}).tracker.history == 8


def test_commands_without_a_params_file_stop_with_the_fix(tmp_path, monkeypatch):
    from stagetrack.config import command_params

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^params.yaml: params file not found; run from the repository root or "
                                          r"pass --params FILE$"):
        command_params(None)
    with pytest.raises(ConfigError, match=r"^elsewhere.yaml: params file not found"):
        command_params("elsewhere.yaml")
