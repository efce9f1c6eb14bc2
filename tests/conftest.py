"""Every test process runs with the pipeline's pinned numerics (set before numpy and torch load)."""

from stagetrack import numerics

numerics.pin(numerics.NumericsConfig())
