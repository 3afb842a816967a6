"""Telling a database home (``postgresql://...``) from a folder, and printing it safely."""

from __future__ import annotations

import re
from pathlib import Path

DATABASE_SCHEMES = ("postgresql://", "postgres://")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def is_database_url(home: object) -> bool:
    """Whether ``home`` names a PostgreSQL database rather than a folder."""
    return isinstance(home, str) and home.startswith(DATABASE_SCHEMES)


def redact(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    return _PASSWORD.sub(r"\1***@", url)


def as_home(text: object) -> str | Path:
    """A registry home as `Registry.open` takes it: a database URL stays a string (as a Path
    its ``//`` would collapse), anything else is a folder."""
    return str(text) if is_database_url(str(text)) else Path(str(text))
