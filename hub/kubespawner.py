"""KubeSpawner settings for the cluster edition, loaded by the zero-to-jupyterhub hub
(deploy/values/jupyterhub.yaml: hub.extraFiles mounts this file, hub.extraConfig loads it).

A placeholder until the hub's own configuration (hub/jupyterhub_config.py) lands: it holds only
what the deployment needs today. Profiles, culling and storage are chart values.
"""
c = get_config()  # noqa: F821 -- provided by traitlets when the hub loads this file

# Notebooks are clients of the metadata service: its Service, reached across namespaces
# (the labcommons NetworkPolicy admits pods labelled component: singleuser-server).
c.KubeSpawner.environment = {
    "LABCOMMONS_HOST": "labcommons-metadata.labcommons.svc.cluster.local",
    "LABCOMMONS_PORT": "9090",
}

# Servers run as the image's unprivileged user and gain no privileges, as labcommons' own pods do.
c.KubeSpawner.allow_privilege_escalation = False
