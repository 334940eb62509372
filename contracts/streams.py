"""Opening a camera stream, one way for every opener, and error text that never carries a credential.

Three places open streams with PyAV: the ingest reader, the probe (`gridwatch cameras probe`) and the live
view. They all take their FFmpeg input options from `stream_input()` and describe a failure with
`describe_stream_error()`. This module is standard library only (contracts is the leaf): the callers hand
what it returns to `av.open` and recognise PyAV's exceptions themselves.

A stream URL with credentials is a secret: `rtsp://user:password@host/path`, or credentials in its query
(`?user=admin&password=...`, `pwd=`, `token=`...), after `;` (`/media.amp;user=...`) or as path parameters
(`/user=admin&password=...&channel=1`). Cameras keep their credentials apart from the URL
(`contracts.camera.StreamCredentials`): `split_credentials` takes them out of every form above, leaving the
URL without them (a secret parameter keeps its place with an empty value: `?user=&password=`), and
`join_credentials` puts them back only where a stream is opened. These tools keep them out of logs, health
records, metrics and HTTP bodies:

    split_credentials(url)           (the URL without credentials, the `UrlCredentials` it carried)
    join_credentials(url, ...)       the stream URL again: what an opener hands to FFmpeg, nothing else
    redact_url(url)                  the URL for display: userinfo -> `***`, credential query values -> `***`
    scrub(text, url)                 `text` with the URL (raw, percent-decoded) and each secret in it
                                     (raw, decoded, re-encoded, the bare password) replaced
    describe_stream_error(exc, url)  a short reason built from the exception's type and message, scrubbed

FFmpeg and PyAV put the URL in their messages (`str(av.error.FFmpegError)` ends with it), which is why the
description is built from the exception's parts and then scrubbed rather than trusted.
"""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote, unquote_plus

REDACTED = "***"

RTSP_SCHEMES = frozenset({"rtsp", "rtsps", "rtsp+tcp", "rtsp+udp", "rtsp+http"})
NETWORK_SCHEMES = frozenset({"http", "https", "udp", "tcp", "srt", "rtmp", "rtmps"})

# Query parameters whose values are credentials (compared case-insensitively).
SECRET_PARAMS = frozenset(
    {
        "user", "username", "usr", "login", "password", "pass", "passwd", "pwd", "pw", "token",
        "access_token", "auth", "auth_token", "authorization", "key", "apikey", "api_key", "secret",
        "sig", "signature", "session", "sessionid",
    }
)  # fmt: skip

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# `@host[:port]` followed by the end of the authority. A raw `/`, `?` or `#` in a password makes a URL
# ambiguous; the last `@` that is followed by a host ends the userinfo, so a redaction may hide too much
# (an `@` in a query), never too little (the tail of a password).
_AT_HOST = re.compile(r"@(?:\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9._~%!$'()*+,;=-]*)(?::\d*)?(?=[/?#]|$)")
# `key=value` after `?`, `&`, `;`, `#` or `/` (path parameters: `/user=admin&password=x&channel=1`)
_PARAM = re.compile(r"(?P<lead>[?&;#/])(?P<key>[^=&;#?/]+)=(?P<value>[^&;#]*)")


@dataclass(frozen=True, slots=True)
class _Parts:
    scheme: str  # "rtsp://", or "" for a path
    userinfo: str | None  # raw, as written in the URL
    rest: str  # host[:port]/path?query#fragment (the whole text for a path)

    @property
    def host(self) -> str | None:
        if not self.scheme:
            return None
        authority = re.split(r"[/?#]", self.rest, maxsplit=1)[0]
        if authority.startswith("["):
            return authority[1:].partition("]")[0] or None
        return unquote(authority.rpartition(":")[0] if ":" in authority else authority) or None


def _split(url: str) -> _Parts:
    scheme = _SCHEME.match(url)
    if scheme is None:
        return _Parts("", None, url)
    after = url[scheme.end() :]
    matches = list(_AT_HOST.finditer(after))
    if not matches:
        return _Parts(scheme.group(0), None, after)
    last = matches[-1]
    return _Parts(scheme.group(0), after[: last.start()], after[last.start() + 1 :])


def _secret_params(text: str) -> list[str]:
    return [m.group("value") for m in _PARAM.finditer(text) if m.group("key").lower() in SECRET_PARAMS]


@dataclass(frozen=True, slots=True)
class UrlCredentials:
    """The credentials a URL carried: user and password percent-decoded, secret parameters as written."""

    username: str | None = None
    password: str | None = None
    params: tuple[tuple[str, str], ...] = ()  # (name, value as written in the URL), in URL order

    def __bool__(self) -> bool:
        return self.username is not None or self.password is not None or bool(self.params)

    def __repr__(self) -> str:  # the dataclass default would print the values
        names = [name for name, _ in self.params]
        return (
            f"UrlCredentials(username={self.username is not None}, "
            f"password={self.password is not None}, params={names!r})"
        )


def split_credentials(url: str) -> tuple[str, UrlCredentials]:
    """`url` without its credentials, and the credentials: the userinfo (`user:password@`, raw or
    percent-encoded, with `#`, `/`, `?` or `@` in the password) and the values of secret parameters
    (`SECRET_PARAMS`, after `?`, `&`, `;` or `/`), which keep their place in the URL with an empty value.

    `rtsp://admin:p%40ss@cam/live?channel=1&token=t` -> `rtsp://cam/live?channel=1&token=`, with
    username `admin`, password `p@ss` and params `(("token", "t"),)`. An `@` followed by a host ends the
    userinfo even in a path or query (see `_AT_HOST`): write an `@` there as `%40`.
    """
    parts = _split(url)
    username = password = None
    if parts.userinfo:
        user, sep, secret = parts.userinfo.partition(":")
        username = unquote(user)
        password = unquote(secret) if sep else None
    params: list[tuple[str, str]] = []

    def blank(match: re.Match[str]) -> str:
        key, value = match.group("key"), match.group("value")
        if key.lower() not in SECRET_PARAMS or not value:
            return match.group(0)
        params.append((key, value))
        return f"{match.group('lead')}{key}="

    rest = _PARAM.sub(blank, parts.rest)
    return parts.scheme + rest, UrlCredentials(username, password, tuple(params))


def join_credentials(
    url: str,
    username: str | None = None,
    password: str | None = None,
    params: Mapping[str, str] | None = None,
) -> str:
    """The stream URL: `url` (without credentials) with the user and password percent-encoded into its
    userinfo and each parameter's value put where `url` has that name with an empty value, else appended
    to the query. The inverse of `split_credentials`; a path (no scheme) takes no userinfo."""
    scheme = _SCHEME.match(url)
    missing = dict(params or {})

    def fill(match: re.Match[str]) -> str:
        key = match.group("key")
        if match.group("value") or key not in missing:
            return match.group(0)
        return f"{match.group('lead')}{key}={missing.pop(key)}"

    head, mark, fragment = url.partition("#")
    head, fragment = _PARAM.sub(fill, head), _PARAM.sub(fill, fragment)
    if missing:
        extra = "&".join(f"{key}={value}" for key, value in missing.items())
        head = f"{head}{'&' if '?' in head else '?'}{extra}"
    joined = head + mark + fragment
    if scheme is None or (username is None and password is None):
        return joined
    userinfo = quote(username or "", safe="")
    if password is not None:
        userinfo += ":" + quote(password, safe="")
    return f"{scheme.group(0)}{userinfo}@{joined[scheme.end() :]}"


def redact_url(url: str) -> str:
    """The URL for display: `rtsp://user:pw@host/path?token=t` -> `rtsp://***@host/path?token=***`.

    URLs and paths without credentials come back unchanged.
    """
    parts = _split(url)

    def hide(match: re.Match[str]) -> str:
        if match.group("key").lower() not in SECRET_PARAMS:
            return match.group(0)
        return f"{match.group('lead')}{match.group('key')}={REDACTED}"

    rest = _PARAM.sub(hide, parts.rest)
    userinfo = f"{REDACTED}@" if parts.userinfo is not None else ""
    return f"{parts.scheme}{userinfo}{rest}"


def _forms(value: str) -> set[str]:
    """A secret as it may appear in a message: as written, percent-decoded, and re-encoded."""
    decoded = unquote(value)
    forms = {value, decoded, unquote_plus(value), quote(decoded, safe=""), quote(decoded)}
    forms.add(quote_plus(decoded))
    return {f for f in forms if f}


def url_secrets(url: str) -> list[str]:
    """Every string that would reveal a credential of `url`, longest first (the order `scrub` replaces in)."""
    parts = _split(url)
    found: set[str] = set()
    if parts.userinfo:
        found |= _forms(parts.userinfo)  # the user:password pair
        user, sep, password = parts.userinfo.partition(":")
        if sep and password:
            found |= _forms(password)
    for value in _secret_params(parts.rest):
        found |= _forms(value)
    return sorted(found, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` without `url`'s credentials: the URL itself (raw or decoded) becomes `redact_url(url)`, then
    each secret of it (see `url_secrets`) becomes `***`."""
    shown = redact_url(url)
    for form in sorted({url, unquote(url)}, key=len, reverse=True):
        text = text.replace(form, shown)
    for secret in url_secrets(url):
        # the redacted URL's own `***` is not a secret, but a secret may occur inside it: shown stays shown
        text = text.replace(secret, REDACTED)
    return text


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return True


def describe_stream_error(exc: BaseException, url: str, limit: int = 300) -> str:
    """A short reason for an exception raised while opening or reading `url`, with no credential in it.

    Built from the exception's type and `strerror` where it has one (OSError, PyAV's FFmpegError: their
    `str()` appends the URL), else its message; then scrubbed of `url`, and cut to `limit` characters.
    """
    name = type(exc).__name__
    host = _split(url).host
    strerror = getattr(exc, "strerror", None)
    if name == "ExitError":
        # FFmpeg's AVERROR_EXIT: PyAV's interrupt callback fired because its open/read timeout passed
        text = "timed out (no data)"
    elif isinstance(exc, socket.gaierror) or (
        getattr(exc, "errno", None) == errno.EIO and host and not _resolves(host)
    ):
        # FFmpeg reports a failed name lookup as a bare EIO ("Input/output error")
        text = f"cannot resolve host {host!r}" if host else f"{name}: {strerror or exc}"
    elif isinstance(strerror, str) and strerror:
        text = f"{name}: {strerror}"
    else:
        message = str(exc)
        text = f"{name}: {message}" if message else name
    return scrub(text, url)[:limit]


@dataclass(frozen=True, slots=True)
class StreamInput:
    """What to hand to `av.open`: the URL FFmpeg opens, its input options, and whether to pace it."""

    url: str  # transport suffix (`rtsp+udp://`) and `file://` removed; a secret like the camera URL
    options: dict[str, str]
    paced: bool  # a file: play it at its own speed, so it behaves like a camera

    def __repr__(self) -> str:  # the dataclass default would print the credentials
        return f"StreamInput(url={redact_url(self.url)!r}, options={self.options!r}, paced={self.paced})"


def stream_input(
    url: str,
    *,
    socket_timeout_s: float | None = None,
    probesize: int = 65_536,
    analyzeduration_us: int = 200_000,
) -> StreamInput:
    """FFmpeg input options for `url`, the same for every opener; callers pass what differs.

    - RTSP (`rtsp://`, `rtsps://`): over TCP by default; `rtsp+udp://`, `rtsp+http://` (and `rtsp+tcp://`)
      pick the transport. A fast probe (`probesize` bytes, `analyzeduration_us`: the SDP already tells
      codec and size), no input buffering, and at most 0.5 s of reordering delay.
    - Other network inputs (HTTP, UDP, TCP, SRT, RTMP): 0.5 s of analysis (MPEG-TS must be parsed to learn
      codec and size).
    - Anything else is a file (a `file://` URL or a path): no options, played in real time.

    `socket_timeout_s` sets FFmpeg's own socket I/O timeout (`timeout`, in µs) on network inputs: a read
    that gets no byte for that long fails with an I/O error. None leaves FFmpeg's default (wait forever),
    for callers that bound reads with PyAV's `timeout=` instead.
    """
    scheme_match = _SCHEME.match(url)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    timeout = {} if socket_timeout_s is None else {"timeout": str(int(socket_timeout_s * 1_000_000))}
    if scheme in RTSP_SCHEMES:
        base, _, transport = scheme.partition("+")
        options = {
            "rtsp_transport": transport or "tcp",
            **timeout,
            "probesize": str(probesize),
            "analyzeduration": str(analyzeduration_us),
            "fflags": "nobuffer",
            "max_delay": "500000",
        }
        return StreamInput(base + url[len(scheme) :], options, paced=False)
    if scheme in NETWORK_SCHEMES:
        return StreamInput(url, {**timeout, "analyzeduration": "500000"}, paced=False)
    path = url[len("file://") :] if scheme == "file" else url
    return StreamInput(path, {}, paced=True)
