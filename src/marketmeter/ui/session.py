"""Who may use the dashboard, and that its forms come from it.

- **Login** (strict mode, when the server has an admin token): the login form posts the token
  once; the answer sets the cookie ``mm_session``, ``<nonce>.<HMAC-SHA256(token, nonce)>``
  (HttpOnly, SameSite=Strict, path ``/_marketmeter/ui``). The token itself is never in a URL,
  a page or a cookie; any worker process of the server checks the cookie with the token alone,
  and changing the token ends every session. Without an admin token (open mode) there is no
  login, as for the admin API.
- **CSRF**: every form carries the field ``csrf``, equal to the HttpOnly, SameSite=Strict
  cookie ``mm_csrf`` (a random value set with the first page); a POST whose field does not
  match is refused (403). The admin API's browser guard still refuses a foreign ``Host`` or
  ``Origin`` first (``admin.browser_guard``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "UI_PATH",
    "Sessions",
    "csrf_token",
    "csrf_valid",
    "set_csrf_cookie",
]

UI_PATH = "/_marketmeter/ui"
SESSION_COOKIE = "mm_session"
CSRF_COOKIE = "mm_csrf"
CSRF_FIELD = "csrf"
_CSRF_STATE = "marketmeter_csrf"  # the new value of a request that came without one


def _cookie(response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, path=UI_PATH, httponly=True, samesite="strict")


class Sessions:
    """Dashboard sessions under the admin token ``token`` (None: open mode, no login)."""

    def __init__(self, token: str | None) -> None:
        self._key = token.encode() if token is not None else None

    @property
    def required(self) -> bool:
        return self._key is not None

    def _mac(self, nonce: str) -> str:
        assert self._key is not None
        return hmac.new(self._key, b"ui-session:" + nonce.encode(), hashlib.sha256).hexdigest()

    def token_matches(self, sent: str) -> bool:
        return self._key is not None and hmac.compare_digest(sent.encode(), self._key)

    def signed_in(self, request: Request) -> bool:
        """Whether ``request`` may see the pages: open mode, or a valid session cookie."""
        if self._key is None:
            return True
        nonce, _, mac = request.cookies.get(SESSION_COOKIE, "").partition(".")
        return bool(nonce) and hmac.compare_digest(mac.encode(), self._mac(nonce).encode())

    def sign_in(self, response: Response) -> None:
        nonce = secrets.token_hex(16)
        _cookie(response, SESSION_COOKIE, f"{nonce}.{self._mac(nonce)}")

    @staticmethod
    def sign_out(response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path=UI_PATH, httponly=True, samesite="strict")


def csrf_token(request: Request) -> str:
    """The CSRF value for ``request``'s forms: its cookie's, or a new one (set by
    ``set_csrf_cookie`` on the answer)."""
    known = request.cookies.get(CSRF_COOKIE)
    if known and len(known) >= 32:
        return known
    made: str | None = getattr(request.state, _CSRF_STATE, None)
    if made is None:
        made = secrets.token_urlsafe(32)
        setattr(request.state, _CSRF_STATE, made)
    return made


def set_csrf_cookie(request: Request, response: Response) -> None:
    """Set the CSRF cookie on ``response`` when ``request`` came without one."""
    made = getattr(request.state, _CSRF_STATE, None)
    if made is not None:
        _cookie(response, CSRF_COOKIE, made)


def csrf_valid(request: Request, sent: object) -> bool:
    """Whether a form's ``csrf`` field ``sent`` matches the request's cookie."""
    cookie = request.cookies.get(CSRF_COOKIE)
    return (
        isinstance(sent, str)
        and cookie is not None
        and len(cookie) >= 32
        and hmac.compare_digest(sent.encode(), cookie.encode())
    )
