"""Headless Chromium for page tests: render a local HTML file, dump its DOM, capture console
errors, take a screenshot. Offline flags only (no network, fresh profile)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError(
        "Chromium is missing: `make test` installs Debian's `chromium` package "
        "(apt-get install -y chromium); install it to run the report's page tests"
    )


@dataclass
class Rendered:
    dom: str
    console_errors: list[str]
    stderr: str


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout, env={**os.environ, "HOME": profile},
        )


# Console messages Chromium logs with --enable-logging=stderr look like:
#   [..:INFO:CONSOLE(12)] "Uncaught TypeError: ...", source: file:///.../report.html (12)
_CONSOLE = re.compile(r":(?:INFO|ERROR|WARNING):CONSOLE[^\]]*\]\s*\"(?P<msg>.*)\", source: (?P<src>.*)")


def render(html: Path, screenshot: Path | None = None, timeout: float = 120) -> Rendered:
    """Load `html`, let its scripts run, and return the DOM and the console errors."""
    url = html.resolve().as_uri()
    proc = _run(["--virtual-time-budget=5000", "--dump-dom", url], timeout)
    errors = []
    for line in proc.stderr.splitlines():
        m = _CONSOLE.search(line)
        if m and ("error" in m.group("msg").lower() or "uncaught" in m.group("msg").lower() or ":ERROR:" in line):
            errors.append(m.group("msg"))
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        _run(["--window-size=1280,2400", "--virtual-time-budget=5000", f"--screenshot={screenshot}", url], timeout)
    return Rendered(proc.stdout, errors, proc.stderr)
