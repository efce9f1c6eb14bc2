"""DVC stage `build_data`: frame budgets, clips, replay, manifest lock and exports (see `stagetrack build --help`)."""

import sys

from stagetrack.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", *sys.argv[1:]], pipeline=True))
