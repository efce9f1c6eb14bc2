"""Detector weight interpolation with the previous stage (WiSE-FT, issue 16): the arithmetic,
alpha chosen on the selection split, alpha = 1 leaving stage N's bytes, the stage key's checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stagetrack.config import load_params
from stagetrack.detect import interpolate
from stagetrack.errors import CheckpointError, ConfigError
from stagetrack.io import atomic_write_bytes, torch_bytes

REPO = Path(__file__).resolve().parents[1]
PICO = REPO / "src" / "stagetrack" / "detect" / "models" / "yolo11-pico.yaml"


def checkpoint(seed: int, cfg: Path = PICO) -> dict:
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    model = DetectionModel(cfg=str(cfg), nc=2, verbose=False)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
        for name, buf in model.named_buffers():
            if buf.is_floating_point():
                buf.uniform_(0.5, 2.0)
            elif name.endswith("num_batches_tracked"):
                buf.fill_(seed + 1)
    return {"model": model, "ema": None, "train_args": {"imgsz": 64}, "epoch": 3}


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, Path]:
    ft, prev = tmp_path / "stage3.pt", tmp_path / "stage2.pt"
    atomic_write_bytes(ft, torch_bytes(checkpoint(1)))
    atomic_write_bytes(prev, torch_bytes(checkpoint(2)))
    return ft, prev


def test_interpolation_mixes_every_float_tensor_and_keeps_counters():
    ft, prev = checkpoint(1), checkpoint(2)
    a, b = ft["model"].state_dict(), prev["model"].state_dict()
    for alpha in (0.0, 0.3, 1.0):
        mixed = interpolate.interpolated(ft, prev, alpha)["model"].state_dict()
        for key, value in mixed.items():
            if value.is_floating_point():
                expected = (alpha * a[key].float() + (1 - alpha) * b[key].float()).to(a[key].dtype)
                assert torch.equal(value, expected), key
            else:
                assert torch.equal(value, a[key]), key  # batch counters stay stage N's
    assert torch.equal(interpolate.interpolated(ft, prev, 0.0)["model"].state_dict()["model.0.conv.weight"],
                       b["model.0.conv.weight"])
    # the inputs are untouched, the result says its alpha
    assert torch.equal(ft["model"].state_dict()["model.0.conv.weight"], a["model.0.conv.weight"])
    assert interpolate.interpolated(ft, prev, 0.3)["interpolation"] == {"alpha": 0.3}
    with pytest.raises(ValueError, match="alpha"):
        interpolate.interpolated(ft, prev, 1.5)


def test_alpha_is_chosen_by_selection_fitness_and_alpha_1_keeps_the_bytes(two, tmp_path):
    ft, prev = two
    before = ft.read_bytes()
    seen = []

    def validate(weights: Path) -> dict:
        seen.append(weights)
        alpha = torch.load(weights, weights_only=False).get("interpolation", {"alpha": 1.0})["alpha"]
        fitness = {1.0: 0.40, 0.75: 0.50, 0.5: 0.50, 0.25: 0.1}[alpha]  # a tie: the larger alpha wins
        return {"mAP50-95": fitness, "mAP50": fitness + 0.2}

    out = interpolate.choose_alpha(ft, prev, [0.25, 0.5, 0.75, 1.0, 0.5], validate=validate, work_dir=tmp_path / "w")
    assert out["alpha"] == 0.75 and out["fitness"] == {"0.25": 0.1, "0.5": 0.5, "0.75": 0.5, "1": 0.4}
    assert out["metrics"]["mAP50"] == pytest.approx(0.7) and out["path"] == tmp_path / "w" / "alpha_0.7500.pt"
    assert len(seen) == 4 and seen[0] == ft  # each candidate once; alpha 1 is the file itself
    assert ft.read_bytes() == before
    # the same inputs write the same bytes (the pipeline's determinism)
    again = interpolate.choose_alpha(ft, prev, [0.75], validate=validate, work_dir=tmp_path / "w2")
    assert again["path"].read_bytes() == out["path"].read_bytes()
    # when alpha 1 wins, the kept file is stage N's own, byte for byte
    best = interpolate.choose_alpha(ft, prev, [0.25, 1.0], validate=validate, work_dir=tmp_path / "w3")
    assert best["alpha"] == 1.0 and best["path"] == ft and ft.read_bytes() == before


def test_different_architectures_or_damaged_files_name_the_file(two, tmp_path):
    ft, prev = two
    other = tmp_path / "other.pt"
    from ultralytics.nn.tasks import DetectionModel

    wide = DetectionModel(cfg=str(PICO), nc=3, verbose=False)  # another head: shapes differ
    atomic_write_bytes(other, torch_bytes({"model": wide, "train_args": {"imgsz": 64}}))
    with pytest.raises(CheckpointError) as err:
        interpolate.choose_alpha(ft, other, [0.5], validate=lambda w: {"mAP50-95": 0, "mAP50": 0}, work_dir=tmp_path)
    assert str(other) in str(err.value)
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(ft.read_bytes()[:100])
    with pytest.raises(CheckpointError) as err:
        interpolate.choose_alpha(damaged, prev, [0.5], validate=lambda w: {}, work_dir=tmp_path)
    assert str(damaged) in str(err.value)


def test_the_stage_key_is_checked(tmp_path):
    import yaml

    data = yaml.safe_load((REPO / "params.yaml").read_text())
    bad = tmp_path / "params.yaml"
    data["stage3"]["interpolate_alphas"] = [0.5, 1.2]
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_params(bad)
    assert "stage3.interpolate_alphas" in str(err.value) and "1.2" in str(err.value)
    data["stage3"]["interpolate_alphas"] = [0.5]
    data["stage1"]["interpolate_alphas"] = [0.5]
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="needs init") as err:
        load_params(bad)
    assert "stage1.interpolate_alphas" in str(err.value)
