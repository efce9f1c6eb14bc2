"""Typed params of the visual checks: `stagetrack viz` (visual truth) and `stagetrack dashboard`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VizConfig:
    """Ground truth against predictions rendered as an MP4 and a PNG contact sheet."""

    score_thresh: float = 0.0            # predictions scoring below this are neither drawn nor matched
    match_iou: float = 0.5               # IoU at which a prediction matches a ground-truth box (same class)
    switch_highlight_frames: int = 15    # an identity switch stays orange this many frames (1 = switch frame only)
    fps: float = 0.0                     # video frame rate; 0 = the sequence's own
    max_frames: int = 0                  # render the first N frames; 0 = all
    sheet_frames: int = 12               # evenly spaced frames on the contact sheet
    sheet_cols: int = 4                  # contact-sheet columns
    sheet_width: int = 1600              # contact-sheet width in pixels
    line_width: int = 0                  # box line width in pixels; 0 = from the frame size
    font_scale: float = 0.0              # OpenCV font scale; 0 = from the frame size
    seqs_per_domain: int = 1             # validation videos the eval stage renders per domain

    def validate(self) -> tuple[str, str] | None:
        if not 0.0 < self.match_iou <= 1.0:
            return "match_iou", f"must be in (0, 1], got {self.match_iou}"
        if self.switch_highlight_frames < 1:
            return "switch_highlight_frames", f"must be >= 1, got {self.switch_highlight_frames}"
        for name in ("fps", "font_scale"):
            if getattr(self, name) < 0:
                return name, f"must be >= 0, got {getattr(self, name)}"
        for name in ("max_frames", "line_width", "seqs_per_domain"):
            if getattr(self, name) < 0:
                return name, f"must be >= 0, got {getattr(self, name)}"
        for name in ("sheet_frames", "sheet_cols", "sheet_width"):
            if getattr(self, name) < 1:
                return name, f"must be >= 1, got {getattr(self, name)}"
        return None


@dataclass(frozen=True)
class DashboardConfig:
    """One PNG of the run's health: validation metrics, losses, gradient norms, forgetting."""

    out: str = "plots/dashboard.png"     # where `stagetrack dashboard` writes (its --out overrides)
    success_line: float = 54.0           # the seed's success criterion for HOTA/IDF1, drawn on the plots
    dpi: int = 100                       # resolution of the PNG

    def validate(self) -> tuple[str, str] | None:
        if self.dpi < 10:
            return "dpi", f"must be >= 10, got {self.dpi}"
        if not self.out:
            return "out", "must not be empty"
        return None
