"""deploy/monitoring/prometheusrule.yaml, rendered from deploy/monitoring/kubevirt-rules.yaml.

The plain rule file is the one source: Prometheus loads it as it is, and the
prometheus-operator gets the same groups in a PrometheusRule. The groups are copied as
text, comments and all, so the two files read alike and a review of one is a review of both.

    python -m kubevirt_metrics.prometheus_rule                  # rewrite prometheusrule.yaml
    python -m kubevirt_metrics.prometheus_rule --check          # exit 1 if it is stale
    python -m kubevirt_metrics.prometheus_rule --stdout \\
        --runbook-url-prefix https://example.org/kubevirt-py/blob/main/   # for your own copy
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

MONITORING_DIR = Path(__file__).resolve().parents[1] / "deploy" / "monitoring"
RULES_FILE = MONITORING_DIR / "kubevirt-rules.yaml"
PROMETHEUS_RULE_FILE = MONITORING_DIR / "prometheusrule.yaml"
RUNBOOK_PATH = "docs/runbooks/"

# Upstream's name and labels (virt-operator's PrometheusRule), so selectors written for
# upstream KubeVirt pick ours up too.
_HEADER = """\
# Generated from kubevirt-rules.yaml by `python -m kubevirt_metrics.prometheus_rule`:
# edit that file and regenerate this one.
#
# For the prometheus-operator. Its Prometheus loads only the PrometheusRules its
# ruleSelector matches (kube-prometheus-stack: the label release=<its release name>);
# add that label here or widen the selector.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: prometheus-kubevirt-rules
  namespace: kubevirt
  labels:
    kubevirt.io: ""
    prometheus.kubevirt.io: "true"
spec:
"""

_RUNBOOK_LINE = re.compile(r"^(\s*runbook_url:\s*)" + re.escape(RUNBOOK_PATH), re.MULTILINE)


def _groups_text(rules_text: str) -> str:
    """The rule file from its `groups:` key on (the comments above it are about the file)."""
    start = re.search(r"^groups:", rules_text, re.MULTILINE)
    if start is None:
        raise ValueError("the rule file has no top-level 'groups:' key")
    return rules_text[start.start():]


def render(rules_text: str, runbook_url_prefix: str = "") -> str:
    groups = _groups_text(rules_text)
    if runbook_url_prefix:
        groups = _RUNBOOK_LINE.sub(lambda m: m.group(1) + runbook_url_prefix + RUNBOOK_PATH, groups)
    indented = "".join(f"  {line}" if line.strip() else line for line in groups.splitlines(keepends=True))
    return _HEADER + indented


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if prometheusrule.yaml is not up to date")
    parser.add_argument("--stdout", action="store_true", help="print instead of writing prometheusrule.yaml")
    parser.add_argument("--runbook-url-prefix", default="", metavar="URL",
                        help=f"prepend URL to every runbook_url (which is the path {RUNBOOK_PATH}<alert>.md "
                             "in this repository)")
    args = parser.parse_args(argv)
    text = render(RULES_FILE.read_text(), args.runbook_url_prefix)
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = PROMETHEUS_RULE_FILE.read_text() if PROMETHEUS_RULE_FILE.exists() else ""
        if current != text:
            print(f"{PROMETHEUS_RULE_FILE} is stale: run python -m kubevirt_metrics.prometheus_rule", file=sys.stderr)
            return 1
        return 0
    PROMETHEUS_RULE_FILE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
