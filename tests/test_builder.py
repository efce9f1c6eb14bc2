"""The builder: frame budgets, nested selections, replay, the manifest lock, exports."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from stagetrack.config import parse_params
from stagetrack.data import builder, synth
from stagetrack.data.builder import Clip, _fill, candidate_clips, load_manifest, verify_lock, yolo_labels
from stagetrack.data.config import SynthConfig, SynthDomainConfig
from stagetrack.data.sequence import IGNORE, empty_boxes
from stagetrack.errors import DataError, LockError
from stagetrack.io import sha256_tree

TINY = SynthDomainConfig(videos=5, frames=12, locked_videos=0, width=96, height=64, min_objects=2, max_objects=3)
LOCKED = {
    "dancetrack": {"val": ["dancetrack0005"], "test": ["dancetrack0004"]},
    "bdd": {"val": ["b0000005-5ynth005"], "test": []},
    "visdrone": {"val": ["uav0000005_00000_v"], "test": []},
}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    synth.generate(SynthConfig(seed=3, dancetrack=TINY, bdd=TINY,
                               visdrone=SynthDomainConfig(videos=5, frames=12, locked_videos=0, width=96, height=80,
                                                          min_objects=3, max_objects=5)), root, workers=1)
    return root


def make_params(raw: Path, tmp: Path, *, budgets=(20, 30, 24), seed=0, locked=LOCKED, allow_partial=False):
    manifest = tmp / "manifest.json"
    manifest.write_text(json.dumps({"sources": locked}))
    b1, b2, b3 = budgets
    return parse_params({
        "sources": {
            "dancetrack": {"format": "mot", "root": str(raw / "dancetrack")},
            "bdd": {"format": "bdd", "root": str(raw / "bdd")},
            "visdrone": {"format": "visdrone", "root": str(raw / "visdrone")},
        },
        "build": {"seed": seed, "manifest": str(manifest), "clip_length": 5, "reid_min_height": 4,
                  "allow_partial": allow_partial, "selection_clips": 1,
                  "selection_det_frames": 3},
        "stage1": {"data": {"dancetrack": {"enabled": True, "frame_budget": b1},
                            "bdd": {"enabled": True, "frame_budget": b1}}},
        "stage2": {"init": "stage1", "data": {"dancetrack": {"enabled": True, "frame_budget": b2},
                                              "bdd": {"enabled": True, "frame_budget": b2}}},
        "stage3": {"init": "stage2", "data": {"visdrone": {"enabled": True, "frame_budget": b3},
                                              "dancetrack": {"enabled": True, "frame_budget": 6, "replay_from": "stage2"}}},
    })


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("b1")
    report = builder.build(make_params(raw, tmp), tmp / "built", tmp / "metrics", workers=2)
    return tmp, report


def test_synth_is_deterministic_and_independent_of_workers(raw, tmp_path):
    small = SynthConfig(seed=3, dancetrack=TINY, bdd=TINY, visdrone=SynthDomainConfig(
        videos=5, frames=12, locked_videos=0, width=96, height=80, min_objects=3, max_objects=5))
    synth.generate(small, tmp_path / "again", workers=2)
    for domain in synth.DOMAINS:
        assert sha256_tree(raw / domain) == sha256_tree(tmp_path / "again" / domain)


def test_adding_videos_leaves_earlier_videos_unchanged(tmp_path):
    base = SynthDomainConfig(videos=2, frames=6, locked_videos=0, width=64, height=48, min_objects=2, max_objects=2)
    more = SynthDomainConfig(videos=3, frames=6, locked_videos=0, width=64, height=48, min_objects=2, max_objects=2)
    synth.generate(SynthConfig(dancetrack=base, bdd=base, visdrone=base), tmp_path / "a", workers=1)
    synth.generate(SynthConfig(dancetrack=more, bdd=more, visdrone=more), tmp_path / "b", workers=1)
    for name in ("dancetrack0001", "dancetrack0002"):
        assert sha256_tree(tmp_path / "a" / "dancetrack" / name) == sha256_tree(tmp_path / "b" / "dancetrack" / name)


def test_val_set_is_bit_identical_across_budgets_and_seeds(raw, built, tmp_path):
    tmp, report = built
    other = builder.build(make_params(raw, tmp_path, budgets=(10, 26, 30), seed=99), tmp_path / "built", None)
    assert other["val"]["sha256"] == report["val"]["sha256"]
    assert sha256_tree(tmp / "built" / "val", exclude=("LOCK.json",)) == \
        sha256_tree(tmp_path / "built" / "val", exclude=("LOCK.json",))
    lock_a, lock_b = (json.loads((p / "built" / "val" / "LOCK.json").read_text()) for p in (tmp, tmp_path))
    assert lock_a["sequences"] == lock_b["sequences"] and lock_a["manifest_sha256"] == lock_b["manifest_sha256"]
    # ... while the training data did change
    assert sha256_tree(tmp / "built" / "stage1") != sha256_tree(tmp_path / "built" / "stage1")


def test_locked_videos_never_reach_training(built):
    tmp, _ = built
    locked = {v for splits in LOCKED.values() for ids in splits.values() for v in ids}
    for stage in ("stage1", "stage2", "stage3"):
        root = tmp / "built" / stage
        selection = json.loads((root / "selection.json").read_text())
        assert {c["video"] for part in selection.values() for clips in part.values() for c in clips}.isdisjoint(locked)
        names = [p.name for p in (root / "det" / "images" / "train").iterdir()]
        assert names and not any(v in n for n in names for v in locked)
        pids = json.loads((root / "reid" / "pids.json").read_text())
        assert {p["video"] for p in pids.values()}.isdisjoint(locked)


def test_budgets_are_filled_exactly_and_nested(built):
    tmp, report = built
    assert report["stage1"]["sources"]["dancetrack"]["frames"] == 20
    assert report["stage2"]["sources"]["bdd"]["frames"] == 30
    assert report["stage3"]["sources"]["visdrone"]["frames"] == 24
    sel1 = json.loads((tmp / "built" / "stage1" / "selection.json").read_text())["train"]
    sel2 = json.loads((tmp / "built" / "stage2" / "selection.json").read_text())["train"]
    frames = lambda sel, s: {(c["video"], c["start"] + i * c["stride"]) for c in sel[s] for i in range(c["length"])}  # noqa: E731
    for source in ("dancetrack", "bdd"):
        assert frames(sel1, source) <= frames(sel2, source)  # stage 2 = stage 1's clips plus more
    n_images = len(list((tmp / "built" / "stage1" / "det" / "images" / "train").iterdir()))
    assert n_images == 40


def test_replay_draws_from_the_earlier_stage(built):
    tmp, _ = built
    sel2 = json.loads((tmp / "built" / "stage2" / "selection.json").read_text())["train"]
    sel3 = json.loads((tmp / "built" / "stage3" / "selection.json").read_text())["train"]
    stage2 = {(c["video"], c["start"]) for c in sel2["dancetrack"]}
    assert sel3["dancetrack"] and {(c["video"], c["start"]) for c in sel3["dancetrack"]} <= stage2
    assert sum(c["length"] for c in sel3["dancetrack"]) == 6


def test_budget_above_pool_is_an_error_naming_source_and_count(raw, tmp_path):
    # bdd pool: 4 unlocked videos x 12 frames = 48 frames (dancetrack: 3 x 12 = 36), less the held-out
    # selection clip (5 or 2 frames)
    params = make_params(raw, tmp_path, budgets=(20, 500, 24))
    fits = make_params(raw, tmp_path)  # same build seed: the same held-out clips
    held = sum(c.length for c in builder.Builder(fits, tmp_path / "unused", workers=1).plan().held_out["bdd"])
    with pytest.raises(DataError, match=rf"stage2.data.bdd.frame_budget: frame budget 500 of source 'bdd' "
                                        rf"exceeds the {48 - held} frames available in the unlocked pool after the "
                                        rf"selection clips"):
        builder.build(params, tmp_path / "built", None)


def test_allow_partial_takes_the_whole_pool_with_a_warning(raw, tmp_path, caplog):
    params = make_params(raw, tmp_path, budgets=(20, 500, 24), allow_partial=True)
    with caplog.at_level(logging.WARNING):
        report = builder.build(params, tmp_path / "built", None)
    held = report["stage2"]["selection_frames"] - sum(  # stage 2 trains dancetrack and bdd
        c["length"] for c in json.loads((tmp_path / "built" / "stage2" / "selection.json").read_text())["held_out"]["bdd"])
    assert report["stage2"]["sources"]["dancetrack"]["frames"] == 36 - held
    assert f"exceeds the {36 - held} frames available" in caplog.text


def test_manifest_errors_name_the_video_and_both_splits(raw, tmp_path):
    bad = {**LOCKED, "bdd": {"val": ["nope-video"], "test": []}}
    with pytest.raises(LockError, match=r"manifest.json: sources.bdd.val: locked val video 'nope-video' does not exist"):
        builder.build(make_params(raw, tmp_path, locked=bad), tmp_path / "built", None)
    twice = {**LOCKED, "dancetrack": {"val": ["dancetrack0005"], "test": ["dancetrack0005"]}}
    (tmp_path / "m.json").write_text(json.dumps({"sources": twice}))
    with pytest.raises(LockError, match=r"m.json: sources.dancetrack: video 'dancetrack0005' is listed in both 'val' and 'test'"):
        load_manifest(tmp_path / "m.json", make_params(raw, tmp_path))


def test_val_lock_detects_a_changed_file(built, tmp_path):
    tmp, report = built
    import shutil

    val = tmp_path / "val"
    shutil.copytree(tmp / "built" / "val", val)
    assert verify_lock(val)["sha256"] == report["val"]["sha256"]
    gt = next(val.glob("dancetrack/*/gt/gt.txt"))
    gt.write_text(gt.read_text() + "1,99,1,1,5,5,1,1,1\n")
    with pytest.raises(LockError, match="val set changed"):
        verify_lock(val)


def test_exports_have_the_expected_layout(built):
    tmp, _ = built
    root = tmp / "built"
    assert (root / "val" / "seqmaps" / "val.txt").read_text().split()[0] == "name"
    assert (root / "stage1" / "det" / "data.yaml").read_text().count("person") == 1
    assert list((root / "stage1" / "det" / "images" / "val").iterdir())
    q = sorted(p.name for p in (root / "stage1" / "reid" / "query").iterdir())
    g = sorted(p.name for p in (root / "stage1" / "reid" / "bounding_box_test").iterdir())
    assert q and g and all("_c1s" in n for n in q) and all("_c2s" in n for n in g)
    lines = (root / "stage1" / "assoc" / "manifest.jsonl").read_text().splitlines()
    assert all((root / "stage1" / "assoc" / json.loads(x)["path"] / "gt" / "gt.txt").exists() for x in lines)


def test_candidate_clips_and_fill():
    clips = candidate_clips("s", {"b": 12, "a": 5}, clip_length=5, stride=1)
    # a: 1-5; b: 1-5, 6-10, 11-12 (tail of 2)
    assert [(c.video, c.start, c.length) for c in clips] == [("a", 1, 5), ("b", 1, 5), ("b", 6, 5), ("b", 11, 2)]
    strided = candidate_clips("s", {"v": 10}, clip_length=3, stride=2)
    assert [(c.start, c.frames()) for c in strided] == [(1, [1, 3, 5]), (7, [7, 9])]
    filled = _fill(clips, 7)
    assert [(c.video, c.length) for c in filled] == [("a", 5), ("b", 2)]


def test_yolo_labels_hand_derived():
    rows = empty_boxes(3)
    rows["x"], rows["y"], rows["w"], rows["h"] = [10, -10, 0], [20, 0, 0], [20, 30, 5], [40, 10, 5]
    rows["cls"] = [0, 1, IGNORE]
    rows["vis"] = [1.0, 1.0, 1.0]
    text = yolo_labels(rows, width=100, height=80, min_vis=0.3)
    # person: centre (20, 40) / (100, 80), size (20, 40) / (100, 80); vehicle clipped to x 0..20, y 0..10
    assert text.splitlines() == ["0 0.200000 0.500000 0.200000 0.500000", "1 0.100000 0.062500 0.200000 0.125000"]


def test_clip_keeps_ids_and_renumbers_frames():
    from stagetrack.data.sequence import Sequence

    rows = empty_boxes(4)
    rows["frame"], rows["id"] = [1, 3, 5, 6], [7, 7, 7, 8]
    seq = Sequence("v", 10, 10, 6, boxes=rows, image_paths=[Path(f"{i}.jpg") for i in range(1, 7)])
    sub = seq.clip(3, 2, stride=2)
    assert sub.boxes["frame"].tolist() == [1, 2] and sub.boxes["id"].tolist() == [7, 7]
    assert [p.name for p in sub.image_paths] == ["3.jpg", "5.jpg"]
    with pytest.raises(ValueError):
        seq.clip(5, 3)
    assert np.all(Clip("s", "v", 3, 2, 2).frames() == [3, 5])


def test_inspect_reports_what_build_writes(raw, built, tmp_path):
    from stagetrack.data.inspect import render

    tmp, report = built
    b = builder.Builder(make_params(raw, tmp), tmp_path / "unused", workers=1)
    plan = b.plan()
    for stage in ("stage1", "stage2", "stage3"):
        stats = b.stats(plan.stages[stage])
        expected = {k: v for k, v in report[stage].items() if k not in ("reid_identities", "selection_frames")}
        assert stats == expected
    assert not (tmp_path / "unused").exists()  # inspect writes nothing
    table = render({"stage1": b.stats(plan.stages["stage1"])})
    assert "stage1   dancetrack" in table and "balance person" in table


def _mot17_like(raw: Path, root: Path) -> Path:
    """MOT17's layout: each video three times, once per public detector (-DPM, -FRCNN, -SDP)."""
    import shutil

    for number, video in (("02", "dancetrack0001"), ("04", "dancetrack0002"), ("05", "dancetrack0003")):
        for det in ("DPM", "FRCNN", "SDP"):
            dst = root / f"MOT17-{number}-{det}"
            shutil.copytree(raw / "dancetrack" / video, dst)
            ini = dst / "seqinfo.ini"
            ini.write_text(ini.read_text().replace(video, dst.name))
    return root


def _mot17_params(raw: Path, tmp: Path, copies: dict | None):
    root = _mot17_like(raw, tmp / "mot17")
    manifest = tmp / "manifest.json"
    doc = {"sources": {"mot17": {"val": ["MOT17-02-SDP"], "test": []},
                       "bdd": LOCKED["bdd"], "visdrone": LOCKED["visdrone"]}}
    if copies is not None:
        doc["copies"] = copies
    manifest.write_text(json.dumps(doc))
    return parse_params({
        "sources": {"mot17": {"format": "mot", "root": str(root)},
                    "bdd": {"format": "bdd", "root": str(raw / "bdd")},
                    "visdrone": {"format": "visdrone", "root": str(raw / "visdrone")}},
        "build": {"manifest": str(manifest), "clip_length": 5, "reid_min_height": 4, "selection_clips": 1,
                  "allow_partial": True},
        "stage1": {"data": {"mot17": {"enabled": True, "frame_budget": 1000}, "bdd": {"enabled": True, "frame_budget": 10}}},
        "stage2": {"init": "stage1", "data": {"mot17": {"enabled": True, "frame_budget": 60}}},
        "stage3": {"init": "stage2", "data": {"visdrone": {"enabled": True, "frame_budget": 10}}},
    })


def _trained_videos(params) -> set[str]:
    plan = builder.Builder(params, "unused", workers=1).plan()
    return {clip.video for stage in plan.stages.values() for clip in stage.get("mot17", [])}


def test_copies_of_a_locked_video_never_reach_training(raw, tmp_path):
    """One of MOT17-02's three detector copies is locked for val: with the manifest's `copies`
    rule none of the three is trained on; without it the two others would be (the control)."""
    locked_together = _trained_videos(_mot17_params(raw, tmp_path / "a", {"mot17": "^(MOT17-[0-9]+)-"}))
    assert locked_together and not any(v.startswith("MOT17-02-") for v in locked_together)
    assert {"MOT17-04-DPM", "MOT17-05-SDP"} <= locked_together
    unguarded = _trained_videos(_mot17_params(raw, tmp_path / "b", None))
    assert {"MOT17-02-DPM", "MOT17-02-FRCNN"} <= unguarded and "MOT17-02-SDP" not in unguarded


def test_copies_rule_needs_a_group(raw, tmp_path):
    with pytest.raises(LockError, match=r"manifest.json: copies.mot17: expected a regex with one group"):
        _mot17_params(raw, tmp_path, {"mot17": "^MOT17-[0-9]+-"}) and load_manifest(
            tmp_path / "manifest.json", _mot17_params(raw, tmp_path / "again", {"mot17": "^MOT17-[0-9]+-"}))


def test_two_sources_on_one_folder_or_one_video_id_are_errors(raw, tmp_path):
    params = make_params(raw, tmp_path)
    same_root = parse_params({**params.to_dict(), "sources": {
        **params.to_dict()["sources"], "bdd": {"format": "mot", "root": str(raw / "dancetrack")}}})
    with pytest.raises(LockError, match=r"sources 'bdd' and 'dancetrack' both read|sources 'dancetrack' and 'bdd' both read"):
        builder.Builder(same_root, tmp_path / "built", workers=1).plan()
    import shutil

    shutil.copytree(raw / "dancetrack", tmp_path / "copy")
    shared_id = parse_params({**params.to_dict(), "sources": {
        **params.to_dict()["sources"], "bdd": {"format": "mot", "root": str(tmp_path / "copy")}}})
    with pytest.raises(LockError, match=r"video id 'dancetrack0001' is in sources"):
        builder.Builder(shared_id, tmp_path / "built", workers=1).plan()


def test_val_lock_detects_a_changed_manifest(built, tmp_path):
    tmp, _ = built
    lock = verify_lock(tmp / "built" / "val")
    manifest = Path(lock["manifest"])
    original = manifest.read_text()
    try:
        manifest.write_text(original.replace("}", ', "comment": "edited"}', 1))
        with pytest.raises(LockError, match="the manifest changed after the val set was built"):
            verify_lock(tmp / "built" / "val")
    finally:
        manifest.write_text(original)
    verify_lock(tmp / "built" / "val")


def _clip_frames(clips) -> set[tuple[str, int]]:
    return {(c["video"], c["start"] + i * c["stride"]) for c in clips for i in range(c["length"])}


def test_selection_clips_are_held_out_of_every_stage_and_feed_its_checkpoint_choice(built):
    """The selection split: held out of every stage's training (replay included), apart from the
    locked videos, and the only source of each stage's detector val images, ReID query/gallery and
    association validation clips."""
    tmp, report = built
    root = tmp / "built"
    locked = {v for splits in LOCKED.values() for ids in splits.values() for v in ids}
    held = {}
    for stage in ("stage1", "stage2", "stage3"):
        selection = json.loads((root / stage / "selection.json").read_text())
        assert set(selection["held_out"]) == set(selection["train"])  # each trained source has its clips
        for source, clips in selection["held_out"].items():
            assert clips and {c["video"] for c in clips}.isdisjoint(locked)
            held.setdefault(source, _clip_frames(clips))
            assert _clip_frames(clips) == held[source]  # one split for all stages
        for source, clips in selection["train"].items():
            assert _clip_frames(clips).isdisjoint(held[source])
        stems = {p.stem for p in (root / stage / "det" / "images" / "val").iterdir()}
        allowed = {f"{source}__{video}__{f:06d}" for source in selection["held_out"]
                   for video, f in _clip_frames(selection["held_out"][source])}
        assert stems and stems <= allowed
        assert {p.stem for p in (root / stage / "det" / "images" / "train").iterdir()}.isdisjoint(allowed)
        val_pids = json.loads((root / stage / "reid" / "val_pids.json").read_text())
        assert val_pids and {p["video"] for p in val_pids.values()}.isdisjoint(locked)
        lines = [json.loads(x) for x in (root / stage / "selection" / "manifest.jsonl").read_text().splitlines()]
        assert {(x["source"], x["video"], x["start"]) for x in lines} == {
            (s, c["video"], c["start"]) for s, clips in selection["held_out"].items() for c in clips}
        assert report[stage]["selection_frames"] == sum(c["length"] for cl in selection["held_out"].values() for c in cl)


def test_the_locked_test_set_is_exported_and_locked_apart_from_val(built):
    tmp, report = built
    test = tmp / "built" / "test"
    assert (test / "seqmaps" / "test.txt").read_text().split()[1:] == ["dancetrack/dancetrack0004"]
    assert verify_lock(test)["sha256"] == report["test"]["sha256"]
    assert report["test"]["videos"] == 1 and not (test / "reid").exists()


def test_a_pool_too_small_to_hold_out_selection_clips_is_an_error(raw, tmp_path):
    params = make_params(raw, tmp_path)
    greedy = parse_params({**params.to_dict(), "build": {**params.to_dict()["build"], "selection_clips": 99}})
    with pytest.raises(DataError, match=r"build.selection_clips: source '\w+' has \d+ pool clips"):
        builder.Builder(greedy, tmp_path / "built", workers=1).plan()


def test_locked_videos_follow_the_pool_and_are_shorter():
    cfg = SynthDomainConfig(videos=2, frames=10, locked_videos=3, locked_frames=4, width=64, height=48,
                            min_objects=2, max_objects=2)
    assert [synth.video_config(cfg, i).frames for i in range(5)] == [10, 10, 4, 4, 4]


def test_each_video_is_read_once_per_build(raw, built, tmp_path, monkeypatch):
    """Planning (every pool video's length), the locked exports, each stage and its selection
    split share one read of each video; the output is the same bytes as before."""
    reads: dict[tuple[str, str], int] = {}
    read_video = builder.sources.read_video

    def counting(cfg, video, *, source):
        reads[(source, video)] = reads.get((source, video), 0) + 1
        return read_video(cfg, video, source=source)

    monkeypatch.setattr(builder.sources, "read_video", counting)
    out = tmp_path / "built"
    builder.build(make_params(raw, tmp_path), out, metrics_dir=None, workers=2)
    assert reads and max(reads.values()) == 1, {k: n for k, n in reads.items() if n > 1}
    assert {s for s, _ in reads} == {"dancetrack", "bdd", "visdrone"}
    root = built[0] / "built"
    for stage in ("stage1", "stage2", "stage3"):
        assert sha256_tree(out / stage) == sha256_tree(root / stage), stage
    for split in ("val", "test"):   # the LOCK names its manifest's path, which differs here
        assert verify_lock(out / split)["sequences"] == verify_lock(root / split)["sequences"], split
