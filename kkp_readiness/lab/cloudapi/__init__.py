"""The lab's cloud provider APIs: HTTPS test servers speaking the documented shapes of the calls the checks make.

No OpenStack, Azure or vCenter simulator can be installed from the package registries, so each
provider gets a small server here, and the real SDK clients (openstacksdk, azure-identity and the
azure-mgmt clients, pyvmomi) are pointed at it through their own endpoint settings. Each provider
module holds:

* ``World``: a dataclass describing the provider's side of the site (projects, networks, users,
  privileges, ...). Healthy by default; the lab's faults edit it before the server starts.
* ``Api``: the request handler built from ``World.to_dict()`` (``handle(request) -> Response``).
* ``lab_state(world, base_url, directory)``: what the ``lab-<provider>`` profile reads with
  ``${lab:cloud.<provider>.<key>}``; secrets are written to files (mode 0600), never into the state.

``server`` is the shared HTTPS machinery; ``python -m kkp_readiness.lab.cloudapi --config FILE`` serves
every provider of one lab in one process, each on its own loopback address and port.
"""
