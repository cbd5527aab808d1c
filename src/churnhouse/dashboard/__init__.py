"""The churn dashboard: one static page drawn from the published tables.

`write_dashboard()` reads the published tables (read-only, as `churnhouse query`
does) and writes `<CHURN_HOME>/dashboard/index.html`: one self-contained file
with the chart library (Chart.js, vendored in `assets/`), the page's script and
the data as embedded JSON, so it opens offline from `file://` or any static
server. The publish task writes it after each publish; `churnhouse dashboard`
writes it and serves the folder on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from churnhouse.config import churn_home
from churnhouse.warehouse import Warehouse

ASSETS = Path(__file__).with_name("assets")
_SOURCE_MAP = "//# sourceMappingURL="


def dashboard_dir() -> Path:
    """`CHURN_DASHBOARD_DIR`, else `<CHURN_HOME>/dashboard` (beside the Data Docs)."""
    configured = os.environ.get("CHURN_DASHBOARD_DIR")
    return Path(configured).resolve() if configured else churn_home() / "dashboard"


def render(data: dict) -> str:
    """The page's HTML with `data` embedded as JSON and every asset inlined."""
    payload = dict(data, generated_at=datetime.now(UTC).replace(microsecond=0).isoformat())
    # "</" would end the script element early; JSON lets it be written "<\/".
    embedded = json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    chart_js = "\n".join(
        line
        for line in (ASSETS / "chart.umd.min.js").read_text(encoding="utf-8").splitlines()
        if not line.startswith(_SOURCE_MAP)
    )
    page = (ASSETS / "index.html").read_text(encoding="utf-8")
    replacements = {
        "/*STYLE*/": (ASSETS / "dashboard.css").read_text(encoding="utf-8"),
        "/*CHART_JS*/": chart_js,
        "/*DASHBOARD_JS*/": (ASSETS / "dashboard.js").read_text(encoding="utf-8"),
        "/*DATA*/": embedded,
    }
    for marker, text in replacements.items():
        before, found, after = page.partition(marker)
        if not found:
            raise RuntimeError(f"dashboard template lacks {marker}")
        page = before + text + after
    return page


def write_dashboard(warehouse: Warehouse, out_dir: Path | None = None) -> Path:
    """Write the dashboard from the published tables; returns the path of its index.html.

    Written beside and renamed into place, so a reader never sees half a page.
    """
    from churnhouse.dashboard.data import collect

    out = Path(out_dir).resolve() if out_dir else dashboard_dir()
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    staging = out / f".index.html.{os.getpid()}.tmp"
    staging.write_text(render(collect(warehouse)), encoding="utf-8")
    os.replace(staging, index)
    return index


def write_after_publish(warehouse: Warehouse) -> Path | None:
    """The publish task's call: the page is a view of what was just published, so a failure
    to draw it is reported but leaves the publish standing."""
    try:
        index = write_dashboard(warehouse)
    except Exception as error:  # noqa: BLE001 - reported; the published tables are what counts
        print(f"dashboard NOT written: {type(error).__name__}: {error}", flush=True)
        return None
    print(f"dashboard written: {index}", flush=True)
    return index


def serve(folder: Path, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Serve the dashboard folder read-only (GET and HEAD only) until interrupted."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class ReadOnlyHandler(SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

    handler = partial(ReadOnlyHandler, directory=str(folder))
    with ThreadingHTTPServer((host, port), handler) as server:
        url = f"http://{host}:{server.server_address[1]}/"
        print(f"dashboard: {url}  (serving {folder}; Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
