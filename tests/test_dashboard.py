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

DPI = 20  # small PNGs: figure size (5.5 x 3 columns, 18) inches -> 330 x 360 pixels


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


def row(delta: float, lo: float, hi: float, vs: str = "stage2") -> dict:
    verdict = "gain" if lo > 0 else "loss" if hi < 0 else "indistinguishable"
    return {"delta": delta, "lo": lo, "hi": hi, "verdict": verdict, "vs": vs}


EVAL = {  # what the eval stage writes: stage 3 lost bdd vehicles (association and ReID), kept dance people
    "compare": {"classical": {"all": {"HOTA": 50.0}}},
    "forgetting": {"stage3": {
        "bdd_vehicle_HOTA": row(-6.0, -9.0, -2.5), "bdd_vehicle_DetA": row(-0.5, -2.0, 1.0),
        "bdd_vehicle_AssA": row(-11.0, -15.0, -6.0), "bdd_vehicle_AP50": row(1.0, -1.0, 3.0),
        "bdd_vehicle_rank1": row(-20.0, -30.0, -5.0),
        "dance_person_HOTA": row(-3.0, -8.0, 2.0, vs="stage1"), "dance_person_DetA": row(-3.0, -6.0, 0.5, vs="stage1"),
    }},
    "forgot": {"stage3": {"bdd_vehicle": {"HOTA": "loss", "parts": ["association", "reid"]}}},
}


def test_forgetting_warnings_come_from_eval_json_verdicts():
    assert dashboard.forgetting_warnings(EVAL) == [
        "vehicle HOTA on bdd after stage3: -6.0 [-9.0, -2.5] against stage2 (loss; parts that lost: association, reid)"]
    # dance people fell 3 points, but the interval includes 0: not a loss, no warning
    assert dashboard.forgetting_warnings(None) == []
    assert dashboard.forgetting_warnings({"forgetting": {}}) == []


def test_forgetting_panel_draws_each_part_with_its_interval(metrics):
    (metrics / "eval.json").write_text(json.dumps(EVAL))
    logs = dashboard.read_logs(metrics)
    fig = dashboard.plot_dashboard(logs, DashboardConfig(dpi=DPI), dashboard.forgetting_warnings(logs.eval))
    ax = next(a for a in fig.axes if a.get_title().startswith("forgetting: stage3 against its best earlier stage"))
    assert "(stage1, stage2)" in ax.get_title()
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    assert heights == sorted([-6.0, -0.5, -11.0, 1.0, -20.0, -3.0, -3.0])
    colours = {round(p.get_height(), 3): p.get_facecolor()[:3] for p in ax.patches}
    import matplotlib.colors as mcolors
    assert colours[-11.0] == mcolors.to_rgb("tab:red") and colours[1.0] == mcolors.to_rgb("0.6")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bdd\nvehicle", "dance\nperson"]
    assert any(t.get_text().startswith("WARNING: vehicle HOTA on bdd") for t in fig.texts)


def test_dashboard_png_warns_only_from_eval_json_verdicts(metrics, tmp_path, caplog):
    out = tmp_path / "plots" / "dashboard.png"
    with caplog.at_level(logging.WARNING, logger="stagetrack.visual.dashboard"):
        warnings = dashboard.write_dashboard(metrics, out, DashboardConfig(dpi=DPI))
    assert warnings == []  # no eval.json yet: the eval stage judges forgetting
    (metrics / "eval.json").write_text(json.dumps(EVAL))
    with caplog.at_level(logging.WARNING, logger="stagetrack.visual.dashboard"):
        warnings = dashboard.write_dashboard(metrics, out, DashboardConfig(dpi=DPI))
    assert len(warnings) == 1 and warnings[0] in caplog.text
    assert cv2.imread(str(out)).shape == (dashboard.FIGURE_HEIGHT * DPI, int(5.5 * 3 * DPI), 3)
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
