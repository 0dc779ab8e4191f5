"""Certificates and keys of the dev control plane, and the kubeconfigs that use them.

kube-apiserver authenticates clients by X.509 certificates signed by one CA: the
certificate's CN is the user name and its O entries are the groups. Janus needs
three identities: ``janus-admin`` in ``system:masters`` (everything is allowed),
``janus-tester`` with no groups (RBAC refuses it, so tests can prove RBAC is
enforced) and ``system:kube-controller-manager`` (bound by the default RBAC
policy). Service-account tokens are signed with a separate RSA key: the API server
verifies them with the public half, the controller manager signs legacy tokens
with the private half.

Material is generated once per state directory and kept, so tokens and exported
kubeconfigs stay valid across restarts; only missing files are generated.
"""

import base64
import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from janus.dev.errors import DevClusterError

VALIDITY = datetime.timedelta(days=3650)
"""A dev cluster's certificates should not expire under a developer's feet."""

SERVER_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
SERVER_IPS = ("127.0.0.1", "10.0.0.1")
"""Loopback, and the ``kubernetes`` Service's ClusterIP in 10.0.0.0/24."""

USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("janus-admin", ("system:masters",)),
    "tester": ("janus-tester", ()),
    "controller-manager": ("system:kube-controller-manager", ()),
}
"""Client identities with a kubeconfig: file stem -> (CN = user name, O = groups)."""

FRONT_PROXY = "front-proxy-client"
"""The identity kube-apiserver proxies to aggregated servers with. Configuring it
also publishes the request-header CA that delegating servers (the controller
manager) look up; without it they log an error every few seconds."""

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Pki:
    """The file names under ``<state>/pki``."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def sa_key(self) -> Path:
        """Signs service-account tokens (apiserver and controller manager)."""
        return self.root / "sa.key"

    @property
    def sa_pub(self) -> Path:
        """Verifies service-account tokens (apiserver)."""
        return self.root / "sa.pub"

    def cert(self, name: str) -> Path:
        """``apiserver`` or one of ``USERS``."""
        return self.root / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.root / f"{name}.key"


def ensure_pki(root: Path) -> Pki:
    """Generate whatever key or certificate is missing under ``root``."""
    pki = Pki(root)
    root.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ensure_ca(pki)
    if not pki.cert("apiserver").is_file():
        _issue(pki, "apiserver", _name("kube-apiserver"), ca_key, ca_cert, _server_ext())
    clients = USERS | {FRONT_PROXY: (FRONT_PROXY, ())}
    for stem, (cn, groups) in clients.items():
        if not pki.cert(stem).is_file():
            _issue(pki, stem, _name(cn, groups), ca_key, ca_cert, _client_ext())
    if not pki.sa_pub.is_file():
        _ensure_sa_key(pki)
    return pki


def kubeconfig(pki: Pki, user: str, server: str) -> dict[str, Any]:
    """A self-contained kubeconfig (certificates inlined) for ``user`` at ``server``."""
    cluster, context = "janus-dev", f"janus-dev-{user}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": server, "certificate-authority-data": _b64(pki.ca_cert)}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": _b64(pki.cert(user)),
            "client-key-data": _b64(pki.key(user))}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }  # fmt: skip


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    """Write a kubeconfig readable only by its owner (it holds a private key)."""
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode())


def _ensure_ca(pki: Pki) -> tuple[Key, x509.Certificate]:
    if pki.ca_cert.is_file():
        key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise DevClusterError(f"{pki.ca_key} is not an EC or RSA key; delete {pki.root}")
        return key, x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("janus-dev-ca")
    ext = [(x509.BasicConstraints(ca=True, path_length=None), True), (_ca_usage(), True)]
    cert = _sign(_builder(name, key.public_key(), ext).issuer_name(name), key)
    _write_private(pki.ca_key, _pem_key(key))
    pki.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _issue(
    pki: Pki,
    stem: str,
    subject: x509.Name,
    ca_key: Key,
    ca_cert: x509.Certificate,
    ext: list[tuple[x509.ExtensionType, bool]],
) -> None:
    """Write ``<stem>.key`` and ``<stem>.crt``, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(subject, key.public_key(), ext).issuer_name(ca_cert.subject)
    _write_private(pki.key(stem), _pem_key(key))
    pki.cert(stem).write_bytes(_sign(builder, ca_key).public_bytes(serialization.Encoding.PEM))


def _ensure_sa_key(pki: Pki) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(pki.sa_key, _pem_key(key))
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pki.sa_pub.write_bytes(public)


def _builder(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    ext: list[tuple[x509.ExtensionType, bool]],
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )
    for value, critical in ext:
        builder = builder.add_extension(value, critical=critical)
    return builder


def _sign(builder: x509.CertificateBuilder, key: Key) -> x509.Certificate:
    return builder.sign(key, hashes.SHA256())


def _server_ext() -> list[tuple[x509.ExtensionType, bool]]:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    return [
        (x509.SubjectAlternativeName(names), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (_leaf_usage(), True),
    ]


def _client_ext() -> list[tuple[x509.ExtensionType, bool]]:
    return [
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        (_leaf_usage(), True),
    ]


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca_usage() -> x509.KeyUsage:
    return _usage(cert_sign=True)


def _leaf_usage() -> x509.KeyUsage:
    return _usage(cert_sign=False)


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pem_key(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` with mode 0600, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)
