"""HMAC-signed, expiring URLs for LFS uploads.

The huggingface_hub client PUTs LFS bodies and multipart parts to the URLs the batch API
hands out *without* its token (they are meant for S3), so the authorisation travels in the
URL: an HMAC over method, path and expiry, checked in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

from tether.errors import HubAuthError

DEFAULT_TTL_S = 3600


def sign(secret: bytes, method: str, path: str, expires: int) -> str:
    message = f"{method.upper()}\n{path}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signed_url(
    base_url: str, secret: bytes, method: str, path: str, ttl_s: int = DEFAULT_TTL_S
) -> str:
    expires = int(time.time()) + ttl_s
    query = urlencode({"expires": expires, "sig": sign(secret, method, path, expires)})
    return f"{base_url.rstrip('/')}{path}?{query}"


def check(secret: bytes, method: str, path: str, expires: str | None, sig: str | None) -> None:
    """Raise HubAuthError unless ``sig`` signs this method+path and has not expired."""
    if not expires or not sig or not expires.isdigit():
        raise HubAuthError("upload URL is not signed")
    if int(expires) < time.time():
        raise HubAuthError("upload URL has expired")
    if not hmac.compare_digest(sign(secret, method, path, int(expires)), sig):
        raise HubAuthError("upload URL signature does not match")
