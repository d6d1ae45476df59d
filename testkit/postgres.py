"""A throwaway PostgreSQL schema for tests: created per test run, dropped after.

The server comes from VITRINE_TEST_POSTGRES_URL (default: the local one with
trust auth); tests that need it are skipped, with the reason, where none answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("VITRINE_TEST_POSTGRES_URL", DEFAULT_URL)


@contextmanager
def postgres_schema(label: str) -> Iterator[str]:
    """Yield a URL whose connections use a fresh schema; drop the schema afterwards."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed")
    base = server_url()
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {base}: {exc}")
    schema = f"vitrine_{label}_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
