"""One settings object, read from LABCOMMONS_* environment variables and an optional TOML file.

Every default serves the embedded single-machine run (`make run`). The TOML file is named by
LABCOMMONS_CONFIG; environment variables win over it.
"""
from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

STORES = ("embedded", "elasticsearch")
HUB_SPAWNERS = ("local", "kubernetes")
HUB_SANDBOXES = ("auto", "on", "off")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
ENGINES = ("local", "argo")
# the settings with a fixed set of values: (field, the values, what a wrong one is not)
CHOICES = (("store", STORES, "a store"), ("engine", ENGINES, "an engine"),
           ("hub_sandbox", HUB_SANDBOXES, "allowed"), ("hub_spawner", HUB_SPAWNERS, "a spawner"))
# what the portal and the hub both read (hub_secret); the hub's own (crypt-key, proxy-auth-token) stay apart
HUB_SHARED_SECRETS = ("oauth-client-secret", "portal-service-token")
# the data the distribution ships, named here so no layer reaches into another's folder for it:
# the workflow templates and trigger rules used when templates_dir / triggers_dir are unset
SHIPPED_TEMPLATES = Path(__file__).resolve().parents[1] / "workflow_templates"
SHIPPED_TRIGGERS = SHIPPED_TEMPLATES / "triggers"
SHIPPED_LIFECYCLE = SHIPPED_TEMPLATES / "lifecycle"


class SettingsError(ValueError):
    """A setting has a value that is not allowed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 9090
    store: str = "embedded"
    es_url: str = "http://127.0.0.1:9200"
    es_index_prefix: str = "labcommons"
    es_shards: int = 1       # shards of each flattened-document index (case, file); >1: approximate facets
    es_replicas: int = -1    # replicas of every index the store creates; -1: the cluster's default
    es_ca_certs: Path | None = None  # CA bundle that signed the cluster's HTTPS certificate (else the system's)
    dictionary: Path | None = None
    flattening: Path | None = None
    templates_dir: Path | None = None      # None: the shipped workflow_templates/ (SHIPPED_TEMPLATES)
    triggers_dir: Path | None = None       # None: the shipped workflow_templates/triggers/ (SHIPPED_TRIGGERS)
    lifecycle_dir: Path | None = None      # None: the shipped workflow_templates/lifecycle/ (SHIPPED_LIFECYCLE)
    lifecycle_seconds: int = 3600          # how often the worker applies the storage lifecycle rules; 0: never
    engine: str = "local"                  # the worker's engine: local, or argo (the argo_* settings)
    # the Argo Server the argo engine uses (docs/workflows-argo.md)
    argo_server: str = ""                  # its URL; required with engine argo
    argo_token: str = ""                   # a bearer token it accepts; "": no Authorization header
    argo_namespace: str = "argo"           # where templates are installed and Workflows run
    argo_verify_tls: str = ""              # ""/true: verify against the system CAs; false; or a CA bundle path
    argo_service_account: str = ""         # the step pods' identity; "": the namespace's default
    smtp_host: str = ""                    # "" : notifications go to <data_dir>/outbox/ as .eml files
    smtp_port: int = 25
    mail_from: str = "labcommons@localhost"
    mail_domain: str = "localhost"         # user names that are not addresses get @<mail_domain>
    secret_key: str = ""
    token: str = ""                        # the caller's token for the CLI and connect(); "": data/admin.token
    token_ttl_seconds: int = 8 * 3600
    max_batch_entities: int = 10_000
    max_batch_bytes: int = 64 * 1024 * 1024
    # Client connections the metadata service keeps open at once (each a thread and a file
    # descriptor); beyond, idle ones that never sent a token are closed, then newcomers refused.
    max_connections: int = 512
    first_call_timeout_seconds: int = 10  # a new connection's first call must arrive within this
    max_property_bytes: int = 64 * 1024    # one submitted property's value, as JSON (UTF-8 bytes)
    max_submitter_id: int = 256            # characters of a submitter_id
    # Data objects: empty means the directory <data_dir>/storage; s3://bucket/prefix means an
    # S3-compatible store (credentials from the usual AWS_* variables, never from here).
    storage_url: str = ""
    s3_endpoint_url: str = ""
    max_upload_bytes: int = 64 * 1024 ** 3
    columnar_facets: int = 1  # 0: the embedded store asks DuckDB for every facet count (metadata/store/columnar.py)
    # the portal's cache of previews and ion images (<data dir>/cache/previews): least recently used
    # entries are removed past this many bytes (portal/previews/cache.py); 0: no bound
    preview_cache_bytes: int = 2 * 1024 ** 3
    # JupyterHub (hub/jupyterhub_config.py; docs/jupyterhub.md). The proxy serves hub_port; the
    # hub itself and the proxy's API listen on the two ports after it, on loopback.
    hub_host: str = "127.0.0.1"
    hub_port: int = 8000
    hub_api_port: int = 8081
    hub_proxy_api_port: int = 8001
    hub_url: str = ""                     # the hub's public address; "" : http://<hub_host>:<hub_port>
    hub_spawner: str = "local"            # local processes, or kubernetes (KubeSpawner)
    hub_idle_timeout_seconds: int = 3600  # the idle culler stops servers unused this long
    hub_sandbox: str = "auto"             # local servers in bubblewrap: auto (where it runs), on, off
    hub_storage: str = "10Gi"             # kubernetes spawner: each user's home volume
    hub_connect_url: str = ""             # kubernetes spawner: the hub's cluster address for pods; "": the default
    # who notebook servers and workflow steps run as in their sandbox when the hub or worker runs
    # as root (ground/sandbox.py): an unprivileged uid and gid of the host, never 0
    sandbox_uid: int = 65534
    sandbox_gid: int = 65534
    portal_url: str = ""                  # the portal's public address; "" : http://<portal_host>:<portal_port>
    portal_secure_cookies: str = ""       # true/false: Secure session cookies; "" : whether portal_url is https
    # How the portal is served (portal/server.py; docs/portal.md, "Serving limits"): where it
    # listens, how many processes serve it (0: one per core), and each process's own limits.
    portal_host: str = "127.0.0.1"
    portal_port: int = 8050
    portal_workers: int = 0
    portal_threads: int = 8               # worker threads running the app, per process
    portal_max_connections: int = 10000   # open connections per process (lowered to what the fd limit allows)
    portal_header_seconds: int = 10       # to send a request's headers (anonymous: the whole request)
    portal_idle_seconds: int = 60         # a keep-alive connection with nothing in progress
    portal_internal_url: str = ""         # how the hub reaches the portal; "" : portal_url
    hub_internal_url: str = ""            # how the portal reaches the hub's API and servers; "" : hub_url
    # the secrets the hub and the portal share: None, made on first use under <data dir>/hub;
    # a directory (a mounted Kubernetes Secret), read only: a missing file is an error
    hub_secrets_dir: Path | None = None

    @property
    def storage_root(self) -> Path:
        """Where data objects (imzML, ibd, outputs) live in the embedded run."""
        return self.data_dir / "storage"

    @property
    def sandbox_user(self) -> tuple[int, int]:
        """(uid, gid) of sandboxed notebook servers and workflow steps when started by root."""
        return self.sandbox_uid, self.sandbox_gid

    @property
    def database_path(self) -> Path:
        return self.data_dir / "metadata.duckdb"

    @property
    def admin_token_path(self) -> Path:
        """The local operator's token, written by the service at start (mode 0600)."""
        return self.data_dir / "admin.token"

    def signing_key(self) -> str:
        """The token signing key: the configured one, else one kept (0600) in the data dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            write_private(path, secrets.token_urlsafe(48))
        return path.read_text().strip()

    @property
    def hub_dir(self) -> Path:
        """The hub's database, cookie secret and keys (never in the repository)."""
        return self.data_dir / "hub"

    @property
    def hub_public_url(self) -> str:
        return (self.hub_url or f"http://{self.hub_host}:{self.hub_port}").rstrip("/")

    @property
    def portal_public_url(self) -> str:
        return (self.portal_url or f"http://{self.portal_host}:{self.portal_port}").rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        """Whether the portal's session cookies travel over HTTPS only: portal_secure_cookies if
        set, else whether the public address portal_url is https."""
        if self.portal_secure_cookies:
            return self.portal_secure_cookies in TRUE
        return self.portal_url.lower().startswith("https://")

    @property
    def portal_processes(self) -> int:
        """How many processes serve the portal: portal_workers, else one per core."""
        return self.portal_workers or os.cpu_count() or 1

    @property
    def hub_api_base_url(self) -> str:
        """Where the portal calls the hub's REST API and the users' servers (in a cluster, the
        proxy's Service rather than the public address)."""
        return (self.hub_internal_url or self.hub_public_url).rstrip("/")

    def hub_secret(self, name: str, nbytes: int = 32) -> str:
        """A secret the hub and the portal share (OAuth client secret, the portal's hub service
        token, the auth-state key): LABCOMMONS_HUB_<NAME> if set; else the file <name> in
        LABCOMMONS_HUB_SECRETS_DIR, which the operator provides (never made here); else made once
        into <data_dir>/hub/<name> (0600), where whichever process comes first writes it."""
        if value := os.environ.get(f"LABCOMMONS_HUB_{name.upper().replace('-', '_')}"):
            return value
        if self.hub_secrets_dir is not None:
            return _provided_secret(self.hub_secrets_dir / name)
        path = self.hub_dir / name
        if not path.exists():
            self.hub_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # the other process won the race; read its value
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(nbytes))
        return path.read_text().strip()


def _provided_secret(path: Path) -> str:
    """A shared secret from the operator's directory: never generated, since a value made here
    would differ from the one the other side (hub or portal) reads from its own copy."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        raise SettingsError(f"LABCOMMONS_HUB_SECRETS_DIR: {path} is missing; add the key {path.name!r} to the "
                            "Secret mounted there (docs/deploy.md), or unset LABCOMMONS_HUB_SECRETS_DIR to have "
                            "it made under <data dir>/hub") from None
    except OSError as exc:
        raise SettingsError(f"LABCOMMONS_HUB_SECRETS_DIR: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise SettingsError(f"LABCOMMONS_HUB_SECRETS_DIR: {path} is empty; give the secret a value")
    return value


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, never leaving it briefly world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def load(environ: dict[str, str] | None = None) -> Settings:
    """Settings from the TOML file (if LABCOMMONS_CONFIG names one), then the environment."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    if config := environ.get("LABCOMMONS_CONFIG"):
        values.update(_read_toml(Path(config)))
    for field in dataclasses.fields(Settings):
        name = f"LABCOMMONS_{field.name.upper()}"
        if name in environ:
            values[field.name] = environ[name]
    return _build(values)


def _read_toml(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh).get("labcommons", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"LABCOMMONS_CONFIG: cannot read {path}: {exc}") from exc


def _build(values: dict) -> Settings:
    known = {f.name: f for f in dataclasses.fields(Settings)}
    kwargs = {}
    for key, raw in values.items():
        if key not in known:
            raise SettingsError(f"unknown setting {key!r}; known: {', '.join(sorted(known))}")
        kwargs[key] = _convert(key, known[key].type, raw)
    settings = Settings(**kwargs)
    for key, allowed, what in CHOICES:
        if (value := getattr(settings, key)) not in allowed:
            raise SettingsError(f"LABCOMMONS_{key.upper()}: {value!r} is not {what}; use one of {', '.join(allowed)}")
    for key in ("max_connections", "first_call_timeout_seconds", "max_property_bytes", "max_submitter_id",
                "portal_threads", "portal_max_connections", "portal_header_seconds", "portal_idle_seconds"):
        if getattr(settings, key) < 1:
            raise SettingsError(f"LABCOMMONS_{key.upper()}: {getattr(settings, key)} is too small; use 1 or more")
    if not 0 <= settings.portal_port <= 65535:
        raise SettingsError(f"LABCOMMONS_PORTAL_PORT: {settings.portal_port} is not a port number; use 0 to 65535")
    if settings.portal_workers < 0:
        raise SettingsError(f"LABCOMMONS_PORTAL_WORKERS: {settings.portal_workers} is not allowed; use 1 or more "
                            "processes, or 0 for one per core")
    if settings.portal_secure_cookies not in ("", *TRUE, *FALSE):
        raise SettingsError(f"LABCOMMONS_PORTAL_SECURE_COOKIES: {settings.portal_secure_cookies!r} is not true or "
                            "false; leave it empty to follow whether LABCOMMONS_PORTAL_URL is https")
    if settings.preview_cache_bytes < 0:
        raise SettingsError(f"LABCOMMONS_PREVIEW_CACHE_BYTES: {settings.preview_cache_bytes} is not allowed; give a "
                            "size in bytes (such as 2147483648 for 2 GiB), or 0 for no bound")
    if settings.es_shards < 1:
        raise SettingsError(f"LABCOMMONS_ES_SHARDS: {settings.es_shards} is not a number of shards; use 1 or more")
    if settings.storage_url and not settings.storage_url.startswith("s3://"):
        raise SettingsError(f"LABCOMMONS_STORAGE_URL: {settings.storage_url!r} is not allowed; give s3://bucket/prefix, "
                            "or leave it empty for the directory <data dir>/storage")
    if settings.hub_secrets_dir is not None and not settings.hub_secrets_dir.is_absolute():
        raise SettingsError(f"LABCOMMONS_HUB_SECRETS_DIR: {str(settings.hub_secrets_dir)!r} is not allowed; give an "
                            "absolute path (where the Secret is mounted), or leave it empty for <data dir>/hub")
    for key in ("sandbox_uid", "sandbox_gid"):
        if not 0 < getattr(settings, key) < 2 ** 32 - 1:
            raise SettingsError(f"LABCOMMONS_{key.upper()}: {getattr(settings, key)} is not allowed; give an "
                                "unprivileged id of this host (not 0), such as 65534 (nobody)")
    return settings


def _convert(key: str, annotation: str, raw):
    if isinstance(raw, str) and "int" in annotation:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"LABCOMMONS_{key.upper()}: {raw!r} is not a whole number") from None
    if "Path" in annotation:
        return Path(raw) if raw not in ("", None) else None
    return raw
