"""Settings of the training commands, read from VITRINE_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_", extra="ignore")

    train_minutes: float = Field(10.0, gt=0)
    """Time budget of `vitrine train` and `vitrine finetune` (image loading and saving
    included) unless --max-minutes says otherwise: the automatic recipe fills it
    (training.config.auto_config)."""

