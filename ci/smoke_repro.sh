#!/usr/bin/env bash
# Reproduce every stage of the pipeline on the smoke params (tests/smoke/params_overlay.yaml, the
# same tiny sizes the test suite runs) in a temporary copy of the working tree, so the workspace's
# committed full-size metrics stay what the review report compares. A few minutes on 2 CPU cores.
#   bash ci/smoke_repro.sh [KEEP_DIR]     (KEEP_DIR: run there and keep it, e.g. to inspect)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$root/.venv/bin:$PATH"  # the stages run `python`: the project's venv
py="$root/.venv/bin/python"
if [ $# -ge 1 ]; then work="$1"; mkdir -p "$work"; else work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$work")
cd "$work"
"$py" - <<'PY'
import yaml
from stagetrack.config import load_params, merge

params = yaml.safe_load(open("params.yaml"))
overlay = yaml.safe_load(open("tests/smoke/params_overlay.yaml"))
with open("params.yaml", "w") as fh:
    yaml.safe_dump(merge(params, overlay), fh, sort_keys=False)
load_params("params.yaml")  # the merged params must be valid
PY
git init -q -b smoke
git add -A
git -c user.name=ci -c user.email=ci@localhost commit -qm "smoke params"
# the workspace's cache, run cache included: what `dvc pull/push --run-cache` there brings and keeps
"$root/.venv/bin/dvc" cache dir --local "$root/.dvc/cache"
"$root/.venv/bin/dvc" repro
echo "smoke repro passed in $work"
