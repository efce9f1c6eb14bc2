"""DVC stage `eval`: track every locked validation video with each stage's models (see `stagetrack evaluate-stages --help`)."""

import sys

from stagetrack.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate-stages", *sys.argv[1:]], pipeline=True))
