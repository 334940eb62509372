"""Signed clip URLs: a `<video src>` cannot send an `Authorization` header, and a bearer token in a URL ends
up in logs and browser history, so the clip list gives each clip a URL that says only "this incident's
clip, until then", signed with the center's secret.

    key = HMAC-SHA256(secret, "gridwatch clip links")   (a key of its own: a link is never a token)
    sig = base64url(HMAC-SHA256(key, "clip|<incident id>|<clip id>|<expiry, unix seconds>"))

`check` answers `ClipLinkInvalid` or `ClipLinkExpired` (401) and nothing else about why.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from center_api.errors import Unauthorized

SIG_CHARS = 43  # base64url of 32 bytes, unpadded


class ClipLinkInvalid(Unauthorized, code="clip_link_invalid"):
    """A signature that this center did not make for this incident, clip and expiry."""


class ClipLinkExpired(Unauthorized, code="clip_link_expired"):
    """A signed clip URL past its expiry: list the incident's clips again for a fresh one."""


def signature(secret: str, incident_id: int, clip_id: str, expires: int) -> str:
    key = hmac.new(secret.encode(), b"gridwatch clip links", hashlib.sha256).digest()
    message = f"clip|{incident_id}|{clip_id}|{expires}".encode()
    mac = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def signed_query(secret: str, incident_id: int, clip_id: str, expires: int) -> str:
    return f"exp={expires}&sig={signature(secret, incident_id, clip_id, expires)}"


def check(secret: str, incident_id: int, clip_id: str, expires: int, sig: str, now: float) -> None:
    """Pass a valid, unexpired signature; raise `ClipLinkInvalid` or `ClipLinkExpired` otherwise."""
    expected = signature(secret, incident_id, clip_id, expires)
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise ClipLinkInvalid("the clip link's signature is not valid", code=ClipLinkInvalid.code)
    if expires <= now:
        raise ClipLinkExpired("the clip link has expired; list the clips again", code=ClipLinkExpired.code)
