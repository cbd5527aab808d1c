"""Great Expectations Data Docs that keep every night and open offline.

- Every validation is kept: the context's validation results live on disk
  (`<CHURN_HOME>/gx/validation_results`), so each gate's site index lists the raw
  and marts validations of every night (the newest 2,000: `index_limit`), not only
  those of the task that built it.
  The rest of the context (suites, data sources, checkpoints) stays in memory:
  no connection string is ever written to a file.
- Every validation is named by the Airflow run id (`run_name`).
- Offline: the pages' CDN stylesheets and scripts are replaced by the copies in
  `gates/data_docs_assets/` (see its VENDORED.md), placed in `static/vendor/`.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from functools import partial
from pathlib import Path

from churnhouse.config import churn_home

SITE_NAME = "churnhouse"
ASSETS = Path(__file__).with_name("data_docs_assets")

# CDN address in GE 1.24's page templates -> file under static/vendor/ (None: drop the tag).
CDN_FILES = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": "bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": "bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": "bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome/css/all.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "bootstrap-datepicker.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": None,
}
# GE's logo, fetched from its web assets bucket; the site ships the same image.
_GE_LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/[\w-]+\.png"
    r"(?:\?d=[^\"']*)?"
)
_TAG = re.compile(r"<(?:link|script)\b[^>]*?(?:href|src)=\"(?P<url>https?://[^\"]+)\"[^>]*>")


def data_docs_dir() -> Path:
    """Where the Data Docs HTML lands (open index.html)."""
    return churn_home() / "data_docs"


def index_limit() -> int:
    """`CHURN_DATA_DOCS_INDEX_LIMIT` (default 2000): the newest validations the site index
    lists. GE reads every listed result to build the index, once per gate: unbounded, a
    night's gates would slow down as the nights pile up. Older pages stay on disk."""
    return max(1, int(os.environ.get("CHURN_DATA_DOCS_INDEX_LIMIT", "2000")))


def results_dir() -> Path:
    """Every validation result of every night, as GE's JSON (the site is built from them)."""
    return churn_home() / "gx" / "validation_results"


def gx_context():
    """An in-memory GE context whose validation results and Data Docs live on disk."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        # A progress bar per suite buries the one line per suite in task logs.
        progress_bars=ProgressBarsConfig(globally=False),
    )
    config.stores[config.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(results_dir()),
        },
    }
    config.data_docs_sites = {
        SITE_NAME: {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(data_docs_dir()),
            },
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "validation_results_limit": index_limit(),
            },
        }
    }
    data_docs_dir().mkdir(parents=True, exist_ok=True)
    return gx, gx.get_context(mode="ephemeral", project_config=config)


def make_offline(site: Path, since: float = 0.0) -> int:
    """Point the site's pages written at or after `since` (a time.time()) at the vendored
    assets instead of CDNs; returns how many pages changed."""
    vendor = site / "static" / "vendor"
    if not (vendor / "VENDORED.md").exists():
        shutil.copytree(ASSETS, vendor, dirs_exist_ok=True)
    changed = 0
    for page in site.rglob("*.html"):
        if page.stat().st_mtime < since:
            continue
        html = page.read_text(encoding="utf-8")
        prefix = os.path.relpath(vendor, page.parent)
        offline = _TAG.sub(partial(_local_tag, prefix=prefix), html)
        logo = os.path.relpath(site / "static" / "images" / "logo-long.png", page.parent)
        offline = _GE_LOGO.sub(logo, offline)
        if offline != html:
            page.write_text(offline, encoding="utf-8")
            changed += 1
    return changed


def _local_tag(tag: re.Match, *, prefix: str) -> str:
    url = tag["url"]
    if url not in CDN_FILES:
        return tag[0]
    local = CDN_FILES[url]
    if local is None:
        return ""
    # Subresource-integrity and CORS attributes belong to the CDN copy.
    text = re.sub(r'\s(?:integrity|crossorigin)="[^"]*"', "", tag[0])
    return text.replace(url, f"{prefix}/{local}")


def now() -> float:
    """A timestamp to pass to make_offline() for the pages a gate is about to write."""
    return time.time() - 1.0
