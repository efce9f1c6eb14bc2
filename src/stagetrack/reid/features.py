"""Appearance embeddings of image crops: what the tracker (and the ReID evaluation) calls.

Preprocessing matches torchreid's test transform: resize to the model's input size, RGB,
scale to [0, 1], ImageNet mean/std. Crops come in as OpenCV images (BGR uint8) and are resized
with ``cv2.INTER_AREA``, as the data builder resizes the training crops. Unlike torchreid's
``FeatureExtractor`` the output is L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .model import IMAGENET_MEAN, IMAGENET_STD, load_model


def resize_crop(crop_bgr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize one crop to (height, width) the way the extractor (and the data builder) does."""
    return cv2.resize(crop_bgr, (width, height), interpolation=cv2.INTER_AREA)


def crop_tlwh(image: np.ndarray, tlwh: np.ndarray) -> list[np.ndarray]:
    """Crops of ``image`` for (N, 4) tlwh boxes, clipped to the image and at least 1x1 pixel."""
    img_h, img_w = image.shape[:2]
    boxes = np.asarray(tlwh, dtype=np.float64).reshape(-1, 4)
    x1 = np.clip(np.floor(boxes[:, 0]), 0, img_w - 1).astype(int)
    y1 = np.clip(np.floor(boxes[:, 1]), 0, img_h - 1).astype(int)
    x2 = np.maximum(np.clip(np.ceil(boxes[:, 0] + boxes[:, 2]), 0, img_w).astype(int), x1 + 1)
    y2 = np.maximum(np.clip(np.ceil(boxes[:, 1] + boxes[:, 3]), 0, img_h).astype(int), y1 + 1)
    return [image[b:d, a:c] for a, b, c, d in zip(x1, y1, x2, y2)]


class ReidExtractor:
    """Batched, L2-normalised OSNet embeddings of BGR crops."""

    def __init__(self, weights: Path, *, device: str = "cpu", batch_size: int) -> None:
        """``batch_size``: crops per forward pass (params ``reid.feature_batch``)."""
        model, meta = load_model(Path(weights), device)
        self._setup(model, height=int(meta["height"]), width=int(meta["width"]), device=device,
                    batch_size=batch_size)

    @classmethod
    def from_model(cls, model: nn.Module, *, height: int, width: int, device: str = "cpu",
                   batch_size: int) -> ReidExtractor:
        """Wrap a model in memory (used to evaluate during training); it is put in eval mode."""
        self = cls.__new__(cls)
        self._setup(model, height=height, width=width, device=device, batch_size=batch_size)
        return self

    def _setup(self, model: nn.Module, *, height: int, width: int, device: str, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.height = height
        self.width = width
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.feature_dim: int = int(model.feature_dim)
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def _batch_tensor(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        resized = []
        for crop in crops:
            if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8 or crop.size == 0:
                raise ValueError(f"expected non-empty HxWx3 uint8 BGR crops, got {crop.shape} {crop.dtype}")
            resized.append(resize_crop(crop, self.height, self.width))
        rgb = np.ascontiguousarray(np.stack(resized)[..., ::-1])  # (B, H, W, 3) BGR -> RGB
        batch = torch.from_numpy(rgb).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        return (batch - self._mean) / self._std  # (B, 3, H, W)

    @torch.inference_mode()
    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, feature_dim) float32 unit-norm embeddings of N BGR uint8 crops of any size."""
        self.model.eval()
        out = np.empty((len(crops), self.feature_dim), dtype=np.float32)
        for start in range(0, len(crops), self.batch_size):
            batch = self._batch_tensor(crops[start:start + self.batch_size])
            feats = F.normalize(self.model(batch).float(), p=2, dim=1)  # (B, D)
            out[start:start + len(batch)] = feats.cpu().numpy()
        return out

    def from_boxes(self, image: np.ndarray, tlwh: np.ndarray) -> np.ndarray:
        """Embeddings of the (N, 4) tlwh boxes of a BGR frame (boxes clipped to the frame)."""
        return self(crop_tlwh(image, tlwh))

    def from_frames(self, images: Sequence[np.ndarray], tlwh: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Embeddings of each frame's (N_i, 4) tlwh boxes, the crops of all frames in shared
        batches of ``batch_size`` (one forward pass per batch, not per frame)."""
        if len(images) != len(tlwh):
            raise ValueError(f"{len(images)} images but {len(tlwh)} box arrays")
        if not images:
            return []
        crops = [crop for image, boxes in zip(images, tlwh) for crop in crop_tlwh(image, boxes)]
        ends = np.cumsum([len(boxes) for boxes in tlwh])[:-1]
        return np.split(self(crops), ends)
