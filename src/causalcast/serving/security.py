"""Optional API-key authentication (header ``X-API-Key``) for every route but the health
checks. Compared in constant time; with no key configured the service is open."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

HEADER = "x-api-key"


def require_api_key(request: Request) -> None:
    expected: str | None = request.app.state.config.api_key
    if not expected:
        return
    given = request.headers.get(HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header",
                            headers={"WWW-Authenticate": "ApiKey"})
