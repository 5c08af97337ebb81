"""Redis as clusters and over TLS, for tests and benchmarks: real ``redis-server`` processes.

- `RedisCluster`: three masters (``--cluster-enabled yes``) on free loopback ports, joined with
  ``redis-cli --cluster create --cluster-yes`` (no replicas); its URL is ``redis+cluster://``.
- `TLSRedisServer`: one server that only speaks TLS, with a throwaway CA and server certificate
  written by `write_test_ca` (``cryptography``); its URL is ``rediss://...?ssl_ca_certs=<ca>``.

Both reuse `RedisServer` (one process each, stopped by its own pid), and every wait is bounded.
"""

from __future__ import annotations

import datetime
import ipaddress
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .processes import free_port
from .redis import START_TIMEOUT_S, RedisServer, redis_binary

CLUSTER_SIZE = 3
CLUSTER_TIMEOUT_S = 30.0


class RedisCluster:
    """Three cluster-enabled ``redis-server`` masters that own all 16384 slots between them.

    With ``tls``: every node (and the cluster bus) speaks only TLS, with one throwaway CA, as
    ElastiCache Serverless does; the URL is then ``rediss+cluster://...?ssl_ca_certs=<ca>``.
    """

    def __init__(self, workdir: Path, size: int = CLUSTER_SIZE, tls: bool = False) -> None:
        self.workdir = workdir
        self.tls = write_test_ca(workdir / "tls") if tls else None
        self.nodes: list[RedisServer] = []
        for index in range(size):
            node_dir = workdir / f"node-{index}"
            node_dir.mkdir(parents=True, exist_ok=True)
            extra = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            extra += ["--cluster-node-timeout", "5000"]
            if self.tls:
                node: RedisServer = TLSRedisServer(
                    node_dir, extra=[*extra, "--tls-cluster", "yes"], tls=self.tls
                )
            else:
                node = RedisServer(node_dir, extra=extra)
            node.port = cluster_port()
            self.nodes.append(node)

    @property
    def url(self) -> str:
        if self.tls:
            ca = quote(str(self.tls["ca"]), safe="")
            return f"rediss+cluster://127.0.0.1:{self.nodes[0].port}/0?ssl_ca_certs={ca}"
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}/0"

    @property
    def pids(self) -> list[int]:
        return [node.pid for node in self.nodes if node.pid is not None]

    def start(self) -> None:
        try:
            for node in self.nodes:
                node.start()
            self._create()
        except BaseException:
            self.stop()
            raise

    def _create(self) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli not installed (Debian: redis-tools)")
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        command = [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
        if self.tls:
            command += ["--tls", "--cacert", str(self.tls["ca"])]
        done = subprocess.run(command, capture_output=True, timeout=CLUSTER_TIMEOUT_S, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-2000:]!r}")
        end = time.monotonic() + CLUSTER_TIMEOUT_S
        while time.monotonic() < end:
            if all(_cluster_ok(node) for node in self.nodes):
                return
            time.sleep(0.1)
        raise RuntimeError(f"cluster not ok within {CLUSTER_TIMEOUT_S:g} s")

    def flushall(self) -> None:
        for node in self.nodes:
            node.client().flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def cluster_port() -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free too, at most 55535."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 55535)
        if all(_free(p) for p in (port, port + 10000)):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ok(node: RedisServer) -> bool:
    try:
        info = node.client().execute_command("CLUSTER", "INFO")
    except Exception:
        return False
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text


def start_cluster(workdir: Path, tls: bool = False) -> RedisCluster:
    cluster = RedisCluster(workdir, tls=tls)
    cluster.start()
    return cluster


# ---------------------------------------------------------------------------------- TLS
def write_test_ca(directory: Path, hosts: Sequence[str] = ("localhost", "127.0.0.1")) -> dict[str, Path]:
    """A throwaway CA and a server certificate for ``hosts`` (names or IP addresses; by default
    localhost and 127.0.0.1), valid for one day.

    Returns the paths ``ca``, ``cert`` and ``key`` (PEM). For tests only: the keys are not protected.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sixsense-udf test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [_subject_name(host) for host in hosts]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"ca": directory / "ca.pem", "cert": directory / "server.pem", "key": directory / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _subject_name(host: str) -> Any:
    """`host` as a certificate's subject alternative name: an IP address or a DNS name."""
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class TLSRedisServer(RedisServer):
    """A `RedisServer` that accepts only TLS connections (plain port off), with a test CA."""

    def __init__(
        self, workdir: Path, password: str | None = None, extra: Sequence[str] = (),
        tls: dict[str, Path] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(workdir, extra=extra)
        self.tls = tls or write_test_ca(workdir / "tls")
        self.password = password  # like ElastiCache's auth token (requirepass)

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        ca = quote(str(self.tls["ca"]), safe="")
        return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={ca}"

    def client(self, **options: Any) -> Any:
        import redis

        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=2, ssl=True,
            ssl_ca_certs=str(self.tls["ca"]), password=self.password, **options,
        )  # fmt: skip

    def start(self) -> None:
        from .processes import spawn

        args = [self.binary, "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(self.port)]
        args += ["--tls-cert-file", str(self.tls["cert"]), "--tls-key-file", str(self.tls["key"])]
        args += ["--tls-ca-cert-file", str(self.tls["ca"]), "--tls-auth-clients", "no"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"]
        args += self.extra
        if self.password:
            args += ["--requirepass", self.password]
        self.handle = spawn(args, log_path=self.workdir / f"redis-tls-{self.port}.log")
        self.handle.wait_until(lambda: bool(self.client().ping()), START_TIMEOUT_S, "redis-server (TLS)")


def start_tls_redis(workdir: Path, password: str | None = None) -> TLSRedisServer:
    if redis_binary() is None:
        raise RuntimeError("redis-server not installed")
    server = TLSRedisServer(workdir, password=password)
    try:
        server.start()
    except RuntimeError:
        server.port = free_port()
        server.start()
    return server
