"""API keys and roles. Every route declares the role it needs; none is open by accident.

Keys travel in the `X-API-Key` header and are configured as SHA-256 digests
(`vitrine hash-key` prints one), so the settings never hold a usable key.
A catalogue manager may do everything a shopper may. With VITRINE_ANONYMOUS_SEARCH a
request without a key is a shopper (a storefront's visitors); a manager's route still
needs a manager's key. `authorize` is that rule, for the route dependency and for the
early check of api.limits alike.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from catalogue.schemas import RANK, Role

if TYPE_CHECKING:
    from api.settings import ApiSettings

API_KEY_HEADER = "X-API-Key"

# The OpenAPI security scheme (the Authorize button of /docs); the role check below stays
# ours, since an open local profile needs no key at all.
api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              scheme_name="ApiKey",
                              description="A shopper's or a catalogue manager's key")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def role_of(key: str | None, key_roles: dict[str, Role]) -> Role | None:
    """The role a key grants, or None for a wrong key."""
    if key is None:
        return None
    digest = hash_key(key)
    for known, role in key_roles.items():
        if hmac.compare_digest(known, digest):
            return role
    return None


def authorize(settings: ApiSettings, key: str | None, needed: Role) -> Role:
    """The role a request with this key (None: no header) acts as on a route that needs
    `needed`; HTTPException 401 (no valid key) or 403 (a key of too low a role)."""
    key_roles = settings.key_roles()
    if not key_roles:  # local profile without keys: open (cluster refuses to start so)
        return Role.manager
    if key is None and settings.anonymous_search and RANK[needed] <= RANK[Role.shopper]:
        return Role.shopper
    granted = role_of(key, key_roles)
    if granted is None:
        raise HTTPException(401, f"a valid API key is needed in the {API_KEY_HEADER} header",
                            headers={"WWW-Authenticate": "ApiKey"})
    if RANK[granted] < RANK[needed]:
        raise HTTPException(403, f"this needs the {needed} role; the key is a {granted}'s")
    return granted


def caller(key: str | None, address: str | None) -> tuple[str, str]:
    """Whose request this is, for budgets (rate limits, running imports), once its role is
    checked: ("key", the key's digest, never the key) when it has one, else ("address",
    the client's address). Where keys are configured a wrong one never gets here (401);
    the local profile without keys checks none, and is open to everyone anyway."""
    if key:
        return "key", hash_key(key)
    return "address", address or "unknown"


class RequireRole:
    """A route dependency; its presence on every route is checked by a test."""

    def __init__(self, role: Role):
        self.role = role

    async def __call__(self, request: Request,  # async: no thread hop for a hash and a look-up
                       key: Annotated[str | None, Security(api_key_scheme)] = None) -> Role:
        return authorize(request.app.state.api_settings, key, self.role)


class RequirePublic(RequireRole):
    """The public role: no key, so none in the route's OpenAPI security either."""

    def __init__(self) -> None:
        super().__init__(Role.public)

    async def __call__(self, request: Request) -> Role:  # type: ignore[override]
        return Role.public


def require(role: Role) -> RequireRole:
    return RequirePublic() if role is Role.public else RequireRole(role)


# For route decorators: @router.get("/x", dependencies=[SHOPPER])
PUBLIC = Depends(require(Role.public))
SHOPPER = Depends(require(Role.shopper))
MANAGER = Depends(require(Role.manager))
