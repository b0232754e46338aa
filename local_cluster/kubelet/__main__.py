"""A process kubelet for one simulated node.

    python -m local_cluster.kubelet --kubeconfig PATH --node-name node01 --node-index 1 --root DIR

SIGTERM is a node shutdown (pods are stopped); SIGKILL leaves pods running for the
next kubelet process, which adopts them.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from kube_client.config import load_api_client
from local_cluster.kubelet.agent import KubeletAgent
from local_cluster.kubelet.log_server import KUBELET_PORT
from local_cluster.kubelet.runtime import NodeConfig

# build.sh packages guest images (containerDisks) here.
DEFAULT_IMAGE_STORE = Path(__file__).resolve().parents[2] / "build" / "oci"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--node-index", type=int, default=1)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--image-store", type=Path, default=DEFAULT_IMAGE_STORE,
                        help="the local OCI image layout images are pulled from")
    parser.add_argument("--port", type=int, default=KUBELET_PORT,
                        help="the port of the kubelet's HTTPS server on the node address (0: any free port)")
    args = parser.parse_args()
    if not 1 <= args.node_index <= 254:
        parser.error("--node-index: must be between 1 and 254")
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.node_name} %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent = KubeletAgent(load_api_client(args.kubeconfig),
                         NodeConfig(root=args.root, node_name=args.node_name, node_index=args.node_index,
                                    image_store=args.image_store, host_root=args.root / "host"),
                         port=args.port)
    agent.start()
    stop.wait()
    agent.shutdown(stop_pods=True)


if __name__ == "__main__":
    main()
