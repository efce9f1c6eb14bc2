"""Where the pipeline's files are, for every reader: the locked videos of ``data/built/<split>``,
a trained stage's models (``models/<stage>/``) and its validation tracks (``val_results/``).

Training stages write these, the eval stage, ``stagetrack viz`` and the benchmarks read them; the
module imports no model code, so any of them can ask where things are without pulling in the rest.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .data import mot
from .data.sequence import Sequence
from .errors import CheckpointError

VAL_RESULTS = "val_results"  # models/<stage>/val_results/<variant>/<source>/<video>.txt: a stage's validation tracks


def load_locked(locked_dir: str | Path) -> dict[str, list[Sequence]]:
    """The locked videos of ``data/built/<split>`` per source (domain), in seqmap order."""
    locked_dir = Path(locked_dir)
    seqmap = (locked_dir / "seqmaps" / f"{locked_dir.name}.txt").read_text().split()[1:]
    out: dict[str, list[Sequence]] = {}
    for entry in seqmap:
        source, name = entry.split("/", 1)
        out.setdefault(source, []).append(mot.read_sequence(locked_dir / source / name, source=source))
    return out


@dataclasses.dataclass
class StageModels:
    """A trained stage's models: the detector's ``best.pt``, the ReID ``model.pt`` and ``assoc.pt``
    (None when the stage has no association model)."""

    detector: Path
    reid: Path
    assoc: Path | None

    @classmethod
    def find(cls, stage_dir: str | Path) -> "StageModels":
        stage_dir = Path(stage_dir)
        det, reid, assoc = stage_dir / "detector" / "best.pt", stage_dir / "reid" / "model.pt", stage_dir / "assoc.pt"
        for path in (det, reid):
            if not path.exists():
                raise CheckpointError("missing model of a trained stage; run its stage first", file=path)
        return cls(det, reid, assoc if assoc.exists() else None)


def read_results(folder: Path, val: dict[str, list[Sequence]]) -> dict[str, np.ndarray]:
    """Result rows of every validation video from ``folder/<source>/<video>.txt``."""
    out = {}
    for source, group in val.items():
        for seq in group:
            path = folder / source / f"{seq.name}.txt"
            if not path.is_file():
                raise CheckpointError("validation results of a trained stage are missing; re-run the stage",
                                      file=path)
            out[seq.name] = mot.read_txt(path, "result")
    return out
