"""CSRF tokens: one per form, bound to a secret the visitor's session keeps on the server.

A token is ``HMAC-SHA256(session secret, form name)``: a page can only hold a valid token if
it was rendered for this session, a token for one form does not open another, and nothing
extra is stored per form. Checked in constant time. (SameSite=Lax cookies already stop most
cross-site posts; the token covers the rest: old browsers, same-site subdomains.)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

FIELD = "csrf_token"  # the hidden form field's name


def new_secret() -> str:
    """A fresh per-session secret (stored with the session, never sent to the browser)."""
    return secrets.token_urlsafe(32)


def token(secret: str, form: str) -> str:
    """The token a form named ``form`` carries for a session holding ``secret``."""
    return hmac.new(secret.encode(), form.encode(), hashlib.sha256).hexdigest()


def valid(secret: str, form: str, sent: str | None) -> bool:
    """Whether ``sent`` is this session's token for ``form``."""
    if not sent or len(sent) != 64:
        return False
    return hmac.compare_digest(token(secret, form), sent)
