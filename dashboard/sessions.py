"""Sessions: who owns an upload, a result and a job.

Every page load gets a token ``<id>.<signature>``: a random id and its HMAC under the
server secret (:meth:`dashboard.store.Store.secret`). The tab keeps it in session storage
(a reload keeps it, another tab gets its own) and sends it with every callback; the
server reads uploads and results only for the session a valid token names. A token
cannot be derived from anything a user uploads, and a forged one is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from dashboard.store import PUBLIC

_SIGNATURE_LENGTH = 32


def new_token(secret: bytes) -> str:
    """A fresh session token, signed with ``secret``."""
    session = secrets.token_urlsafe(16)
    return f"{session}.{_signature(secret, session)}"


def session_of(secret: bytes, token: object) -> str:
    """The session id a token names.

    Raises
    ------
    ValueError
        The token is missing or its signature does not match: reload the page.
    """
    session, _, signature = token.partition(".") if isinstance(token, str) else ("", "", "")
    if not session or not hmac.compare_digest(signature, _signature(secret, session)):
        raise ValueError(
            "This page's session is not valid (the server was reset, or the page was "
            "altered): reload the page."
        )
    return session


def owner_of(session: str, *refs: dict | None) -> str:
    """Who a request's result belongs to: :data:`~dashboard.store.PUBLIC` when it uses
    only demos and the server's own files (then every session may share it), else the
    session."""
    private = any(ref and ref.get("kind") == "upload" and not ref.get("public") for ref in refs)
    return session if private else PUBLIC


def _signature(secret: bytes, session: str) -> str:
    digest = hmac.new(secret, session.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:_SIGNATURE_LENGTH]
