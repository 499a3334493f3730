"""Reading the report's data scripts back, and rendering the report in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Chromium's own background services (component updater, spell-check dictionary) ask
# for URLs too; only requests the page made (opaque file:// origin: initiator "null",
# or a file: initiator) count as the report reaching for the network.
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    # every network path closed: no proxy that works, no name that resolves
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


def read_data_script(path: Path) -> tuple[str | None, Any]:
    """(key, payload) of ``IQB.summary({...});`` or ``IQB.drill("key", {...});``."""
    m = re.fullmatch(r'IQB\.(?:summary|drill)\((?:("[^"]*"),)?(.*)\);\s*', path.read_text(), re.S)
    assert m, f"{path} is not a data script"
    return (json.loads(m[1]) if m[1] else None), json.loads(m[2])


def rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    """A data table's rows as dicts, with its packed percentile values (``values``:
    little-endian float64, base64, NaN for NULL) decoded."""
    out = [dict(zip(table["cols"], r, strict=True)) for r in table["rows"]]
    if "values" in table:
        import base64
        import math
        import struct

        cols = table["values"]["cols"]
        raw = base64.b64decode(table["values"]["f64"])
        flat = struct.unpack(f"<{len(raw) // 8}d", raw)
        assert len(flat) == len(out) * len(cols)
        for i, row in enumerate(out):
            for j, c in enumerate(cols):
                v = flat[i * len(cols) + j]
                row[c] = None if math.isnan(v) else v
    return out


def js_fmt(v: float | None, metric: str) -> str:
    """report.js's fmt(): how the page prints a number."""
    if v is None:
        return "\u2013"
    if metric == "loss":
        v *= 100
    if metric == "score":
        return f"{v:.3f}"
    if metric == "count":
        return f"{round(v):,}"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.2g}"


def chromium() -> str:
    """The browser, or a failure (never a skip): the report is only tested in a real one."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise AssertionError(
            "headless Chromium is needed for the report tests and was not "
            "found: `apt-get install -y chromium` (.ci/run installs it)"
        )
    return path


def _no_network_prefix() -> list[str]:
    """``unshare --net`` (a network namespace with no interface up) where allowed."""
    unshare = shutil.which("unshare")
    if (
        unshare
        and subprocess.run([unshare, "--net", "true"], capture_output=True, timeout=30).returncode
        == 0
    ):
        return [unshare, "--net"]
    return []


@dataclass
class Rendered:
    dom: str
    page_requests: list[str]  # non-file URLs the page asked for (must be empty)
    isolated: bool  # ran in a network namespace without network


def render(
    url: str,
    workdir: Path,
    *,
    screenshot: Path | None = None,
    size: tuple[int, int] = (1400, 2400),
    loopback: bool = False,
) -> Rendered:
    """Load ``url`` in headless Chromium with the network blocked (``loopback``: all but
    loopback, where Chromium bypasses the dead proxy); the DOM after scripts ran."""
    browser = chromium()
    prefix = [] if loopback else _no_network_prefix()
    netlog = workdir / "netlog.json"
    netlog.unlink(missing_ok=True)
    flags = [
        f"{f}, EXCLUDE 127.0.0.1" if loopback and f.startswith("--host-resolver-rules") else f
        for f in BROWSER_FLAGS
    ]
    base = [
        *prefix,
        browser,
        *flags,
        f"--window-size={size[0]},{size[1]}",
        "--virtual-time-budget=15000",
        f"--user-data-dir={workdir / 'profile'}",
    ]
    proc = subprocess.run(
        [*base, f"--log-net-log={netlog}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    if screenshot is not None:
        shot = subprocess.run(
            [*base, f"--screenshot={screenshot}", url], capture_output=True, text=True, timeout=180
        )
        assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    return Rendered(proc.stdout, page_requests(netlog), bool(prefix))


def page_requests(netlog: Path) -> list[str]:
    """URLs (other than file:) that a page asked for, from Chromium's net log."""
    data = json.loads(netlog.read_text())
    found = []
    for event in data.get("events", []):
        params = event.get("params") or {}
        url, initiator = params.get("url"), params.get("initiator")
        if (
            url
            and not url.startswith("file:")
            and (initiator == "null" or str(initiator).startswith("file"))
        ):
            found.append(url)
    return sorted(set(found))


def element(dom: str, element_id: str) -> str:
    """The HTML of the element with this id, up to its matching close tag."""
    m = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"', dom)
    assert m, f"no element #{element_id} in the page"
    tag, start, depth = m[1], m.start(), 0
    for t in re.finditer(rf"<(/?){tag}\b[^>]*>", dom[start:]):
        depth += -1 if t[1] else 1
        if depth == 0:
            return dom[start : start + t.end()]
    raise AssertionError(f"#{element_id} is not closed")


def harness(report: Path, script: str, name: str = "harness") -> Path:
    """A copy of the report's page that also runs ``script`` (a file beside it, as the
    page's Content-Security-Policy allows no inline script): the test's view into the
    page's own functions. The script writes what it found into ``#harness-out``."""
    (report / f"{name}.js").write_text(script)
    page = (report / "index.html").read_text()
    page = page.replace(
        "</body>", f'<pre id="harness-out"></pre>\n<script src="{name}.js"></script>\n</body>', 1
    )
    out = report / f"{name}.html"
    out.write_text(page)
    return out


def harness_result(dom: str) -> Any:
    """What the harness script wrote into ``#harness-out`` (JSON)."""
    import html as html_module

    text = re.sub(r"<[^>]+>", "", element(dom, "harness-out"))
    assert text.strip(), "the harness wrote nothing: the page's scripts did not run"
    return json.loads(html_module.unescape(text))
