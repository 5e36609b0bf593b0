"""The Kubernetes mode without a cluster: KubeSpawner builds the pod and PVC manifests from
hub/jupyterhub_config.py with LABCOMMONS_HUB_SPAWNER=kubernetes (which loads hub/kubespawner.py,
as the z2jh hub does), and the manifests validate against the Kubernetes schemas
(kubernetes-validate, offline)."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config
from kubespawner import KubeSpawner
from traitlets.config import Config, PyFileConfigLoader

from tests.deploy.test_manifests import KUBERNETES_VERSION

HUB = Path(__file__).resolve().parents[2] / "hub"


class User:
    name, id, url = "ana", 7, "/user/ana/"

    def __init__(self, token: str = "tok-ana"):
        self.token = token  # what the hub's auth state holds, as the pre-spawn refresh left it

    async def get_auth_state(self):
        return {"oauth_user": {"name": "ana", "labcommons_token": self.token}}


class Hub:
    public_host, url, base_url, api_url = "hub.example", "http://hub:8081/hub/", "/", "http://hub:8081/hub/api"


@pytest.fixture(autouse=True)
def kubernetes_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCOMMONS_HUB_SPAWNER", "kubernetes")
    monkeypatch.setenv("LABCOMMONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "0" * 64)  # the config sets it only when unset


def settings() -> Config:
    return PyFileConfigLoader("jupyterhub_config.py", str(HUB)).load_config()


# KubeSpawner loads a client configuration when made; one naming an unreachable API server
# shows that nothing here talks to a cluster.
KUBECONFIG = """apiVersion: v1
kind: Config
current-context: none
clusters: [{name: none, cluster: {server: "https://kubernetes.invalid"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
users: [{name: none, user: {}}]
"""


@pytest.fixture(autouse=True)
def no_cluster(tmp_path, monkeypatch):
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    # read once at import as KUBECONFIG's value, so set where it is kept
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))


def manifests(profile: str) -> tuple[dict, dict, KubeSpawner]:
    async def build():
        spawner = KubeSpawner(config=settings(), user=User(), hub=Hub(), _mock=True)
        pod = await pod_manifest(spawner, profile)
        async with ApiClient() as client:  # serialization only; it sends nothing
            return pod, client.sanitize_for_serialization(spawner.get_pvc_manifest()), spawner

    return asyncio.run(build())


async def pod_manifest(spawner: KubeSpawner, profile: str = "imaging-ms", pre_spawn: bool = False) -> dict:
    """The pod a spawn would create, as JSON: after the pre-spawn hook when pre_spawn (as the
    hub's User.spawn runs it), then the profile and the token hook, as KubeSpawner's start does."""
    if pre_spawn:
        await spawner.run_pre_spawn_hook()
    spawner.user_options = {"profile": profile}
    spawner.api_token = "hub-token"
    await spawner.load_user_options()
    spawner.auth_state_hook(spawner, await spawner.user.get_auth_state())
    pod = await spawner.get_pod_manifest()
    async with ApiClient() as client:  # serialization only; it sends nothing
        return client.sanitize_for_serialization(pod)


def validate_pod(pod: dict) -> None:
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", **pod}, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("profile, cpu, gib", [("imaging-ms", 2, 8), ("large", 8, 32)])
def test_pod_and_claim_manifests_validate_and_carry_the_profile(profile, cpu, gib):
    pod, pvc, spawner = manifests(profile)
    for manifest, kind in ((pod, "Pod"), (pvc, "PersistentVolumeClaim")):
        manifest = {"apiVersion": "v1", "kind": kind, **manifest}
        assert kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "labcommons:latest"
    assert container["resources"]["limits"] == {"cpu": cpu, "memory": gib * 1024 ** 3}  # "8G": KubeSpawner's GiB
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LABCOMMONS_TOKEN"] == "tok-ana"
    assert env["LABCOMMONS_HOST"] == "labcommons-metadata.labcommons.svc.cluster.local"
    assert env["LABCOMMONS_PORT"] == "9090"
    # the user's own namespace, and a claim of their own mounted as the home directory
    # (KubeSpawner names the namespace in its API calls, not in the manifests)
    assert spawner.namespace == "labcommons-nb-ana"
    assert {pod["metadata"].get("namespace"), pvc["metadata"].get("namespace")} <= {None, "labcommons-nb-ana"}
    assert pvc["metadata"]["name"] == "claim-ana"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == "claim-ana"
    assert {"name": "home", "mountPath": "/home/jovyan"} in container["volumeMounts"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["spec"]["securityContext"]["supplementalGroups"] == [10001]  # the storage's group (deploy/base)


def test_a_broken_manifest_is_caught():
    pod, _, _ = manifests("imaging-ms")
    pod["spec"]["containers"][0]["resources"]["limits"]["cpu"] = {"cores": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", **pod}, KUBERNETES_VERSION, strict=True)


def test_the_z2jh_hub_gets_the_shared_settings_and_keeps_its_own_profiles():
    shared = PyFileConfigLoader("kubespawner.py", str(HUB)).load_config()
    assert "LABCOMMONS_HOST" in shared.KubeSpawner.environment
    assert shared.KubeSpawner.pre_spawn_hook.__name__ == "mount_projects"  # raw files follow grants there too
    # the token hook is hub/sso.py's, for every spawner: one set here would shadow it
    assert "auth_state_hook" not in shared.KubeSpawner
    assert "profile_list" not in shared.KubeSpawner  # the chart's profileList, not this file's


def test_the_standalone_profiles_match_the_charts():
    import yaml
    chart = yaml.safe_load((HUB.parent / "deploy" / "values" / "jupyterhub.yaml").read_text())
    ours = settings().KubeSpawner.profile_list
    keys = ("cpu_guarantee", "cpu_limit", "mem_guarantee", "mem_limit")
    assert [(p["display_name"], {k: p["kubespawner_override"][k] for k in keys}) for p in ours] == [
        (p["display_name"], {k: p["kubespawner_override"][k] for k in keys}) for p in chart["singleuser"]["profileList"]]


def test_the_spawner_class_is_the_kubespawner_package_not_hub_kubespawner_py(tmp_path):
    """hub/ is on the hub's import path; its kubespawner.py must not shadow the package."""
    import subprocess
    import sys
    program = ("from traitlets.config import PyFileConfigLoader\n"
               "from traitlets.utils.importstring import import_item\n"
               f"c = PyFileConfigLoader('jupyterhub_config.py', {str(HUB)!r}).load_config()\n"
               "print(import_item(c.JupyterHub.spawner_class).__module__)\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env={**os.environ, "LABCOMMONS_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "kubespawner.spawner"


def test_the_storage_mounts_are_one_read_only_subpath_per_readable_project():
    kubespawner = load_hub_module()
    volumes, mounts = kubespawner["storage_mounts"](["proj-b", "proj_a", "proj-b"], "shared-claim")
    assert volumes == [{"name": "labcommons-storage",
                        "persistentVolumeClaim": {"claimName": "shared-claim", "readOnly": True}}]
    assert mounts == [
        {"name": "labcommons-storage", "mountPath": "/var/lib/labcommons/storage/proj-b", "subPath": "proj-b", "readOnly": True},
        {"name": "labcommons-storage", "mountPath": "/var/lib/labcommons/storage/proj_a", "subPath": "proj_a", "readOnly": True},
    ]
    # administrators and workers read every project: the whole claim, read-only
    assert kubespawner["storage_mounts"]("all", "shared-claim")[1] == [
        {"name": "labcommons-storage", "mountPath": "/var/lib/labcommons/storage", "readOnly": True}]
    assert kubespawner["storage_mounts"]([], "shared-claim") == ([], [])  # no grant: no volume at all


def test_a_new_spawns_storage_mounts_replace_the_last_ones_and_keep_the_rest():
    replaced = load_hub_module()["replaced"]
    home = {"name": "home", "persistentVolumeClaim": {"claimName": "claim-ana"}}
    old = {"name": "labcommons-storage", "mountPath": "/var/lib/labcommons/storage/gone", "subPath": "gone"}
    new = {"name": "labcommons-storage", "mountPath": "/var/lib/labcommons/storage/kept", "subPath": "kept"}
    assert replaced([home, old], [new]) == [home, new]
    # z2jh may give them as a dict, which KubeSpawner orders by key
    assert replaced({"b": old, "a": home}, []) == [home]


@pytest.mark.parametrize("project_id", ["..", ".", "", "a/b", "../proj-b", "/", "{username}", "a\x00b", "-x",
                                        "x" * 65, 7, None, "all/.."])
def test_a_project_id_that_is_not_a_folder_name_never_becomes_a_subpath(project_id):
    with pytest.raises(ValueError, match=r"is not a project id \(1 to 64 letters"):
        load_hub_module()["storage_mounts"](["proj-a", project_id], "shared-claim")


def test_the_pods_environment_points_the_helper_at_the_mounted_storage_root():
    (container,) = manifests("imaging-ms")[0]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    # ground.settings: storage_root = <LABCOMMONS_DATA_DIR>/storage, where the projects are mounted
    assert env["LABCOMMONS_DATA_DIR"] + "/storage" == load_hub_module()["STORAGE_ROOT"]


def load_hub_module() -> dict:
    """hub/kubespawner.py's names, as the hub's load_subconfig runs it."""
    namespace = {"get_config": Config}
    exec(compile((HUB / "kubespawner.py").read_text(), str(HUB / "kubespawner.py"), "exec"), namespace)
    return namespace


def test_the_pods_jupyterlab_reads_the_servers_own_configuration_from_the_image():
    """hub/singleuser/ (no build prompt, no news question), where the image holds it, as the local
    hub's servers read it from the checkout (tests/hub/test_handoff.py checks what they serve)."""
    (container,) = manifests("imaging-ms")[0]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["JUPYTER_CONFIG_PATH"] == load_hub_module()["SINGLEUSER_CONFIG"]
    dockerfile = (HUB.parent / "deploy" / "Dockerfile").read_text()
    assert f"COPY hub/singleuser {env['JUPYTER_CONFIG_PATH']}\n" in dockerfile
