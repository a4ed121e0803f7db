"""One JSON-over-HTTP client for every teacher behind an API (chat, embeddings, rerank): credentials only where they
belong, no redirect followed, retries with backoff, and a rate limit.

Credentials: ``api_key`` (or ``user:password@`` in the URL) go to this endpoint alone; ``key_env`` (e.g.
``OPENAI_API_KEY``) is read only for the hosts named in ``key_hosts`` (None: this endpoint's host, for a variable the
user named for it). A key is never sent over plain http to a host
other than this machine unless ``allow_insecure`` says so. A redirect is refused, never followed: urllib would send
the key on to the new host and turn a POST into a GET without its body, whose answer would pass for the answer to it.
The URL is kept and shown without its credentials.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from ..errors import InputError

RETRY_CODES = {408, 425, 429, 500, 502, 503, 504}


def public(text: str) -> str:
    """``text`` with the credentials of any URL in it removed (``https://user:secret@host`` -> ``https://host``)."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1", text)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx code


OPENER = urllib.request.build_opener(_NoRedirect)


def is_local(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


class RateLimit:
    """At most ``per_second`` requests a second across threads (None: no limit)."""

    def __init__(self, per_second: float | None = None):
        self.interval = 1.0 / per_second if per_second else 0.0
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
        time.sleep(max(0.0, start - now))


class JSONEndpoint:
    """POST JSON to paths under ``base_url``; see the module doc for credentials and redirects. A request that fails
    with a connection error or a 408/429/5xx answer is retried ``retries`` times, waiting ``backoff`` * 2^i seconds
    (or the server's ``Retry-After``)."""

    def __init__(self, base_url: str, api_key: str | None = None, key_env: str | None = None, key_hosts=None,
                 timeout: float = 300, allow_insecure: bool = False, retries: int = 4, backoff: float = 1.0,
                 rate_limit: float | None = None, what: str = "endpoint"):
        import os

        url = urllib.parse.urlsplit(str(base_url).rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise InputError(f"{what} must be an http(s) URL, not {public(str(base_url))!r}")
        self.base_url, self.what = public(str(base_url).rstrip("/")), what
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.rate = RateLimit(rate_limit)
        self.headers = {"Content-Type": "application/json"}
        if url.username:
            token = base64.b64encode(f"{urllib.parse.unquote(url.username)}:{urllib.parse.unquote(url.password or '')}"
                                     .encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        hosts = (url.hostname,) if key_hosts is None else key_hosts
        key = api_key or (os.environ.get(key_env) if key_env and url.hostname in hosts else None)
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        if "Authorization" in self.headers and url.scheme == "http" and not is_local(url.hostname) and not allow_insecure:
            raise InputError(f"will not send credentials over plain http to {url.hostname}: use https, or "
                             "allow_insecure=true")

    def url(self, path: str) -> str:
        """``path`` under the base URL; a base ending in ``/v1`` takes paths without their ``/v1``."""
        if self.base_url.endswith("/v1") and path.startswith("/v1/"):
            path = path[3:]
        return self.base_url + path

    def post(self, path: str, body: dict):
        """The JSON answer to one request (retried as the class doc says); InputError naming the URL otherwise."""
        url, data = self.url(path), json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            self.rate.wait()
            req = urllib.request.Request(url, data, self.headers)  # credentials in the header, never the URL
            try:
                with OPENER.open(req, timeout=self.timeout) as resp:
                    return json.load(resp)
            except urllib.error.HTTPError as e:
                if 300 <= e.code < 400:
                    raise InputError(f"{self.what} {url} redirects ({e.code}) to "
                                     f"{public(e.headers.get('Location') or '?')}: give the URL it moved to (redirects "
                                     "are not followed)") from None
                if e.code not in RETRY_CODES or attempt == self.retries:
                    raise InputError(f"{self.what} {url} failed: HTTP {e.code} {public(_detail(e))}") from None
                wait = _retry_after(e) or self.backoff * 2 ** attempt
            except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
                if attempt == self.retries:
                    raise InputError(f"{self.what} {url} failed: {public(str(e))}") from None
                wait = self.backoff * 2 ** attempt
            except (ValueError, RecursionError) as e:
                raise InputError(f"{self.what} {url} failed: the answer is not JSON ({str(e)[:120]})") from None
            time.sleep(wait)
        raise AssertionError("unreachable")


def _detail(e: urllib.error.HTTPError) -> str:
    try:
        return e.read(300).decode("utf-8", "replace").replace("\n", " ")
    except Exception:  # noqa: BLE001 (the body is only a hint)
        return e.reason or ""


def _retry_after(e: urllib.error.HTTPError) -> float | None:
    try:
        return min(60.0, max(0.0, float(e.headers.get("Retry-After"))))
    except (TypeError, ValueError):
        return None
