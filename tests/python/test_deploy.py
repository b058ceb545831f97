"""deploy/: the kustomize overlays render, say what the operations guide promises (probes on
/healthcheck, TCP and UDP on one Service, non-root, config from a Secret; on aws one workload
per role with an autoscaler on CPU and on consumer lag and a disruption budget), their configuration
files are ones the binary accepts, and checkov finds nothing in the manifests or the Dockerfile
(each skipped check carries its reason)."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

import twclient

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ["local", "aws"]
CHECKOV = os.environ.get("TRACKWIRE_CHECKOV", str(Path.home() / ".cache/trackwire/checkov-venv/bin/checkov"))


def render(overlay: str) -> str:
    result = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def by_kind(text: str) -> dict:
    docs = [d for d in yaml.safe_load_all(text) if d]
    kinds = {}
    for doc in docs:
        kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlay_renders_what_the_guide_promises(overlay):
    kinds = by_kind(render(overlay))
    for kind in ("Namespace", "ServiceAccount", "StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy", "Secret", "ConfigMap"):
        assert kind in kinds, f"{overlay}: no {kind}"
    for docs in kinds.values():
        for doc in docs:
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == "trackwire", doc["metadata"]
    (secret,) = kinds["Secret"]
    assert "trackwire.toml" in secret["data"]
    workloads = kinds["StatefulSet"] + kinds.get("Deployment", [])
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"].split("?")[0] == "/healthcheck", probe
        # Liveness restarts only a process that cannot recover; a long replay is not one.
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthcheck?probe=liveness"
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["automountServiceAccountToken"] is False
        # The configuration file comes from the generated Secret the pod mounts.
        mounted = {v["name"]: v for v in pod["volumes"]}["config"]["secret"]["secretName"]
        assert mounted == secret["metadata"]["name"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["TRACKWIRE_CONFIG"] == "/etc/trackwire/trackwire.toml"
    (service,) = [s for s in kinds["Service"] if s["metadata"]["name"] == "trackwire"]
    assert {(p["port"], p["protocol"]) for p in service["spec"]["ports"]} == {(8080, "TCP"), (4433, "UDP")}

    if overlay == "local":
        # The single process: its log is the pod's volume, so exactly one replica.
        (stateful,) = workloads
        assert stateful["spec"]["replicas"] == 1 and stateful["spec"]["template"]["spec"]["containers"][0]["args"] == ["serve"]
        return

    # aws: scaled out, one workload per role, each with an autoscaler and a disruption budget.
    role_of = {w["metadata"]["labels"]["app.kubernetes.io/component"]: w for w in workloads}
    assert set(role_of) == {"gateway", "api", "pipeline"}
    assert role_of["gateway"]["kind"] == role_of["api"]["kind"] == "Deployment"
    assert role_of["pipeline"]["kind"] == "StatefulSet", "workers need a stable ordinal for --partitions I/N"
    for role, workload in role_of.items():
        args = workload["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:3] == ["serve", "--role", role], args
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    assert service["spec"]["type"] == "LoadBalancer"
    assert role_of["pipeline"]["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "gp3"
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in kinds["HorizontalPodAutoscaler"]}
    # Every role scales: the API's accounts are in the shared store, so replicas are stateless.
    assert set(hpas) == {"trackwire-gateway", "trackwire-api", "trackwire-pipeline"}
    assert role_of["api"]["spec"]["replicas"] >= 2
    assert not kinds.get("PersistentVolumeClaim"), "nothing but the workers keeps a volume"
    for hpa in hpas.values():
        assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"])
    lag = [m["pods"]["metric"]["name"] for m in hpas["trackwire-pipeline"]["spec"]["metrics"] if m["type"] == "Pods"]
    documented = (ROOT / "docs" / "observability.md").read_text()
    assert lag == ["trackwire_worker_consumer_lag_records"] and f"`{lag[0]}`" in documented
    budgets = {b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for b in kinds["PodDisruptionBudget"]}
    assert budgets == {"gateway", "api", "pipeline"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlays_configuration_is_one_the_binary_accepts(overlay):
    path = DEPLOY / "k8s" / "overlays" / overlay / "trackwire.toml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKWIRE_")}
    result = subprocess.run(
        [str(twclient.trackwire_bin()), "print-config", "--config", str(path)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "[lake]" in result.stdout
    if overlay == "aws":
        assert 'url = "postgres://' in result.stdout and "raw_partitions = 8" in result.stdout
        # No token that may post for any user: devices use tokens the API issued.
        ingest = result.stdout.split("[ingest]")[1].split("\n[")[0]
        tokens = [line for line in ingest.splitlines() if line.startswith("tokens =")]
        assert tokens and '"*"' not in tokens[0], tokens


def checkov(path: Path, framework: str) -> dict:
    result = subprocess.run(
        [CHECKOV, "-f", str(path), "--framework", framework, "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_finds_nothing_in_the_rendered_manifests(overlay, tmp_path):
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(render(overlay))
    report = checkov(rendered, "kubernetes")
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and summary["parsing_errors"] == 0, failed
    assert summary["passed"] > 50, summary
    for skipped in report["results"].get("skipped_checks", []):
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, f"{skipped['check_id']} skipped without a reason"


def test_checkov_finds_nothing_in_the_dockerfile():
    report = checkov(DEPLOY / "Dockerfile", "dockerfile")
    failed = [(c["check_id"], c["check_name"]) for c in report["results"]["failed_checks"]]
    assert report["summary"]["failed"] == 0, failed
    assert report["summary"]["passed"] > 10


def test_the_dashboard_reads_only_documented_metrics():
    import re

    dashboard = json.loads((DEPLOY / "grafana" / "trackwire.json").read_text())
    documented = set(re.findall(r"`([a-z_]+)`", (ROOT / "docs" / "observability.md").read_text()))
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= {family(m) for m in re.findall(r"\b((?:trackwire|process)_[a-z_]+)\{", target["expr"])}
    assert len(used) >= 12, used
    assert used <= documented, sorted(used - documented)


def family(series: str) -> str:
    """The metric family of a series name: a histogram's `_bucket`, `_sum` and `_count` are its own."""
    import re

    return re.sub(r"_(bucket|sum|count)$", "", series) if series.endswith(("_seconds_bucket", "_seconds_sum", "_seconds_count")) else series


def test_the_alert_rules_encode_the_slos_on_metrics_a_server_exposes(server_factory):
    import re

    import requests

    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 8, alerts
    server = server_factory().start()
    text = requests.get(server.url + "/metrics", timeout=10).text
    server.stop()
    exposed = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    for rule in alerts:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        assert rule["labels"]["severity"] in {"page", "warn"}, rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule
        used = {family(m) for m in re.findall(r"\b(trackwire_[a-z_]+)\b", rule["expr"])}
        assert used and used <= exposed, (rule["alert"], sorted(used - exposed))
        for bound in re.findall(r'le="([^"]+)"', rule["expr"]):
            assert f'le="{bound}"' in text, f"{rule['alert']}: no bucket bound {bound}"
    slos = {rule["labels"].get("slo") for rule in alerts}
    assert {"ack-latency", "api-latency", "api-errors", "ingest-errors", "freshness"} <= slos, slos
