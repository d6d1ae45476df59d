"""Every setting the production packages read, found by importing them all: for the tests
that keep the README and the deployment files in step with the code."""

from __future__ import annotations

import importlib
import pkgutil

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

PACKAGES = ("embedding", "catalogue", "training", "api", "workers", "vitrine")


def settings_classes() -> list[type[BaseSettings]]:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            importlib.import_module(module.name)
    found, todo = [], list(BaseSettings.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.split(".")[0] in PACKAGES:
            found.append(cls)
    return found


def env_names(cls: type[BaseSettings]) -> dict[str, list[str]]:
    """field -> the environment variables that set it."""
    prefix = cls.model_config.get("env_prefix", "")
    names = {}
    for field, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, str):
            names[field] = [alias.upper()]
        elif isinstance(alias, AliasChoices):
            names[field] = [c.upper() for c in alias.choices if isinstance(c, str)]
        else:
            names[field] = [f"{prefix}{field}".upper()]
    return names


def known_settings() -> set[str]:
    """Every environment variable some settings class reads."""
    return {n for cls in settings_classes() for names in env_names(cls).values() for n in names}
