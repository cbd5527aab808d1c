"""HTTP transport for the Stripe-compatible billing API: paging, retries, back-off.

429 answers wait for their `Retry-After`; 5xx answers and connection errors
back off exponentially with jitter; both are retried up to `max_attempts`.
Any other 4xx is final at once (`BillingApiRejected`, a `PermanentError`, so
the task fails without Airflow retries). The API key lives only in the
session's Authorization header: it is redacted from every message and never
logged or shown by repr.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator

import requests

from churnhouse.errors import PermanentError
from churnhouse.sources.billing.export import RESOURCES

log = logging.getLogger("churnhouse.billing")


def stripe_version_setting() -> str:
    """`CHURN_STRIPE_VERSION`, default DEFAULT_STRIPE_VERSION."""
    import os

    return os.environ.get("CHURN_STRIPE_VERSION") or DEFAULT_STRIPE_VERSION


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A `Retry-After` header in seconds: a number of seconds, or an HTTP date from now."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment.timestamp() - (time.time() if now is None else now)


class BillingApiError(Exception):
    """The billing API did not give a page: `status` is the last HTTP status (None: no answer)."""

    def __init__(self, message: str, *, path: str, status: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.status = status


class BillingApiRejected(BillingApiError, PermanentError):
    """A final 4xx answer (bad key, bad parameter, unknown path): retrying cannot help."""


class BillingApiUnreachable(BillingApiError, PermanentError):
    """No answer at all from the API's address (wrong URL, nothing listening): retrying for
    minutes cannot help a night that has not reached the API once."""


# The Stripe API version asked for unless CHURN_STRIPE_VERSION says otherwise: the one
# that moved prices and subscriptions under `pricing` / `parent`, the newest shape the
# extractor is tested with (it reads the older shape too). A real account answers
# every request in the version the header names, whatever its default.
DEFAULT_STRIPE_VERSION = "2025-03-31.basil"
UNREACHABLE_ATTEMPTS = 3
CONNECT_TIMEOUT = 5


class BillingApiClient:
    """Lists Stripe objects page by page over one keep-alive session."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        page_size: int = 100,
        max_attempts: int = 8,
        backoff_base: float = 0.5,
        max_backoff: float = 30,
        timeout: float = 30,
        sleep: Callable[[float], None] = time.sleep,
        stripe_version: str | None = None,
    ) -> None:
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be 1-100, not {page_size}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.page_size = page_size
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._sleep = sleep
        self._jitter = random.Random()
        self._api_key = api_key
        self._answered = False  # any HTTP answer yet: after one, a lost connection is a blip
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {api_key}"
        self.stripe_version = stripe_version or stripe_version_setting()
        self._session.headers["Stripe-Version"] = self.stripe_version

    def __repr__(self) -> str:
        return f"BillingApiClient({self.base_url!r}, page_size={self.page_size})"

    def __enter__(self) -> BillingApiClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def iter_objects(
        self,
        resource: str,
        *,
        created_gte: int | None = None,
        created_lt: int | None = None,
        extra_params: dict | None = None,
    ) -> Iterator[dict]:
        """Every object of `resource` (newest first), following `has_more` to the last page.

        Subscriptions are asked for with `status=all` unless `extra_params` sets a status.
        """
        if resource not in RESOURCES:
            raise ValueError(f"unknown billing resource {resource!r}; expected one of {RESOURCES}")
        path = f"/v1/{resource}"
        params: dict = {"limit": self.page_size}
        if resource == "subscriptions":
            params["status"] = "all"
        if created_gte is not None:
            params["created[gte]"] = int(created_gte)
        if created_lt is not None:
            params["created[lt]"] = int(created_lt)
        params.update(extra_params or {})
        yield from self.iter_list(path, params)

    def iter_invoice_lines(self, invoice_id: str) -> Iterator[dict]:
        """Every line of one invoice (`GET /v1/invoices/{id}/lines`), for a cut-short list."""
        yield from self.iter_list(f"/v1/invoices/{invoice_id}/lines", {"limit": self.page_size})

    def iter_list(self, path: str, params: dict) -> Iterator[dict]:
        """Every object of the list at `path`, following `has_more` to the last page."""
        params = dict(params)
        while True:
            page = self._get_page(path, params)
            yield from page["data"]
            if not page["has_more"]:
                return
            if not page["data"]:
                raise BillingApiError(
                    f"GET {path}: the page says has_more but holds no objects", path=path
                )
            params["starting_after"] = page["data"][-1]["id"]

    def _get_page(self, path: str, params: dict) -> dict:
        """One list page, retrying 429, 5xx and connection errors with back-off."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._session.get(
                    self.base_url + path, params=params, timeout=(CONNECT_TIMEOUT, self.timeout)
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                status, problem = None, f"{type(error).__name__}: {self._redact(str(error))}"
                wait = self._backoff(attempt)
                if not self._answered and attempt >= UNREACHABLE_ATTEMPTS:
                    raise BillingApiUnreachable(
                        f"cannot reach the billing API at {self.base_url} "
                        f"(CHURN_BILLING_URL / connection churn_billing) after {attempt} "
                        f"attempts: {problem.splitlines()[0][:200]}",
                        path=path,
                    ) from error
            else:
                self._answered = True
                if response.status_code == 200:
                    return self._list_page(path, response)
                status, problem = response.status_code, self._server_message(response)
                if status == 429:
                    wait = self._retry_after(response, attempt)
                elif status >= 500:
                    wait = self._backoff(attempt)
                else:
                    raise BillingApiRejected(
                        f"GET {path}: HTTP {status}: {problem}", path=path, status=status
                    )
            if attempt == self.max_attempts:
                break
            log.warning(
                "GET %s: %s, retrying in %.1f s (attempt %d of %d)",
                path,
                f"HTTP {status}" if status else problem,
                wait,
                attempt,
                self.max_attempts,
            )
            self._sleep(wait)
        last = f"HTTP {status}: {problem}" if status else problem
        raise BillingApiError(
            f"GET {path}: gave up after {self.max_attempts} attempts; last answer {last}",
            path=path,
            status=status,
        )

    def _list_page(self, path: str, response: requests.Response) -> dict:
        try:
            page = response.json()
        except ValueError:
            page = None
        if (
            not isinstance(page, dict)
            or not isinstance(page.get("data"), list)
            or not isinstance(page.get("has_more"), bool)
        ):
            raise BillingApiRejected(
                f"GET {path}: HTTP 200 but the body is not a list page "
                '({"object": "list", "data": [...], "has_more": ...})',
                path=path,
                status=200,
            )
        return page

    def _backoff(self, attempt: int) -> float:
        """Exponential back-off with jitter: half to all of base * 2^(attempt-1), capped."""
        ceiling = min(self.max_backoff, self.backoff_base * 2 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * self._jitter.random())

    def _retry_after(self, response: requests.Response, attempt: int) -> float:
        """`Retry-After` as seconds or as an HTTP date; our own back-off when absent."""
        seconds = retry_after_seconds(response.headers.get("Retry-After"))
        if seconds is None:
            return self._backoff(attempt)
        return min(max(seconds, 0.0), self.max_backoff)

    def _server_message(self, response: requests.Response) -> str:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200].strip() or response.reason or "no message"
        return self._redact(str(message))

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]") if self._api_key else text
