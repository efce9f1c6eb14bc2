"""`stagetrack dashboard`: reading the run's logs, forgetting warnings, the PNG."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from stagetrack import cli
from stagetrack.errors import DataError, StagetrackError
from stagetrack.visual import dashboard
from stagetrack.visual.config import DashboardConfig

DPI = 20  # small PNGs: figure size (5.5 x 3 columns, 14) inches -> 330 x 280 pixels


def stage_json(person_hota: dict[str, float]) -> dict:
    """A stageN.json: per domain, person HOTA as given (IDF1 = HOTA + 1), a vehicle entry for 'all'."""
    val = {d: {"person": {"HOTA": h, "IDF1": h + 1}} for d, h in person_hota.items()}
    val["all"]["combined"] = {"HOTA": person_hota["all"] - 2, "IDF1": person_hota["all"]}
    val["all"]["vehicle"] = {"HOTA": 20.0, "IDF1": 21.0}
    return {"val": val, "detector": {"mAP50": 0.1}, "reid": {"mAP": 10.0}, "assoc": {"val_acc": 0.5}}


def write_tsv(path: Path, name: str, values: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"step\t{name}\n" + "".join(f"{i}\t{v}\n" for i, v in enumerate(values)))


@pytest.fixture
def metrics(tmp_path: Path) -> Path:
    """Stages 1 and 2 run (stage 3 not yet): dance person HOTA 60 -> 52 (-8), all 50 -> 49 (-1)."""
    root = tmp_path / "metrics"
    root.mkdir()
    (root / "stage1.json").write_text(json.dumps(stage_json({"all": 50.0, "dance": 60.0})))
    (root / "stage2.json").write_text(json.dumps(stage_json({"all": 49.0, "dance": 52.0})))
    live = root / "live"
    for stage, losses in (("stage1", [1.0, 0.8, 0.6, 0.5]), ("stage2", [0.45, 0.4])):
        plots = live / stage / "assoc" / "plots" / "metrics"
        write_tsv(plots / "train_loss.tsv", "train_loss", losses)
        write_tsv(plots / "val_loss.tsv", "val_loss", [x + 0.1 for x in losses])
        write_tsv(plots / "grad_norm.tsv", "grad_norm", [1.5] * len(losses))
        write_tsv(plots / "lr.tsv", "lr", [1e-3] * len(losses))
    det = live / "stage1" / "detector" / "plots" / "metrics" / "detector"  # dvclive prefixes the part
    write_tsv(det / "train" / "box_loss.tsv", "box_loss", [3.0, 2.0])
    write_tsv(det / "val" / "mAP50.tsv", "mAP50", [0.1, 0.2])
    return root


def test_read_logs_collects_stages_and_curves(metrics):
    logs = dashboard.read_logs(metrics)
    assert sorted(logs.stages) == ["stage1", "stage2"] and logs.eval is None
    assert sorted(logs.curves) == ["assoc", "detector"]
    assert sorted(logs.curves["assoc"]) == ["grad_norm", "lr", "train_loss", "val_loss"]
    assert sorted(logs.curves["detector"]) == ["train/box_loss", "val/mAP50"]
    steps, values = logs.curves["assoc"]["train_loss"]["stage2"]
    assert steps.tolist() == [0, 1] and values.tolist() == [0.45, 0.4]


def test_stage_curves_are_concatenated():
    # stage1 logged steps 0..3 (span 4), stage2 steps 0..1: stage2 starts at 4
    curves = {"loss": {"stage2": (np.array([0.0, 1.0]), np.array([5.0, 6.0])),
                       "stage1": (np.arange(4.0), np.array([1.0, 2.0, 3.0, 4.0]))}}
    offsets = dashboard.stage_offsets(curves)
    assert offsets == {"stage1": 0.0, "stage2": 4.0}
    steps, values = dashboard.concatenate(curves["loss"], offsets)
    assert steps.tolist() == [0, 1, 2, 3, 4, 5] and values.tolist() == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("stage2_hota, warned", [
    (54.0, True),    # 60 -> 54: fell 6 > 5
    (55.0, False),   # fell exactly 5: not more than the threshold
    (56.0, False),   # fell 4
    (70.0, False),   # rose
])
def test_person_regressions_against_stage1(stage2_hota, warned):
    stages = {"stage1": stage_json({"all": 50.0, "dance": 60.0}),
              "stage2": stage_json({"all": 50.0, "dance": stage2_hota})}
    messages = dashboard.person_regressions(stages, threshold=5.0)
    expected = [f"person HOTA on dance fell {60 - stage2_hota:.1f} points after stage2 "
                f"(60.0 -> {stage2_hota:.1f}, threshold 5)"]
    assert messages == (expected if warned else [])


@pytest.mark.parametrize("stage3_vehicle, warned", [
    (12.0, True),    # 20 -> 12 from stage2 to stage3: fell 8 > 5
    (15.0, False),   # fell exactly 5
    (25.0, False),   # rose
])
def test_stage_losses_against_the_stage_before(stage3_vehicle, warned):
    # people: dance 60 -> 52 (stage1 -> stage2) is person_regressions' (not repeated here), then 52 -> 51
    stages = {"stage1": stage_json({"all": 50.0, "dance": 60.0}), "stage2": stage_json({"all": 50.0, "dance": 52.0}),
              "stage3": stage_json({"all": 50.0, "dance": 51.0})}
    stages["stage3"]["val"]["all"]["vehicle"]["HOTA"] = stage3_vehicle
    def vehicle(threshold: str) -> list[str]:
        return [f"vehicle HOTA on all fell {20 - stage3_vehicle:.1f} points from stage2 to stage3 "
                f"(20.0 -> {stage3_vehicle:.1f}, threshold {threshold})"]

    assert dashboard.stage_losses(stages, threshold=5.0) == (vehicle("5") if warned else [])
    # a lower threshold catches the people's 1-point loss too (the keys are sorted: all_vehicle first)
    assert dashboard.stage_losses(stages, threshold=0.5) == (vehicle("0.5") if stage3_vehicle < 20 else []) + [
        "person HOTA on dance fell 1.0 points from stage2 to stage3 (52.0 -> 51.0, threshold 0.5)"]


def test_dashboard_png_partial_run_with_warning(metrics, tmp_path, caplog):
    out = tmp_path / "plots" / "dashboard.png"
    with caplog.at_level(logging.WARNING, logger="stagetrack.visual.dashboard"):
        warnings = dashboard.write_dashboard(metrics, out, DashboardConfig(dpi=DPI))
    assert warnings == ["person HOTA on dance fell 8.0 points after stage2 (60.0 -> 52.0, threshold 5)"]
    assert warnings[0] in caplog.text
    assert cv2.imread(str(out)).shape == (14 * DPI, int(5.5 * 3 * DPI), 3)
    assert sorted(p.name for p in out.parent.iterdir()) == ["dashboard.png"]  # no temporary left


def test_dashboard_figure_panels(metrics):
    logs = dashboard.read_logs(metrics)
    cfg = DashboardConfig(dpi=DPI, success_line=54.0)
    fig = dashboard.plot_dashboard(logs, cfg, ["a warning"])
    assert "not run: stage3" in fig._suptitle.get_text()
    axes = {ax.get_title(): ax for ax in fig.axes}
    # assoc losses: train and val, stage 2 appended after stage 1's 4 steps; lr is not a loss
    loss_lines = {line.get_label(): line for line in axes["assoc losses (should fall)"].get_lines()
                  if not line.get_label().startswith("_")}
    assert sorted(loss_lines) == ["train_loss", "val_loss"]
    assert loss_lines["train_loss"].get_xdata().tolist() == [0, 1, 2, 3, 4, 5]
    assert loss_lines["val_loss"].get_linestyle() == "--"
    grads = [line.get_label() for line in axes["gradient norm (should stay stable)"].get_lines()
             if not line.get_label().startswith("_")]
    assert grads == ["assoc: grad_norm"]
    # validation panel: HOTA at stages 1 and 2, none at stage 3; the success line at 54
    val_ax = axes["validation after each stage (should rise)"]
    hota = next(line for line in val_ax.get_lines() if line.get_label() == "HOTA")
    assert np.allclose(hota.get_ydata()[:2], [48.0, 47.0]) and np.isnan(hota.get_ydata()[2])
    assert any(line.get_label() == "success 54" and list(line.get_ydata()) == [54, 54] for line in val_ax.get_lines())
    assert any(t.get_text() == "WARNING: a warning" for t in fig.texts)


def test_no_logs_at_all_is_an_error(tmp_path):
    (tmp_path / "metrics").mkdir()
    with pytest.raises(StagetrackError, match="no run logs to draw"):
        dashboard.write_dashboard(tmp_path / "metrics", tmp_path / "d.png", DashboardConfig())
    assert not (tmp_path / "d.png").exists()


@pytest.mark.parametrize("text, line, message", [
    ("step\tloss\n0\t1.0\n1\tnan?\n", 3, "expected numbers"),
    ("step\tloss\n0\n", 2, "expected numbers"),
    ("loss\n1.0\n", 1, "expected a header"),
])
def test_malformed_tsv_names_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "loss.tsv"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        dashboard.read_tsv(path)
    assert err.value.file == str(path) and err.value.line == line


def test_stage_json_without_val_is_an_error(tmp_path):
    (tmp_path / "stage1.json").write_text('{"detector": {}}')
    with pytest.raises(DataError, match="stage1.json: val: missing"):
        dashboard.read_logs(tmp_path)


@pytest.fixture
def dashboard_cli(monkeypatch, tmp_path):
    """`stagetrack dashboard` registered, run from a folder holding the repository's params.yaml."""
    monkeypatch.setitem(cli.COMMANDS, "dashboard", ("stagetrack.visual.dashboard", "dashboard"))
    shutil.copy(Path(__file__).resolve().parents[1] / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return lambda *argv: cli.main(["dashboard", "-q", *argv])


def test_cli_writes_the_default_path(dashboard_cli, metrics, tmp_path, capsys):
    assert dashboard_cli("--metrics-dir", "metrics") == 0
    assert capsys.readouterr().out.strip() == "plots/dashboard.png"
    assert (tmp_path / "plots" / "dashboard.png").is_file()


def test_cli_without_params_is_an_error_not_other_defaults(dashboard_cli, metrics, tmp_path, capsys):
    (tmp_path / "params.yaml").unlink()
    assert dashboard_cli("--metrics-dir", "metrics") == 2
    err = capsys.readouterr().err
    assert "params.yaml: params file not found; run from the repository root or pass --params FILE" in err
    assert "Traceback" not in err and not (tmp_path / "plots").exists()


def test_cli_without_logs_exits_2(dashboard_cli, tmp_path, capsys):
    assert dashboard_cli("--metrics-dir", "nothing-here", "--out", "d.png") == 2
    assert "nothing-here: no run logs to draw" in capsys.readouterr().err
