"""deploy/monitoring/ without a cluster: promtool accepts the rules and its unit tests of
them pass, the PrometheusRule carries the same rules, every alert has its runbook, the
scrape configuration and ServiceMonitor are what a real cluster needs, and every query of
the Grafana dashboard parses."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from kubevirt_metrics import prometheus_rule
from local_cluster.supervisor import deploy_manifests
from tests.monitoring.prometheus import (DASHBOARD, MONITORING, PROMETHEUS_RULE, RULES, RUNBOOKS, SCRAPE_CONFIG,
                                         SERVICE_MONITOR, alerts, as_sent_by_grafana, dashboard, dashboard_exprs,
                                         panels, promtool, rules)

HERE = Path(__file__).resolve().parent
SEVERITIES = {"critical", "warning", "info"}
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    result = promtool("test", "rules", "kubevirt-rules_test.yaml", cwd=HERE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_prometheus_rule_carries_the_same_rules() -> None:
    assert PROMETHEUS_RULE.read_text() == prometheus_rule.render(RULES.read_text()), \
        "deploy/monitoring/prometheusrule.yaml is stale: run python -m kubevirt_metrics.prometheus_rule"
    wrapped = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert (wrapped["apiVersion"], wrapped["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert wrapped["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_a_runbook_url_prefix_reaches_every_alert_and_nothing_else() -> None:
    prefix = "https://docs.example/kubevirt-py/"
    rendered = yaml.safe_load(prometheus_rule.render(RULES.read_text(), runbook_url_prefix=prefix))
    plain = yaml.safe_load(RULES.read_text())["groups"]
    for group, original in zip(rendered["spec"]["groups"], plain, strict=True):
        for rule, source in zip(group["rules"], original["rules"], strict=True):
            if "alert" in rule:
                assert rule["annotations"]["runbook_url"] == prefix + source["annotations"]["runbook_url"]
                rule["annotations"]["runbook_url"] = source["annotations"]["runbook_url"]
            assert rule == source


def test_every_alert_is_labelled_and_has_a_runbook() -> None:
    names = [alert["alert"] for alert in alerts()]
    assert len(names) == len(set(names)), "an alert name is used twice"
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, name
        assert alert["labels"]["kubernetes_operator_part_of"] == "kubevirt", name
        annotations = alert["annotations"]
        assert annotations.get("summary") and annotations.get("description"), name
        assert annotations["runbook_url"] == f"docs/runbooks/{name}.md"
        runbook = (RUNBOOKS / f"{name}.md").read_text()
        assert runbook.startswith(f"# {name}\n"), name
        positions = [runbook.find(section) for section in RUNBOOK_SECTIONS]
        assert -1 not in positions and positions == sorted(positions), f"{name}: sections {RUNBOOK_SECTIONS}"
        assert "```" in runbook, f"{name}: the diagnosis shows the commands to run"


def test_no_runbook_without_its_alert() -> None:
    assert {p.stem for p in RUNBOOKS.glob("*.md")} == {alert["alert"] for alert in alerts()}


def test_the_scrape_configuration_is_valid(tmp_path: Path) -> None:
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    job = config["scrape_configs"][0]
    assert job["scheme"] == "https" and job["honor_labels"] is True
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["kubevirt"]}}]
    # Debian builds Prometheus without Kubernetes discovery, so promtool would reject the
    # one line it cannot know; everything else (TLS, relabelling, the rule file) it checks.
    checked = copy.deepcopy(config)
    del checked["scrape_configs"][0]["kubernetes_sd_configs"]
    checked["scrape_configs"][0]["static_configs"] = [{"targets": ["192.0.2.1:8443"]}]
    ca = tmp_path / "kubevirt-ca.crt"
    ca.write_text("")
    checked["scrape_configs"][0]["tls_config"]["ca_file"] = str(ca)
    checked["rule_files"] = [str(RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(checked))
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_service_monitor_scrapes_what_the_service_lists() -> None:
    monitor = yaml.safe_load(SERVICE_MONITOR.read_text())
    service = yaml.safe_load((MONITORING.parent / "50-prometheus-metrics-service.yaml").read_text())
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    endpoint, = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["scheme"] == "https" and endpoint["honorLabels"] is True
    # The CA certificate, not the Secret's private key.
    assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": "kubevirt-py-ca", "key": "tls.crt"}


def test_the_local_cluster_does_not_apply_the_operator_kinds() -> None:
    """A cluster without the prometheus-operator serves no ServiceMonitor kind."""
    assert MONITORING not in deploy_manifests()


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["title"] and board["uid"]
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    variables = {v["name"] for v in board["templating"]["list"]}
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?([A-Za-z]\w*)", target["expr"]))
            assert used <= variables, f"{panel['title']}: undefined variables {used - variables}"
    json.dumps(board)  # nothing unserialisable slipped in


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """promtool parses PromQL only inside rules: each query becomes a recording rule."""
    exprs = dashboard_exprs(dashboard())
    assert exprs
    group = {"name": "dashboard", "rules": [{"record": f"dashboard:query_{i}", "expr": as_sent_by_grafana(expr)}
                                            for i, (_, expr) in enumerate(exprs)]}
    (tmp_path / "dashboard-rules.yaml").write_text(yaml.safe_dump({"groups": [group]}))
    result = promtool("check", "rules", str(tmp_path / "dashboard-rules.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["kubevirt-rules.yaml", "prometheusrule.yaml", "servicemonitor.yaml",
                                  "prometheus-kubevirt.yaml", "kustomization.yaml"])
def test_monitoring_yaml_loads(name: str) -> None:
    assert yaml.safe_load((MONITORING / name).read_text())


def test_the_monitoring_kustomization_lists_the_operator_objects() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == ["prometheusrule.yaml", "servicemonitor.yaml"]
    generated, = kustomization["configMapGenerator"]
    assert generated["files"] == [DASHBOARD.name]
