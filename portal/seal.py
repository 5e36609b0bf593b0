"""Sealed blobs: small JSON payloads encrypted and authenticated (Fernet: AES-CBC + HMAC-SHA256),
each of one kind and with an expiry. Every portal replica derives the same key from the shared
signing key, so a blob one replica seals any other opens, and nothing is kept in between."""
from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timezone

from cryptography.fernet import Fernet, InvalidToken


class SealError(ValueError):
    """A blob that cannot be accepted; the message says why, for the caller's error response."""


class Seal:
    """Seals and opens payloads with one 32-byte key; kinds keep one kind of blob from passing
    for another (a refresh token for an access token, say)."""

    def __init__(self, key: bytes):
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, kind: str, payload: dict, expires_at: float) -> str:
        body = json.dumps({"kind": kind, "expires_at": int(expires_at), "payload": payload}, separators=(",", ":"))
        return self._fernet.encrypt(body.encode()).decode()

    def open(self, kind: str, blob: str) -> dict:
        """The payload of a blob of this kind; SealError if it is foreign, altered, of another
        kind or expired."""
        try:
            body = json.loads(self._fernet.decrypt((blob or "").encode()))
        except (InvalidToken, ValueError):
            raise SealError(f"the {kind} was not issued by this commons' portal, or has been altered") from None
        if body.get("kind") != kind:
            raise SealError(f"the {body.get('kind')} given cannot serve as the {kind}")
        if time.time() >= body["expires_at"]:
            at = datetime.fromtimestamp(body["expires_at"], timezone.utc).isoformat(timespec="seconds")
            raise SealError(f"the {kind} expired at {at}")
        return body["payload"]
