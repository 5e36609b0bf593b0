"""KubeSpawner settings: loaded by hub/jupyterhub_config.py when LABCOMMONS_HUB_SPAWNER=kubernetes,
and by the zero-to-jupyterhub hub (deploy/values/jupyterhub.yaml: hub.extraFiles mounts this
file, hub.extraConfig loads it). Self-contained (no labcommons import): the chart's hub image
has only JupyterHub and KubeSpawner.

It holds what both hubs share; sign-in and the token hook are hub/sso.py's. Profiles, per-user
volumes and namespaces are the chart's values under zero-to-jupyterhub, and
hub/jupyterhub_config.py's for a hub run by `labcommons up`.
"""
import os

c = get_config()  # noqa: F821 -- provided by traitlets when the hub loads this file
env = os.environ.get
IMAGE = env("LABCOMMONS_HUB_IMAGE", "labcommons:latest")  # the project's image: jupyterhub-singleuser + labcommons

# Notebooks are clients of the metadata service: its Service, reached across namespaces
# (the labcommons NetworkPolicy admits pods labelled component: singleuser-server).
c.KubeSpawner.environment = {
    "LABCOMMONS_HOST": env("LABCOMMONS_HUB_METADATA_HOST", "labcommons-metadata.labcommons.svc.cluster.local"),
    "LABCOMMONS_PORT": env("LABCOMMONS_HUB_METADATA_PORT", "9090"),
}


# Servers run as the image's unprivileged user and gain no privileges, as labcommons' own pods do.
c.KubeSpawner.allow_privilege_escalation = False
c.KubeSpawner.uid = 1000
c.KubeSpawner.fs_gid = 100
c.KubeSpawner.image = IMAGE
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
