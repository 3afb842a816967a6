"""The one place where a name (symbol, model, run id, scope) becomes a path component.

Names come from file names and users (a file ``...csv`` yields the symbol ``..``), so they must
never steer a path: `path_component` keeps a name that is already a plain, portable component
and otherwise encodes it as a cleaned prefix plus a hash of the original, so two different
names never map to one folder. `check_path_component` refuses instead of encoding, for ids a
user types and expects to see verbatim (run ids).
"""

from __future__ import annotations

import hashlib
import re

from causalcast.registry.records import RegistryError

#: Characters kept as they are; everything else is replaced (and the result hashed).
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_BAD = re.compile(r"[^A-Za-z0-9._+-]")
#: Windows device names are unusable as file names on that platform, whatever the extension.
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
             *(f"LPT{i}" for i in range(10))}
_MAX_PREFIX = 80


def _plain(name: str) -> bool:
    return (bool(_PLAIN.fullmatch(name)) and name.split(".")[0].upper() not in _RESERVED
            and not name.endswith("."))


def path_component(name: str, what: str = "name", *, reserved: frozenset[str] = frozenset()
                   ) -> str:
    """``name`` as one safe folder/file name: unchanged when plain (``AAPL``, ``lstm``,
    ``BRK.B``), else ``x<cleaned>-<hash>`` (``..`` -> ``x..-<hash>``, ``^GSPC`` ->
    ``x_GSPC-<hash>``). Injective: the hash of the original separates names that clean alike,
    and an encoded result never looks plain-and-unchanged for a different input. Names in
    ``reserved`` (labels the caller uses itself, such as the ``global`` scope) are encoded."""
    if not isinstance(name, str) or not name:
        raise RegistryError(f"{what}: expected a non-empty string, got {name!r}")
    if _plain(name) and not _looks_encoded(name) and name not in reserved:
        return name
    cleaned = _BAD.sub("_", name)[:_MAX_PREFIX]
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    # Encoded names start with 'x' and end in '-<12 hex>'; a plain name of that exact shape is
    # encoded too (above), so an encoded name can never equal another name kept as it is.
    return f"x{cleaned}-{digest}"


def check_path_component(name: str, what: str) -> str:
    """Refuse a name that `path_component` would have to encode (``..``, separators, reserved
    device names, > 100 characters): for ids that must appear verbatim in folder names."""
    if not isinstance(name, str) or not _plain(name) or _looks_encoded(name):
        raise RegistryError(f"{what}: expected 1-100 characters from letters, digits and "
                            f"'._+-', starting with a letter or digit, not a reserved device "
                            f"name; got {name!r}")
    return name


_ENCODED = re.compile(r"x.*-[0-9a-f]{12}")


def _looks_encoded(name: str) -> bool:
    return bool(_ENCODED.fullmatch(name))
