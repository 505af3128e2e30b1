"""Shared fixtures. Each real component has its own fixture plugin module next to this file.

Never import txredisapi, prometheus_client.twisted or twisted.internet.reactor here: pytest-twisted
installs the asyncio reactor (``--reactor=asyncio``) and an early import would install another.
"""

pytest_plugins = ["fixtures_redis", "fixtures_sandbox"]
