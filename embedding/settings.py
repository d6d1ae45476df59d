"""Settings of the embedding component, read from VITRINE_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

# How the query text tower runs (embedding.fast_text says what each one is and what it costs).
TextTowerKind = Literal["float32", "int8", "bfloat16", "compile", "onnx", "onnx-int8"]


class EmbeddingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_", extra="ignore",
                                      protected_namespaces=("settings_",))

    model: str = "patrickjohncyh/fashion-clip"
    """Hugging Face hub id or local folder of a CLIP or SigLIP model."""
    device: str = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    batch_size: int = 32
    text_tower: TextTowerKind = "onnx-int8"
    """How the text tower runs on the CPU in float32 (embedding.fast_text): ONNX Runtime with
    int8 weights is the fastest whose vectors stay within cosine 0.995 of float32."""
