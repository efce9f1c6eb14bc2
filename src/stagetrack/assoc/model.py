"""The association transformer: which candidate detection (or none) continues a track.

Per sample (one track, C candidates): the track becomes a short token sequence (a summary token
of its predicted box, score and class; one token per appearance vector; one per history box)
refined by ``track_layers`` self-attention blocks. Each candidate becomes one token from its
pair geometry and appearance (its own embedding and its elementwise product with the track's),
and a learned "no match" token joins them. ``layers`` blocks of cross-attention (candidates ->
track tokens) and self-attention among the candidates let candidates compete; a linear head
gives one logit per candidate plus the "no match" logit, trained with softmax cross-entropy.
Shapes: B samples, C = ``max_candidates``, H = ``history``, T = track tokens, d = ``d_model``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import AssocConfig
from .features import HIST_FIELDS, PAIR_FIELDS, TRACK_FIELDS

# the AssocConfig fields that define the network (saved in checkpoints)
MODEL_ARGS: tuple[str, ...] = ("history", "max_candidates", "d_model", "heads", "layers", "track_layers", "dropout")
MASKED_LOGIT = -1e9  # logit of padded candidates (float32; exp underflows to exactly 0)


def model_config(args: Mapping[str, Any]) -> AssocConfig:
    """An AssocConfig carrying the saved ``MODEL_ARGS`` (other fields at their defaults)."""
    return dataclasses.replace(AssocConfig(), **{k: args[k] for k in MODEL_ARGS})


class Block(nn.Module):
    """Pre-norm block: [cross-attention to a memory], self-attention, feed-forward."""

    def __init__(self, d: int, heads: int, dropout: float, cross: bool) -> None:
        super().__init__()
        self.cross = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True) if cross else None
        self.norm_cross = nn.LayerNorm(d) if cross else None
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm_self = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * d, d))
        self.norm_ff = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, x_pad: torch.Tensor, mem: torch.Tensor | None = None,
                mem_pad: torch.Tensor | None = None) -> torch.Tensor:
        # x (B, L, d), x_pad (B, L) True = padding; mem (B, T, d), mem_pad (B, T)
        if self.cross is not None:
            h = self.norm_cross(x)
            x = x + self.drop(self.cross(h, mem, mem, key_padding_mask=mem_pad, need_weights=False)[0])
        h = self.norm_self(x)
        x = x + self.drop(self.self_attn(h, h, h, key_padding_mask=x_pad, need_weights=False)[0])
        return x + self.drop(self.ff(self.norm_ff(x)))


class AssocTransformer(nn.Module):
    """Scores C candidates + "no match" for each track; see the module docstring."""

    def __init__(self, cfg: AssocConfig, embed_dim: int, hsv_bins: int = 0) -> None:
        super().__init__()
        d = cfg.d_model
        self.cfg, self.embed_dim, self.hsv_bins = cfg, embed_dim, hsv_bins
        self.max_candidates = cfg.max_candidates
        # track side
        self.track_in = nn.Linear(len(TRACK_FIELDS), d)
        self.hist_in = nn.Linear(len(HIST_FIELDS), d)
        self.hist_pos = nn.Parameter(torch.randn(cfg.history, d) * 0.02)
        self.track_emb_in = nn.Linear(embed_dim, d) if embed_dim else None
        self.track_hsv_in = nn.Linear(hsv_bins, d) if hsv_bins else None
        self.token_type = nn.Parameter(torch.randn(4, d) * 0.02)  # summary, emb, hsv, history
        self.track_blocks = nn.ModuleList(Block(d, cfg.heads, cfg.dropout, cross=False)
                                          for _ in range(cfg.track_layers))
        self.track_norm = nn.LayerNorm(d)
        # candidate side
        self.cand_in = nn.Linear(len(PAIR_FIELDS), d)
        self.cand_emb_in = nn.Linear(embed_dim, d) if embed_dim else None
        self.pair_emb_in = nn.Linear(embed_dim, d) if embed_dim else None
        self.cand_hsv_in = nn.Linear(hsv_bins, d) if hsv_bins else None
        self.none_token = nn.Parameter(torch.randn(d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.dropout, cross=True) for _ in range(cfg.layers))
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 1))
        self._checkpointed = 0

    def set_grad_checkpointing(self, ratio: float) -> None:
        """Recompute the first ``ratio`` of all blocks in backward instead of storing activations."""
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"grad checkpointing ratio must be in [0, 1], got {ratio}")
        self._checkpointed = round(ratio * (len(self.track_blocks) + len(self.blocks)))

    def _run(self, i: int, block: Block, *args: torch.Tensor | None) -> torch.Tensor:
        if self.training and i < self._checkpointed and torch.is_grad_enabled():
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits (B, C + 1), float32; index C is "no match", padded candidates get -1e9."""
        hist, hist_mask = batch["hist"], batch["hist_mask"]          # (B, H, 4), (B, H)
        cand, cand_mask = batch["cand"], batch["cand_mask"]          # (B, C, P), (B, C)
        b = hist.shape[0]
        tokens = [self.track_in(batch["track"])[:, None] + self.token_type[0]]            # (B, 1, d)
        pads = [torch.zeros(b, 1, dtype=torch.bool, device=hist.device)]
        if self.track_emb_in is not None:
            tokens.append(self.track_emb_in(batch["track_emb"])[:, None] + self.token_type[1])
            pads.append(pads[0])
        if self.track_hsv_in is not None:
            tokens.append(self.track_hsv_in(batch["track_hsv"])[:, None] + self.token_type[2])
            pads.append(pads[0])
        tokens.append(self.hist_in(hist) + self.hist_pos + self.token_type[3])             # (B, H, d)
        pads.append(~hist_mask)
        mem = torch.cat(tokens, 1)                                                        # (B, T, d)
        mem_pad = torch.cat(pads, 1)                                                      # (B, T)
        for i, block in enumerate(self.track_blocks):
            mem = self._run(i, block, mem, mem_pad)
        mem = self.track_norm(mem)

        x = self.cand_in(cand)                                                            # (B, C, d)
        if self.cand_emb_in is not None:
            cand_emb = batch["cand_emb"]                                                  # (B, C, D)
            x = x + self.cand_emb_in(cand_emb) + self.pair_emb_in(cand_emb * batch["track_emb"][:, None])
        if self.cand_hsv_in is not None:
            x = x + self.cand_hsv_in(batch["cand_hsv"])                                   # (B, C, d)
        x = torch.cat([x, self.none_token.expand(b, 1, -1)], 1)                           # (B, C+1, d)
        x_pad = torch.cat([~cand_mask, pads[0]], 1)                                       # (B, C+1)
        offset = len(self.track_blocks)
        for i, block in enumerate(self.blocks):
            x = self._run(offset + i, block, x, x_pad, mem, mem_pad)
        logits = self.head(x).squeeze(-1).float()                                         # (B, C+1)
        return logits.masked_fill(x_pad, MASKED_LOGIT)


def assoc_loss(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy over candidates + "no match": (B, C+1), (B,) -> scalar."""
    return F.cross_entropy(logits, label)
