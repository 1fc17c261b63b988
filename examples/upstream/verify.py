"""flowgate — verify a request the backend received from flowgate (Python 3.8+, standard
library only: ``hmac`` and ``hmac.compare_digest``).

flowgate signs the whole request it forwards with HMAC-SHA256 and sends
``X-Flowgate-Signature: t=<unix>,v2=<64 hex>`` (``t=…,v1=…,v2=…`` during a transition). The
signed string v2 is, joined with "\\n" (no newline at the end)::

    v2, t, request id, method, host, target, client address,
    Site, Session, Status, Context, Prefill

(README "Header signature"; the same as examples/upstream/verify.php). v1 (only with
``accept_v1``) is "v1", t, path, Site, Session, Status, Context, Prefill.

Usage (a WSGI / Django / Flask view)::

    import verify as flowgate
    # Once: the same list as flowgate's FLOWGATE_SIGNING_SECRET (comma-separated, newest
    # first). An empty list or a secret under 32 bytes raises ConfigError here.
    options = flowgate.Options(flowgate.secrets_from_env("FLOWGATE_SIGNING_SECRET"))
    try:
        trusted = flowgate.verify_wsgi(environ, options)
    except flowgate.VerifyError as e:
        log.warning("flowgate headers rejected: %s", e.reason)  # never log header values
        trusted = None                                          # treat as anonymous
    prefill = trusted.verified_prefill() if trusted else None   # None unless the host site signed
    if prefill and "visitor_email" in prefill: ...              # skip the email question

Rotation: list the new secret first and keep the old one until every flowgate instance signs
with it; a signature made with any listed secret is accepted.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time
from collections import OrderedDict

__all__ = ["ConfigError", "VerifyError", "MemoryReplayCache", "Options", "TrustedContext",
           "secrets_from_env", "verify", "verify_wsgi"]


class ConfigError(ValueError):
    """A secret list or option that must not be verified with; raised before any verification."""


class VerifyError(Exception):
    """Why a request was rejected; ``reason`` is a stable snake_case name, the same in every kit:
    missing_signature | malformed_signature | unsupported_version | expired | bad_signature |
    replayed | bad_header"""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


class MemoryReplayCache:
    """In-process replay cache: ids older than 2 × tolerance are forgotten, at most
    ``max_entries``. Several processes share one store by implementing ``seen`` on it."""

    def __init__(self, tolerance=300, max_entries=100000):
        self._window = 2 * tolerance
        self._max = max(1, max_entries)
        self._ids = OrderedDict()  # id -> t, in insertion order
        self._newest = 0

    def seen(self, request_id, t):
        """Remembers ``request_id``; True when it was already known."""
        self._newest = max(self._newest, t)
        while self._ids:
            oldest, at = next(iter(self._ids.items()))
            if at >= self._newest - self._window:
                break
            del self._ids[oldest]
        if request_id in self._ids:
            return True
        while len(self._ids) >= self._max:
            self._ids.popitem(last=False)
        self._ids[request_id] = t
        return False


class Options:
    """How to verify: secrets (checked here, once) and settings."""

    def __init__(self, secrets, tolerance=300, now=None, prefix="X-Flowgate-", accept_v1=False,
                 replay=None, request_id_header="X-Request-Id", client_ip_header="X-Real-IP"):
        """``secrets``: every secret currently accepted, newest first, each >= 32 bytes."""
        secrets = list(secrets or [])
        if not secrets:
            raise ConfigError("no verification secret given; use the list flowgate signs with "
                              "(FLOWGATE_SIGNING_SECRET, newest first)")
        self.secrets = []
        for i, secret in enumerate(secrets, 1):
            if isinstance(secret, str):
                secret = secret.encode("utf-8")
            if not isinstance(secret, bytes) or secret == b"":
                raise ConfigError("verification secret #%d is empty or not a string (an unset "
                                  "variable?)" % i)
            if len(secret) < 32:
                raise ConfigError("verification secret #%d is shorter than 32 bytes; flowgate "
                                  "refuses such secrets too" % i)
            self.secrets.append(secret)
        if replay is not None and not callable(getattr(replay, "seen", None)):
            raise ConfigError("replay must have a seen(request_id, t) method")
        self.tolerance = int(tolerance)
        self.now = None if now is None else int(now)
        self.prefix = prefix
        self.accept_v1 = bool(accept_v1)
        self.replay = replay
        self.request_id_header = request_id_header
        self.client_ip_header = client_ip_header


class TrustedContext:
    """What a verified request carries. Pre-fill only through ``verified_prefill()`` /
    ``browser_prefill()``. ``status``: accepted | verified | unverified | absent | discarded."""

    def __init__(self, site, session, status, discard_reason, context, request_id, client_ip,
                 signed_at, version, prefill):
        self.site = site
        self.session = session
        self.status = status
        self.discard_reason = discard_reason
        self.context = context  # an ordered dict: a browser's claims unless status is verified
        self.request_id = request_id
        self.client_ip = client_ip
        self.signed_at = signed_at
        self.version = version
        self._prefill = prefill

    def verified_prefill(self):
        """The pre-fill slots only when the host site signed the context (``accepted; verified``)."""
        return self._prefill if self.status == "verified" else None

    def browser_prefill(self, acknowledge_unsigned):
        """For sites documented as ``mode: off``: the browser-written pre-fill of a plain
        ``accepted`` status, when the caller says so. Never that of ``accepted; unverified``."""
        if acknowledge_unsigned is not True:
            return None
        return self._prefill if self.status in ("accepted", "verified") else None


def secrets_from_env(name="FLOWGATE_SIGNING_SECRET"):
    """A comma-separated secret list from the environment (blank entries skipped)."""
    return [s.strip() for s in os.environ.get(name, "").split(",") if s.strip()]


def verify_wsgi(environ, options):
    """Verifies the request of a WSGI ``environ`` (PEP 3333: headers as HTTP_*)."""
    headers = [(k[5:].replace("_", "-"), v) for k, v in environ.items() if k.startswith("HTTP_")]
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        # PATH_INFO is already percent-decoded: prefer a server that keeps the raw target.
        query = environ.get("QUERY_STRING", "")
        target = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "/")
        target += "?" + query if query else ""
    return verify(environ.get("REQUEST_METHOD", "GET"), target, headers, options)


_SIG_KEY = re.compile(r"v[0-9]+\Z")
_DIGITS = re.compile(r"[0-9]{1,18}\Z")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_STATUSES = {"accepted": "accepted", "accepted; verified": "verified",
             "accepted; unverified": "unverified", "absent": "absent", "": "absent"}


def verify(method, target, headers, options):
    """Verifies a request and decodes its trusted headers.

    ``target``: '/path?query' exactly as received; ``headers``: (name, value) pairs or a dict
    name -> value (Host included; any case). Raises VerifyError."""
    lower = {}
    for name, value in (headers.items() if hasattr(headers, "items") else headers):
        lower.setdefault(name.lower(), []).append(value)

    def get(name):
        values = lower.get(name.lower(), [])
        if len(values) > 1:
            raise VerifyError("bad_header", "header %s occurs more than once" % name)
        return values[0] if values else None

    p = options.prefix
    signature = get(p + "Signature")
    values = [get(p + n) for n in ("Site", "Session", "Status", "Context", "Prefill")]
    request_id = get(options.request_id_header)
    client_ip = get(options.client_ip_header)
    host = get("Host")
    if signature is None:
        raise VerifyError("missing_signature", "signature header missing")

    # t=<digits>,v1=<hex>,v2=<hex>: t once, each version at most once, unknown keys ignored.
    t, macs, other = None, {}, False
    for field in signature.split(","):
        name, eq, value = field.strip().partition("=")
        if not eq:
            continue
        if name == "t":
            if t is not None or not _DIGITS.match(value):
                raise VerifyError("malformed_signature", "signature timestamp malformed")
            t = int(value)
        elif name in ("v1", "v2"):
            if name in macs or not _HEX64.match(value):
                raise VerifyError("malformed_signature", "signature %s malformed" % name)
            macs[name] = value.lower()
        elif _SIG_KEY.match(name):
            other = True
    if t is None or (not macs and not other):
        raise VerifyError("malformed_signature", "signature needs t= and a version")
    if "v2" in macs:
        version = "v2"
    elif "v1" in macs and options.accept_v1:
        version = "v1"
    else:
        raise VerifyError("unsupported_version", "no signature version this verifier checks")

    path, q, query = target.partition("?")
    if q and not query:
        target = path  # an empty query signs as none
    if version == "v2":
        parts = [request_id, method, host, target, client_ip] + values
    else:
        parts = [path] + values
    signed = "\n".join([version, str(t)] + [x or "" for x in parts]).encode("utf-8")
    ok = False
    for secret in options.secrets:
        # compare_digest is constant-time; every secret is tried.
        mac = hmac.new(secret, signed, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(mac, macs[version]) or ok
    if not ok:
        raise VerifyError("bad_signature", "signature does not match the request")

    now = options.now if options.now is not None else int(time.time())
    if abs(now - t) > options.tolerance:
        raise VerifyError("expired", "signature is %d s from now" % (now - t))

    site, session, status_text, context, prefill = values
    status_text = status_text or ""
    discard_reason = None
    status = _STATUSES.get(status_text)
    if status is None:
        d = "discarded; reason="
        if not status_text.startswith(d) or len(status_text) == len(d):
            raise VerifyError("bad_header", "unknown status")
        status, discard_reason = "discarded", status_text[len(d):]
    v2 = version == "v2"
    trusted = TrustedContext(
        site=site, session=session, status=status, discard_reason=discard_reason,
        context=_decode_object(context or ""),
        request_id=request_id if v2 and request_id else None,
        client_ip=client_ip if v2 and client_ip else None,
        signed_at=t, version=version, prefill=_decode_object(prefill or ""))

    if options.replay is not None:
        if not v2:
            # v1 signs no request id: a replay could not be told apart.
            raise VerifyError("unsupported_version", "replay protection needs v2")
        if trusted.request_id is None:
            raise VerifyError("bad_header", "no request id to check for replays")
        if options.replay.seen(trusted.request_id, t):
            raise VerifyError("replayed", "request id seen before")
    return trusted


def _decode_object(value):
    """Base64 of a JSON object of strings -> an ordered dict ("" -> empty)."""
    if value == "":
        return OrderedDict()
    try:
        data = json.loads(base64.b64decode(value, validate=True).decode("utf-8"),
                          object_pairs_hook=OrderedDict)
    except (binascii.Error, ValueError):
        data = None
    if not isinstance(data, OrderedDict) or not all(isinstance(v, str) for v in data.values()):
        raise VerifyError("bad_header", "trusted header cannot be decoded")
    return data
