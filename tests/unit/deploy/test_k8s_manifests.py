"""deploy/k8s/: the manifests agree with the settings, the CLI, the image and each other.

No cluster is needed: the YAML is read and checked, so a renamed setting, a moved port or a
selector that no longer matches breaks a test instead of a rollout.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config.settings import ENV_PREFIX, Settings
from service.entrypoints.cli import parser

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"

# Names the manifests may use before service/config/settings.py reads them (none today): delete
# each line here once it is a Settings field (the test
# `test_the_allowance_for_future_settings_lists_only_names_that_are_not_settings_yet` says when).
NOT_YET_SETTINGS: frozenset[str] = frozenset()
SETTINGS = frozenset(
    {
        "FULFILLMENT_KAFKA_SECURITY_PROTOCOL",
        "FULFILLMENT_KAFKA_SASL_MECHANISM",
        "FULFILLMENT_KAFKA_SASL_USERNAME",
        "FULFILLMENT_KAFKA_SASL_PASSWORD",
        "FULFILLMENT_KAFKA_SSL_CAFILE",
        "FULFILLMENT_KAFKA_SSL_CERTFILE",
        "FULFILLMENT_KAFKA_SSL_KEYFILE",
        "FULFILLMENT_DATABASE_SSLROOTCERT",
    }
)
SETTINGS = frozenset(ENV_PREFIX + field.upper() for field in Settings.model_fields)
HTTP_PORT: int = Settings.model_fields["http_port"].default
MOUNT_PATH = "/var/run/secrets/fulfillment"
PARTITIONS: int = Settings.model_fields["topic_partitions"].default


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / name).read_text("utf-8"))
    return loaded


DEPLOYMENT = _load("deployment.yaml")
JOB = _load("migration-job.yaml")
CONFIGMAP = _load("configmap.yaml")
SECRET = _load("secret.yaml")
SERVICE = _load("service.yaml")
MONITOR = _load("servicemonitor.yaml")
PDB = _load("pdb.yaml")
KUSTOMIZATION = _load("kustomization.yaml")
WORKLOADS = {"deployment": DEPLOYMENT, "job": JOB}


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = workload["spec"]["template"]["spec"]
    return pod


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = _pod(workload)["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env(workload: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in _container(workload).get("env", [])}


def _is_a_setting(name: str) -> bool:
    """NAME_FILE names the file holding NAME's value, so it counts when NAME does."""
    candidates = {name, name.removesuffix("_FILE")} if name.endswith("_FILE") else {name}
    return bool(candidates & (SETTINGS | NOT_YET_SETTINGS))


def _port(probe: dict[str, Any]) -> int:
    """A probe's port, resolving a port name to the container's port number."""
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in _container(DEPLOYMENT)["ports"]}
    return int(named[port])


def test_the_container_serves_http_on_the_settings_default_port_named_http() -> None:
    assert HTTP_PORT == 8080
    assert _container(DEPLOYMENT)["ports"] == [
        {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}
    ]
    assert "FULFILLMENT_HTTP_PORT" not in CONFIGMAP["data"] | _env(DEPLOYMENT)


@pytest.mark.parametrize(
    ("probe", "path"),
    [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")],
)
def test_the_probes_ask_the_service_s_health_paths_on_its_http_port(probe: str, path: str) -> None:
    configured = _container(DEPLOYMENT)[probe]

    assert configured["httpGet"]["path"] == path
    assert _port(configured) == HTTP_PORT


def test_prometheus_scrapes_metrics_through_the_service_on_the_http_port() -> None:
    (port,) = SERVICE["spec"]["ports"]
    (endpoint,) = MONITOR["spec"]["endpoints"]

    assert (port["port"], port["targetPort"]) == (HTTP_PORT, "http")
    assert (endpoint["port"], endpoint["path"]) == (port["name"], "/metrics")
    assert MONITOR["apiVersion"] == "monitoring.coreos.com/v1"
    assert MONITOR["kind"] == "ServiceMonitor"
    # The alerts select job="session-fulfillment": the Service's name becomes the job label.
    assert SERVICE["metadata"]["name"] == "session-fulfillment"
    assert 'job="session-fulfillment"' in (ROOT / "deploy/observability/alerts.yml").read_text()


def test_unready_pods_are_still_scraped() -> None:
    assert SERVICE["spec"]["publishNotReadyAddresses"] is True


def test_the_service_pdb_and_monitor_select_the_deployments_pods() -> None:
    pod_labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    selected = DEPLOYMENT["spec"]["selector"]["matchLabels"]

    assert selected.items() <= pod_labels.items()
    assert SERVICE["spec"]["selector"].items() <= pod_labels.items()
    assert PDB["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert (
        MONITOR["spec"]["selector"]["matchLabels"].items() <= SERVICE["metadata"]["labels"].items()
    )
    # The migration's pod is not one of them: it must not be scraped or counted as the service.
    job_labels = JOB["spec"]["template"]["metadata"]["labels"]
    assert not SERVICE["spec"]["selector"].items() <= job_labels.items()


@pytest.mark.parametrize("workload", WORKLOADS)
def test_every_fulfillment_variable_in_the_pods_is_a_setting_the_service_reads(
    workload: str,
) -> None:
    names = set(_env(WORKLOADS[workload])) | set(CONFIGMAP["data"])
    used = {name for name in names if name.startswith(ENV_PREFIX)}

    assert used, "no FULFILLMENT_* variables found"
    assert not {name for name in used if not _is_a_setting(name)}


def test_a_variable_that_is_no_setting_is_reported() -> None:
    assert not _is_a_setting("FULFILLMENT_BOOTSTRAP_SERVERS")
    assert not _is_a_setting("FULFILLMENT_DATABASE_PASSWORD_FILE")
    assert _is_a_setting("FULFILLMENT_DATABASE_URL_FILE")


def test_the_allowance_for_future_settings_lists_only_names_that_are_not_settings_yet() -> None:
    assert not NOT_YET_SETTINGS & SETTINGS, "now settings: delete them from NOT_YET_SETTINGS"


def test_the_configmap_and_the_mounted_secret_make_valid_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The Secret's keys as the files Kubernetes mounts, here under tmp_path.
    for key, value in SECRET["stringData"].items():
        (tmp_path / key).write_text(value, "utf-8")
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name + "_FILE", raising=False)
    for name, value in (CONFIGMAP["data"] | _env(DEPLOYMENT)).items():
        monkeypatch.setenv(name, value.replace(MOUNT_PATH, str(tmp_path)))

    settings = Settings()

    assert (
        settings.kafka_bootstrap_servers == CONFIGMAP["data"]["FULFILLMENT_KAFKA_BOOTSTRAP_SERVERS"]
    )
    assert settings.create_topics is False
    assert settings.log_format == "json"
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "REPLACE-ME"
    assert settings.database_url.get_secret_value() == SECRET["stringData"]["database-url"]
    assert settings.database_sslrootcert == tmp_path / "database-ca.crt"


def test_kafka_is_reached_over_sasl_ssl_with_scram_sha_512_and_a_ca_file() -> None:
    data = CONFIGMAP["data"]

    assert data["FULFILLMENT_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["FULFILLMENT_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert data["FULFILLMENT_KAFKA_SASL_USERNAME"]
    assert data["FULFILLMENT_KAFKA_SSL_CAFILE"].startswith("/var/run/secrets/fulfillment/")


@pytest.mark.parametrize("workload", WORKLOADS)
def test_secrets_are_files_from_the_mounted_secret_not_values_in_the_environment(
    workload: str,
) -> None:
    pod = _pod(WORKLOADS[workload])
    mounts = {m["name"]: m for m in _container(WORKLOADS[workload])["volumeMounts"]}
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    mount = mounts[volume["name"]]
    env = _env(WORKLOADS[workload])
    files = {
        name: value for name, value in (env | CONFIGMAP["data"]).items() if "/secrets/" in value
    }

    assert env["FULFILLMENT_DATABASE_URL_FILE"] == "/var/run/secrets/fulfillment/database-url"
    assert (
        env["FULFILLMENT_KAFKA_SASL_PASSWORD_FILE"]
        == "/var/run/secrets/fulfillment/kafka-sasl-password"
    )
    assert mount["mountPath"] == "/var/run/secrets/fulfillment" and mount["readOnly"] is True
    assert volume["secret"]["secretName"] == SECRET["metadata"]["name"]
    for name, path in files.items():
        directory, key = path.rsplit("/", 1)
        assert directory == mount["mountPath"], name
        assert key in SECRET["stringData"], f"{name}: the Secret has no key {key}"
    assert not any("valueFrom" in item for item in _container(WORKLOADS[workload])["env"])
    for name in ("FULFILLMENT_DATABASE_URL", "FULFILLMENT_KAFKA_SASL_PASSWORD"):
        assert name not in env | CONFIGMAP["data"]


def test_the_example_secret_is_marked_as_placeholders_and_never_applied() -> None:
    text = (K8S / "secret.yaml").read_text("utf-8")

    assert "EXAMPLE ONLY" in text
    assert all("REPLACE-ME" in value for value in SECRET["stringData"].values())
    assert "secret.yaml" not in KUSTOMIZATION["resources"]


def test_each_pod_runs_one_process() -> None:
    assert _env(DEPLOYMENT)["FULFILLMENT_PROCESSES"] == "1"
    assert _container(DEPLOYMENT)["resources"]["limits"]["cpu"] in {"1", 1, "1000m"}


def test_the_group_has_no_more_members_than_an_input_topic_has_partitions() -> None:
    consumers = int(CONFIGMAP["data"]["FULFILLMENT_CONSUMERS"])
    surge = DEPLOYMENT["spec"]["strategy"]["rollingUpdate"]["maxSurge"]

    assert (DEPLOYMENT["spec"]["replicas"] + surge) * consumers <= PARTITIONS


@pytest.mark.parametrize(("workload", "command"), [("deployment", "run"), ("job", "migrate")])
def test_the_deployment_runs_the_service_and_the_job_runs_the_migration(
    workload: str, command: str
) -> None:
    args = _container(WORKLOADS[workload])["args"]

    assert args == [command]
    assert parser().parse_args(args).command == command


def test_the_job_runs_once_to_completion_with_the_deployments_image_and_configuration() -> None:
    assert JOB["kind"] == "Job"
    assert _pod(JOB)["restartPolicy"] == "Never"
    assert _container(JOB)["image"] == _container(DEPLOYMENT)["image"]
    assert _container(JOB)["envFrom"] == _container(DEPLOYMENT)["envFrom"]
    assert _env(JOB) == _env(DEPLOYMENT)


def test_shutdown_gets_at_least_a_minute() -> None:
    assert _pod(DEPLOYMENT)["terminationGracePeriodSeconds"] >= 60


@pytest.mark.parametrize("workload", WORKLOADS)
def test_the_containers_run_unprivileged_as_the_images_user(workload: str) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text("utf-8")
    image_user = re.findall(r"^USER (\d+)", dockerfile, re.MULTILINE)[-1]
    pod = _pod(WORKLOADS[workload])["securityContext"]
    container = _container(WORKLOADS[workload])["securityContext"]

    assert pod["runAsNonRoot"] is True and str(pod["runAsUser"]) == image_user
    assert container["runAsNonRoot"] is True
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("workload", WORKLOADS)
def test_the_containers_request_and_limit_cpu_and_memory(workload: str) -> None:
    resources = _container(WORKLOADS[workload])["resources"]

    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    assert str(resources["limits"]["cpu"]) == "1"


def test_the_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    manifests = {path.name for path in K8S.glob("*.yaml")}

    assert set(KUSTOMIZATION["resources"]) == manifests - {"kustomization.yaml", "secret.yaml"}
    images = {image["name"] for image in KUSTOMIZATION["images"]}
    assert {_container(w)["image"].split(":")[0] for w in WORKLOADS.values()} <= images
