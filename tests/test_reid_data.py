"""ReID data side: Market-1501 names, torchreid registration, rank/mAP, extractor, weight files.

No training here; ``write_reid_dir`` is shared with ``test_reid_train.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stagetrack import configtypes
from stagetrack.errors import CheckpointError, ConfigError, DataError
from stagetrack.reid.config import ReidConfig
from stagetrack.reid import dataset as ds
from stagetrack.reid.evaluate import evaluate_extractor, rank_metrics, split_metrics
from stagetrack.reid.features import ReidExtractor, crop_tlwh
from stagetrack.reid.model import build_model, load_backbone, read_weights, save_weights

torch.set_num_threads(1)


def solid_crop(pid: int, rng: np.random.Generator, size: tuple[int, int] = (64, 32)) -> np.ndarray:
    """A crop of the pid's own colour (fixed per pid) plus mild noise, BGR uint8."""
    colour = np.random.default_rng(pid).integers(0, 256, 3)
    return np.clip(colour + rng.normal(0, 8, (*size, 3)), 0, 255).astype(np.uint8)


def write_reid_dir(root: Path, train: dict[int, int], query: dict[int, int], gallery: dict[int, int],
                   classes: dict[int, str], seed: int = 0) -> Path:
    """A Market-1501 folder: {pid: n crops} per split; query in camera 1, the rest in camera 2."""
    rng = np.random.default_rng(seed)
    for split, counts, cam in (("bounding_box_train", train, 2), ("query", query, 1), ("bounding_box_test", gallery, 2)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for pid, n in counts.items():
            for k in range(n):
                cv2.imwrite(str(root / split / f"{pid:04d}_c{cam}s1_{k:06d}_00.jpg"), solid_crop(pid, rng))
    (root / "pids.json").write_text(json.dumps({str(p): {"class": c, "source": "synth", "video": "v", "track": p}
                                                for p, c in classes.items()}))
    return root


@pytest.mark.parametrize("name, expected", [
    ("0007_c2s1_000151_01.jpg", (7, 1)),       # camid is 0-based as torchreid's Market1501
    ("1501_c6s4_001234_03.jpg", (1501, 5)),
    ("-1_c1s1_000001_00.jpg", (-1, 0)),         # Market's junk pid
    ("12345_c9s2_000002_00.png", (12345, 8)),   # vehicle pids live in a higher range
])
def test_parse_name(name, expected):
    assert ds.parse_name(Path(name)) == expected


@pytest.mark.parametrize("name", ["7_c10s1_000151_01.jpg", "0007_c0s1_000151_01.jpg", "0007_s1_000151_01.jpg", "x.jpg"])
def test_parse_name_rejects(name):
    with pytest.raises(DataError, match=name):
        ds.parse_name(Path(name))


def test_datamanager_reads_pids_and_camids(tmp_path):
    # 4 pids x 3 crops for training; hand-made names with mixed cameras
    root = tmp_path / "reid"
    for split in ds.SPLITS:
        (root / split).mkdir(parents=True)
    img = np.zeros((16, 8, 3), np.uint8)
    train_names = [f"{pid:04d}_c{cam}s1_{k:06d}_00.jpg" for pid, cam in ((42, 3), (3, 1), (11, 2), (10, 1)) for k in range(3)]
    for name in train_names + ["-1_c1s1_000009_00.jpg"]:  # the junk crop is skipped
        cv2.imwrite(str(root / "bounding_box_train" / name), img)
    cv2.imwrite(str(root / "query" / "0100_c1s1_000001_00.jpg"), img)
    cv2.imwrite(str(root / "bounding_box_test" / "0100_c2s1_000005_00.jpg"), img)
    cv2.imwrite(str(root / "bounding_box_test" / "0101_c2s1_000006_00.jpg"), img)
    (root / "bounding_box_train" / "notes.txt").write_text("not an image, ignored")

    dm = ds.build_datamanager(root, height=32, width=16, batch_size=4, num_instances=2, transforms=[],
                              workers=0, test_batch=8, use_gpu=False)
    assert dm.num_train_pids == 4
    train = dm.train_loader.dataset.train
    # sorted file order; raw pids 3, 10, 11, 42 relabel to 0, 1, 2, 3; c{n} -> n - 1
    expected = [(3, 0, 0)] * 3 + [(10, 1, 0)] * 3 + [(11, 2, 1)] * 3 + [(42, 3, 2)] * 3
    assert [(int(Path(p).name[:4]), label, cam) for p, label, cam, _ in train] == expected
    query = dm.test_loader[ds.DATASET_NAME]["query"].dataset.query
    gallery = dm.test_loader[ds.DATASET_NAME]["gallery"].dataset.gallery
    assert [(pid, cam) for _, pid, cam, _ in query] == [(100, 0)]          # raw pids kept
    assert [(pid, cam) for _, pid, cam, _ in gallery] == [(100, 1), (101, 1)]
    assert ds.register() == ds.DATASET_NAME                                 # idempotent


def test_missing_split_and_bad_pid_table(tmp_path):
    root = write_reid_dir(tmp_path, {1: 2}, {1: 1}, {1: 1}, {1: "person"})
    (root / "pids.json").write_text(json.dumps({"1": {"class": "bicycle"}}))
    with pytest.raises(DataError, match="bicycle.*allowed: person, vehicle"):
        ds.read_pid_classes(root / "pids.json")
    for path in (root / "query").iterdir():
        path.unlink()
    (root / "query").rmdir()
    with pytest.raises(DataError, match="query"):
        ds.list_split(root, "query")


def test_rank_metrics_by_hand():
    # query A (pid 1, cam 0): gallery sorted by distance = [pid1 cam0 (dropped: same camera),
    #   pid2, pid1 cam1, pid3] -> first true match at rank 2: rank1 0, rank5 1, AP 1/2.
    # query B (pid 2, cam 0): nearest is pid2 cam1 -> rank1 1, AP 1.
    # Means: rank1 50, rank5 100, mAP 75. The gallery (4) is smaller than rank 5.
    g_pids, g_cams = np.array([1, 2, 1, 3]), np.array([0, 1, 1, 1])
    dist = np.array([[0.0, 0.1, 0.2, 0.3],
                     [0.5, 0.1, 0.4, 0.2]])
    out = rank_metrics(dist, np.array([1, 2]), g_pids, np.array([0, 0]), g_cams, [1, 5])
    assert out == pytest.approx({"rank1": 50.0, "rank5": 100.0, "mAP": 75.0})
    # two relevant items at ranks 1 and 3: AP = (1/1 + 2/3) / 2
    out = rank_metrics(np.array([[0.1, 0.2, 0.3]]), np.array([7]), np.array([7, 8, 7]), np.array([0]),
                       np.array([1, 1, 1]), [1, 2, 3])
    assert out == pytest.approx({"rank1": 100.0, "rank2": 100.0, "rank3": 100.0, "mAP": 100 * (1 + 2 / 3) / 2})
    # only a same-camera match: nothing scorable
    assert rank_metrics(np.array([[0.1]]), np.array([1]), np.array([1]), np.array([0]), np.array([0]), [1]) is None


def test_per_class_metrics_never_mix_person_and_vehicle():
    # person 1's nearest gallery crop is vehicle 500 (cosine 0.99), its own gallery crop is 2nd.
    # Overall: person query misses at rank 1, vehicle query hits -> rank1 50.
    # Per class the vehicle crop is not in the person gallery -> person/rank1 100, and the
    # vehicle gallery holds only vehicle 500 -> vehicle/rank1 100.
    e = np.eye(3, dtype=np.float32)
    near = np.array([0.99, np.sqrt(1 - 0.99**2), 0], np.float32)
    q = np.stack([e[0], e[2]])                    # person 1, vehicle 500
    g = np.stack([near, np.array([0.9, 0, np.sqrt(1 - 0.81)], np.float32), e[2]])  # veh 500, person 1, veh 500
    query = [ds.Crop(Path("q1"), 1, 0), ds.Crop(Path("q2"), 500, 0)]
    gallery = [ds.Crop(Path("g1"), 500, 1), ds.Crop(Path("g2"), 1, 1), ds.Crop(Path("g3"), 500, 1)]
    out = split_metrics(q, g, query, gallery, {1: "person", 500: "vehicle"}, [1, 2])
    assert out["rank1"] == pytest.approx(50.0)
    assert out["person/rank1"] == pytest.approx(100.0)
    assert out["person/mAP"] == pytest.approx(100.0)
    assert out["vehicle/rank1"] == pytest.approx(100.0)
    # vehicle query: vehicle crops at ranks 1 and 2 of its class gallery -> AP 1
    assert out["vehicle/mAP"] == pytest.approx(100.0)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("osnet_x0_25", num_classes=5)
    path = tmp_path_factory.mktemp("w") / "reid.pt"
    save_weights(path, model, {"model": "osnet_x0_25", "num_classes": 5, "feature_dim": 512, "height": 64, "width": 32})
    return path


def test_extractor_shape_norm_determinism(random_weights):
    rng = np.random.default_rng(1)
    crops = [solid_crop(p, rng, size) for p, size in ((1, (64, 32)), (2, (200, 90)), (3, (10, 7)), (4, (64, 32)))]
    ext = ReidExtractor(random_weights, batch_size=3)
    assert ext.feature_dim == 512
    feats = ext(crops)
    assert feats.shape == (4, 512) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(ext(crops), feats)                          # deterministic
    np.testing.assert_allclose(ReidExtractor(random_weights, batch_size=1)(crops), feats, atol=1e-5)  # batch-free
    assert ext([]).shape == (0, 512)
    # torchreid's test transform by hand: RGB, [0, 1], ImageNet mean/std; then L2-normalised
    rgb = torch.from_numpy(crops[0][..., ::-1].copy()).permute(2, 0, 1).float()[None] / 255  # (1, 3, 64, 32)
    x = (rgb - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(ext.model.eval()(x), dim=1)[0].numpy()
    np.testing.assert_allclose(feats[0], expected, atol=1e-5)
    assert not np.allclose(ext([crops[0][..., ::-1].copy()])[0], feats[0], atol=1e-3)  # channel order matters


def test_from_boxes_clips_to_image(random_weights):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    tlwh = np.array([[10.2, 5.0, 20.0, 30.0], [-5, -5, 15, 20], [70, 50, 40, 40], [100, 100, 5, 5]])
    crops = crop_tlwh(image, tlwh)
    # floor/ceil then clip: [10:31] x [5:35]; [0:10] x [0:15]; [70:80] x [50:60]; fully outside -> 1 px at the corner
    assert [c.shape[:2] for c in crops] == [(30, 21), (15, 10), (10, 10), (1, 1)]
    np.testing.assert_array_equal(crops[1], image[0:15, 0:10])
    ext = ReidExtractor(random_weights, batch_size=64)
    np.testing.assert_allclose(ext.from_boxes(image, tlwh), ext(crops), atol=1e-6)
    assert ext.from_boxes(image, np.zeros((0, 4))).shape == (0, 512)


def test_weight_files(tmp_path, random_weights):
    state, meta = read_weights(random_weights)
    assert meta["model"] == "osnet_x0_25" and "classifier.weight" in state
    # torch >= 2.6 loads weights_only: a pickled numpy scalar (as in torchreid checkpoints) is refused
    bad = tmp_path / "torchreid.pth.tar"
    torch.save({"state_dict": state, "rank1": np.float64(0.5)}, bad)
    with pytest.raises(CheckpointError, match="torchreid.pth.tar"):
        read_weights(bad)
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(random_weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cut.pt"):
        read_weights(truncated)
    # a foreign bare state_dict with DataParallel prefixes loads into the backbone
    bare = tmp_path / "bare.pth"
    torch.save({"module." + k: v for k, v in state.items()}, bare)
    model = build_model("osnet_x0_25", num_classes=9)
    assert load_backbone(model, bare, model_name="osnet_x0_25", require_all=True) == len(state) - 2
    torch.testing.assert_close(model.conv1.conv.weight, state["conv1.conv.weight"])
    # architecture mismatch is named
    with pytest.raises(CheckpointError, match="osnet_x0_25.*osnet_x0_5"):
        load_backbone(build_model("osnet_x0_5", num_classes=9), random_weights, model_name="osnet_x0_5", require_all=True)


def test_eval_uses_val_pid_table(tmp_path, random_weights):
    # In a stage folder the query/gallery pids come from the locked val set, numbered on their
    # own: pid 1 is a person in training (pids.json) but a vehicle in val (val_pids.json).
    root = write_reid_dir(tmp_path, {1: 2, 2: 2}, {1: 1, 2: 1}, {1: 2, 2: 2}, {1: "person", 2: "person"})
    (root / "val_pids.json").write_text(json.dumps({"1": {"class": "vehicle"}, "2": {"class": "vehicle"}}))
    out = evaluate_extractor(ReidExtractor(random_weights, batch_size=64), root, [1])
    assert {k.split("/")[0] for k in out if "/" in k} == {"vehicle"}
    (root / "val_pids.json").write_text(json.dumps({"1": {"class": "vehicle"}}))
    with pytest.raises(DataError, match=r"val_pids.json: pid 2 "):
        evaluate_extractor(ReidExtractor(random_weights, batch_size=64), root, [1])


@pytest.mark.parametrize("override, key", [
    ({"batch_size": 30}, "reid.batch_size"),          # not a multiple of num_instances (4)
    ({"num_instances": 1}, "reid.num_instances"),     # no positive pair for the triplet loss
    ({"transforms": ["random_rotate"]}, "reid.transforms[0]"),
    ({"optim": "rmsprop"}, "reid.optim"),
    ({"ranks": []}, "reid.ranks"),
])
def test_config_rejects(override, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        configtypes.build(ReidConfig, override, key="reid")
    assert configtypes.build(ReidConfig, {"lr": "1e-05"}, key="reid").lr == 1e-5
