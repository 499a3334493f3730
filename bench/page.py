"""Every country's score at another percentile in the HTML report, in headless Chromium.

The report recomputes the score in the browser (``report.js``), so a change of
the percentile selector costs the reader no server and no rebuild; these
figures say what it costs the browser, beside the API's (``bench/explore.py``):

- ``score``: ``IQB.benchRescore(50)``, the page's calculator over every country
  row of every period at p50 with the build's config (the rows the API figure
  scores, but already in memory: the API also opens the database);
- ``redraw``: the percentile selector changed, as a reader does: every score on
  the page recomputed and the map, the rankings and the country view redrawn.

Each is the median of ``repeats`` runs in one page load, alternating p50 and
p95 so that no run reuses the previous one's scores. The page is loaded from
files with every network path closed, as the report tests load it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

from extract.results.html.build import write_html_report

# The report tests' flags (tests/report/helpers.py): headless, no network, no profile noise.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-extensions",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)

# Runs in the page (a file beside it: the page's Content-Security-Policy allows no
# inline script), once the data are loaded; writes the timings into #bench-out.
SCRIPT = """
(function () {
  var polls = 0, timer = setInterval(function () {
    // the data, and the drill-down of the period shown (a redraw draws it too)
    if (!window.IQB || !IQB.countries) return;
    if (!IQB.drills[IQB.state().period] && ++polls < 200) return;
    clearInterval(timer);
    var repeats = REPEATS, score = [], redraw = [], sel = document.getElementById('pct');
    function median(xs) {
      xs.sort(function (a, b) { return a - b; });
      return xs[(xs.length - 1) >> 1];
    }
    for (var i = 0; i < repeats; i++) {
      score.push(IQB.benchRescore(50));
      var pct = i % 2 ? '95' : '50', t0 = performance.now();
      sel.value = pct;
      sel.dispatchEvent(new Event('change'));
      redraw.push(performance.now() - t0);
    }
    document.getElementById('bench-out').textContent = JSON.stringify({
      score_ms: median(score), redraw_ms: median(redraw),
      rows: IQB.benchLast.rows, scored: IQB.benchLast.scored });
  }, 50);
})();
"""


def browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def page_rescore(artifacts: Path, work: Path, repeats: int) -> dict[str, float]:
    """Milliseconds of each way (keys ``score_ms``, ``redraw_ms``), with ``rows`` and ``scored``.

    Writes the report of ``artifacts``' database under ``work/page`` first.
    """
    path = browser()
    if path is None:
        raise RuntimeError("headless Chromium is not installed (apt-get install chromium)")
    report = write_html_report(artifacts, work / "page").directory
    (report / "bench.js").write_text(SCRIPT.replace("REPEATS", str(repeats)))
    page = report / "bench.html"
    page.write_text(
        (report / "index.html")
        .read_text()
        .replace("</body>", '<pre id="bench-out"></pre><script src="bench.js"></script></body>', 1)
    )
    proc = subprocess.run(
        [
            path,
            *FLAGS,
            "--window-size=1400,2400",
            "--virtual-time-budget=60000",
            f"--user-data-dir={work / 'chromium-profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = re.search(r'<pre id="bench-out">([^<]+)</pre>', proc.stdout)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(
            f"the report page did not run its benchmark (exit {proc.returncode}): "
            + (proc.stderr.strip().splitlines() or ["no output"])[-1]
        )
    result: dict[str, float] = json.loads(unescape(found[1]))
    return result
