"""`./build.sh demo`: the main job, run on a freshly set-up machine."""

from __future__ import annotations

import sys

NOT_YET = """\
kubevirt-py is set up: Debian packages, .venv and the generated gRPC code are in place.

The demo (a local control plane with two nodes running a VM from
deploy/examples/ and showing its serial console) arrives with the lifecycle
issue; it needs the local control plane, virt-launcher, virt-handler and
virt-controller, which are not built yet.

What you can run today:
  ./build.sh test                      the test suite (contracts, CRD schemas)
  .venv/bin/python -m kubevirt_api.schema   regenerate deploy/crds/ from kubevirt_api/schema/
  .venv/bin/virtctl version
"""


def main() -> int:
    sys.stdout.write(NOT_YET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
