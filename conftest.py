"""Root conftest: thin. The plugin comes from the ``kkp_readiness.plugin`` entry point; the
fixtures the shipped checks use live in ``fixtures/``."""

pytest_plugins = ["kkp_readiness.plugin", "fixtures.site", "fixtures.cluster", "fixtures.active", "fixtures.lab",
                  "fixtures.bastion", "fixtures.egress", "fixtures.performance", "fixtures.cloud"]
