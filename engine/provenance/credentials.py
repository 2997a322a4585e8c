"""C2PA content credentials: sign every output image, and read and check the credentials of any image.

Signing needs a certificate. On first use this installation makes its own: a local certificate authority
(``ca.pem``, self-signed, basicConstraints CA) and a signing certificate issued by it (``signer.pem``,
ECDSA P-256 for ES256, digitalSignature, extended key usage emailProtection + documentSigning), with their
keys (``ca.key``, ``signer.key``, mode 0600), in ``<data folder>/credentials``. They hold no personal data
(names are "GAN Studio local CA" / "GAN Studio local signer"). Later runs reuse them; a signing
certificate close to expiry is renewed from the same CA.

A signed image carries a C2PA manifest (PNG: a ``caBX`` chunk; JPEG: APP11 segments; WebP: a C2PA chunk)
with ``c2pa.actions`` (``c2pa.created``, digital source type trainedAlgorithmicMedia, GAN Studio as
software agent), our ``org.ganstudio.provenance`` assertion (the :class:`OutputInfo` fields) and a
``c2pa.training-mining`` assertion (plus its CAWG successor ``cawg.training-mining``) saying whether the
image may be used to train models: "notAllowed" unless the caller says otherwise.

There is no timestamp authority (that needs the network), so a reader checks the signing certificate's
validity against its own clock; the certificates are made long-lived for that reason.

Reading reports one state: "none" (no manifest), "Invalid" (the manifest fails validation, e.g. the pixels
changed after signing), "Valid" (signed and intact, by a certificate the reader does not trust) or
"Trusted" (intact and the certificate chains to a trust anchor: by default this installation's own CA
and any other installation's ca.pem copied into ``credentials/trusted/``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import ConfigError, DataError
from engine.fsutil import atomic_write_bytes
from engine.provenance.metadata import (
    DEFAULT_TRAINING,
    DIGITAL_SOURCE_TYPE,
    TRAINING_USES,
    OutputInfo,
    data_mining_allows,
    parse_xmp,
)

__all__ = [
    "CLAIM_GENERATOR",
    "PROVENANCE_LABEL",
    "TRAINING_LABEL",
    "CREDENTIALS_FOLDER",
    "SigningIdentity",
    "signing_identity",
    "sign_file",
    "sign_bytes",
    "CredentialReport",
    "read_credentials",
    "default_trust_anchors",
    "training_allowed",
]

APP_NAME = "GAN Studio"
CLAIM_GENERATOR = f"{APP_NAME}/{__version__}"
PROVENANCE_LABEL = "org.ganstudio.provenance"
TRAINING_LABEL = "c2pa.training-mining"
CAWG_TRAINING_LABEL = "cawg.training-mining"
TRAINING_ENTRIES = ("ai_training", "ai_generative_training", "ai_inference", "data_mining")
_TRAINING_DECIDES = ("ai_training", "ai_generative_training", "data_mining")  # inference is not training
CREDENTIALS_FOLDER = "credentials"
TRUSTED_FOLDER = "trusted"  # inside the credentials folder: other installations' ca.pem files to trust
CA_CERT_NAME, CA_KEY_NAME = "ca.pem", "ca.key"
CERT_NAME, KEY_NAME = "signer.pem", "signer.key"
CA_YEARS, SIGNER_YEARS = 24, 20
RENEW_BEFORE = dt.timedelta(days=30)
_LOCK_NAME = ".creating"
_LOCK_STALE_S = 60.0
_LOCK_WAIT_S = 30.0
_EKU_DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"

_SIGN_SETTINGS: dict[str, Any] = {
    # no thumbnail: the image is its own preview, and it would double a small PNG's size and time
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_after_sign": True},
}
_README = """\
GAN Studio content credentials
==============================

GAN Studio signs every image it writes with C2PA content credentials, using the certificates here.
They were made on this computer when it first signed an image and hold no personal data.

  ca.pem      this installation's own certificate authority (public; share it)
  signer.pem  the signing certificate, issued by ca.pem (public)
  ca.key      the authority's private key   (secret: never share it)
  signer.key  the signing key               (secret: never share it)

To have another GAN Studio installation show these images as "Trusted" rather than "Valid", copy ca.pem
(renamed, e.g. to alice-laptop.pem) into its credentials/trusted/ folder. Other C2PA tools: add ca.pem to
their trust anchors (in the C2PA SDKs, the trust.user_anchors setting). Public verify sites use the
official C2PA trust list and will show the signer as unknown: the signature still proves that the image
is unchanged since it was signed, and that whoever holds signer.key signed it.

Deleting this folder makes a new authority on the next signing; images signed before then read as
"Valid", not "Trusted", on this computer unless you keep a copy of the old ca.pem.
"""


# ---------------------------------------------------------------------------------------------- identity


@dataclass(frozen=True)
class SigningIdentity:
    """Where this installation's signing certificates live."""

    folder: Path
    ca_cert: Path  # the local CA certificate (PEM): the trust anchor to hand to other verifiers
    cert: Path  # the signing certificate (PEM), issued by ca_cert
    key: Path  # the signing key (PEM, PKCS#8, mode 0600)

    @classmethod
    def in_folder(cls, folder: Path) -> SigningIdentity:
        folder = Path(folder)
        return cls(folder, folder / CA_CERT_NAME, folder / CERT_NAME, folder / KEY_NAME)


def _default_folder() -> Path:
    from engine.provenance import identity

    return identity.data_dir() / CREDENTIALS_FOLDER


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _read_cert(path: Path) -> Any:
    from cryptography import x509

    return x509.load_pem_x509_certificate(path.read_bytes())


def _read_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _same_key(cert: Any, key: Any) -> bool:
    from cryptography.hazmat.primitives import serialization

    def spki(public: Any) -> bytes:
        return bytes(public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))

    return spki(cert.public_key()) == spki(key.public_key())


def _usable_signer(ident: SigningIdentity) -> bool:
    """True when the signing certificate and key exist, match, chain to ca.pem and are not about to expire."""
    try:
        ca, cert, key = _read_cert(ident.ca_cert), _read_cert(ident.cert), _read_key(ident.key)
        cert.verify_directly_issued_by(ca)
    except Exception:  # missing, unreadable, mismatched: a new one is made
        return False
    return _same_key(cert, key) and cert.not_valid_after_utc - RENEW_BEFORE > _now()


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, APP_NAME),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, sign: bool) -> Any:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not sign,
        crl_sign=not sign,
        encipher_only=False,
        decipher_only=False,
    )


def _make_ca() -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    name = _name(f"{APP_NAME} local CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_signer(ca: Any, ca_key: Any) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    end = min(now + dt.timedelta(days=365 * SIGNER_YEARS), ca.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{APP_NAME} local signer"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, ObjectIdentifier(_EKU_DOCUMENT_SIGNING)]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _pem_cert(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(cert.public_bytes(serialization.Encoding.PEM))


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _write_secret(path: Path, data: bytes) -> None:
    """Write a private key atomically without it ever being readable by others (mode 0600 throughout)."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # atomic_open keeps the target's mode
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    atomic_write_bytes(path, data)


@contextlib.contextmanager
def _creation_lock(folder: Path) -> Iterator[None]:
    """One process at a time makes certificates in ``folder`` (the GUI and a CLI may start together)."""
    lock = folder / _LOCK_NAME
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            break
        except FileExistsError:
            try:
                age = time.time() - lock.stat().st_mtime
            except FileNotFoundError:
                continue
            if age > _LOCK_STALE_S:  # left behind by a process that was killed
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                continue
            if time.monotonic() > deadline:
                raise DataError(
                    f"{folder}: another GAN Studio is creating the signing certificates. If none is running, "
                    f"delete {lock} and try again."
                ) from None
            time.sleep(0.05)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


def _create(ident: SigningIdentity) -> None:
    ca = ca_key = None
    with contextlib.suppress(Exception):  # keep a readable CA whose key we still have
        ca, ca_key = _read_cert(ident.ca_cert), _read_key(ident.folder / CA_KEY_NAME)
        if not (_same_key(ca, ca_key) and ca.not_valid_after_utc - RENEW_BEFORE > _now()):
            ca = ca_key = None
    if ca is None or ca_key is None:
        ca, ca_key = _make_ca()
        _write_secret(ident.folder / CA_KEY_NAME, _pem_key(ca_key))
        atomic_write_bytes(ident.ca_cert, _pem_cert(ca))
    cert, key = _make_signer(ca, ca_key)
    _write_secret(ident.key, _pem_key(key))
    atomic_write_bytes(ident.cert, _pem_cert(cert))
    readme = ident.folder / "README.txt"
    if not readme.exists():
        atomic_write_bytes(readme, _README.encode("utf-8"))


def signing_identity(folder: Path | None = None) -> SigningIdentity:
    """This installation's signing certificates, made on first call (CA + ES256 signer) and reused after.

    ``folder`` defaults to ``identity.data_dir()/credentials``. Raises DataError naming the folder when it
    cannot be written.
    """
    ident = SigningIdentity.in_folder(Path(folder) if folder is not None else _default_folder())
    if _usable_signer(ident):
        return ident
    try:
        ident.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _creation_lock(ident.folder):
            if not _usable_signer(ident):  # another process may have made them while we waited
                _create(ident)
    except OSError as exc:
        raise DataError(
            f"{ident.folder}: cannot create the content-credential certificates ({exc.strerror or exc}). "
            "Check that the folder is writable (or set GAN_STUDIO_HOME to a writable folder)."
        ) from None
    return ident


_PEM_CACHE: dict[tuple[Path, Path, Path], tuple[tuple[int, ...], bytes, bytes]] = {}


def _signing_pems(ident: SigningIdentity) -> tuple[bytes, bytes]:
    """(certificate chain: signer then CA, signing key) as PEM, cached while the files are unchanged."""
    paths = (ident.cert, ident.ca_cert, ident.key)
    try:
        stamp = tuple(value for path in paths for value in (path.stat().st_mtime_ns, path.stat().st_size))
        cached = _PEM_CACHE.get(paths)
        if cached and cached[0] == stamp:
            return cached[1], cached[2]
        chain = ident.cert.read_bytes().strip() + b"\n" + ident.ca_cert.read_bytes().strip() + b"\n"
        key = ident.key.read_bytes()
    except OSError as exc:
        raise DataError(
            f"{ident.folder}: the signing certificate cannot be read ({exc.strerror or exc}). "
            "Delete the folder to have GAN Studio make new ones."
        ) from None
    _PEM_CACHE[paths] = (stamp, chain, key)
    return chain, key


# ---------------------------------------------------------------------------------------------- signing


def _mime_of(head: bytes) -> str | None:
    """The MIME type of an image from its first bytes, for the formats the app writes and c2pa signs."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _check_training(training: str) -> None:
    if training not in TRAINING_USES:
        raise ConfigError(f"training use must be one of {', '.join(TRAINING_USES)}; got {training!r}")


def _manifest(info: OutputInfo, title: str, training: str) -> dict[str, Any]:
    software = {"name": APP_NAME, "version": __version__}
    entries = {f"c2pa.{name}": {"use": training} for name in TRAINING_ENTRIES}
    cawg_entries = {f"cawg.{name}": {"use": training} for name in TRAINING_ENTRIES}
    created = {
        "action": "c2pa.created",
        "digitalSourceType": DIGITAL_SOURCE_TYPE,
        "softwareAgent": software,
        "description": f"{info.action} with the model {info.model_name or info.model_card_id}",
    }
    return {
        "claim_generator": CLAIM_GENERATOR,
        "claim_generator_info": [software],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [created]}},
            {"label": PROVENANCE_LABEL, "data": {**info.to_dict(), "install_id_hex": info.install_id_hex}},
            {"label": TRAINING_LABEL, "data": {"entries": entries}},
            {"label": CAWG_TRAINING_LABEL, "data": {"entries": cawg_entries}},
        ],
    }


def sign_bytes(
    data: bytes,
    info: OutputInfo,
    *,
    identity: SigningIdentity | None = None,
    training: str = DEFAULT_TRAINING,
    name: str = "image",
) -> bytes:
    """``data`` (a PNG, JPEG or WebP file's bytes) with a C2PA manifest embedded; see :func:`sign_file`.

    ``name`` is the manifest title and what error messages call the image.
    """
    _check_training(training)
    mime = _mime_of(data[:16])
    if mime is None:
        raise DataError(
            f"{name}: content credentials can be added to PNG, JPEG and WebP files only, and this file is "
            "none of them (or is damaged). Save the image as PNG."
        )
    ident = identity or signing_identity()
    chain, key = _signing_pems(ident)
    import c2pa

    output = io.BytesIO()
    try:
        with c2pa.Context.from_dict(_SIGN_SETTINGS) as context:
            signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
            try:
                builder = c2pa.Builder(_manifest(info, Path(name).name, training), context=context)
                builder.sign(signer, mime, io.BytesIO(data), output)
            finally:
                signer.close()
    except c2pa.C2paError as exc:
        raise DataError(
            f"{name}: content credentials could not be added ({exc}). The file may be damaged: write the "
            f"image again; if the signing certificate is the problem, delete {ident.folder} to make new ones."
        ) from None
    return output.getvalue()


def sign_file(
    path: Path, info: OutputInfo, *, identity: SigningIdentity | None = None, training: str = DEFAULT_TRAINING
) -> None:
    """Embed C2PA content credentials in the image at ``path``, rewriting it atomically.

    The manifest holds ``c2pa.actions`` (c2pa.created, trainedAlgorithmicMedia, GAN Studio as software
    agent), ``org.ganstudio.provenance`` (``info``) and ``c2pa.training-mining`` / ``cawg.training-mining``
    with ``training`` ("notAllowed" by default, "allowed" or "constrained") for AI training, generative
    training, inference and data mining. PNG, JPEG and WebP; anything else, or a damaged file, raises
    DataError naming the file. An earlier manifest in the file is replaced. No network is used.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read to add content credentials ({exc.strerror or exc}).") from None
    signed = sign_bytes(data, info, identity=identity, training=training, name=str(path))
    atomic_write_bytes(path, signed)


# ---------------------------------------------------------------------------------------------- reading

_TAMPER_MARKS = ("mismatch", "manifest.damaged")
_STATE_WORDS = {
    "none": "No content credentials",
    "Valid": "Valid content credentials (signer not trusted here)",
    "Trusted": "Trusted content credentials",
    "Invalid": "Invalid content credentials",
}


@dataclass(frozen=True)
class CredentialReport:
    """What a file's C2PA manifest says, and whether it checks out."""

    state: str  # "none" | "Valid" | "Trusted" | "Invalid"
    issuer: str = ""  # the organisation named by the signing certificate
    claim_generator: str = ""  # e.g. "GAN Studio/0.1.0"
    actions: list[str] = field(default_factory=list)  # e.g. ["c2pa.created"]
    digital_source_type: str = ""
    training_allowed: bool | None = None
    assertions: dict[str, Any] = field(default_factory=dict)  # label -> data, of the active manifest
    problems: list[str] = field(default_factory=list)  # "code: explanation" of each failed check
    codes: list[str] = field(default_factory=list)  # the failed validation codes alone

    @property
    def tampered(self) -> bool:
        """True when the image or its manifest changed after signing (a hash or signature mismatch)."""
        return any(mark in code for code in self.codes for mark in _TAMPER_MARKS)

    @property
    def trusted(self) -> bool:
        return self.state == "Trusted"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tampered": self.tampered}

    def summary(self) -> str:
        """One line for a person: the state, who made it, what it says about training, what failed."""
        if self.state == "none":
            return _STATE_WORDS["none"]
        parts = [_STATE_WORDS.get(self.state, self.state)]
        if self.claim_generator:
            source = self.digital_source_type.rsplit("/", 1)[-1]
            parts.append(f"made with {self.claim_generator}" + (f" ({source})" if source else ""))
        if self.issuer:
            parts.append(f"signed by {self.issuer}")
        if self.training_allowed is False:
            parts.append("training not allowed")
        elif self.training_allowed is True:
            parts.append("training allowed")
        if self.tampered:
            parts.append("changed after signing")
        failed = [code for code in self.codes if code != "signingCredential.untrusted"]
        if failed:
            parts.append("failed: " + ", ".join(failed))
        return "; ".join(parts)


class _NotSupported(Exception):
    """The file is of a format that cannot carry C2PA manifests."""


def _training_from_entries(entries: Any) -> bool | None:
    if not isinstance(entries, dict):
        return None
    uses = {}
    for key, entry in entries.items():
        short = str(key).split(".", 1)[-1]
        if short in _TRAINING_DECIDES and isinstance(entry, dict):
            uses[short] = entry.get("use")
    if not uses:
        return None
    if any(use in ("notAllowed", "constrained") for use in uses.values()):
        return False  # constrained: we cannot check the constraints, so we do not assume them met
    if any(use == "allowed" for use in uses.values()):
        return True
    return None


def _training_from_assertions(assertions: dict[str, Any]) -> bool | None:
    answers = [
        _training_from_entries((assertions.get(label) or {}).get("entries"))
        for label in (TRAINING_LABEL, CAWG_TRAINING_LABEL)
        if isinstance(assertions.get(label), dict)
    ]
    if False in answers:
        return False
    if True in answers:
        return True
    return None


def _pem_certificates(path: Path) -> str:
    """The PEM text of a file of certificates; DataError naming it when it holds none."""
    from cryptography import x509

    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: trust anchors cannot be read ({exc.strerror or exc}).") from None
    try:
        x509.load_pem_x509_certificates(text.encode("ascii", "replace"))
    except ValueError:
        raise DataError(
            f"{path}: holds no PEM certificates to trust; give the ca.pem of the installation that signed."
        ) from None
    return text.strip() + "\n"


def default_trust_anchors() -> list[Path]:
    """The CA files trusted when none are given: this installation's ca.pem, then every ``*.pem`` in
    ``<data folder>/credentials/trusted/`` (other installations' ca.pem files, copied there by the user)."""
    folder = _default_folder()
    found = [folder / CA_CERT_NAME] if (folder / CA_CERT_NAME).is_file() else []
    return found + sorted((folder / TRUSTED_FOLDER).glob("*.pem"))


def _anchors_pem(trust_anchors: Path | None) -> str | None:
    """The PEM text of the trust anchors: ``trust_anchors`` when given, else :func:`default_trust_anchors`."""
    if trust_anchors is not None:
        return _pem_certificates(Path(trust_anchors))
    try:
        paths = default_trust_anchors()
    except OSError:
        return None
    texts = []
    for path in paths:
        with contextlib.suppress(DataError):  # a stray file in trusted/ must not stop every check
            texts.append(_pem_certificates(path))
    return "".join(texts) or None


def _read_settings(anchors: str | None) -> dict[str, Any]:
    settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if anchors:
        settings["trust"] = {"user_anchors": anchors}
    return settings


def _report_from(reader: Any) -> CredentialReport:
    state = reader.get_validation_state() or "Invalid"
    results = reader.get_validation_results() or {}
    failures = (results.get("activeManifest") or {}).get("failure") or []
    manifest = reader.get_active_manifest() or {}
    assertions: dict[str, Any] = {}
    for assertion in manifest.get("assertions") or []:
        if isinstance(assertion, dict) and "label" in assertion:
            assertions.setdefault(str(assertion["label"]), assertion.get("data"))
    actions: list[str] = []
    source = ""
    for label in ("c2pa.actions.v2", "c2pa.actions"):
        for action in (assertions.get(label) or {}).get("actions") or []:
            if isinstance(action, dict):
                actions.append(str(action.get("action", "")))
                source = source or str(action.get("digitalSourceType") or "")
    generator = str(manifest.get("claim_generator") or "")
    if not generator:
        info = manifest.get("claim_generator_info") or []
        if info and isinstance(info[0], dict):
            generator = "/".join(str(info[0][key]) for key in ("name", "version") if info[0].get(key))
    signature = manifest.get("signature_info") or {}
    codes = [str(item.get("code", "")) for item in failures if isinstance(item, dict)]
    problems = [f"{item.get('code', '')}: {item.get('explanation', '')}" for item in failures if isinstance(item, dict)]
    return CredentialReport(
        state=state,
        issuer=str(signature.get("issuer") or signature.get("common_name") or ""),
        claim_generator=generator,
        actions=actions,
        digital_source_type=source,
        training_allowed=_training_from_assertions(assertions),
        assertions=assertions,
        problems=problems,
        codes=codes,
    )


def _read(path: Path, anchors: str | None) -> CredentialReport:
    """The report for ``path`` validated against the ``anchors`` PEM; _NotSupported for other formats."""
    import c2pa

    damaged = (c2pa.C2paError.Decoding, c2pa.C2paError.Verify, c2pa.C2paError.Json, c2pa.C2paError.Manifest)
    try:
        with open(path, "rb") as stream, c2pa.Context.from_dict(_read_settings(anchors)) as context:
            mime = _mime_of(stream.read(16))
            stream.seek(0)
            try:
                reader = c2pa.Reader.try_create(mime, stream, None, context)  # mime None: c2pa looks
            except c2pa.C2paError.NotSupported:
                raise _NotSupported from None
            except damaged as exc:
                # the file has C2PA data that does not decode: changed or cut after signing
                return CredentialReport(
                    state="Invalid", problems=[f"manifest.damaged: {exc}"], codes=["manifest.damaged"]
                )
            if reader is None:
                return CredentialReport(state="none")
            with reader:
                return _report_from(reader)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file; check the path.") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    except c2pa.C2paError as exc:
        raise DataError(
            f"{path}: not a readable image ({exc}); open it in an image viewer to check it is not damaged."
        ) from None


def read_credentials(path: Path, *, trust_anchors: Path | None = None) -> CredentialReport:
    """Read and validate the C2PA manifest of ``path``.

    ``trust_anchors`` is a PEM file of CA certificates to trust; by default :func:`default_trust_anchors`
    (this installation's own CA and ``credentials/trusted/*.pem``), so the app's own outputs read "Trusted"
    here. Returns state "none" for an image
    without credentials; raises DataError naming the file when it is missing, damaged or of a format that
    cannot carry credentials. Works offline (no remote manifests, no OCSP).
    """
    path = Path(path)
    try:
        return _read(path, _anchors_pem(trust_anchors))
    except _NotSupported:
        raise DataError(
            f"{path}: this file format cannot carry content credentials (PNG, JPEG, WebP, TIFF, GIF, AVIF "
            "and HEIF can); there are none to check."
        ) from None


def _xmp_data_mining(path: Path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            raw = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    except Exception:
        return None  # not an image Pillow reads: no XMP to go by
    if not raw:
        return None
    try:
        props = parse_xmp(raw)
    except Exception:
        return None
    value = props.get("{http://ns.useplus.org/ldf/xmp/1.0/}DataMining")
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


def training_allowed(path: Path) -> bool | None:
    """Whether the file's own credentials allow using it to train a model.

    False when its C2PA / CAWG training-mining assertion says "notAllowed" (or "constrained") for AI
    training, generative training or data mining, or its XMP plus:DataMining is a DMI-PROHIBITED value;
    True when one says allowed and none forbids; None when neither says anything. A "notAllowed" counts
    even from a manifest that fails validation; an "allowed" counts only from a valid one. Formats that
    cannot carry C2PA are judged by their XMP alone; a damaged file raises DataError naming it.
    """
    path = Path(path)
    answers: list[bool | None] = []
    try:
        report = _read(path, None)  # trust does not matter here: a signature is not needed to say no
    except _NotSupported:
        report = None
    if report is not None and report.training_allowed is not None:
        if report.state != "Invalid" or report.training_allowed is False:
            answers.append(report.training_allowed)
    answers.append(data_mining_allows(_xmp_data_mining(path)))
    if False in answers:
        return False
    if True in answers:
        return True
    return None
