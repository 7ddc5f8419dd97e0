"""``python -m kkp_readiness.lab.kubeapi --config CONFIG``: run the lab's Kubernetes API server.

The lab starts it as a daemon; ``CONFIG`` is the JSON file ``KubeApiPart`` writes (address, port,
certificate chain and key, cluster file, request log). The process serves until it is signalled.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from kkp_readiness.lab.kubeapi.server import build_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kkp_readiness.lab.kubeapi", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="config.json written by the lab")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())
    server = build_server(config)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM (the lab stopping) ends serve_forever, so that the kubelet's processes are killed too.
    signal.signal(signal.SIGTERM, terminate)
    print(f"kkp lab kubeapi serving https://{config['address']}:{config['port']}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.api.store.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
