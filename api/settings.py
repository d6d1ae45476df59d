"""Settings of the HTTP gateway, from VITRINE_* variables."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


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

    def key_roles(self):
        from api.auth import Role

        return {digest.lower(): Role(role) for digest, role in self.api_keys.items()}
