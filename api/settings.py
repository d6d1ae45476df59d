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
    max_search_limit: int = 100
