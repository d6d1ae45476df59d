"""Settings of the HTTP gateway, from VITRINE_* variables."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api.cors import check_origin
from catalogue.settings import json_or_comma_list


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_", extra="ignore")

    profile: Literal["local", "cluster"] = "local"
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 64 * 1024 * 1024
    """Whole request body, all parts together; uvicorn and Starlette cap no such thing."""
    max_part_bytes: int = 8 * 1024 * 1024
    """One non-file form field (a batch's metadata JSON); files are capped by the body only."""
    max_files: int = 1000
    """Files in one multipart form (a batch's images)."""
    max_fields: int = 1000
    """Non-file fields in one form."""
    metrics_enabled: bool = True
    """Serve GET /metrics (public, no key: keep it off the public ingress) and count
    requests for it."""
    api_keys: dict[str, str] = {}
    """SHA-256 digest of a key -> "shopper" or "manager", as JSON in VITRINE_API_KEYS."""
    anonymous_search: bool = False
    """With keys configured, a request without one acts as a shopper on shoppers' routes
    (search, facets, suggest, recommend, product pages); managers' routes still need a key."""
    # Rate limits (api.ratelimit): "N/second|minute|hour|day", several joined by ";"
    # ("10/second;300/minute"), counted per API key or, without one, per client address;
    # "" for none of that kind.
    rate_limit_enabled: bool | None = None
    """None: on in the cluster profile, off in the local one."""
    rate_limit_redis_url: str | None = None
    """The cluster profile's shared counters; None: the broker's (VITRINE_BROKER_URL)."""
    rate_limit_redis_prefix: str = "vitrine-ratelimit"
    rate_limit_search_per_key: str = "1200/minute"
    rate_limit_search_per_address: str = "300/minute"
    rate_limit_uploads_per_key: str = "600/minute"
    rate_limit_uploads_per_address: str = "600/minute"
    rate_limit_imports_per_key: str = "30/hour"
    rate_limit_imports_per_address: str = "30/hour"
    cors_origins: Annotated[list[str], NoDecode] = []
    """Origins (https://shop.example) whose pages may call the API from the browser, as a
    JSON list or comma list (api.cors); empty: no CORS headers at all."""

    @field_validator("cors_origins", mode="before")
    @classmethod
    def parse_origins(cls, value: Any) -> Any:
        return [check_origin(str(o)) for o in json_or_comma_list(value)]

    def key_roles(self):
        from api.auth import Role

        return {digest.lower(): Role(role) for digest, role in self.api_keys.items()}

    def rate_limits_on(self) -> bool:
        if self.rate_limit_enabled is None:
            return self.profile == "cluster"
        return self.rate_limit_enabled
