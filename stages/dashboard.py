"""DVC stage `dashboard`: plots/dashboard.png from the run's metrics and logs (see `stagetrack dashboard --help`)."""

import sys

from stagetrack.cli import main

if __name__ == "__main__":
    sys.exit(main(["dashboard", *sys.argv[1:]], pipeline=True))
