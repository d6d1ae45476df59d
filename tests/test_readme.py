"""The README stays in step with the code: every route of the OpenAPI schema is in its API
table and every setting (an environment variable of a settings class) in its
configuration table."""

from __future__ import annotations

import re
from pathlib import Path

from api.settings import ApiSettings
from testkit.settings import env_names, settings_classes
from vitrine.wiring import create_api

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table():
    classes = settings_classes()
    assert len(classes) >= 6  # the discovery itself works
    documented = set(re.findall(r"`(VITRINE_[A-Z0-9_]+)`", README))
    missing = [f"{cls.__name__}.{field} ({' or '.join(names)})"
               for cls in classes for field, names in env_names(cls).items()
               if not set(names) & documented]
    assert missing == []


def test_every_route_is_in_the_api_table():
    paths = create_api(ApiSettings()).openapi()["paths"]
    routes = [f"{method.upper()} {path}" for path, ops in paths.items() for method in ops]
    assert len(routes) > 10
    missing = [r for r in routes if f"`{r}`" not in README]
    assert missing == []
