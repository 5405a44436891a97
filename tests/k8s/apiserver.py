"""A real Kubernetes control plane for the tests: etcd and kube-apiserver (both built by
scripts/bootstrap.d/kubernetes.sh) on free loopback ports in a temporary directory, with
generated certificates, a service-account signing key, a static admin token and RBAC
authorization. No kubelet, scheduler or controller-manager runs: objects are stored and
validated, but no pod ever starts and no garbage collector deletes dependents."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import secrets
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from polysaga_tools.servers import ServerError, find_binary, free_port

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class KubeApiServer:
    """What a test needs to talk to the API server as the cluster admin."""

    url: str
    kubeconfig: Path
    ca_file: Path
    admin_token: str
    root: Path

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Runs kubectl as the admin; a failure shows kubectl's own message."""
        done = subprocess.run(
            [find_binary("kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the API, as the admin or as the holder of ``token``."""
        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
            timeout=30,
        )


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_certificates(certs: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1 signed by it, and the service-account key."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "polysaga-test-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = _key()
    serving_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (certs / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (certs / "apiserver.crt").write_bytes(serving_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(serving_key, certs / "apiserver.key")
    sa_key = _key()
    _write_key(sa_key, certs / "sa.key")
    (certs / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def write_kubeconfig(path: Path, url: str, ca_file: Path, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "polysaga-test",
                "cluster": {"server": url, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [
            {
                "name": "polysaga-test",
                "context": {"cluster": "polysaga-test", "user": "admin", "namespace": "default"},
            }
        ],
        "current-context": "polysaga-test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def _log_tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    log: Path,
    what: str,
    timeout_s: float,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{what} exited with {proc.returncode}:\n{_log_tail(log)}")
        if ready():
            return
        time.sleep(0.2)
    raise ServerError(f"{what} was not ready within {timeout_s:.0f} s:\n{_log_tail(log)}")


def _etcd_healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).json().get("health") == "true"
    except (httpx.HTTPError, ValueError):
        return False


def _apiserver_ready(url: str, ca_file: Path, token: str) -> bool:
    try:
        response = httpx.get(
            f"{url}/readyz",
            verify=ssl.create_default_context(cafile=str(ca_file)),
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@contextlib.contextmanager
def running_apiserver(root: Path) -> Iterator[KubeApiServer]:
    """etcd and kube-apiserver in ``root``, stopped when the context exits."""
    certs = root / "certs"
    certs.mkdir()
    _write_certificates(certs)
    admin_token = secrets.token_urlsafe(32)
    # user,uid,groups: system:masters is bound to cluster-admin by RBAC's bootstrap policy.
    (root / "tokens.csv").write_text(f'{admin_token},admin,admin,"system:masters"\n')

    etcd_port, etcd_peer_port, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    etcd_peer = f"http://127.0.0.1:{etcd_peer_port}"
    etcd_argv = [
        find_binary("etcd"),
        "--name=polysaga-test",
        f"--data-dir={root / 'etcd'}",
        f"--listen-client-urls={etcd_url}",
        f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls={etcd_peer}",
        f"--initial-advertise-peer-urls={etcd_peer}",
        f"--initial-cluster=polysaga-test={etcd_peer}",
        "--unsafe-no-fsync",  # throwaway data: test speed over durability
        "--log-level=warn",
    ]
    url = f"https://127.0.0.1:{api_port}"
    apiserver_argv = [
        find_binary("kube-apiserver"),
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={api_port}",
        f"--tls-cert-file={certs / 'apiserver.crt'}",
        f"--tls-private-key-file={certs / 'apiserver.key'}",
        f"--client-ca-file={certs / 'ca.crt'}",
        f"--token-auth-file={root / 'tokens.csv'}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={certs / 'sa.pub'}",
        f"--service-account-signing-key-file={certs / 'sa.key'}",
        # Addresses are only allocated to Services; nothing routes to them here.
        "--service-cluster-ip-range=10.96.0.0/16",
        # A loopback address may not be published as the `kubernetes` Service's endpoint.
        "--endpoint-reconciler-type=none",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        "--v=1",
    ]
    ca_file = certs / "ca.crt"
    with _process(etcd_argv, root / "etcd.log") as etcd:
        _wait_until(lambda: _etcd_healthy(etcd_url), etcd, root / "etcd.log", "etcd", 60)
        log = root / "kube-apiserver.log"
        with _process(apiserver_argv, log) as apiserver:
            _wait_until(
                lambda: _apiserver_ready(url, ca_file, admin_token),
                apiserver,
                log,
                "kube-apiserver",
                180,
            )
            kubeconfig = root / "kubeconfig"
            write_kubeconfig(kubeconfig, url, ca_file, admin_token)
            yield KubeApiServer(
                url=url, kubeconfig=kubeconfig, ca_file=ca_file, admin_token=admin_token, root=root
            )
