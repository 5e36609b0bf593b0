"""deploy/notebooks: the storage share's ReadOnlyMany claim in the JupyterHub namespace, whose
project folders hub/kubespawner.py mounts into notebook pods; valid Kubernetes, and named alike
in the kustomization, the example PersistentVolume, the chart's values and the hub's settings."""
from __future__ import annotations

import subprocess

import kubernetes_validate
import yaml

from tests.deploy.conftest import DEPLOY
from tests.deploy.test_manifests import KUBERNETES_VERSION
from tests.hub.test_kubespawner import load_hub_module

NOTEBOOKS = DEPLOY / "notebooks"


def test_the_notebooks_claim_is_read_only_in_the_hubs_namespace_and_bound_to_the_operators_volume(kubectl, values):
    result = subprocess.run([kubectl, "kustomize", str(NOTEBOOKS)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (claim,) = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    volume = yaml.safe_load((NOTEBOOKS / "persistentvolume.example.yaml").read_text())
    for obj in (claim, volume):
        assert kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True) == "1.35"
    name = load_hub_module()["STORAGE_CLAIM"]
    assert claim["kind"] == "PersistentVolumeClaim" and claim["metadata"]["name"] == name
    assert claim["metadata"]["namespace"] == "jupyterhub"  # the chart's (deploy/values/jupyterhub.yaml)
    assert "--namespace jupyterhub" in (DEPLOY / "values" / "jupyterhub.yaml").read_text()
    assert values("jupyterhub")["hub"]["extraEnv"]["LABCOMMONS_HUB_STORAGE_CLAIM"] == name
    assert claim["spec"]["accessModes"] == ["ReadOnlyMany"] == volume["spec"]["accessModes"]
    # bound by name to the operator's volume, never to one a storage class would provision
    assert claim["spec"]["storageClassName"] == "" == volume["spec"]["storageClassName"]
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    assert volume["spec"]["claimRef"] == {"namespace": "jupyterhub", "name": name}
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain" and volume["spec"]["nfs"]["readOnly"] is True


def test_notebooks_find_the_files_where_the_storage_urls_name_them(rendered):
    """Storage URLs name files under the portal's and worker's storage root (file:///<root>/<project>/...);
    the notebook helper checks them against its own root, so the pods must mount the share there."""
    from tests.deploy.test_manifests import container
    hub = load_hub_module()
    for component in ("portal", "worker"):
        (mount,) = [m for m in container(rendered("prod"), component)["volumeMounts"] if m["name"] == "storage"]
        assert mount["mountPath"] == hub["STORAGE_ROOT"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"LABCOMMONS_DATA_DIR={hub['DATA_DIR']} " in dockerfile  # the service's root too
    assert hub["STORAGE_ROOT"] == f"{hub['DATA_DIR']}/storage"  # ground.settings' storage_root
