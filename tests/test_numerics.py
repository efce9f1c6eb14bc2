"""Pinned numerics: what is set, that torch obeys it in a fresh process, and the errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stagetrack import cli, numerics
from stagetrack.config import load_params
from stagetrack.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, cwd=REPO)


def test_environment_caps_every_library_at_avx2_and_fixes_threads():
    env = numerics.environment(numerics.NumericsConfig(threads=3))
    assert env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["MKL_CBWR"] == "AVX2" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert "X86_V4" in env["NPY_DISABLE_CPU_FEATURES"]
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "3"
    assert numerics.environment(numerics.NumericsConfig(pin=False)) == {}


def test_a_pinned_process_runs_torch_as_pinned_whatever_its_environment():
    proc = python("from stagetrack import numerics; numerics.pin(numerics.NumericsConfig(threads=1)); "
                  "import torch; print(torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), "
                  "torch.backends.cpu.get_cpu_capability() in ('AVX2', 'DEFAULT'), torch.initial_seed(), "
                  "torch.rand(1).item())", ATEN_CPU_CAPABILITY="default", OMP_NUM_THREADS="7")
    assert proc.returncode == 0, proc.stderr
    threads, deterministic, level_ok, seed, draw = proc.stdout.split()
    assert (threads, deterministic, level_ok, seed) == ("1", "True", "True", "0")
    again = python("from stagetrack import numerics; numerics.pin(numerics.NumericsConfig()); "
                   "import torch; print(torch.rand(1).item())")
    assert again.stdout.split() == [draw]  # an unseeded draw is the same in every pinned process


def test_unpinned_processes_start_from_a_random_torch_seed():
    """Why the pinning seeds torch: without it two processes draw different first numbers."""
    draws = {python("import torch; print(torch.initial_seed())").stdout for _ in range(2)}
    assert len(draws) == 2


def test_pinning_after_torch_loaded_is_an_error():
    proc = python("import torch\nfrom stagetrack import numerics\nnumerics.pin(numerics.NumericsConfig())")
    assert proc.returncode != 0 and "loaded before the numerics were pinned" in proc.stderr


def test_cli_reads_the_numerics_section_of_its_params_file(tmp_path):
    bad = tmp_path / "params.yaml"
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    data["numerics"]["threads"] = 0
    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "stagetrack.cli", "plan", "--params", str(bad)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{bad}:" in proc.stderr and "numerics.threads: must be >= 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pinned_numerics_require_deterministic_training(tmp_path):
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    data["train"]["deterministic"] = False
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError, match="train.deterministic: must be true while numerics.pin is true"):
        load_params(path)
    data["numerics"]["pin"] = False
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert load_params(path).train.deterministic is False


@pytest.mark.parametrize("var, key", [("TRANSFORMER_ASSOC_WEIGHT", "tracker.assoc.weight"),
                                      ("TRANSFORMER_LOG_DIR", "assoc.log_dir")])
def test_pipeline_stages_refuse_the_seed_variables(monkeypatch, tmp_path, caplog, var, key):
    """DVC cannot see the environment: a stage with an override variable set stops, naming the key."""
    monkeypatch.setenv(var, "0.5")
    out = tmp_path / "synth"
    assert cli.main(["synth", "--params", str(REPO / "params.yaml"), "--out", str(out)], pipeline=True) == 2
    assert not out.exists()
    assert f"{var} is set" in caplog.text and key in caplog.text
