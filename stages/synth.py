"""DVC stage `synth`: generate the embedded synthetic datasets (see `stagetrack synth --help`)."""

import sys

from stagetrack.cli import main

if __name__ == "__main__":
    sys.exit(main(["synth", *sys.argv[1:]], pipeline=True))
