"""Headless Chromium for the report tests: open a page, take a screenshot, read its
console, and measure its layout at a given width.

Measuring: `--dump-dom` lays a page out at no less than 500 px whatever
`--window-size` says, so the page is laid out inside an iframe of the width asked
for (its own viewport, so media queries apply as on a phone), and a script in the
outer page writes what it measured into the dumped DOM."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                    "(Debian: apt-get install -y chromium)")
# Chromium logs every console message of the page (console.log/error, uncaught
# exceptions) as ":CONSOLE(...)" or ":CONSOLE:..."; our pages print nothing.
CONSOLE = re.compile(r":CONSOLE[(:].*|Uncaught.*")


def chromium(url: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="nngrade-chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
             *args, url], capture_output=True, text=True, timeout=120, check=False)


def console_errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [m.group(0) for m in CONSOLE.finditer(proc.stderr)]


# What sticks out: an element whose right edge passes the viewport's, or a scrolling
# box (a table in `overflow-x: auto`) whose content is wider than the box, which on a
# phone is a column the reader does not see.
_MEASURE = """<!doctype html><html><body style="margin:0">
<iframe id="page" style="border:0;width:WIDTHpx;height:HEIGHTpx" srcdoc="PAGE"></iframe>
<script>
document.getElementById("page").addEventListener("load", function () {
  var doc = this.contentDocument, root = doc.documentElement, wide = [];
  doc.querySelectorAll("details").forEach(function (d) { d.open = OPEN; });
  doc.querySelectorAll("body *").forEach(function (el) {
    var box = el.getBoundingClientRect(), style = getComputedStyle(el);
    var scrolls = style.overflowX == "auto" || style.overflowX == "scroll";
    if (box.right > root.clientWidth + 0.5 || scrolls && el.scrollWidth > el.clientWidth + 1)
      wide.push(el.tagName.toLowerCase() + (el.className ? "." + el.className : "") + ": right edge "
                + Math.round(box.right) + ", content " + el.scrollWidth + " in " + el.clientWidth);
  });
  var out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({width: root.clientWidth, scrollWidth: root.scrollWidth,
                                    height: root.scrollHeight, wide: wide});
  document.body.appendChild(out);
});
</script></body></html>"""


def measure(page: str, folder: Path, width: int, height: int = 844, open_folds: bool = False) -> dict:
    """The page laid out `width` px wide: its width, scrollWidth, height (scrollHeight) and
    the elements that stick out (`wide`), with every <details> open or closed."""
    probe = folder / f"measure-{width}-{'open' if open_folds else 'closed'}.html"
    probe.write_text(_MEASURE.replace("WIDTH", str(width)).replace("HEIGHT", str(height))
                     .replace("OPEN", "true" if open_folds else "false")
                     .replace("PAGE", html.escape(page, quote=True)), encoding="utf-8")
    proc = chromium(probe.as_uri(), "--window-size=1200,900", "--dump-dom")
    assert console_errors(proc) == [], proc.stderr[-2000:]
    found = re.search(r'<pre id="measured">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert found, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))
