# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""NomadClient: the one HTTP client every plugin of the collection talks to Nomad through.

It owns the requests.Session (pooled, sized for parallel bulk work), TLS and mutual TLS, the token,
retries with backoff (reads only, except for connection attempts that never reached the server),
the mapping of HTTP statuses to typed exceptions with one-line messages, pagination and blocking queries.
Every error it raises carries the address it asked (`NomadError.address`); the error classes live in common/errors.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
import traceback
import warnings

from urllib.parse import urlencode, urlsplit

from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import (
    NomadBadRequestError,
    NomadConnectionError,
    NomadError,
    NomadNotFoundError,
    NomadNotNomadError,
    NomadOptionError,
    NomadPaginationError,
    NomadPermissionDeniedError,
    NomadServerError,
    NomadTimeoutError,
    NomadTLSError,
    NomadUnsafeIDError,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.common.text import one_line

try:
    import requests
    from requests.adapters import HTTPAdapter
    from requests.exceptions import (
        ChunkedEncodingError,
        ConnectTimeout,
        ContentDecodingError,
        ReadTimeout,
        RequestException,
        SSLError,
    )
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.utils import get_environ_proxies
    from urllib3.exceptions import HTTPError as Urllib3Error
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
    from urllib3.util.retry import Retry

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised by the sanity import test
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
    HTTPAdapter = object
    Retry = object

USER_AGENT = "nomadops.nomad (python-requests)"
RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
RETRYABLE_METHODS = frozenset(("GET", "HEAD"))
BACKOFF_FACTOR = 0.25
MAX_RETRY_AFTER = 30
MAX_MESSAGE_BODY = 400
ID_PREFIXES = tuple(f"{value:02x}" for value in range(256))
_REDACTED = "********"
# Pagination bounds against a broken or hostile endpoint that sends new X-Nomad-NextTokens forever: a listing
# stops after this many pages in a row that bring no new item, and after MAX_PAGES pages (with a `limit`, twice the
# limit + the stalled allowance: every useful page brings at least one new item).
MAX_STALLED_PAGES = 1000
MAX_PAGES = 1_000_000
_UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID_PATTERN = re.compile(rf"^{_UUID_TEXT}$")
# Request paths whose segment after the object kind is an ID: allocations, nodes, evaluations, deployments and
# the client fs/allocation endpoints.  What follows the kind must be one UUID and at most one word after it.
_PATH_WITH_ID = re.compile(
    r"^/v1/(?P<kind>client/allocation|client/fs/[a-z]+|allocation|evaluation|node"
    r"|deployment(?:/(?:promote|fail|pause|allocations|allocation-health|unblock))?)/(?P<rest>.*)$"
)
_ID_AND_ACTION = re.compile(rf"^{_UUID_TEXT}(?:/[a-z-]+)?$")
_KIND_NAMES = {"node": "node", "evaluation": "evaluation"}
# At most this much of a streamed body in memory at once: with chunk_size=None requests reads a body that has a
# Content-Length in ONE piece (a 2 GiB file would be 2 GiB of memory); chunked answers still arrive as sent.
STREAM_CHUNK_BYTES = 1024 * 1024


_ERROR_BY_STATUS = {400: NomadBadRequestError, 403: NomadPermissionDeniedError, 404: NomadNotFoundError}


def error_class_for_status(status):
    if status in _ERROR_BY_STATUS:
        return _ERROR_BY_STATUS[status]
    if status >= 500:
        return NomadServerError
    return NomadError


# --------------------------------------------------------------------------------------------- responses
class NomadResponse:
    """One answer from Nomad: status, decoded JSON (or None), X-Nomad-Index, X-Nomad-NextToken, headers."""

    __slots__ = ("status", "data", "index", "next_token", "headers")

    def __init__(self, status, data, headers):
        self.status = status
        self.data = data
        self.headers = headers
        self.index = _header_int(headers, "X-Nomad-Index")
        self.next_token = headers.get("X-Nomad-NextToken") or None

    def __repr__(self):
        return f"NomadResponse(status={self.status!r}, index={self.index!r}, next_token={self.next_token!r})"


def _header_int(headers, name):
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------- TLS
def build_ssl_context(options):
    """One SSLContext from ca_cert / ca_path / client_cert / client_key / validate_certs.

    Built by us (not by requests) so that a REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE in the environment can
    never replace the user's CA, and so that ca_path works with a plain directory of PEM files (OpenSSL's
    capath would need c_rehash'ed names).
    """
    if not options.validate_certs:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif options.ca_cert or options.ca_path:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificate and host name
        if options.ca_cert:
            _load_ca_file(context, options.ca_cert, "ca_cert")
        else:
            _load_ca_directory(context, options.ca_path)
    else:
        context = ssl.create_default_context()  # the system trust store
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if options.client_cert:
        try:
            context.load_cert_chain(options.client_cert, options.client_key)
        except (ssl.SSLError, OSError) as exc:
            key = f"client_key {options.client_key!r}" if options.client_key else "its key in the same file"
            raise NomadOptionError(
                f"cannot load client_cert {options.client_cert!r} with {key}: {_ssl_reason(exc)} (both must be PEM, and the key must match the certificate)"
            )
    return context


def _load_ca_file(context, path, option):
    try:
        context.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError) as exc:
        raise NomadOptionError(f"cannot load {option} {path!r} as PEM CA certificates: {_ssl_reason(exc)}")


def _load_ca_directory(context, directory):
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise NomadOptionError(f"cannot read ca_path {directory!r}: {exc.strerror or exc}")
    loaded = 0
    for name in names:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        _load_ca_file(context, path, "ca_path file")
        loaded += 1
    if not loaded:
        raise NomadOptionError(f"ca_path {directory!r} contains no CA certificate files")


_OPENSSL_DECORATION = re.compile(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$")


def _ssl_reason(exc):
    """The readable part of an ssl/OS error: `certificate verify failed: ...` without OpenSSL's codes."""
    verify_message = getattr(exc, "verify_message", None)
    if verify_message:
        return verify_message
    text = getattr(exc, "strerror", None) or str(exc)
    return _OPENSSL_DECORATION.sub("", str(text)) or type(exc).__name__


class NomadHTTPAdapter(HTTPAdapter):
    """HTTPAdapter whose TLS settings come only from our SSLContext (and tls_server_name), never from
    requests' `verify`/`cert` handling or the environment."""

    def __init__(self, ssl_context, server_hostname=None, **kwargs):
        self._tls_pool_kwargs = {"ssl_context": ssl_context}
        self._tls_pool_kwargs["cert_reqs"] = "CERT_NONE" if ssl_context.verify_mode == ssl.CERT_NONE else "CERT_REQUIRED"
        if server_hostname:
            self._tls_pool_kwargs["server_hostname"] = server_hostname
        if ssl_context.verify_mode == ssl.CERT_NONE:
            self._tls_pool_kwargs["assert_hostname"] = False
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        pool_kwargs.update(self._tls_pool_kwargs)
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        # requests >= 2.32.2: replace whatever it derived from `verify`/`cert` with our settings.
        host_params, _ignored = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs = dict(self._tls_pool_kwargs) if host_params.get("scheme") == "https" else {}
        return host_params, pool_kwargs

    def cert_verify(self, conn, url, verify, cert):
        # requests would set ca_certs (its bundle or REQUESTS_CA_BUNDLE) on the pool here; the context decides.
        return None


class CappedRetry(Retry):
    """urllib3's Retry, honouring Retry-After up to MAX_RETRY_AFTER seconds: a proxy answering
    `Retry-After: 3600` must not stall a task for an hour per attempt."""

    def parse_retry_after(self, retry_after):
        return min(super().parse_retry_after(retry_after), MAX_RETRY_AFTER)


def _retry_policy(retries):
    """Reads: retried on connect/read errors and 429/500/502/503/504 (Retry-After honoured).
    Writes: only connection attempts that failed before anything was sent are retried."""
    settings = dict(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        redirect=0,
        backoff_factor=BACKOFF_FACTOR,
        status_forcelist=RETRY_STATUSES,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    try:
        return CappedRetry(allowed_methods=RETRYABLE_METHODS, **settings)
    except TypeError:  # urllib3 < 1.26
        return CappedRetry(method_whitelist=RETRYABLE_METHODS, **settings)


# --------------------------------------------------------------------------------------------- client
class NomadClient:
    """Talks to one Nomad agent with one pooled session; safe to share between threads for requests."""

    def __init__(self, options, pool_size=10, warn=None):
        if not HAS_REQUESTS:
            raise NomadOptionError("the Python library 'requests' is required on the host that runs this plugin")
        self.options = options
        self.warnings = []
        self._warn = warn
        self._ssl_context = build_ssl_context(options) if options.uses_tls else None
        if options.uses_tls and not options.validate_certs:
            self._silence_insecure_warning()
        self.session = self._build_session(max(int(pool_size), 1))

    # -- setup
    def _build_session(self, pool_size):
        session = requests.Session()
        # trust_env would let REQUESTS_CA_BUNDLE / .netrc override our settings; proxies are taken explicitly.
        session.trust_env = False
        session.proxies = get_environ_proxies(self.options.address) or {}
        session.headers["User-Agent"] = USER_AGENT
        if self.options.token:
            session.headers["X-Nomad-Token"] = self.options.token
        if self.options.http_auth:
            session.auth = self.options.http_auth
        adapter_kwargs = dict(pool_connections=1, pool_maxsize=pool_size, max_retries=_retry_policy(self.options.retries))
        if self._ssl_context is not None:
            session.mount("https://", NomadHTTPAdapter(self._ssl_context, self.options.tls_server_name, **adapter_kwargs))
        session.mount("http://", HTTPAdapter(**adapter_kwargs))
        return session

    def _silence_insecure_warning(self):
        """The user chose validate_certs=false; urllib3's per-request warning would only repeat that choice."""
        host = urlsplit(self.options.address).hostname or ""
        warnings.filterwarnings("ignore", message=f"Unverified HTTPS request is being made to host '{re.escape(host)}'")

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def warn(self, message):
        self.warnings.append(message)
        if self._warn is not None:
            self._warn(message)

    # -- helpers
    def url(self, path):
        return self.options.address + path

    def query(self, params=None):
        """Query parameters sent with a request: namespace and region from the options unless overridden
        (a value of None removes them), booleans as Nomad expects them."""
        query = {"namespace": self.options.namespace}
        if self.options.region:
            query["region"] = self.options.region
        query.update(params or {})
        encoded = {}
        for key, value in query.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            encoded[key] = value
        return encoded

    def scrub(self, text):
        """Remove every secret of the options from a text that may reach the user."""
        for secret in self.options.secrets:
            text = text.replace(secret, _REDACTED)
        return text

    # -- requests
    def read(self, path, params=None, timeout=None):
        """GET path; retried on transient failures; raises a NomadError subclass on failure."""
        return self._request("GET", path, params, None, timeout)

    def stream(self, path, params=None, timeout=None):
        """GET path and yield the body's raw chunks as they arrive (Nomad's /v1/client/fs streams); same
        TLS, token and error mapping as read(), not retried once the answer has started."""
        try:
            yield from self._stream_chunks(path, params, timeout)
        except NomadError as error:
            error.address = error.address or self.options.address
            raise

    def _stream_chunks(self, path, params, timeout):
        require_uuid_ids(path)
        query = self.query(params)
        try:
            response = self.session.get(
                self.url(path), params=query, stream=True, allow_redirects=False, verify=self.options.validate_certs,
                timeout=(self.options.timeout, timeout or self.options.timeout),
            )
        except (RequestsConnectionError, ReadTimeout, ConnectTimeout) as exc:
            raise self._connection_error("GET", path, exc) from None
        with response:
            if response.status_code >= 400:
                raise self._status_error("GET", path, response.status_code, response.content, query)
            try:
                for chunk in response.iter_content(chunk_size=STREAM_CHUNK_BYTES):
                    if chunk:
                        yield chunk
            except (RequestsConnectionError, ReadTimeout, ChunkedEncodingError, ContentDecodingError) as exc:
                raise self._connection_error("GET", path, exc) from None

    def write(self, method, path, params=None, body=None, timeout=None):
        """POST/PUT path; never re-sent once it may have reached the server.  `timeout` (seconds) replaces
        the read timeout for calls that Nomad answers only when done (restart)."""
        method = method.upper()
        if method not in ("POST", "PUT", "DELETE"):
            raise ValueError(f"write() is for POST/PUT/DELETE, not {method}")
        return self._request(method, path, params, body, timeout)

    def _request(self, method, path, params, body, timeout):
        try:
            require_uuid_ids(path, method)
            return self._request_with_retries(method, path, self.query(params), body, timeout)
        except NomadError as error:
            error.address = error.address or self.options.address
            raise

    def _request_with_retries(self, method, path, query, body, timeout):
        attempts = self.options.retries + 1 if method in RETRYABLE_METHODS else 1
        for attempt in range(attempts):
            try:
                return self._send_once(method, path, query, body, timeout)
            except (ChunkedEncodingError, ContentDecodingError) as exc:
                # The answer broke off after the headers: urllib3's Retry does not cover body reads.
                if attempt + 1 < attempts:
                    continue
                raise self._connection_error(method, path, exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(self, method, path, query, body, timeout):
        kwargs = dict(
            params=query,
            timeout=(self.options.timeout, timeout or self.options.timeout),  # (connect, read)
            verify=self.options.validate_certs,
            allow_redirects=False,
        )
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            response = self.session.request(method, self.url(path), **kwargs)
            content = response.content
        except (ChunkedEncodingError, ContentDecodingError):
            raise
        except (RequestsConnectionError, ReadTimeout, ConnectTimeout) as exc:
            raise self._connection_error(method, path, exc) from None
        except (RequestException, Urllib3Error) as exc:  # invalid URL or header and the like: a setting, not the network
            reason = self.scrub(_one_line(str(exc)) or _last_words(exc))
            raise NomadError(
                f"{method} {path} failed: {reason} (check address and the other connection options)", method=method, path=path,
            ) from None
        content_type = response.headers.get("Content-Type", "")
        if not answers_like_nomad(response.status_code, content_type, content):
            raise self._not_nomad_error(method, path, response.status_code, content_type)
        if response.status_code >= 400:
            raise self._status_error(method, path, response.status_code, content, query)
        return NomadResponse(response.status_code, self._decode(method, path, response.status_code, content_type, content),
                             response.headers)

    def _decode(self, method, path, status, content_type, content):
        if not content or not content.strip():
            return None
        try:
            return json.loads(content.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise self._not_nomad_error(method, path, status, content_type) from None

    def _not_nomad_error(self, method, path, status, content_type):
        """One line with what was asked and what came back; the body (a proxy's HTML page) is never quoted."""
        return NomadNotNomadError(
            f"{method} {self.url(path)} answered {status} with {content_type or 'no content type'}, not like Nomad's API "
            "(check that address points at a Nomad agent, including the path prefix of a proxy in front of it)",
            method=method, path=path, status=status,
        )

    # -- error messages
    def _status_error(self, method, path, status, content, query):
        text = self.scrub(_one_line(content.decode("utf-8", "replace")))
        hint = status_hint(status, text, method, path, query, has_token=bool(self.options.token))
        message = f"{method} {path} failed: {status} {text or _reason_phrase(status)}"
        if status == 404:
            message += f" at {self.options.address}"
        if hint:
            message += f" ({hint})"
        return error_class_for_status(status)(message, method=method, path=path, status=status, nomad_message=text)

    def _connection_error(self, method, path, exc):
        address = self.options.address
        chain = _exception_chain(exc)
        cert_error = _first(chain, ssl.SSLCertVerificationError)
        if cert_error is not None or "CERTIFICATE_VERIFY_FAILED" in str(exc) or "doesn't match" in str(exc):
            reason = _ssl_reason(cert_error) if cert_error is not None else _last_words(exc)
            return NomadTLSError(
                f"TLS verification failed for {address}: {reason} (set ca_cert or ca_path to the CA that signed Nomad's certificate, "
                "tls_server_name if the certificate names another host, or validate_certs=false)",
                method=method, path=path,
            )
        ssl_error = _first(chain, ssl.SSLError)
        if ssl_error is not None or isinstance(exc, SSLError):
            reason = _ssl_reason(ssl_error) if ssl_error is not None else _last_words(exc)
            return NomadTLSError(
                f"TLS handshake with {address} failed: {reason} (check that address uses the right scheme, and client_cert/client_key "
                "if Nomad requires client certificates)",
                method=method, path=path,
            )
        # After retries, requests reports a timeout as ConnectionError(MaxRetryError(reason=...TimeoutError)).
        if isinstance(exc, ConnectTimeout) or _is_connect_timeout(chain):
            return NomadTimeoutError(
                f"cannot reach Nomad at {address}: no connection within {self.options.timeout:g} s (check address / NOMAD_ADDR)",
                method=method, path=path,
            )
        if isinstance(exc, ReadTimeout) or _first(chain, ReadTimeoutError) is not None:
            applied = "" if method in RETRYABLE_METHODS else "; the request may or may not have been applied"
            return NomadTimeoutError(
                f"{method} {path} failed: Nomad at {address} did not answer within the timeout of {self.options.timeout:g} s (raise timeout){applied}",
                method=method, path=path,
            )
        if _first(chain, ConnectionRefusedError) is not None:
            return NomadConnectionError(
                f"cannot reach Nomad at {address}: connection refused (check address / NOMAD_ADDR)",
                method=method, path=path,
            )
        if _first(chain, socket.gaierror) is not None:
            return NomadConnectionError(
                f"cannot reach Nomad at {address}: cannot resolve host name {urlsplit(address).hostname!r} (check address / NOMAD_ADDR)",
                method=method, path=path,
            )
        applied = "" if method in RETRYABLE_METHODS else "; the request may or may not have been applied"
        reason = self.scrub(_last_words(exc))
        return NomadConnectionError(
            f"{method} {path} failed: the connection to Nomad at {address} broke before a complete answer ({reason})"
            f"{applied}{self._broken_connection_hint(exc)}",
            method=method, path=path,
        )

    def _broken_connection_hint(self, exc):
        if isinstance(exc, (ChunkedEncodingError, ContentDecodingError)):
            return ""  # an answer had started, so scheme and certificates were fine
        if not self.options.uses_tls:
            return "; check whether Nomad expects https:// in address"
        if not self.options.client_cert:
            return "; if Nomad requires client certificates, set client_cert and client_key"
        return ""

    # -- pagination and blocking queries
    def paginate(self, path, params=None, per_page=None, limit=None, on_response=None):
        """Every item of a paginated list, following X-Nomad-NextToken, each item exactly once.

        Nomad 1.5/1.6 compare `<CreateIndex>.<ID>` tokens as strings (hashicorp/nomad#25435), so a page can
        start too early (duplicates, removed here by ID) or a token can come back again (a loop).  On a
        repeated token the rest is listed by two-hex-digit ID prefixes, whose tokens are plain IDs that
        compare correctly, and a warning is recorded.  A listing whose new tokens never end (a broken or
        hostile endpoint) fails after MAX_STALLED_PAGES pages in a row without a new item, or past its page
        budget.  `on_response(NomadResponse)` sees every page's response (for X-Nomad-Index).
        """
        collected = _UniqueItems(limit)
        base = dict(params or {})
        base.pop("next_token", None)
        if collected.full:
            return
        try:
            for page in self._pages(path, base, per_page, on_response, _PageBudget(collected)):
                yield from collected.new(page)
                if collected.full:
                    return
        except _RepeatedToken as repeated:
            if base.get("prefix"):
                raise NomadPaginationError(
                    f"GET {path} failed: Nomad returned the pagination token {repeated.token!r} twice",
                    method="GET", path=path,
                )
            self.warn(
                f"Nomad returned the pagination token {repeated.token!r} a second time (string-compared tokens, hashicorp/nomad#25435); "
                "listed the remaining items by ID prefix instead"
            )
            yield from self._paginate_by_id_prefix(path, base, per_page, collected, on_response)

    def _paginate_by_id_prefix(self, path, params, per_page, collected, on_response):
        for prefix in ID_PREFIXES:
            try:
                for page in self._pages(path, dict(params, prefix=prefix), per_page, on_response, _PageBudget(collected)):
                    yield from collected.new(page)
                    if collected.full:
                        return
            except _RepeatedToken as again:
                raise NomadPaginationError(
                    f"GET {path} failed: Nomad returned the pagination token {again.token!r} twice even when listing by prefix {prefix}",
                    method="GET", path=path,
                )

    def _pages(self, path, params, per_page, on_response, budget):
        """The item lists of successive pages; raises _RepeatedToken when a next token comes back, and
        NomadPaginationError when `budget` (a _PageBudget) says the listing does not end."""
        tokens_seen = set()
        token = None
        while True:
            page_params = dict(params)
            if per_page:
                page_params["per_page"] = per_page
            if token:
                page_params["next_token"] = token
            response = self.read(path, page_params)
            if on_response is not None:
                on_response(response)
            items = response.data if response.data is not None else []
            if not isinstance(items, list):
                raise NomadError(f"GET {path} failed: expected a JSON list from Nomad", method="GET", path=path)
            yield items
            if not response.next_token:
                return
            if response.next_token in tokens_seen:
                raise _RepeatedToken(response.next_token)
            budget.after_page(path)
            tokens_seen.add(response.next_token)
            token = response.next_token

    def blocking_read(self, path, params, index, wait):
        """GET with Nomad's blocking query: returns when the index moves past `index` or after `wait` seconds."""
        wait_seconds = float(wait)
        query = dict(params or {})
        query["index"] = int(index or 0)
        query["wait"] = go_duration(wait_seconds)
        # Nomad may add up to wait/16 of jitter before answering.
        timeout = self.options.timeout + wait_seconds + wait_seconds / 16.0 + 1.0
        return self.read(path, query, timeout=timeout)

    def websocket_target(self, path, params=None):
        """(url, headers, sslopt) for websocket-client, with the same TLS settings and token as HTTP requests."""
        require_uuid_ids(path)
        parts = urlsplit(self.options.address)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = f"{scheme}://{parts.netloc}{parts.path}{path}"
        query = self.query(params)
        if query:
            url += "?" + urlencode(sorted(query.items()))
        headers = []
        if self.options.token:
            headers.append(f"X-Nomad-Token: {self.options.token}")
        if self.options.http_auth:
            headers.append(f"Authorization: Basic {_basic_credentials(self.options.http_auth)}")
        sslopt = {}
        if self._ssl_context is not None:
            sslopt = {
                "context": self._ssl_context,
                "cert_reqs": self._ssl_context.verify_mode,
                "check_hostname": self._ssl_context.check_hostname,
            }
            if self.options.tls_server_name:
                sslopt["server_hostname"] = self.options.tls_server_name
        return url, headers, sslopt


class _RepeatedToken(Exception):
    def __init__(self, token):
        super().__init__(token)
        self.token = token


class _PageBudget:
    """How many more pages one listing may take: it fails after MAX_STALLED_PAGES pages in a row that brought no
    new item, and after 2 * `limit` + MAX_STALLED_PAGES pages (a correct server needs at most `limit` pages, each
    bringing a new item; the string-compared tokens of hashicorp/nomad#25435 may add pages of duplicates), or
    MAX_PAGES without a limit."""

    def __init__(self, collected):
        self.collected = collected
        self.pages = 0
        self.stalled = 0
        self.count_before = collected.count
        limit = collected.limit
        self.max_pages = MAX_PAGES if limit is None else min(MAX_PAGES, 2 * limit + MAX_STALLED_PAGES)

    def after_page(self, path):
        """Called once a page with a next token was consumed; raises NomadPaginationError past the budget."""
        self.pages += 1
        self.stalled = 0 if self.collected.count > self.count_before else self.stalled + 1
        self.count_before = self.collected.count
        if self.stalled >= MAX_STALLED_PAGES:
            raise NomadPaginationError(
                f"GET {path} failed: Nomad sent {self.stalled} pages in a row with new pagination tokens but no new item; "
                "stopped listing (check that address points at a working Nomad agent)",
                method="GET", path=path,
            )
        if self.pages >= self.max_pages:
            raise NomadPaginationError(
                f"GET {path} failed: the listing did not end after {self.pages} pages; stopped listing "
                "(check that address points at a working Nomad agent, or set limit)",
                method="GET", path=path,
            )


class _UniqueItems:
    """Lets each item (by its ID) through once, up to an optional limit."""

    def __init__(self, limit):
        self.limit = limit
        self.count = 0
        self.seen_ids = set()

    @property
    def full(self):
        return self.limit is not None and self.count >= self.limit

    def new(self, items):
        for item in items:
            if self.full:
                return
            item_id = item.get("ID") if isinstance(item, dict) else None
            if item_id is not None:
                if item_id in self.seen_ids:
                    continue
                self.seen_ids.add(item_id)
            self.count += 1
            yield item


# --------------------------------------------------------------------------------------------- IDs in paths
def require_uuid_ids(path, method="GET"):
    """Refuse a request path whose allocation, node, evaluation or deployment ID is not one UUID.

    The IDs in request paths come from Nomad's answers (a listing, a prefix resolution); an ID such as
    `5a22/../../evil` from a broken or hostile endpoint must never reach another URL, nor a controller path
    built from the same answer.  This is the one place every request path passes through."""
    match = _PATH_WITH_ID.match(path)
    if match is None or _ID_AND_ACTION.match(match.group("rest")):
        return
    kind = match.group("kind").rsplit("/", 1)[-1]
    what = _KIND_NAMES.get(kind, "deployment" if kind.startswith("deployment") else "allocation")
    given = one_line(match.group("rest"), max_length=80)
    raise NomadUnsafeIDError(
        f"refusing to use the {what} ID {given!r} from Nomad's answer: it is not a UUID "
        "(check that address points at a Nomad agent, not a broken or hostile endpoint)",
        method=method, path=path,
    )


def is_uuid(text):
    return isinstance(text, str) and bool(UUID_PATTERN.match(text))


# --------------------------------------------------------------------------------------------- small helpers
def go_duration(seconds):
    """A Go duration string for Nomad's `wait` parameter (`30s`, `1500ms`)."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{int(round(float(seconds) * 1000))}ms"


def _basic_credentials(auth):
    return base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")


def _one_line(text):
    return one_line(text, max_length=MAX_MESSAGE_BODY)


JSON_CONTENT_TYPE = "application/json"


def answers_like_nomad(status, content_type, content):
    """False for answers Nomad's HTTP API never gives: redirects, HTML pages, JSON-less successes with a body.

    Nomad sends `application/json` with every success that has a body and plain text with errors.
    """
    if 300 <= status < 400:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in ("text/html", "application/xhtml+xml"):
        return False
    if media_type == "" and content.lstrip()[:1] == b"<":
        return False
    return not (status < 300 and content.strip() and media_type not in (JSON_CONTENT_TYPE, ""))


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _reason_phrase(status):
    return _REASONS.get(status, "error")


def required_capability(method, path):
    """The ACL capability Nomad checks for a request."""
    if path.endswith("/exec"):
        return "alloc-exec"
    if path == "/v1/jobs/parse":
        return "parse-job or submit-job"
    if path == "/v1/jobs" or path.startswith("/v1/job/"):
        return "read-job" if method == "GET" else "submit-job"
    if method != "GET" or path.endswith(("/stop", "/signal", "/restart")):
        return "alloc-lifecycle"
    return "read-job"


def status_hint(status, text, method, path, query, has_token):
    """A short 'what to check' for well-known failures; None when there is nothing useful to add."""
    namespace = (query or {}).get("namespace", "default")
    if status == 403:
        where = "any namespace" if namespace == "*" else f"namespace {json.dumps(namespace)}"
        if not has_token:
            return "no token was sent: set token or NOMAD_TOKEN"
        if path == "/v1/nodes" or path.startswith("/v1/node/"):  # a node policy, not a namespace capability
            return f"check that the token's policy has node {'read' if method == 'GET' else 'write'}"
        return f"check that the token has {required_capability(method, path)} in {where}"
    if status == 400 and text.startswith(("failed to create result paginator", "failed to read result page")):
        return "check the filter expression"
    if status == 404 and path.startswith("/v1/allocation/"):
        return "check the allocation ID"
    if status >= 500:
        if "No path to region" in text:
            return "check region / NOMAD_REGION"
        if "No cluster leader" in text:
            return "the Nomad servers have no leader; try again later"
        if text.startswith("Unknown allocation"):
            return "the allocation does not exist or the token may not read-job in its namespace"
    return None


def _exception_chain(exc):
    """exc and everything it wraps (requests/urllib3 nest the real cause in args, .reason or __context__)."""
    chain = []
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or any(current is seen for seen in chain):
            continue
        chain.append(current)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for attribute in ("reason", "__cause__", "__context__"):
            value = getattr(current, attribute, None)
            if isinstance(value, BaseException):
                pending.append(value)
    return chain


def _is_connect_timeout(chain):
    # urllib3 2.x derives NewConnectionError (refused, unresolvable) from ConnectTimeoutError.
    return any(isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError) for exc in chain)


def _first(chain, exception_type):
    for exc in chain:
        if isinstance(exc, exception_type):
            return exc
    return None


def _last_words(exc):
    """The innermost readable reason of a wrapped exception, on one line."""
    chain = _exception_chain(exc)
    for candidate in reversed(chain):
        text = str(candidate).strip()
        if text:
            text = text.split("):", 1)[-1].strip() if text.startswith("HTTPConnectionPool(") else text
            return _one_line(text)
    return type(exc).__name__
