"""The cluster's certificates and credentials: a CA, the API server's serving certificate,
its client certificate for the kubelet, the service-account signing key, and one static token
per component (the API server's token file maps each to its user and groups)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from polysaga_tools.cluster.layout import (
    API_PORT,
    API_SERVICE_IP,
    NODE_IP,
    NODE_NAME,
    ClusterLayout,
)

# Each component's identity, as the bootstrap RBAC policy and the Node authorizer know them.
COMPONENT_USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("polysaga-admin", ("system:masters",)),
    "kubelet": (f"system:node:{NODE_NAME}", ("system:nodes",)),
    "controller-manager": ("system:kube-controller-manager", ()),
    "scheduler": ("system:kube-scheduler", ()),
    "kube-proxy": ("system:kube-proxy", ()),
}

_VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class Credentials:
    ca: Path
    apiserver_cert: Path
    apiserver_key: Path
    kubelet_client_cert: Path
    kubelet_client_key: Path
    service_account_key: Path
    service_account_pub: Path
    token_file: Path
    tokens: dict[str, str]


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _signed(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    usage: x509.ObjectIdentifier | None = None,
    names: list[x509.GeneralName] | None = None,
    ca: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
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
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def write_credentials(layout: ClusterLayout) -> Credentials:
    """Makes every certificate, key and token the cluster's components use."""
    certs = layout.certs
    certs.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("polysaga-cluster-ca")
    _write_cert(_signed(ca_name, ca_key, ca_name, ca_key, ca=True), certs / "ca.crt")
    _write_key(ca_key, certs / "ca.key")

    serving_key = _key()
    names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.IPv4Address(NODE_IP)),
        x509.IPAddress(ipaddress.IPv4Address(API_SERVICE_IP)),
        x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.DNSName("kubernetes.default.svc.cluster.local"),
    ]
    serving = _signed(
        _name("kube-apiserver"),
        serving_key,
        ca_name,
        ca_key,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        names=names,
    )
    _write_cert(serving, certs / "apiserver.crt")
    _write_key(serving_key, certs / "apiserver.key")

    # The API server shows this to the kubelet for logs, exec and port-forward.
    client_key = _key()
    client = _signed(
        _name("kube-apiserver-kubelet-client", "system:masters"),
        client_key,
        ca_name,
        ca_key,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    _write_cert(client, certs / "apiserver-kubelet-client.crt")
    _write_key(client_key, certs / "apiserver-kubelet-client.key")

    sa_key = _key()
    _write_key(sa_key, certs / "sa.key")
    (certs / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    tokens = {component: secrets.token_urlsafe(32) for component in COMPONENT_USERS}
    token_file = certs / "tokens.csv"
    token_file.touch(mode=0o600)
    token_file.write_text(
        "".join(
            f'{tokens[component]},{user},{user},"{",".join(groups)}"\n'
            for component, (user, groups) in COMPONENT_USERS.items()
        )
    )
    credentials = Credentials(
        ca=certs / "ca.crt",
        apiserver_cert=certs / "apiserver.crt",
        apiserver_key=certs / "apiserver.key",
        kubelet_client_cert=certs / "apiserver-kubelet-client.crt",
        kubelet_client_key=certs / "apiserver-kubelet-client.key",
        service_account_key=certs / "sa.key",
        service_account_pub=certs / "sa.pub",
        token_file=token_file,
        tokens=tokens,
    )
    for component in COMPONENT_USERS:
        path = layout.admin_kubeconfig if component == "admin" else layout.kubeconfig(component)
        write_kubeconfig(path, credentials.ca, tokens[component])
    return credentials


def write_kubeconfig(path: Path, ca: Path, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "polysaga-local",
                "cluster": {
                    "server": f"https://{NODE_IP}:{API_PORT}",
                    "certificate-authority": str(ca),
                },
            }
        ],
        "users": [{"name": "polysaga-local", "user": {"token": token}}],
        "contexts": [
            {
                "name": "polysaga-local",
                "context": {"cluster": "polysaga-local", "user": "polysaga-local"},
            }
        ],
        "current-context": "polysaga-local",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    # JSON is YAML: kubectl and every component read it.
    path.write_text(json.dumps(config, indent=2))
