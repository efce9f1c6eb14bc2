"""`dvc exp run -S key=value` on params.yaml: DVC's own override writer, then our typed loader.

DVC applies `-S` through `dvc.utils.hydra.apply_overrides`, which rewrites params.yaml (YAML 1.1
style: `1e-5` becomes the string-looking `1e-05`). These tests run that exact function on a copy
of the project's params.yaml and check what the stages would then see.
"""

from __future__ import annotations

import shutil

import pytest
from dvc.utils.hydra import apply_overrides

from stagetrack.config import load_params
from stagetrack.errors import ConfigError


@pytest.fixture()
def params_file(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy("params.yaml", path)
    return path


def test_exponent_and_list_overrides_reach_the_typed_config(params_file):
    apply_overrides(str(params_file), ["lr=1e-5", "stage1.aug_resize_scales=[480,512]", "tracker.match_thresh=0.75"])
    assert "lr: 1e-05" in params_file.read_text()  # what PyYAML alone would read as a string
    params = load_params(params_file)
    assert params.lr == 1e-5 and isinstance(params.lr, float)
    assert params.stage1.aug_resize_scales == [480, 512]
    assert params.tracker.match_thresh == 0.75


def test_wrong_type_names_key_and_line(params_file):
    apply_overrides(str(params_file), ["stage1.lr_scale=abc"])
    line = next(i for i, text in enumerate(params_file.read_text().splitlines(), 1)
                if text.strip().startswith("lr_scale: abc"))
    with pytest.raises(ConfigError, match=rf"params.yaml:{line}: stage1.lr_scale: expected a number, got 'abc'"):
        load_params(params_file)


def test_unknown_key_is_refused_by_dvc_and_by_the_loader(params_file):
    from dvc.exceptions import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        apply_overrides(str(params_file), ["stage1.lr_scael=0.5"])
    apply_overrides(str(params_file), ["+stage1.lr_scael=0.5"])  # `+` forces a new key into the file
    with pytest.raises(ConfigError, match=r"stage1.lr_scael.*lr_scale"):
        load_params(params_file)
