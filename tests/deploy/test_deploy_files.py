"""The deployment files in deploy/ are what the tools that read them accept: the
Kubernetes manifests validate against Kubernetes' own schemas (strictly: an unknown field
fails), with the probes, the graceful stop and the disruption budget in place; the
systemd unit verifies and its sandbox keeps systemd's exposure score low. The image's
root filesystem is run by tests/e2e/deploy.rs."""

import pathlib
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes" / "segfn.yaml"
UNIT = ROOT / "deploy" / "segfn.service"


def documents():
    with MANIFESTS.open() as f:
        return [d for d in yaml.safe_load_all(f) if d]


def test_manifests_validate_strictly_against_kubernetes_schemas():
    version = kubernetes_validate.latest_version()
    docs = documents()
    assert {d["kind"] for d in docs} == {
        "ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"
    }
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    # Strict: a misspelt field is an error, not ignored.
    broken = next(d for d in docs if d["kind"] == "Deployment")
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_the_deployment_probes_stops_gracefully_and_keeps_replicas():
    docs = {d["kind"]: d for d in documents()}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    # Deliveries in flight finish within Segment's 5 s; the pod gets far more.
    assert 10 <= pod["terminationGracePeriodSeconds"] <= 60
    assert docs["Deployment"]["spec"]["replicas"] > docs["PodDisruptionBudget"]["spec"]["minAvailable"]
    # The store is shared (several replicas) and reached over verified TLS.
    store = docs["Secret"]["stringData"]["SEGFN_STORE"]
    assert store.startswith("postgres://") and "sslmode=verify-full" in store
    assert "listen = \"0.0.0.0:8080\"" in docs["ConfigMap"]["data"]["segfn.toml"]


def test_the_systemd_unit_verifies_and_is_sandboxed(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is part of Debian's systemd"
    # verify wants the program to exist: the same unit, pointing at one that does.
    unit = tmp_path / "segfn.service"
    unit.write_text(UNIT.read_text().replace(
        "ExecStart=/usr/local/bin/segfn", "ExecStart=/bin/true"))
    verified = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == "", verified.stderr
    # systemd's exposure score, 0 (locked down) to 10: at most 2.
    security = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=20", str(unit)],
        capture_output=True, text=True)
    assert security.returncode == 0, security.stdout[-2000:]
