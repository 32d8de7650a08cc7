"""Protection of the HTTP endpoints: TLS and basic auth, from a web config file.

The file has the shape of the Prometheus exporters' web configuration
(prometheus/exporter-toolkit), so the same file and the same habits work:

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: clients-ca.crt            # optional
      client_auth_type: RequireAndVerifyClientCert
      min_version: TLS12                        # optional
    basic_auth_users:
      prometheus: $2b$12$...                    # bcrypt hash of the password

Relative paths are relative to the file. Passwords are stored only as
bcrypt hashes; a check costs a bcrypt round, so results are cached (keyed
by a SHA-256 of the credentials, never the password itself).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import ssl
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

from .config import ConfigError, load_document

ENV_WEB_CONFIG = "LAG_EXPORTER_WEB_CONFIG"

_BCRYPT_HASH = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
_TOP_KEYS = ("tls_server_config", "basic_auth_users")
_TLS_KEYS = ("cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version")
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# exporter-toolkit also has these two, which ask for a certificate without
# verifying it; Python's TLS cannot do that.
_UNSUPPORTED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
_TLS_VERSIONS = {
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_AUTH_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class TlsServerConfig:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"


@dataclass(frozen=True, slots=True)
class WebConfig:
    """A validated web config: TLS (None: plain HTTP) and basic-auth users (empty: none)."""

    tls: TlsServerConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    # Built once at load, so a broken certificate is a load error, not a
    # failure of every connection.
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)


def _mapping(value: object, key: str) -> Mapping[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{key}: expected a mapping with string keys")
    return value


def _path(value: object, key: str, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a file path")
    if "\0" in value:
        raise ConfigError(f"{key}: not a valid file path")
    path = Path(value)
    return path if path.is_absolute() else base / path


def _tls(value: object, base: Path) -> TlsServerConfig:
    key = "tls_server_config"
    mapping = _mapping(value, key)
    for k in mapping:
        if k not in _TLS_KEYS:
            raise ConfigError(
                f"{key}.{k}: unknown or unsupported key; expected one of: {', '.join(_TLS_KEYS)}"
            )
    for required in ("cert_file", "key_file"):
        if required not in mapping:
            raise ConfigError(f"{key}.{required}: required when {key} is given")
    auth = mapping.get("client_auth_type", "NoClientCert")
    if auth in _UNSUPPORTED_CLIENT_AUTH:
        raise ConfigError(
            f"{key}.client_auth_type: {auth} (a certificate that is not verified) is not "
            "supported; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        )
    if not isinstance(auth, str) or auth not in _CLIENT_AUTH:
        raise ConfigError(
            f"{key}.client_auth_type: expected one of {', '.join(_CLIENT_AUTH)}, got {auth!r}"
        )
    ca = mapping.get("client_ca_file")
    if ca is not None and auth == "NoClientCert":
        raise ConfigError(
            f"{key}.client_ca_file: given without a client_auth_type that verifies "
            "client certificates (VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
        )
    if ca is None and auth != "NoClientCert":
        raise ConfigError(f"{key}.client_ca_file: required with client_auth_type {auth}")
    version = mapping.get("min_version", "TLS12")
    if not isinstance(version, str) or version not in _TLS_VERSIONS:
        raise ConfigError(
            f"{key}.min_version: expected one of {', '.join(_TLS_VERSIONS)}, got {version!r}"
        )
    return TlsServerConfig(
        cert_file=_path(mapping["cert_file"], f"{key}.cert_file", base),
        key_file=_path(mapping["key_file"], f"{key}.key_file", base),
        client_ca_file=_path(ca, f"{key}.client_ca_file", base) if ca is not None else None,
        client_auth_type=auth,
        min_version=version,
    )


def server_context(tls: TlsServerConfig) -> ssl.SSLContext:
    """The server-side TLS context for `tls`; ConfigError when a file is unusable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[tls.min_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"tls_server_config: cannot load cert_file {tls.cert_file} with key_file "
            f"{tls.key_file}: {exc}"
        ) from None
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                f"tls_server_config.client_ca_file: cannot load {tls.client_ca_file}: {exc}"
            ) from None
    context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
    return context


def _users(value: object) -> dict[str, bytes]:
    key = "basic_auth_users"
    mapping = _mapping(value, key)
    out: dict[str, bytes] = {}
    for user, hashed in mapping.items():
        if not user or ":" in user:
            raise ConfigError(f"{key}: user names must be non-empty and contain no ':'")
        # The hash is not echoed: it is not the password, but no business of a log either.
        if not isinstance(hashed, str) or not _BCRYPT_HASH.match(hashed):
            raise ConfigError(
                f"{key}.{user}: expected a bcrypt hash ($2b$...); make one with "
                "python -c 'import bcrypt,getpass; "
                "print(bcrypt.hashpw(getpass.getpass().encode(), bcrypt.gensalt()).decode())'"
            )
        out[user] = hashed.encode()
    return out


def parse_web_config(document: object, base: Path) -> WebConfig:
    """Validate a parsed web config document; `base` resolves relative paths."""
    mapping = _mapping(document, "web config")
    for k in mapping:
        if k not in _TOP_KEYS:
            raise ConfigError(
                f"{k}: unknown or unsupported key; expected one of: {', '.join(_TOP_KEYS)}"
            )
    tls = _tls(mapping["tls_server_config"], base) if "tls_server_config" in mapping else None
    users = _users(mapping.get("basic_auth_users"))
    return WebConfig(tls=tls, users=users, ssl_context=server_context(tls) if tls else None)


def load_web_config(path: str | Path) -> WebConfig:
    """Read and validate a web config file; errors name the file and the key."""
    p = Path(path)
    try:
        return parse_web_config(load_document(p), p.parent)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(
            message if message.startswith(f"config file {p}") else f"{p}: {message}"
        ) from None


class BasicAuth:
    """Checks `Authorization: Basic ...` headers against bcrypt hashes, with a cache."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._lock = threading.Lock()
        self._dummy: bytes | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def check(self, header: str | None) -> bool:
        if not self._users:
            return True
        credentials = _parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        hashed = self._users.get(user)
        key = hashlib.sha256(user.encode() + b"\0" + password + b"\0" + (hashed or b"")).digest()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        if hashed is None:
            # Spend the same time as for a known user, so that timing does
            # not tell which user names exist.
            _checkpw(password, self._dummy_hash())
            ok = False
        else:
            ok = _checkpw(password, hashed)
        with self._lock:
            self._cache[key] = ok
            while len(self._cache) > _AUTH_CACHE_SIZE:
                self._cache.popitem(last=False)
        return ok

    def _dummy_hash(self) -> bytes:
        if self._dummy is None:
            cost = next(iter(self._users.values()))[4:6]
            self._dummy = bcrypt.hashpw(b"not a password", bcrypt.gensalt(int(cost)))
        return self._dummy


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bool(bcrypt.checkpw(password, hashed))
    except ValueError:  # e.g. longer than bcrypt's 72 bytes: never a stored password
        return False


def _parse_basic(header: str | None) -> tuple[str, bytes] | None:
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None
