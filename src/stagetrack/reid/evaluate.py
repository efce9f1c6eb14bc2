"""Rank-k (CMC) and mAP of ReID embeddings on a stage's query/gallery split.

Scores come from torchreid's ``metrics.evaluate_rank`` (Market-1501 protocol: for each query,
gallery crops with the same pid *and* camid are dropped). Distances are cosine distances of
the L2-normalised embeddings, as the tracker uses them. Results are in percent: ``rank1``,
``rank5``..., ``mAP`` over everything, and ``<class>/rank1``... with query and gallery both
restricted to that class (a class with no scorable query is left out).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.sequence import CLASSES
from ..errors import DataError
from ..io import read_image
from . import backend
from .config import ReidConfig
from .dataset import SPLITS, Crop, eval_pids_file, list_split, read_pid_classes
from .features import ReidExtractor

log = logging.getLogger(__name__)


def rank_metrics(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                 g_camids: np.ndarray, ranks: Sequence[int]) -> dict[str, float] | None:
    """``rank{k}`` and ``mAP`` (0-100) for a (Q, G) distance matrix; None if no query is scorable.

    A query is scorable when the gallery holds its pid under another camid.
    """
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    same_pid = q_pids[:, None] == g_pids[None, :]
    if not (same_pid & (q_camids[:, None] != g_camids[None, :])).any():
        return None
    # torchreid truncates each query's CMC to min(50, G) after dropping its same-camera matches,
    # which gives ragged rows on small galleries. Appending max(ranks) decoys ranked after every
    # real item (distance above the maximum, a pid no query has) keeps every row long enough and
    # changes neither CMC at real positions nor AP (decoys come after all relevant items).
    k = max(ranks)
    decoy_pid = min(q_pids.min(), g_pids.min()) - 1
    dist = np.concatenate([distmat, np.full((len(q_pids), k), distmat.max() + 1.0)], axis=1)
    cmc, mean_ap = backend.metrics.evaluate_rank(
        dist, q_pids, np.concatenate([g_pids, np.full(k, decoy_pid)]),
        q_camids, np.concatenate([g_camids, np.full(k, -1)]), max_rank=k,
    )
    out = {f"rank{r}": 100.0 * float(cmc[r - 1]) for r in ranks}
    out["mAP"] = 100.0 * float(mean_ap)
    return out


def split_metrics(q_feats: np.ndarray, g_feats: np.ndarray, query: Sequence[Crop], gallery: Sequence[Crop],
                  pid_class: dict[int, str], ranks: Sequence[int]) -> dict[str, float]:
    """Overall and per-class metrics of unit-norm query/gallery embeddings."""
    q_pids = np.array([c.pid for c in query])
    g_pids = np.array([c.pid for c in gallery])
    q_cams = np.array([c.camid for c in query])
    g_cams = np.array([c.camid for c in gallery])
    q_cls = np.array([pid_class[p] for p in q_pids])
    g_cls = np.array([pid_class[p] for p in g_pids])
    dist = backend.metrics.compute_distance_matrix(torch.from_numpy(q_feats), torch.from_numpy(g_feats),
                                                   metric="cosine").numpy()
    overall = rank_metrics(dist, q_pids, g_pids, q_cams, g_cams, ranks)
    if overall is None:
        raise DataError("no query identity appears in the gallery under another camera id")
    out = dict(overall)
    for cls in CLASSES:
        qm, gm = q_cls == cls, g_cls == cls
        if not qm.any() or not gm.any():
            continue
        scores = rank_metrics(dist[np.ix_(qm, gm)], q_pids[qm], g_pids[gm], q_cams[qm], g_cams[gm], ranks)
        if scores is not None:
            out.update({f"{cls}/{k}": v for k, v in scores.items()})
    return out


def query_hits(q_feats: np.ndarray, g_feats: np.ndarray, query: Sequence[Crop], gallery: Sequence[Crop],
               pid_class: dict[int, str]) -> list[bool | None]:
    """Per query, whether its nearest gallery crop of the same class is its identity (rank-1),
    under the same protocol as :func:`split_metrics`' ``<class>/rank1`` (same pid and camid dropped);
    None for a query whose identity the gallery does not hold under another camid (not scorable).
    The mean over a class's scorable queries is that class's rank-1 (``tests/test_parts.py``)."""
    dist = backend.metrics.compute_distance_matrix(torch.from_numpy(q_feats), torch.from_numpy(g_feats),
                                                   metric="cosine").numpy()
    g_pids = np.array([c.pid for c in gallery])
    g_cams = np.array([c.camid for c in gallery])
    g_cls = np.array([pid_class[p] for p in g_pids])
    out: list[bool | None] = []
    for i, crop in enumerate(query):
        valid = (g_cls == pid_class[crop.pid]) & ~((g_pids == crop.pid) & (g_cams == crop.camid))
        if not (valid & (g_pids == crop.pid)).any():
            out.append(None)
            continue
        candidates = np.flatnonzero(valid)
        out.append(bool(g_pids[candidates[np.argmin(dist[i, candidates])]] == crop.pid))
    return out


def evaluate_queries(extractor: ReidExtractor, data_dir: Path) -> list[dict]:
    """Rank-1 of every scorable query of ``data_dir`` (the locked val crops) with the video and
    domain its identity comes from (the builder's pid table): ``[{pid, source, video, class, hit}]``,
    what :mod:`stagetrack.evaluate.parts` recombines per domain and bootstraps over videos."""
    query, gallery = list_split(data_dir, SPLITS[1]), list_split(data_dir, SPLITS[2])
    table = eval_pids_file(data_dir)
    pid_class = read_pid_classes(table)
    entries = json.loads(table.read_text(encoding="utf-8"))
    for crop in (*query, *gallery):
        entry = entries.get(str(crop.pid))
        if entry is None or not {"source", "video"} <= set(entry):
            raise DataError(f"pid {crop.pid} of the query/gallery has no source and video in the pid table",
                            file=table)
    if not query or not gallery:
        raise DataError("empty query or gallery", file=Path(data_dir) / (SPLITS[1] if not query else SPLITS[2]))
    chunk = extractor.batch_size
    hits = query_hits(embed_files(extractor, query, chunk), embed_files(extractor, gallery, chunk), query, gallery,
                      pid_class)
    return [{"pid": c.pid, "source": entries[str(c.pid)]["source"], "video": entries[str(c.pid)]["video"],
             "class": pid_class[c.pid], "hit": hit} for c, hit in zip(query, hits) if hit is not None]


def cmc_rows(metrics: dict[str, float], ranks: Sequence[int]) -> list[dict[str, float]]:
    """The CMC curve at the evaluated ranks, one row per rank, columns ``all`` and each class."""
    rows = []
    for r in ranks:
        row = {"rank": r, "all": round(metrics[f"rank{r}"], 3)}
        row.update({c: round(metrics[f"{c}/rank{r}"], 3) for c in CLASSES if f"{c}/rank{r}" in metrics})
        rows.append(row)
    return rows


def embed_files(extractor: ReidExtractor, crops: Sequence[Crop], chunk: int) -> np.ndarray:
    """Embeddings of crop files, read with OpenCV ``chunk`` at a time."""
    out = np.empty((len(crops), extractor.feature_dim), dtype=np.float32)
    for start in range(0, len(crops), chunk):
        images = [read_image(crop.path) for crop in crops[start:start + chunk]]
        out[start:start + len(images)] = extractor(images)
    return out


def evaluate_extractor(extractor: ReidExtractor, data_dir: Path, ranks: Sequence[int]) -> dict[str, float]:
    """Metrics of ``extractor`` on ``data_dir``'s query/gallery split."""
    query, gallery = list_split(data_dir, SPLITS[1]), list_split(data_dir, SPLITS[2])
    table = eval_pids_file(data_dir)
    pid_class = read_pid_classes(table)
    unknown = sorted({c.pid for c in (*query, *gallery)} - set(pid_class))
    if unknown:
        raise DataError(f"pid {unknown[0]} of the query/gallery is not in the pid table", file=table)
    if not query or not gallery:
        raise DataError("empty query or gallery", file=Path(data_dir) / (SPLITS[1] if not query else SPLITS[2]))
    chunk = extractor.batch_size
    metrics = split_metrics(embed_files(extractor, query, chunk), embed_files(extractor, gallery, chunk),
                            query, gallery, pid_class, ranks)
    log.info("ReID on %s: %d query, %d gallery crops: rank1 %.1f mAP %.1f", data_dir, len(query), len(gallery),
             metrics["rank1"], metrics["mAP"])
    return metrics


def evaluate_reid(weights: Path, data_dir: Path, cfg: ReidConfig, *, device: str = "cpu") -> dict[str, float]:
    """Rank-k and mAP (0-100), overall and per class, of saved weights on a query/gallery split."""
    extractor = ReidExtractor(weights, device=device, batch_size=cfg.feature_batch)
    return evaluate_extractor(extractor, data_dir, cfg.ranks)
