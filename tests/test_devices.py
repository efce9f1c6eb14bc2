"""One device rule (stagetrack/devices.py) for params `device`, `train.device` and `--device` flags."""

from __future__ import annotations

import pytest
import torch

from stagetrack.devices import DEVICES, resolve_device
from stagetrack.errors import ConfigError


def test_auto_is_cuda_when_visible_else_cpu():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"train\.device: device 'cuda' asked for but no CUDA device"):
        resolve_device("cuda", field="train.device")


def test_an_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="invalid device 'gpu'") as err:
        resolve_device("gpu", field="--device")
    assert err.value.allowed == list(DEVICES)


def test_every_part_uses_it():
    """The params object, the engine, ReID and the scorer resolve through the same function."""
    from stagetrack.assoc import scorer
    from stagetrack.config import Params
    from stagetrack.reid import train as reid_train
    from stagetrack.train import engine

    assert Params(device="cpu").resolved_device() == "cpu"
    assert engine.resolve_device("cpu") == torch.device("cpu")
    assert reid_train.resolve_device is resolve_device
    assert scorer._device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="train.device"):
        engine.resolve_device("tpu")
    with pytest.raises(ConfigError, match="invalid device 'tpu'"):  # torch.device('tpu') would be a RuntimeError
        scorer._device("tpu")
    with pytest.raises(ConfigError, match="invalid device 'tpu'"):
        Params(device="tpu").resolved_device()
