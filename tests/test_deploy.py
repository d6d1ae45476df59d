"""The deployment files: docker compose and Kubernetes manifests validated by their tools,
plus the checks no schema makes (health-gated start, scalable workers, settings names)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testkit.settings import known_settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_GPU = ROOT / "docker-compose.gpu.yml"
K8S = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
COMPOSE_ENV = {"POSTGRES_PASSWORD": "test", "VITRINE_API_KEYS": "{}"}


def compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) or `docker-compose`; neither needs an engine for config."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def k8s_objects() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for p in K8S for d in documents(p)}


@pytest.mark.parametrize("files", [[COMPOSE], [COMPOSE, COMPOSE_GPU]],
                         ids=["cpu", "gpu-override"])
def test_compose_config_is_valid(files):
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    args = [a for f in files for a in ("-f", str(f))]
    result = subprocess.run([*command, *args, "config", "-q"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, **COMPOSE_ENV})
    assert result.returncode == 0, result.stderr


def test_compose_starts_in_order_and_scales():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert rule == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], dependency
    for scalable in ("api", "worker"):  # --scale / deploy.replicas: no fixed name or port
        assert "container_name" not in services[scalable]
        assert "ports" not in services[scalable]
    assert services["api"]["deploy"]["replicas"] >= 2
    assert services["gateway"]["ports"]  # one port in front of the API replicas
    assert "--appendonly" in services["redis"]["command"]
    for shared in ("media:/data/media", "models:/models"):
        assert shared in services["api"]["volumes"] and shared in services["worker"]["volumes"]
    assert "workers.health" in " ".join(services["worker"]["healthcheck"]["test"])
    gpu = yaml.safe_load(COMPOSE_GPU.read_text())["services"]["worker"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    # two processes a GPU: one decodes while the other encodes
    assert "--concurrency=2" in gpu["command"]
    assert gpu["command"][:3] == services["worker"]["command"][:3]


def test_kubernetes_manifests_validate_against_the_api_schemas():
    tool = shutil.which("kubernetes-validate") or str(Path(sys.executable).parent
                                                      / "kubernetes-validate")
    if not Path(tool).exists():
        pytest.skip("kubernetes-validate is not installed (pip install kubernetes-validate)")
    builtin = [str(p) for p in K8S if all(not d["apiVersion"].startswith("keda.sh")
                                          for d in documents(p))]
    result = subprocess.run([tool, "--strict", "--quiet", *builtin], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout and "INVALID" not in result.stdout.upper(), result.stdout


# KEDA's CRD schema is not in the Kubernetes schemas: the fields we use, from KEDA's docs.
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "spec": {
            "type": "object", "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "kind": {"type": "string"},
                    "apiVersion": {"type": "string"}}, "additionalProperties": False},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer"},
                "cooldownPeriod": {"type": "integer"},
                "triggers": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["type", "metadata"],
                    "properties": {"type": {"type": "string"}, "metadata": {
                        "type": "object", "additionalProperties": {"type": "string"}}}}},
            },
        },
    },
}


def test_worker_autoscaling_follows_the_celery_queue():
    jsonschema = pytest.importorskip("jsonschema")
    from workers.settings import WorkerSettings

    objects = k8s_objects()
    scaled = objects[("ScaledObject", "vitrine-worker")]
    jsonschema.validate(scaled, SCALED_OBJECT)
    assert ("Deployment", scaled["spec"]["scaleTargetRef"]["name"]) in objects
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == WorkerSettings.model_fields["queue"].default
    worker = objects[("Deployment", "vitrine-worker")]["spec"]["template"]["spec"]
    assert worker["containers"][0]["resources"]["requests"]
    assert worker["terminationGracePeriodSeconds"] > float(
        objects[("ConfigMap", "vitrine-config")]["data"]["VITRINE_WORKER_TIME_LIMIT"])
    qdrant = objects[("StatefulSet", "qdrant")]["spec"]
    assert qdrant["replicas"] >= 3
    env = {e["name"]: e.get("value") for e in qdrant["template"]["spec"]["containers"][0]["env"]}
    assert env["QDRANT__CLUSTER__ENABLED"] == "true"
    assert objects[("Deployment", "vitrine-beat")]["spec"]["replicas"] == 1


def test_deployments_only_set_settings_that_exist():
    known = known_settings()
    compose = yaml.safe_load(COMPOSE.read_text())
    used = set(compose["x-vitrine-env"])
    used |= set(k8s_objects()[("ConfigMap", "vitrine-config")]["data"])
    used |= set(k8s_objects()[("Secret", "vitrine-secrets")]["stringData"])
    unknown = {n for n in used if n.startswith("VITRINE_") and n not in known}
    assert not unknown, f"no settings class reads {sorted(unknown)}"
    # And nothing sets a test-only hook.
    assert not {n for n in used if n.startswith(("VITRINE_TEST_", "TESTKIT_"))}


def qdrant_minor(image: str) -> str:
    """qdrant/qdrant:v1.20.0 -> 1.20"""
    return ".".join(image.rsplit(":v", 1)[1].split(".")[:2])


def test_qdrant_client_is_pinned_to_the_servers_minor_version():
    from importlib.metadata import version

    compose = yaml.safe_load(COMPOSE.read_text())["services"]["qdrant"]["image"]
    k8s = k8s_objects()[("StatefulSet", "qdrant")]["spec"]["template"]["spec"]["containers"]
    minors = {qdrant_minor(compose), qdrant_minor(k8s[0]["image"])}
    assert len(minors) == 1, minors
    minor = minors.pop()
    major, number = (int(p) for p in minor.split("."))
    pin = next(line for line in (ROOT / "pyproject.toml").read_text().splitlines()
               if '"qdrant-client' in line)
    assert f'"qdrant-client>={minor},<{major}.{number + 1}"' in pin, pin  # what images install
    assert ".".join(version("qdrant-client").split(".")[:2]) == minor  # what the tests ran


def test_the_cluster_survives_a_node():
    objects = k8s_objects()
    config = objects[("ConfigMap", "vitrine-config")]["data"]
    qdrant = objects[("StatefulSet", "qdrant")]["spec"]
    assert qdrant["replicas"] == 3
    anti = qdrant["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] \
        == "kubernetes.io/hostname"
    shards, replicas, writes = (int(config[f"VITRINE_QDRANT_{n}"]) for n in (
        "SHARD_NUMBER", "REPLICATION_FACTOR", "WRITE_CONSISTENCY_FACTOR"))
    assert 2 <= replicas <= qdrant["replicas"]  # a copy of every shard outlives one node
    assert writes == replicas // 2 + 1  # a majority: acknowledged writes outlive one node
    assert writes <= replicas - 1  # and writes go on with one node down
    assert shards % qdrant["replicas"] == 0
    for name, app in (("vitrine-api", "vitrine-api"), ("vitrine-worker", "vitrine-worker"),
                      ("qdrant", "qdrant")):
        budget = objects[("PodDisruptionBudget", name)]["spec"]
        assert budget["selector"]["matchLabels"] == {"app": app}
        assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable") == 1
    # Only a single worker may run (KEDA's minimum): its budget must not block drains.
    assert "minAvailable" not in objects[("PodDisruptionBudget", "vitrine-worker")]["spec"]


def test_the_api_is_reachable_and_probed():
    objects = k8s_objects()
    paths = {p["path"]: p for p in
             objects[("Ingress", "vitrine-api")]["spec"]["rules"][0]["http"]["paths"]}
    backend = paths["/"]["backend"]["service"]
    assert paths["/"]["pathType"] == "Prefix" and backend["name"] == "vitrine-api"
    service = objects[("Service", backend["name"])]["spec"]
    assert backend["port"]["name"] in {p["name"] for p in service["ports"]}
    # /metrics is public on each pod, never through the ingress (as deploy/nginx.conf).
    hidden = paths["/metrics"]
    assert hidden["pathType"] == "Exact"
    assert "selector" not in objects[("Service", hidden["backend"]["service"]["name"])]["spec"]
    api = objects[("Deployment", "vitrine-api")]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    worker = objects[("Deployment", "vitrine-worker")]["spec"]["template"]["spec"]
    assert worker["containers"][0]["livenessProbe"]["exec"]["command"] \
        == ["python", "-m", "workers.health"]
    images = {c["image"] for kind, name in (("Deployment", "vitrine-api"),
                                            ("Deployment", "vitrine-worker"),
                                            ("Deployment", "vitrine-beat"))
              for c in objects[(kind, name)]["spec"]["template"]["spec"]["containers"]}
    assert images == {"ghcr.io/OWNER/vitrine:TAG"}  # one image, the placeholder README names
