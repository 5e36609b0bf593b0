"""KubeSpawner settings: loaded by hub/jupyterhub_config.py when LABCOMMONS_HUB_SPAWNER=kubernetes,
and by the zero-to-jupyterhub hub (deploy/values/jupyterhub.yaml: hub.extraFiles mounts this
file, hub.extraConfig loads it). Self-contained (no labcommons import): the chart's hub image
has only JupyterHub and KubeSpawner.

It holds what both hubs share; sign-in and the token hook are hub/sso.py's. Profiles, per-user
volumes and namespaces are the chart's values under zero-to-jupyterhub, and
hub/jupyterhub_config.py's for a hub run by `labcommons up`.

Raw files follow grants as on the local hub (hub/spawner.py): before every spawn, mount_projects
asks the portal's /api/whoami, with the user's token fresh from the pre-spawn refresh, which
projects the user may read, and the pod mounts only those folders of the storage claim, read-only,
at <storage root>/<project id>. A revoked grant is gone at the server's next start; a spawn whose
answer cannot be had is refused, never given the whole share.
"""
import asyncio
import json
import os
import re
import urllib.error
import urllib.request

c = get_config()  # noqa: F821 -- provided by traitlets when the hub loads this file
env = os.environ.get
IMAGE = env("LABCOMMONS_HUB_IMAGE", "labcommons:latest")  # the project's image: jupyterhub-singleuser + labcommons
DATA_DIR = "/var/lib/labcommons"  # the image's LABCOMMONS_DATA_DIR, as in labcommons' own pods (deploy/base)
STORAGE_ROOT = f"{DATA_DIR}/storage"
SINGLEUSER_CONFIG = "/opt/labcommons/etc/singleuser"  # hub/singleuser/ in the image (deploy/Dockerfile)
# a ReadOnlyMany claim of the storage share in the servers' namespace (deploy/base/notebooks-storage.yaml)
STORAGE_CLAIM = env("LABCOMMONS_HUB_STORAGE_CLAIM", "labcommons-storage-notebooks")
VOLUME = "labcommons-storage"     # the storage claim's volume in the pod; its mounts are made anew at each spawn
TOKEN_KEY = "labcommons_token"    # hub/sso.py's: the user's service token in the auth state's userdata
WHOAMI_TIMEOUT_SECONDS = 30
PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

# Notebooks are clients of the metadata service: its Service, reached across namespaces
# (the labcommons NetworkPolicy admits pods labelled component: singleuser-server).
c.KubeSpawner.environment = {
    "LABCOMMONS_HOST": env("LABCOMMONS_HUB_METADATA_HOST", "labcommons-metadata.labcommons.svc.cluster.local"),
    "LABCOMMONS_PORT": env("LABCOMMONS_HUB_METADATA_PORT", "9090"),
    # the helper reads spectra from <data dir>/storage/<project> (ground.settings' storage_root),
    # where the granted projects' folders are mounted: the path the portal and the service know the
    # share by, which the file:// storage URLs name
    "LABCOMMONS_DATA_DIR": DATA_DIR,
    # JupyterLab opens clean, no build prompt or news question: hub/singleuser/, which the image
    # holds there (deploy/Dockerfile), as the local hub's servers read it from the checkout
    "JUPYTER_CONFIG_PATH": SINGLEUSER_CONFIG,
}


# Servers run as the image's unprivileged user and gain no privileges, as labcommons' own pods do.
c.KubeSpawner.allow_privilege_escalation = False
c.KubeSpawner.uid = 1000
c.KubeSpawner.fs_gid = 100
# the image's data dir (0750) and the share's files are the portal's and the worker's (uid and gid
# 10001, deploy/base): their group may enter it and read the files; the mounts are read-only and
# hold only granted projects
c.KubeSpawner.supplemental_gids = [10001]
c.KubeSpawner.image = IMAGE
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]


def project_folder(project_id: str) -> str:
    """project_id when it is one (metadata/submission.py's PROJECT_PATTERN): so it names one folder
    of the storage root, never a way up or down it, and holds no {} for KubeSpawner to expand."""
    if not isinstance(project_id, str) or not PROJECT_ID.fullmatch(project_id):
        raise ValueError(f"readable projects: {project_id!r} is not a project id (1 to 64 letters, digits, "
                         "- and _, starting with a letter or digit)")
    return project_id


def storage_mounts(projects, claim: str, root: str = STORAGE_ROOT) -> tuple[list[dict], list[dict]]:
    """KubeSpawner volumes and volume_mounts for the readable projects: one read-only mount of the
    claim per project (subPath <project id>) at <root>/<project id>; "all" (administrators and
    workers) mounts the whole claim at root; none mounts nothing."""
    if projects == "all":
        mounts = [{"name": VOLUME, "mountPath": root, "readOnly": True}]
    else:
        mounts = [{"name": VOLUME, "mountPath": f"{root}/{p}", "subPath": p, "readOnly": True}
                  for p in sorted({project_folder(p) for p in projects})]
    if not mounts:
        return [], []
    return [{"name": VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}], mounts


def readable_projects(portal: str, token: str, timeout: float = WHOAMI_TIMEOUT_SECONDS):
    """The projects the token's holder may read ("all" or ids), from the portal's /api/whoami;
    RuntimeError saying why when there is no answer to trust."""
    request = urllib.request.Request(f"{portal.rstrip('/')}/api/whoami", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as refused:
        raise RuntimeError(f"the portal refused the user's token ({refused.code}: {refused.read()[:300]!r})") from None
    except (OSError, ValueError) as error:
        raise RuntimeError(f"the portal at {portal} did not answer: {error}") from None
    projects = answer.get("projects") if isinstance(answer, dict) else None
    if projects != "all" and not (isinstance(projects, list) and all(isinstance(p, str) for p in projects)):
        raise RuntimeError(f"the portal's answer names no projects: {str(answer)[:300]}")
    return projects


async def mount_projects(spawner, portal: str = "") -> None:
    """pre_spawn_hook: the pod mounts the storage folders of exactly the projects its user may
    read now; the spawn fails, with the reason, when that cannot be learnt. The portal is asked at
    `portal`, else at LABCOMMONS_PORTAL_INTERNAL_URL (the chart's hub.extraEnv)."""
    userdata = ((await spawner.user.get_auth_state()) or {}).get("oauth_user") or {}
    portal = portal or env("LABCOMMONS_PORTAL_INTERNAL_URL", "")
    if not userdata.get(TOKEN_KEY) or not portal:
        raise RuntimeError(f"no notebook server for {spawner.user.name}: "
                           + ("the hub holds no token of theirs; sign in again" if portal else
                              "LABCOMMONS_PORTAL_INTERNAL_URL is not set, so the readable projects cannot be learnt"))
    try:
        projects = await asyncio.to_thread(readable_projects, portal, userdata[TOKEN_KEY])
        volumes, mounts = storage_mounts(projects, STORAGE_CLAIM)
    except (RuntimeError, ValueError) as error:
        raise RuntimeError(f"no notebook server for {spawner.user.name}: cannot learn which projects "
                           f"they may read: {error}") from None
    spawner.volumes = replaced(spawner.volumes, volumes)
    spawner.volume_mounts = replaced(spawner.volume_mounts, mounts)


def replaced(configured, storage: list[dict]) -> list[dict]:
    """The configured volumes (or mounts: a list, or a dict KubeSpawner orders by key) without the
    storage claim's, then `storage`: the spawner outlives its servers, and a revoked grant's mount
    from the last spawn must not stay."""
    items = [configured[key] for key in sorted(configured)] if isinstance(configured, dict) else list(configured)
    return [item for item in items if item.get("name") != VOLUME] + storage


# Every spawn learns the user's readable projects first (hub/sso.py's refresh_pre_spawn makes the
# token in the auth state fresh just before). A profile's kubespawner_override of volumes or
# volume_mounts, applied after this hook, would replace these mounts: the profiles here set none.
c.KubeSpawner.pre_spawn_hook = mount_projects
