"""Every route declares a role, and keys grant exactly what the role allows."""

import inspect

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.auth import RANK, RequireRole, Role, hash_key
from api.settings import ApiSettings
from catalogue.settings import CatalogueSettings
from vitrine.wiring import build_services, create_api

KEYS = {"shopper": "shop-key-123", "manager": "manage-key-456"}


def api_routes(routes):
    """Every APIRoute, also inside included routers (FastAPI wraps those since 0.16x)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


def declared_role(route: APIRoute) -> Role | None:
    roles = [d.call.role for d in route.dependant.dependencies if isinstance(d.call, RequireRole)]
    return roles[0] if len(roles) == 1 else None


def test_every_route_in_the_openapi_schema_declares_one_role():
    app = create_api(ApiSettings())
    documented = {(path, method.upper()) for path, ops in app.openapi()["paths"].items()
                  for method in ops}
    routes = {(r.path, m): r for r in api_routes(app.routes) for m in r.methods}
    assert documented <= set(routes)
    missing = [f"{m} {p}" for (p, m), r in routes.items() if declared_role(r) is None]
    assert missing == [], f"routes without a declared role: {missing}"


def test_cluster_profile_refuses_to_start_without_keys():
    with pytest.raises(RuntimeError, match="API keys"):
        create_api(ApiSettings(profile="cluster"))


@pytest.fixture(scope="module")
def keyed_client(tmp_path_factory, tiny_encoder):
    settings = ApiSettings(api_keys={hash_key(k): role for role, k in KEYS.items()})
    services = build_services(CatalogueSettings(data_dir=tmp_path_factory.mktemp("auth")),
                              encoder=tiny_encoder)
    with TestClient(create_api(settings, services)) as c:
        yield c


def example_path(path: str) -> str:
    return path.replace("{product_id}", "ghost").replace("{job_id}", "nojob")


def test_role_matrix(keyed_client):
    """Each route x {no key, wrong key, shopper, manager}: 401/403 exactly when not allowed."""
    app = keyed_client.app
    checked = 0
    for route in api_routes(app.routes):
        role = declared_role(route)
        for method in route.methods:
            for who, key in [("none", None), ("wrong", "nope"), ("shopper", KEYS["shopper"]),
                             ("manager", KEYS["manager"])]:
                headers = {"X-API-Key": key} if key else {}
                status = keyed_client.request(method, example_path(route.path),
                                              headers=headers).status_code
                if role is Role.public:
                    allowed = True
                elif who in ("none", "wrong"):
                    allowed = False
                    assert status == 401, (method, route.path, who, status)
                else:
                    allowed = RANK[Role(who)] >= RANK[role]
                    if not allowed:
                        assert status == 403, (method, route.path, who, status)
                if allowed:
                    assert status not in (401, 403), (method, route.path, who, status)
                checked += 1
    assert checked >= 4 * 12


def test_hidden_products_exist_only_for_managers(keyed_client):
    from catalogue.store.base import point_id
    from testkit.api import wait_job
    from testkit.images import image_bytes

    manager, shopper = {"X-API-Key": KEYS["manager"]}, {"X-API-Key": KEYS["shopper"]}
    response = keyed_client.post("/v1/products", headers=manager,
                                 data={"metadata": '{"id": "hidden-1"}'},
                                 files={"image": ("p.png", image_bytes(), "image/png")})
    job = response.json()["job_id"]
    keyed_client.headers.update(manager)
    assert wait_job(keyed_client, job)["state"] == "done"
    keyed_client.headers.pop("X-API-Key")
    services = keyed_client.app.state.services
    services.store.set_payload([point_id("hidden-1")], {"moderation_status": "flagged"})
    assert keyed_client.get("/v1/products/hidden-1", headers=manager).status_code == 200
    assert keyed_client.get("/v1/products/hidden-1", headers=shopper).status_code == 404
    assert keyed_client.get("/v1/products/hidden-1/similar", headers=shopper).status_code == 404
    by_id = keyed_client.post("/v1/search", headers=shopper, data={"product_id": "hidden-1"})
    assert by_id.status_code == 404
    services.store.set_payload([point_id("hidden-1")], {"moderation_status": "approved"})
    assert keyed_client.get("/v1/products/hidden-1", headers=shopper).status_code == 200


def dependency_calls(dependant):
    """Every dependency FastAPI calls for a route, sub-dependencies included."""
    for d in dependant.dependencies:
        yield d.call
        yield from dependency_calls(d)


def runs_on_the_loop(call) -> bool:
    """FastAPI awaits a coroutine or async generator; anything else goes through its
    thread pool, one hop each."""
    target = call if inspect.isfunction(call) or inspect.ismethod(call) else call.__call__
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


@pytest.mark.parametrize("path", ["/v1/search", "/v1/facets"])
def test_search_routes_hop_to_the_thread_pool_only_for_the_route_itself(path):
    """Roles, rate-limit marks, the services' parts and the filters are `async def`: each
    plain `def` dependency cost the request a thread-pool hop (BENCHMARKS.md)."""
    app = create_api(ApiSettings())
    routes = [r for r in api_routes(app.routes) if r.path == path]
    assert routes
    for route in routes:
        hopping = [getattr(c, "__name__", type(c).__name__)
                   for c in dependency_calls(route.dependant) if not runs_on_the_loop(c)]
        assert hopping == [], f"{route.methods} {path}: plain def dependencies {hopping}"
        assert not runs_on_the_loop(route.endpoint)  # the encode stays off the event loop
