"""Telling a database home (``postgresql://...``) from a folder, and printing it safely."""

from __future__ import annotations

import re

DATABASE_SCHEMES = ("postgresql://", "postgres://")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def is_database_url(home: object) -> bool:
    """Whether ``home`` names a PostgreSQL database rather than a folder."""
    return isinstance(home, str) and home.startswith(DATABASE_SCHEMES)


def redact(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    return _PASSWORD.sub(r"\1***@", url)
