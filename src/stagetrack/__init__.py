"""stagetrack: staged training of a multi-class multi-object tracker, reproducible with DVC."""

__version__ = "0.1.0"
