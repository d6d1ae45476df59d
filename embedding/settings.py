"""Settings of the embedding component, read from VITRINE_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class EmbeddingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_", extra="ignore",
                                      protected_namespaces=("settings_",))

    model: str = "patrickjohncyh/fashion-clip"
    """Hugging Face hub id or local folder of a CLIP or SigLIP model."""
    device: str = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    batch_size: int = 32
