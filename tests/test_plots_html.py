"""`plots/template.html` makes `dvc plots show/diff --out DIR` pages that render with no network.

A tiny git+DVC repo declares one dvclive-like TSV plot; DVC writes the page with the project's
template and headless Chromium, with every host name unresolvable, loads it from ``file://``.
vega-embed renders as SVG (the template asks for it), so the dumped DOM shows the drawn line
marks, whose coordinates are checked against the data. DVC's default page (CDN scripts) is the
negative control: under the same browser flags it draws nothing.
"""

from __future__ import annotations

import html
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "plots" / "template.html"
VENDOR = REPO / "plots" / "vendor"
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
MAX_BYTES = 2 * 1024 * 1024

# (step, loss) rows of the committed plot file and of the workspace edit used by `plots diff`
COMMITTED = [(0, 1.0), (1, 0.6), (2, 0.4), (3, 0.3)]
EDITED = [(0, 0.8), (1, 0.5), (2, 0.2), (3, 0.1)]


def _tsv(rows: list[tuple[int, float]]) -> str:
    return "step\tloss\n" + "".join(f"{s}\t{v}\n" for s, v in rows)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "plots"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "plots@example.invalid"
    return env


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), text=True, capture_output=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A committed git+DVC repo with one top-level plot directory, like dvclive's output."""
    root = tmp_path_factory.mktemp("plots") / "repo"
    (root / "live" / "plots" / "metrics").mkdir(parents=True)
    (root / "live" / "plots" / "metrics" / "loss.tsv").write_text(_tsv(COMMITTED))
    (root / "dvc.yaml").write_text("plots:\n  - live/plots/metrics:\n      x: step\n")
    _run(["git", "init", "-q", "-b", "main"], root)
    _run(["dvc", "init", "-q"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "plots"], root)
    return root


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: install it (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    return CHROMIUM


def _dump_dom(chromium: Path, page: Path, profile: Path) -> str:
    """The DOM after scripts ran, with the network unusable (every host name fails to resolve)."""
    cmd = [
        str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}",
        "--window-size=1000,800", "--virtual-time-budget=5000", "--dump-dom", page.as_uri(),
    ]
    proc = subprocess.run(cmd, text=True, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


_LINE = re.compile(r'<path aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="line mark" d="([^"]*)"')


def _lines(dom: str) -> dict[str, list[tuple[float, float]]]:
    """rev -> the (x, y) vertices of its drawn line (vega's SVG path: M x,y L x,y ...)."""
    out = {}
    for label, d in _LINE.findall(dom):
        rev = re.search(r"rev: ([^;]+)", html.unescape(label)).group(1)
        points = [tuple(map(float, p.split(","))) for p in re.split(r"[ML]", d) if p]
        out[rev] = points
    return out


def _assert_drawn(points: list[tuple[float, float]], rows: list[tuple[int, float]]) -> None:
    # x: steps 0..3 spread evenly over the plot width, starting at 0
    xs = [x for x, _ in points]
    assert len(points) == len(rows) and xs[0] == 0 and xs == sorted(xs)
    assert xs[2] - xs[1] == pytest.approx(xs[1] - xs[0])
    # y: a linear scale, whatever its domain, keeps the ratios of the differences of the data
    # (SVG y grows downwards, so a falling loss draws a rising y)
    ys = [y for _, y in points]
    vs = [v for _, v in rows]
    for i in (1, 2):
        assert (ys[i] - ys[0]) / (ys[3] - ys[0]) == pytest.approx((vs[0] - vs[i]) / (vs[0] - vs[3]))


def test_template_has_no_remote_scripts():
    text = TEMPLATE.read_text(encoding="utf-8")
    assert "{plot_divs}" in text
    assert "{scripts}" not in text  # dvc_render would insert its CDN <script src> tags there
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)
    assert not re.search(r"""src\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert text.count("<script>") == 4  # vega, vega-lite, vega-embed, the embed defaults
    assert TEMPLATE.stat().st_size < MAX_BYTES


def test_template_is_generated_from_vendored_scripts():
    make = runpy.run_path(str(VENDOR / "make_template.py"))
    assert TEMPLATE.read_text(encoding="utf-8") == make["render"](VENDOR)
    for name in make["SCRIPTS"]:
        assert (VENDOR / name).stat().st_size < MAX_BYTES
        assert (VENDOR / f"LICENSE.{name.removesuffix('.min.js')}").is_file()


def test_show_renders_offline(repo, chromium, tmp_path):
    out = tmp_path / "show"  # dvc_render creates only the last level of --out
    _run(["dvc", "plots", "show", "--html-template", str(TEMPLATE), "--out", str(out)], repo)
    page = out / "index.html"
    assert "cdn.jsdelivr" not in page.read_text()
    dom = _dump_dom(chromium, page, tmp_path / "profile")
    assert 'class="mark-line role-mark' in dom
    lines = _lines(dom)
    assert set(lines) == {"workspace"}
    _assert_drawn(lines["workspace"], COMMITTED)


def test_diff_renders_offline(repo, chromium, tmp_path):
    plot = repo / "live" / "plots" / "metrics" / "loss.tsv"
    plot.write_text(_tsv(EDITED))
    try:
        out = tmp_path / "diff"
        _run(["dvc", "plots", "diff", "HEAD", "--html-template", str(TEMPLATE), "--out", str(out)], repo)
    finally:
        plot.write_text(_tsv(COMMITTED))
    lines = _lines(_dump_dom(chromium, out / "index.html", tmp_path / "profile"))
    assert set(lines) == {"HEAD", "workspace"}
    _assert_drawn(lines["HEAD"], COMMITTED)
    _assert_drawn(lines["workspace"], EDITED)


def test_default_dvc_page_draws_nothing_offline(repo, chromium, tmp_path):
    # the problem the template solves, and proof that the browser check can fail
    out = tmp_path / "default"
    _run(["dvc", "plots", "show", "--out", str(out)], repo)
    assert "cdn.jsdelivr" in (out / "index.html").read_text()
    dom = _dump_dom(chromium, out / "index.html", tmp_path / "profile")
    assert "mark-line" not in dom and _lines(dom) == {}


def test_config_default_template(repo, tmp_path):
    # `dvc config plots.html_template ../plots/template.html`: relative to .dvc/, as in the project
    (repo / "plots").mkdir(exist_ok=True)
    shutil.copy2(TEMPLATE, repo / "plots" / "template.html")
    config = repo / ".dvc" / "config"
    original = config.read_text()
    try:
        _run(["dvc", "config", "plots.html_template", "../plots/template.html"], repo)
        out = tmp_path / "configured"
        _run(["dvc", "plots", "show", "--out", str(out)], repo)
    finally:
        config.write_text(original)
        shutil.rmtree(repo / "plots")
    page = (out / "index.html").read_text()
    assert "cdn.jsdelivr" not in page and 'renderer: "svg"' in page
