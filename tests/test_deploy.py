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
