"""The deployment files, checked without a cluster or Docker: the Kubernetes manifests validate
against a pinned Kubernetes version and keep the rules the README promises (non-root, probes,
limits, secrets by reference); every variable the deployments set is a PeerBridge setting; and
the supergraph of deploy/compose.yaml composes from the current schema and is served by Hive
Gateway."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from api.schema.schema import print_sdl
from api.settings import Settings

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.33.0"
HIVE_GATEWAY = ROOT / "node_modules" / ".bin" / "hive-gateway"

SETTINGS = {
    "DATABASE_URL" if name == "database_url" else f"PEERBRIDGE_{name.upper()}"
    for name in Settings.model_fields
}


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":  # kustomize's own file, not an API object
            continue
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def _kind(kind: str) -> dict[str, Any]:
    (found,) = [doc for _, doc in _manifests() if doc["kind"] == kind]
    return found


@pytest.mark.parametrize(
    "name, manifest", _manifests(), ids=[f"{n}:{d['kind']}" for n, d in _manifests()]
)
def test_each_manifest_is_valid_for_the_pinned_kubernetes(
    name: str, manifest: dict[str, Any]
) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_every_manifest_but_the_migration_job() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(files - {"migration-job.yaml"})


def test_pods_run_as_non_root_on_a_read_only_root_with_limits_and_secret_references() -> None:
    pods = {
        "Deployment": _kind("Deployment")["spec"]["template"]["spec"],
        "Job": _kind("Job")["spec"]["template"]["spec"],
    }
    secrets: dict[str, set[str]] = {}
    for kind, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, kind
        assert pod["automountServiceAccountToken"] is False, kind
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, kind
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, kind
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), kind
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), kind
        secrets[kind] = {
            env["name"] for env in container["env"] if "secretKeyRef" in env.get("valueFrom", {})
        }
        assert not any("value" in env for env in container["env"]), "secrets by reference only"
    assert secrets["Deployment"] == {
        "DATABASE_URL",
        "PEERBRIDGE_KEY_ENCRYPTION_KEY",
        "PEERBRIDGE_METRICS_TOKEN",
        "PEERBRIDGE_OIDC_CLIENT_SECRET",
        "PEERBRIDGE_OIDC_PROVIDERS",
    }
    assert secrets["Job"] == {"DATABASE_URL", "PEERBRIDGE_MIGRATION_DATABASE_URL"}

    (api,) = pods["Deployment"]["containers"]
    assert api["args"] == ["serve"] and pods["Job"]["containers"][0]["args"] == ["migrate"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["readinessProbe"]["timeoutSeconds"] >= 3
    # Under a CPU quota `serve` cannot count CPUs: the worker count is the limit, set explicitly.
    workers = _kind("ConfigMap")["data"]["PEERBRIDGE_WORKERS"]
    assert workers == api["resources"]["limits"]["cpu"]


def test_the_autoscaler_budget_and_policy_select_the_deployments_pods() -> None:
    pod_labels = _kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert _kind("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == "peerbridge"
    for kind, selector in [
        ("PodDisruptionBudget", _kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"]),
        ("NetworkPolicy", _kind("NetworkPolicy")["spec"]["podSelector"]["matchLabels"]),
        ("Service", _kind("Service")["spec"]["selector"]),
    ]:
        assert selector.items() <= pod_labels.items(), kind


def test_every_variable_the_deployments_set_is_a_setting() -> None:
    named = set(_kind("ConfigMap")["data"])
    for kind in ("Deployment", "Job"):
        for container in _kind(kind)["spec"]["template"]["spec"]["containers"]:
            named |= {env["name"] for env in container["env"]}
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    named |= set(compose["x-peerbridge"]["environment"])
    assert named - SETTINGS == set()


def _compose_supergraph() -> subprocess.CompletedProcess[str]:
    # deploy/compose.yaml composes schema.graphql, which tests/integration/test_graphql_schema.py
    # keeps equal to the served schema; this composes the served one.
    return subprocess.run(
        ["node", str(DEPLOY / "compose-supergraph.mjs")],
        input=print_sdl(), capture_output=True, text=True, cwd=ROOT, timeout=120,
    )


needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not HIVE_GATEWAY.exists(),
    reason="needs Node and the locked npm packages",
)


@needs_node
def test_hive_gateway_serves_the_supergraph_composed_from_the_current_schema(
    tmp_path: Path,
) -> None:
    composed = _compose_supergraph()
    assert composed.returncode == 0, composed.stderr
    supergraph = tmp_path / "supergraph.graphql"
    supergraph.write_text(composed.stdout)
    assert "http://api:8000/graphql" in composed.stdout
    assert "http://clinic:4001/graphql" in composed.stdout

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = subprocess.Popen(
        [str(HIVE_GATEWAY), "supergraph", str(supergraph), "--host", "127.0.0.1",
         "--port", str(port), "--config-path", str(DEPLOY / "gateway.config.mjs")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        fields = _query_fields(f"http://127.0.0.1:{port}/graphql", gateway)
    finally:
        gateway.terminate()
        output, _ = gateway.communicate(timeout=30)
    # PeerBridge's root fields and the clinic's, in one schema.
    assert {"referrals", "patient", "clinicPatients"} <= fields, output


def _query_fields(url: str, gateway: subprocess.Popen[str]) -> set[str]:
    query = {"query": "{ __schema { queryType { fields { name } } } }"}
    deadline = time.monotonic() + 90
    while True:
        assert gateway.poll() is None, "Hive Gateway exited"
        try:
            response = httpx.post(url, json=query, timeout=5)
            body = response.json()
            return {field["name"] for field in body["data"]["__schema"]["queryType"]["fields"]}
        except (httpx.HTTPError, json.JSONDecodeError, KeyError, TypeError):
            assert time.monotonic() < deadline, "Hive Gateway did not answer"
            time.sleep(0.2)
