"""Signing in to the console with an API key once, the session cookie, and CSRF on every form.

The cookie is HttpOnly, SameSite=Strict, Secure over TLS and expires with the session. Every form
carries the session's CSRF token; the sign-in form, before any session exists, carries a token that
must match a short-lived cookie (double submit)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from api.deps import get_session_factory, get_settings
from db import console as repo
from db.engine import unit_of_work
from domain.access import Role
from domain.crypto import FieldCipher

COOKIE = "bo_console"
PRE_COOKIE = "bo_console_pre"
PATH = "/console"


@dataclass(frozen=True)
class ConsoleUser:
    token: str
    csrf: str
    api_key: str
    role: Role
    person: str
    merchant_id: str | None


class SignInRequired(Exception):
    """No live session: the page sends the browser to the sign-in form."""


class CsrfRefused(Exception):
    """A form without this session's CSRF token."""


async def current_user(request: Request) -> ConsoleUser:
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired
    async with unit_of_work(get_session_factory(request)) as session:
        found = await repo.find_session(session, token)
    if found is None:  # expired, signed out, or its key revoked since
        raise SignInRequired
    row, key = found
    api_key = FieldCipher(get_settings(request).field_encryption_key).decrypt(row.api_key_enc)
    return ConsoleUser(token, row.csrf, api_key, Role(key.role), key.person, key.merchant_id)


User = Annotated[ConsoleUser, Depends(current_user)]


async def checked(request: Request, user: User) -> ConsoleUser:
    """The user of a form post, once its CSRF token is this session's."""
    form = await request.form()
    sent = form.get("csrf")
    if not isinstance(sent, str) or not secrets.compare_digest(sent, user.csrf):
        raise CsrfRefused
    return user


FormUser = Annotated[ConsoleUser, Depends(checked)]


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
