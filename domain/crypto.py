"""Field encryption for sensitive numbers at rest (identity and bank account numbers).

Fernet (AES-128-CBC + HMAC-SHA256, random IV): the same number encrypts differently each time, so
the ciphertext neither reveals nor links equal numbers. Settings may hold several keys separated by
commas: the first encrypts, all decrypt, so keys can be rotated without re-encrypting at once.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# Only for dev and tests: production sets BACKOFFICE_FIELD_ENCRYPTION_KEY (Fernet.generate_key()).
DEV_FIELD_KEY = "ZGV2LW9ubHktZmllbGQta2V5LWRvLW5vdC11c2UtISE="


class CipherError(Exception):
    pass


class FieldCipher:
    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise CipherError("no field encryption key configured")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except ValueError as exc:
            raise CipherError(f"invalid field encryption key: {exc}") from None

    def encrypt(self, clear: str) -> str:
        return self._fernet.encrypt(clear.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise CipherError("cannot decrypt: wrong key or tampered value") from None
