"""DVC stages `stage1`..`stage3`: train detector, ReID and association model of one stage.

Usage: python stages/train_stage.py STAGE [options]  (see `stagetrack train-stage --help`).
"""

import sys

from stagetrack.cli import main

if __name__ == "__main__":
    sys.exit(main(["train-stage", *sys.argv[1:]], pipeline=True))
