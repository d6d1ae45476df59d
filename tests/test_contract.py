"""The API keeps its own OpenAPI contract: schemathesis sends generated requests, valid
and not, to every operation and checks that no answer is a 500, and that each status,
content type and body is one the schema documents. Open (no keys configured) and keyed
(keys configured, a manager's sent), on the tiny random model.

Each operation is a test of its own, driven by hypothesis over the operation's
strategies: schemathesis's pytest plugin (`from_fixture`) does not run under pytest 9.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.auth import hash_key
from api.main import create_app
from api.settings import ApiSettings
from catalogue.settings import CatalogueSettings
from vitrine.lifecycle import Reindexing
from vitrine.wiring import build_services, create_api

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
MANAGER_KEY = "contract-manager-key"
KEYS = {hash_key(MANAGER_KEY): "manager", hash_key("contract-shopper-key"): "shopper"}
# No shrinking: a failure is reported as found, so a failing run stays as short as a passing one.
BOUNDED = settings(max_examples=8, deadline=timedelta(seconds=5), derandomize=True,
                   phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=list(HealthCheck), database=None)

# Collected from the schema alone (no model is loaded to write it).
OPERATIONS = [(op.method.upper(), op.path) for op in (
    result.ok() for result in
    schemathesis.openapi.from_dict(create_api(ApiSettings()).openapi()).get_all_operations())]


@pytest.fixture(scope="module", params=["open", "keyed"])
def live(request, tmp_path_factory, tiny_encoder):
    """The app's schema, as schemathesis loads it from the running app, and the headers
    each call carries."""
    keyed = request.param == "keyed"
    catalogue = CatalogueSettings(data_dir=tmp_path_factory.mktemp("contract"))
    # schemathesis may run the app's lifespan more than once: each start builds the parts
    # afresh on the same folder, and each end closes them.
    app = create_app(ApiSettings(api_keys=KEYS if keyed else {}),
                     lambda: build_services(catalogue, encoder=tiny_encoder),
                     lifecycle=lambda live: Reindexing(live, "local"))
    headers = {"X-API-Key": MANAGER_KEY} if keyed else {}
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app), headers
    finally:
        shutdown_lifespans()


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_keeps_its_contract(live, method, path):
    schema, headers = live
    operation = schema[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE))

    @BOUNDED
    @given(case=cases)
    def keeps_contract(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    keeps_contract()
