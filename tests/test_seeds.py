"""Seeds as an axis: the aggregate over seeds, differences with intervals, the dvc commands."""

from __future__ import annotations

import math

import pytest

from stagetrack import cli, seeds


def test_aggregate_by_hand():
    runs = {0: {"all.combined.HOTA": 40.0, "ci.all.combined.HOTA": 1.0}, 1: {"all.combined.HOTA": 44.0},
            2: {"all.combined.HOTA": 48.0}}
    agg = seeds.aggregate(runs)["metrics"]
    assert set(agg) == {"all.combined.HOTA"}
    m = agg["all.combined.HOTA"]
    # mean 44, sd 4, t(0.975, 2) = 4.302653 -> half-width 4.302653 * 4 / sqrt(3) = 9.9366
    assert (m["mean"], m["std"], m["min"], m["max"], m["n"]) == (44.0, 4.0, 40.0, 48.0, 3)
    assert m["lo"] == pytest.approx(44 - 9.9366, abs=1e-3) and m["hi"] == pytest.approx(44 + 9.9366, abs=1e-3)
    assert m["per_seed"] == {"0": 40.0, "1": 44.0, "2": 48.0}


def test_flatten_skips_bounds_and_verdicts():
    doc = {"all": {"combined": {"HOTA": 50.0}}, "ci": {"all": {"combined": {"HOTA": {"lo": 1.0, "hi": 2.0}}}},
           "forgetting": {"stage2": {"all_person_HOTA": {"delta": 1.5, "lo": -1.0, "hi": 3.0, "verdict": "x"}}}}
    assert seeds.flatten(doc) == {"all.combined.HOTA": 50.0, "forgetting.stage2.all_person_HOTA.delta": 1.5}


def test_paired_difference_by_hand():
    a = {0: 40.0, 1: 42.0, 2: 44.0}
    b = {0: 42.0, 1: 45.0, 2: 48.0}  # differences 2, 3, 4: mean 3, sd 1
    row = seeds.difference(a, b)
    half = 4.302653 * 1.0 / math.sqrt(3)  # 2.484: the interval [0.516, 5.484] excludes 0
    assert row["method"] == "paired" and row["delta"] == 3.0
    assert row["lo"] == pytest.approx(3 - half, abs=1e-3) and row["hi"] == pytest.approx(3 + half, abs=1e-3)
    assert row["verdict"] == "gain"
    assert seeds.difference(b, a)["verdict"] == "loss"
    smaller = seeds.difference(a, {0: 41.0, 1: 44.0, 2: 47.0})  # differences 1, 2, 3: [-0.48, 4.48]
    assert smaller["verdict"] == "indistinguishable"


def test_unpaired_and_single_runs():
    a = {0: 40.0, 1: 50.0}
    b = {5: 41.0, 6: 49.0}
    row = seeds.difference(a, b)
    assert row["method"] == "welch" and row["verdict"] == "indistinguishable"
    assert seeds.difference({-1: 40.0}, {-1: 45.0}) == {
        "a": 40.0, "b": 45.0, "delta": 5.0, "n_a": 1, "n_b": 1,
        "method": "single runs (no spread measured)", "verdict": "unknown"}


def test_seed_commands_queue_each_seed_with_both_seed_keys():
    cmds = seeds.seed_commands(2, 3, "base", ["stage3.lr_scale=0.5"], 1)
    assert cmds[0] == ["exp", "run", "--queue", "-n", "base-seed3", "-S", "seed=3", "-S", "train.seed=3",
                       "-S", "stage3.lr_scale=0.5"]
    assert cmds[1][4] == "base-seed4"
    assert cmds[-2:] == [["exp", "run", "--run-all", "-j", "1"], ["queue", "stop"]]


def test_group_runs_reads_dvc_exp_show():
    shown = [{"rev": "workspace", "experiments": [
        {"revs": [{"name": "base-seed0", "data": {"metrics": {"metrics/eval.json": {"data": {"all": {"combined": {"HOTA": 40}}}}}}}]},
        {"revs": [{"name": "base-seed1", "data": {"metrics": {"metrics/eval.json": {"data": {"all": {"combined": {"HOTA": 44}}}}}}}]},
        {"revs": [{"name": "other-seed0", "data": {"metrics": {"metrics/eval.json": {"data": {"all": {"combined": {"HOTA": 1}}}}}}}]},
    ]}]
    assert seeds.group_runs(shown, "base") == {0: {"all.combined.HOTA": 40.0}, 1: {"all.combined.HOTA": 44.0}}


def test_cli_dry_run(capsys):
    assert cli.main(["seeds", "--n", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "dvc exp run --queue -n seeds-seed0 -S seed=0 -S train.seed=0"
    assert out[-1] == "dvc queue stop"


def test_test_metrics_join_the_aggregate_prefixed_and_only_when_asked():
    from stagetrack.seeds import EVAL_METRICS, TEST_METRICS, aggregate, split_metrics

    docs = {EVAL_METRICS: {"all": {"combined": {"HOTA": 40.0}}}, TEST_METRICS: {"all": {"combined": {"HOTA": 38.0}}}}
    assert split_metrics(docs, ("val",)) == {"all.combined.HOTA": 40.0}
    both = split_metrics(docs, ("val", "test"))
    assert both == {"all.combined.HOTA": 40.0, "test.all.combined.HOTA": 38.0}
    assert split_metrics({TEST_METRICS: docs[TEST_METRICS]}, ("val", "test")) is None  # no val, no run
    assert set(aggregate({0: both, 1: both})["metrics"]) == {"all.combined.HOTA", "test.all.combined.HOTA"}
