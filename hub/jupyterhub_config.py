"""The labcommons JupyterHub: `jupyterhub -f hub/jupyterhub_config.py` (run by `labcommons up`).

One configuration, two spawner modes (LABCOMMONS_HUB_SPAWNER): `local` processes (the default)
or `kubernetes` (KubeSpawner; its settings are hub/kubespawner.py, which the zero-to-jupyterhub
chart also loads). Users sign in through the portal (OAuth2, hub/../portal/notebooks/oauth.py), which hands
each user's metadata-service token to the hub in its auth state: hub/sso.py, shared with the
chart's hub too. See docs/jupyterhub.md.
"""
import functools
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# after the installed packages: hub/kubespawner.py must not shadow the kubespawner package
sys.path.append(str(HERE))
sys.path.insert(0, str(HERE.parent))  # the labcommons packages, when run from a checkout

from ground.settings import load  # noqa: E402
import sso  # noqa: E402

c = get_config()  # noqa: F821 -- provided by traitlets when the hub loads this file
settings = load()
data_dir = settings.data_dir.resolve()
settings.hub_dir.mkdir(parents=True, exist_ok=True)
settings.hub_dir.chmod(0o700)  # its database too is the hub's alone: no sandboxed uid passes here

# -- where it listens: all loopback; the proxy's port is the one browsers use ------------------
c.JupyterHub.bind_url = f"http://{settings.hub_host}:{settings.hub_port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = settings.hub_api_port
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.hub_proxy_api_port}"
# the proxy `make` installed into the venv (npm --prefix .venv/node), else one on PATH
_proxy = Path(sys.prefix) / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [str(_proxy) if _proxy.exists() else shutil.which("configurable-http-proxy")
                                   or "configurable-http-proxy"]
c.ConfigurableHTTPProxy.auth_token = settings.hub_secret("proxy-auth-token")
c.ConfigurableHTTPProxy.pid_file = str(settings.hub_dir.resolve() / "proxy.pid")  # not the working directory

# -- state under the data dir, never in the repository ------------------------------------------
c.JupyterHub.db_url = f"sqlite:///{settings.hub_dir.resolve() / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(settings.hub_dir.resolve() / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(settings.hub_dir.resolve() / "jupyterhub.pid")
# auth state holds the user's service token: encrypted with this key (made once, 0600)
os.environ.setdefault("JUPYTERHUB_CRYPT_KEY", settings.hub_secret("crypt-key"))

# -- sign-in through the portal (OAuth2 authorization code + PKCE): hub/sso.py, which the
# zero-to-jupyterhub hub uses too; here its inputs are this hub's settings --------------------
sso.configure(c, hub_url=settings.hub_public_url, portal_url=settings.portal_public_url,
              portal_internal_url=settings.portal_internal_url or settings.portal_public_url,
              client_secret=settings.hub_secret("oauth-client-secret"),
              service_token=settings.hub_secret("portal-service-token"),
              token_ttl_seconds=settings.token_ttl_seconds)

# -- the single-user servers ---------------------------------------------------------------------
c.Spawner.environment = {"LABCOMMONS_HOST": settings.host, "LABCOMMONS_PORT": str(settings.port),
                         # JupyterLab opens clean, no build prompt or news question (hub/singleuser/)
                         "JUPYTER_CONFIG_PATH": str(HERE / "singleuser")}
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
# a start answers at once (202) rather than after up to 10 s: the portal's page follows the spawn
# through the hub's progress stream (portal/notebooks/progress.py), as z2jh's hub does
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
if settings.hub_spawner == "kubernetes":
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    load_subconfig(str(HERE / "kubespawner.py"))  # noqa: F821 -- what the z2jh hub loads too
    # where its mount hook asks which projects a user may read (the chart's hub.extraEnv gives it there)
    c.KubeSpawner.pre_spawn_hook = functools.partial(
        c.KubeSpawner.pre_spawn_hook, portal=settings.portal_internal_url or settings.portal_public_url)
    image = c.KubeSpawner.image
    # what deploy/values/jupyterhub.yaml gives the z2jh hub, for a hub run outside the chart:
    # each user's pods in a namespace of their own (quotas and policies per user) ...
    c.KubeSpawner.enable_user_namespaces = True
    c.KubeSpawner.user_namespace_template = "labcommons-nb-{username}"
    c.KubeSpawner.profile_list = [
        {"display_name": "Imaging MS (2 CPU, 8 GiB)", "slug": "imaging-ms", "default": True,
         "description": "Load a slice of an imaging dataset and tune processing parameters.",
         "kubespawner_override": {"image": image, "cpu_guarantee": 1, "cpu_limit": 2,
                                  "mem_guarantee": "6G", "mem_limit": "8G"}},
        {"display_name": "Large (8 CPU, 32 GiB)", "slug": "large",
         "description": "Whole datasets and cohorts; ask an administrator before long runs.",
         "kubespawner_override": {"image": image, "cpu_guarantee": 4, "cpu_limit": 8,
                                  "mem_guarantee": "24G", "mem_limit": "32G"}},
    ]
    # ... and a volume per user for the home directory: files outlive servers and the culler
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.pvc_name_template = "claim-{username}"
    c.KubeSpawner.storage_capacity = settings.hub_storage
    c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
    c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-{username}"}}]
    c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
    # pods reach the hub at its cluster address, not loopback
    if settings.hub_connect_url:
        c.JupyterHub.hub_connect_url = settings.hub_connect_url
else:
    c.JupyterHub.spawner_class = "spawner.LabcommonsLocalSpawner"
    c.LabcommonsLocalSpawner.notebooks_root = str(data_dir / "notebooks")
    c.LabcommonsLocalSpawner.home_dir_template = str(data_dir / "notebooks" / "{username}")
    # each server in a bubblewrap sandbox, as an unprivileged user, that hides the data dir but for
    # its own notebook directory and the folders of the projects its user may read (docs/jupyterhub.md)
    c.LabcommonsLocalSpawner.sandbox = settings.hub_sandbox
    c.LabcommonsLocalSpawner.hidden_dir = str(data_dir)
    c.LabcommonsLocalSpawner.storage_root = str(settings.storage_root.resolve())
    c.LabcommonsLocalSpawner.sandbox_uid, c.LabcommonsLocalSpawner.sandbox_gid = settings.sandbox_user
    # asked at every start which projects the user may read, with the user's own token
    c.LabcommonsLocalSpawner.service_host = settings.host
    c.LabcommonsLocalSpawner.service_port = settings.port
    if os.geteuid() == 0:  # containers and CI run as root; jupyter-server refuses root without this
        c.Spawner.args = ["--allow-root"]
    # the venv's own jupyterhub-singleuser, whatever PATH the hub was started with
    c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
    c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV"]
    # the helper reads spectra from the storage root under the data dir (absolute: the server's
    # working directory is the user's notebook directory)
    c.Spawner.environment["LABCOMMONS_DATA_DIR"] = str(data_dir)

# -- the idle culler, next to the portal's service (hub/sso.py) ---------------------------------
c.JupyterHub.services.append({"name": "idle-culler", "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                                                                  f"--timeout={settings.hub_idle_timeout_seconds}"]})
c.JupyterHub.load_roles.append({"name": "idle-culler", "services": ["idle-culler"],
                                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})
