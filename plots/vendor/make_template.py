"""Write ``plots/template.html``: DVC's plots page with vega, vega-lite and vega-embed inlined.

``dvc plots show/diff --out DIR`` fills an HTML template (dvc_render's ``{plot_divs}``) and
writes it to ``DIR/index.html``; the template is read as text, not copied with any files next to
it, so a relative ``<script src>`` would resolve against DIR and break. Inlining the vendored
scripts makes the page self-contained: it renders offline wherever it is written. The template
has no ``{scripts}`` placeholder, so dvc_render's CDN ``<script>`` tags are never inserted.

Run ``python plots/vendor/make_template.py`` after replacing a vendored file; a test checks that
the committed template equals this script's output.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stagetrack.io import atomic_write_text

VENDOR = Path(__file__).resolve().parent
TEMPLATE = VENDOR.parent / "template.html"
# load order matters: vega-lite needs vega, vega-embed needs both
SCRIPTS: tuple[str, ...] = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")

# dvc_render's plot divs call `vegaEmbed('#id', spec)` with no options. Wrap it so charts render
# as SVG (marks are inspectable DOM nodes) and the action menu offers no link to the online editor.
EMBED_DEFAULTS = """\
<script>
(function () {
  var embed = window.vegaEmbed;
  var defaults = {renderer: "svg", actions: {export: true, source: true, compiled: true, editor: false}};
  window.vegaEmbed = Object.assign(function (el, spec, opt) {
    return embed(el, spec, Object.assign({}, defaults, opt || {}));
  }, embed);
})();
</script>"""

PAGE = """\
<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC Plot</title>
{inline_scripts}
    <style>
        body { font-family: sans-serif; }
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def render(vendor: Path = VENDOR) -> str:
    """The template text: :data:`PAGE` with every vendored script inlined, in order."""
    blocks = []
    for name in SCRIPTS:
        code = (vendor / name).read_text(encoding="utf-8")
        if "</script" in code.lower():
            raise ValueError(f"{vendor / name}: contains '</script', cannot be inlined")
        blocks.append(f"<!-- {name} -->\n<script>\n{code.rstrip()}\n</script>")
    blocks.append(EMBED_DEFAULTS)
    return PAGE.replace("{inline_scripts}", "\n".join(blocks))


def main() -> int:
    atomic_write_text(TEMPLATE, render())
    print(f"wrote {TEMPLATE} ({TEMPLATE.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
