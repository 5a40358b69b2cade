"""deploy/k8s: rendered and every object validated offline against the Kubernetes schemas."""

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from shared.models import OWNERSHIP, metadata
from shared.models.enums import Service
from tooling.nats_auth import OPS_USER, password_variable
from tooling.roles import SERVICES

from .kustomize import containers, render
from .tools import ROOT

K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.31.0"  # the oldest version we promise to run on


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return render(K8S)


def by(objects, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_every_object_is_valid_against_the_kubernetes_schemas(objects):
    assert len(objects) > 30
    for obj in objects:
        for version in (K8S_VERSION, kubernetes_validate.latest_version()):
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_validator_rejects_a_broken_object(objects):
    broken = dict(by(objects, "Deployment")["identity-api"])
    broken["spec"] = {**broken["spec"], "replicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_each_service_has_an_api_and_a_worker_with_probes_and_autoscaling(objects):
    deployments, hpas = by(objects, "Deployment"), by(objects, "HorizontalPodAutoscaler")
    services = by(objects, "Service")
    for service in SERVICES:
        api = deployments[f"{service}-api"]["spec"]["template"]["spec"]["containers"][0]
        assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert api["args"][:2] == ["api", service]
        worker = deployments[f"{service}-worker"]["spec"]["template"]["spec"]["containers"][0]
        assert worker["args"] == ["worker", service]
        assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
        # A worker waiting for JetStream at start is not restarted for it within 3 minutes.
        startup = worker["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 180
        for kind in ("api", "worker"):
            hpa = hpas[f"{service}-{kind}"]["spec"]
            assert hpa["scaleTargetRef"]["name"] == f"{service}-{kind}"
            assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
        assert services[service]["spec"]["selector"]["app.kubernetes.io/component"] == "api"


def test_each_service_connects_as_its_own_role_and_waits_for_migrations(objects):
    database = by(objects, "Secret")["scout-database"]["stringData"]
    for name, deployment in by(objects, "Deployment").items():
        service = name.rsplit("-", 1)[0]
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"] + pod["initContainers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            key = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"]
            assert key == f"{service}-url"
            assert database[key].startswith(f"postgresql://scout_{service}:")
        assert "scout migrate check" in " ".join(pod["initContainers"][0]["command"])


def test_migrate_job_migrates_and_applies_the_generated_roles(objects):
    job = by(objects, "Job")["scout-migrate"]["spec"]["template"]["spec"]
    command = " ".join(job["containers"][0]["command"])
    assert "scout migrate upgrade head" in command and "scout db roles --apply" in command
    env = {e["name"] for e in job["containers"][0]["env"]}
    assert {f"SCOUT_ROLE_PASSWORD_{s.upper()}" for s in SERVICES} <= env
    assert job["restartPolicy"] == "Never"
    # Grants are generated from the ownership map when the Job runs, never copied into the
    # manifests (where they could drift from it), and that map covers every table.
    assert not any("GRANT " in yaml.safe_dump(obj) for obj in objects)
    assert set(OWNERSHIP) == set(metadata.tables)


def test_every_pod_runs_as_non_root_with_resources_and_a_read_only_root(objects):
    for obj in objects:
        if obj["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
        for c in containers(obj):
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        assert obj["metadata"]["namespace"] == "scout"


def test_nats_is_a_three_node_jetstream_cluster_with_fsync_always(objects):
    nats = by(objects, "StatefulSet")["nats"]["spec"]
    assert nats["replicas"] == 3 and nats["volumeClaimTemplates"]
    conf = by(objects, "ConfigMap")["nats-config"]["data"]["nats.conf"]
    assert "sync_interval: always" in conf
    assert conf.count("nats://nats-") == 3
    assert by(objects, "ConfigMap")["scout-config"]["data"]["NATS_STREAM_REPLICAS"] == "3"
    assert by(objects, "PodDisruptionBudget")["nats"]["spec"]["maxUnavailable"] == 1


def test_nats_conf_is_accepted_by_the_real_nats_server(tmp_path):
    binary = Path(sys.executable).parent / "nats-server"
    result = subprocess.run(
        [str(binary), "-t", "-c", str(K8S / "nats" / "nats.conf")],
        env={
            "POD_NAME": "nats-0",
            **{password_variable(u): f"pw{u}" for u in (*Service, OPS_USER)},
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_our_renderer_agrees_with_kubectl_kustomize(objects):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed: the schema checks above still ran on our render")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    theirs = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(out) if o}
    ours = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    assert theirs == ours
