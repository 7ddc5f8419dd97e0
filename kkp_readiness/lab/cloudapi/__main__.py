"""``python -m kkp_readiness.lab.cloudapi --config CONFIG``: serve the lab's cloud provider APIs.

``CONFIG`` is the JSON file ``CloudPart`` writes: one entry per provider with its address, port,
certificate chain and key, world file and request log. Every provider is served in this one process
(each on its own address and port) until the process is signalled.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from kkp_readiness.lab.cloudapi.providers import api_for
from kkp_readiness.lab.cloudapi.server import build_server, serve_in_thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kkp_readiness.lab.cloudapi", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="config.json written by the lab")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())
    servers = []
    for entry in config["servers"]:
        world = json.loads(Path(entry["world"]).read_text())
        api = api_for(entry["provider"], world, entry["base_url"])
        servers.append(build_server(entry["address"], entry["port"], entry["cert"], entry["key"], api,
                                    Path(entry["request_log"])))
    stopping = []

    def terminate(signum: int, frame: object) -> None:
        stopping.append(signum)
        for server in servers:
            server.shutdown()

    signal.signal(signal.SIGTERM, terminate)
    threads = [serve_in_thread(server) for server in servers]
    for entry in config["servers"]:
        print(f"kkp lab cloudapi {entry['provider']} serving {entry['base_url']}", flush=True)
    for thread in threads:
        thread.join()
    for server in servers:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
