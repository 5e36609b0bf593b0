"""The kustomize overlays render, every object is valid Kubernetes, and the promises of issue 7
hold in what would be applied: probes, limits, hardening, least RBAC, network policies, no
committed secrets, and the differences between dev and prod."""
from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from ground import settings as settings_module
from tests.deploy.conftest import DEPLOY, ENVIRONMENTS, ROOT

# A current Kubernetes release; kubernetes-validate ships its schemas inside the package (offline).
KUBERNETES_VERSION = "1.35.0"
COMPONENTS = ("metadata", "portal", "worker")
# What kustomize v2.0 reads (Debian's kubernetes-client: kubectl 1.20), so CI renders the same objects
# with it as developers do with a current kubectl.
KUSTOMIZE_V2_FIELDS = {"apiVersion", "kind", "namespace", "namePrefix", "nameSuffix", "commonLabels",
                       "commonAnnotations", "resources", "bases", "patchesStrategicMerge", "patchesJson6902",
                       "configMapGenerator", "secretGenerator", "generatorOptions", "images", "vars", "crds"}
KUSTOMIZE_V2_GENERATOR_FIELDS = {"name", "behavior", "env", "files", "literals"}
SECRETS_USED = {"labcommons-signing-key", "labcommons-elasticsearch", "labcommons-elasticsearch-ca",
                "labcommons-portal-token", "labcommons-hub",
                "labcommons-worker-token", "labcommons-argo"}


def of_kind(objects, kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind: str, name: str) -> dict:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def deployment(objects, component: str) -> dict:
    return one(objects, "Deployment", f"labcommons-{component}")


def container(objects, component: str) -> dict:
    (only,) = deployment(objects, component)["spec"]["template"]["spec"]["containers"]
    return only


def quantity(text) -> float:
    """A CPU or memory quantity as a number (cores, bytes)."""
    units = {"m": 1e-3, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "": 1}
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text)).groups()
    return float(number) * units[unit]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_rendered_object_is_valid_kubernetes(rendered, env):
    objects = rendered(env)
    assert {o["kind"] for o in objects} >= {"Namespace", "Deployment", "Service", "Ingress", "ConfigMap",
                                            "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy"}
    for obj in objects:
        # the version it validated against: the one asked for, not an older fallback
        assert kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True) == "1.35"


def test_the_kustomizations_use_only_what_kustomize_v2_reads():
    for path in sorted(DEPLOY.glob("**/kustomization.yaml")):
        kustomization = yaml.safe_load(path.read_text())
        assert set(kustomization) <= KUSTOMIZE_V2_FIELDS, f"{path}: {set(kustomization) - KUSTOMIZE_V2_FIELDS}"
        for generator in kustomization.get("configMapGenerator", []):
            assert set(generator) <= KUSTOMIZE_V2_GENERATOR_FIELDS, path
        for base in kustomization.get("resources", []):
            assert (path.parent / base).is_file(), f"{path}: kustomize v2 takes directories under bases:"


def test_the_validator_refuses_a_broken_object(rendered):
    broken = {**deployment(rendered("dev"), "portal")}
    broken["spec"] = {**broken["spec"], "replicas": "three", "replica": 3}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_container_has_probes_limits_and_a_hardened_context(rendered, env):
    for component in COMPONENTS:
        pod = deployment(rendered(env), component)["spec"]["template"]["spec"]
        main = container(rendered(env), component)
        assert main["readinessProbe"] and main["livenessProbe"], component
        for kind in ("requests", "limits"):
            assert set(main["resources"][kind]) == {"cpu", "memory"}, (component, kind)
        for resource in ("cpu", "memory"):
            assert quantity(main["resources"]["requests"][resource]) <= quantity(main["resources"]["limits"][resource])
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False, component
        assert main["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                           "capabilities": {"drop": ["ALL"]}}, component


def test_probes_ask_what_each_component_answers(rendered):
    objects = rendered("prod")
    metadata, portal, worker = (container(objects, c) for c in COMPONENTS)
    # the metadata service's own Thrift health method, on loopback: the Service holds back unready pods
    assert metadata["readinessProbe"]["exec"]["command"] == ["labcommons", "--host", "127.0.0.1", "status"]
    assert metadata["livenessProbe"]["tcpSocket"]["port"] == "thrift"
    assert {"name": "thrift", "containerPort": 9090} in metadata["ports"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert portal[probe]["httpGet"] == {"path": "/signin", "port": "http"}
    assert worker["args"] == ["labcommons", "worker", "--heartbeat", "/tmp/worker.heartbeat"]
    assert worker["readinessProbe"]["exec"]["command"] == ["labcommons", "status"]
    # alive while its loop goes round, into the heartbeat file it is given, on its writable /tmp
    assert worker["livenessProbe"]["exec"]["command"][:3] == ["labcommons", "worker-alive", "/tmp/worker.heartbeat"]
    assert {"name": "tmp", "mountPath": "/tmp"} in worker["volumeMounts"]


def test_the_metadata_service_is_one_writer_even_in_a_rollout(rendered):
    for env in ENVIRONMENTS:
        spec = deployment(rendered(env), "metadata")["spec"]
        assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}


def test_prod_scales_out_pins_the_image_and_serves_tls(rendered):
    dev, prod = rendered("dev"), rendered("prod")
    for component in ("portal", "worker"):
        assert deployment(prod, component)["spec"]["replicas"] > deployment(dev, component)["spec"]["replicas"]
    for component in COMPONENTS:
        dev_limits, prod_limits = (container(o, component)["resources"]["limits"] for o in (dev, prod))
        assert all(quantity(prod_limits[r]) > quantity(dev_limits[r]) for r in ("cpu", "memory")), component
        image = container(prod, component)["image"]
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+", image), f"{component}: {image} is not a pinned release"
    ingress = one(prod, "Ingress", "labcommons-portal")["spec"]
    assert ingress["tls"] == [{"hosts": [ingress["rules"][0]["host"]], "secretName": "labcommons-tls"}]
    assert "tls" not in one(dev, "Ingress", "labcommons-portal")["spec"]
    assert one(prod, "PodDisruptionBudget", "labcommons-portal")["spec"]["minAvailable"] == 2


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_ingress_reaches_the_portal_service(rendered, env):
    objects = rendered(env)
    (path,) = one(objects, "Ingress", "labcommons-portal")["spec"]["rules"][0]["http"]["paths"]
    service = one(objects, "Service", path["backend"]["service"]["name"])
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "portal"
    assert path["backend"]["service"]["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_worker_has_the_least_rbac_for_argo(rendered):
    objects = rendered("prod")
    rules = one(objects, "Role", "labcommons-worker")["rules"]
    granted = {(group, resource): set(rule["verbs"]) for rule in rules
               for group in rule["apiGroups"] for resource in rule["resources"]}
    assert granted == {
        ("argoproj.io", "workflows"): {"create", "get", "list", "watch", "patch"},
        ("argoproj.io", "workflowtemplates"): {"create", "get", "list", "update"},
        ("", "pods"): {"get", "list", "watch"},
        ("", "pods/log"): {"get"},
    }
    binding = one(objects, "RoleBinding", "labcommons-worker")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "labcommons-worker"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "labcommons-worker", "namespace": "labcommons"}]
    assert deployment(objects, "worker")["spec"]["template"]["spec"]["serviceAccountName"] == "labcommons-worker"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_role_grants_a_wildcard_secrets_or_cluster_scope(rendered, env):
    objects = rendered(env)
    assert not of_kind(objects, "ClusterRole") and not of_kind(objects, "ClusterRoleBinding")
    for role in of_kind(objects, "Role"):
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], (role["metadata"]["name"], rule)
            assert "secrets" not in rule["resources"], role["metadata"]["name"]
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_only_the_portal_worker_and_user_servers_reach_the_metadata_service(rendered):
    objects = rendered("prod")
    policy = one(objects, "NetworkPolicy", "labcommons-metadata")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "metadata"
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9090}]
    peers = [(p.get("namespaceSelector"), p["podSelector"]["matchLabels"]) for p in rule["from"]]
    assert peers == [
        (None, {"app.kubernetes.io/name": "labcommons", "app.kubernetes.io/component": "portal"}),
        (None, {"app.kubernetes.io/name": "labcommons", "app.kubernetes.io/component": "worker"}),
        ({"matchLabels": {"kubernetes.io/metadata.name": "jupyterhub"}},
         {"app": "jupyterhub", "component": "singleuser-server"}),
    ]
    # the selectors match the pods they name
    for component in ("portal", "worker"):
        labels = deployment(objects, component)["spec"]["template"]["metadata"]["labels"]
        assert peers[COMPONENTS.index(component) - 1][1].items() <= labels.items()
    deny = one(objects, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_secrets_are_referenced_by_name_never_rendered(rendered, env):
    objects = rendered(env)
    assert not [s for s in of_kind(objects, "Secret") if s.get("data") or s.get("stringData")]
    referenced = set()
    for deploy in of_kind(objects, "Deployment"):
        pod = deploy["spec"]["template"]["spec"]
        for item in (e for c in pod["containers"] for e in c.get("env", [])):
            if ref := item.get("valueFrom", {}).get("secretKeyRef"):
                referenced.add(ref["name"])
            # a literal value only for what is not a secret (a _DIR names where a Secret is mounted)
            assert "value" not in item or not re.search(r"KEY|TOKEN|PASSWORD|SECRET(?!S_DIR$)", item["name"]), item
        referenced |= {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    assert referenced == SECRETS_USED
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for name in referenced:
        assert f"kubectl create secret generic {name}" in guide, f"docs/deploy.md does not say how to create {name}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_settings_configmap_is_settings_the_code_accepts(rendered, env):
    objects = rendered(env)
    (config,) = of_kind(objects, "ConfigMap")
    data = config["data"]
    assert data["LABCOMMONS_STORE"] == "elasticsearch" and data["LABCOMMONS_HOST"] == "labcommons-metadata"
    settings = settings_module.load(data)  # raises on a value the service would refuse
    assert settings.store == "elasticsearch" and settings.es_shards >= 1
    assert not any(re.search(r"KEY|TOKEN|PASSWORD|SECRET", name) for name in data)
    for component in COMPONENTS:
        (source,) = container(objects, component)["envFrom"]
        assert source == {"configMapRef": {"name": config["metadata"]["name"]}}
    assert data["LABCOMMONS_ES_REPLICAS"] == ("0" if env == "dev" else "1")


def test_the_metadata_service_finds_the_elasticsearch_ca_where_the_settings_say(rendered):
    objects = rendered("prod")
    (config,) = of_kind(objects, "ConfigMap")
    ca = config["data"]["LABCOMMONS_ES_CA_CERTS"]
    pod = deployment(objects, "metadata")["spec"]["template"]["spec"]
    (mount,) = [m for m in container(objects, "metadata")["volumeMounts"] if m["name"] == "elasticsearch-ca"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "elasticsearch-ca"]
    (item,) = volume["secret"]["items"]
    assert f"{mount['mountPath']}/{item['path']}" == ca and mount["readOnly"] is True
