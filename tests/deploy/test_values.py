"""The values for the upstream charts: JupyterHub's validate against the chart's own schema and load
the KubeSpawner settings from hub/; Argo's and Elasticsearch's agree with the manifests."""
from __future__ import annotations

import ast
import re
import sys

import jsonschema
import yaml

from tests.deploy.conftest import DEPLOY, ROOT

Z2JH = ROOT / "tests" / "deploy" / "schemas" / "z2jh"
# what the files the chart's hub loads may import: the standard library, no labcommons (nor thriftpy2)
HUB_IMAGE_HAS = set(sys.stdlib_module_names)


def merged(defaults, given):
    """Helm's merge of a chart's defaults with given values: maps merge, anything else replaces."""
    if isinstance(defaults, dict) and isinstance(given, dict):
        return {**defaults, **{k: merged(defaults.get(k), v) for k, v in given.items()}}
    return given


def z2jh_validator() -> jsonschema.Draft7Validator:
    schema = yaml.safe_load((Z2JH / "values.schema.yaml").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def set_files(text: str) -> dict:
    """The values the install command's `--set-file key=path` options (in the file's header) add."""
    given: dict = {}
    for key, path in re.findall(r"--set-file ([\w.-]+)=(\S+)", text):
        *parents, leaf = key.split(".")
        node = given
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = (ROOT / path).read_text()
    return given


def z2jh_values(values) -> dict:
    """deploy/values/jupyterhub.yaml over the chart's defaults, with the --set-file values of its install
    command, as Helm validates them."""
    given = merged(values("jupyterhub"), set_files((DEPLOY / "values" / "jupyterhub.yaml").read_text()))
    return merged(yaml.safe_load((Z2JH / "values.default.yaml").read_text()), given)


def base_settings() -> dict[str, str]:
    lines = (DEPLOY / "base" / "settings.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_jupyterhub_values_validate_against_the_chart_schema(values):
    z2jh_validator().validate(z2jh_values(values))


def test_the_schema_catches_a_misspelt_value(values):
    broken = z2jh_values(values)
    broken["cull"]["timeut"] = 60
    errors = list(z2jh_validator().iter_errors(broken))
    assert len(errors) == 1 and "timeut" in errors[0].message


def test_the_hub_loads_its_settings_from_hub(values):
    hub = values("jupyterhub")["hub"]
    header = (DEPLOY / "values" / "jupyterhub.yaml").read_text()
    snippets = "".join(hub["extraConfig"].values())
    assert set(hub["extraFiles"]) == {"labcommons-kubespawner", "labcommons-sso"}
    for key, item in hub["extraFiles"].items():
        # the file's content comes from the checkout at install time, never copied into the values
        assert set(item) == {"mountPath"}
        name = item["mountPath"].rsplit("/", 1)[1]
        assert f"--set-file hub.extraFiles.{key}.stringData=hub/{name}" in header
        assert f'"{item["mountPath"]}"' in snippets
        assert imported_roots(ROOT / "hub" / name) <= HUB_IMAGE_HAS, name  # the chart's hub image


def imported_roots(path) -> set[str]:
    """The top-level packages a file imports."""
    tree = ast.parse(path.read_text(), str(path))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    return {name.split(".")[0] for name in names}


def test_the_hub_offers_profiles_and_culls_idle_servers(values):
    chart = values("jupyterhub")
    profiles = chart["singleuser"]["profileList"]
    assert [p["display_name"] for p in profiles] == ["Imaging MS (2 CPU, 8 GiB)", "Large (8 CPU, 32 GiB)"]
    for profile in profiles:
        cpu, memory = re.search(r"\((\d+) CPU, (\d+) GiB\)", profile["display_name"]).groups()
        override = profile["kubespawner_override"]
        assert (override["cpu_limit"], override["mem_limit"]) == (int(cpu), f"{memory}G")
        assert override["cpu_guarantee"] <= override["cpu_limit"]
    assert sum(1 for p in profiles if p.get("default")) == 1
    assert chart["cull"]["enabled"] and 0 < chart["cull"]["every"] <= chart["cull"]["timeout"]
    assert chart["singleuser"]["storage"]["type"] == "dynamic"


def test_user_servers_may_reach_the_metadata_service_and_nothing_more_is_opened(values):
    (rule,) = values("jupyterhub")["singleuser"]["networkPolicy"]["egress"]
    (peer,) = rule["to"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "labcommons"}
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "metadata"
    assert rule["ports"] == [{"port": 9090, "protocol": "TCP"}]


def test_argo_runs_workflows_where_the_worker_may_submit_them(values):
    argo, settings = values("argo-workflows"), base_settings()
    assert argo["controller"]["workflowNamespaces"] == [settings["LABCOMMONS_ARGO_NAMESPACE"]]
    defaults = argo["controller"]["workflowDefaults"]["spec"]
    assert defaults["serviceAccountName"] == settings["LABCOMMONS_ARGO_SERVICE_ACCOUNT"]
    assert argo["controller"]["parallelism"] >= argo["controller"]["namespaceParallelism"] >= defaults["parallelism"] > 0
    assert argo["server"]["authModes"] == ["client"]
    assert not argo["workflow"]["serviceAccount"]["create"] and not argo["workflow"]["rbac"]["create"]


def test_argo_artifacts_go_to_s3_with_credentials_by_reference(values):
    s3 = values("argo-workflows")["artifactRepository"]["s3"]
    assert s3["bucket"] and s3["endpoint"] and s3["insecure"] is False
    assert set(s3) & {"accessKey", "secretKey"} == set()
    assert s3["accessKeySecret"]["name"] == s3["secretKeySecret"]["name"] == "labcommons-artifacts-s3"


def test_elasticsearch_holds_as_many_copies_as_the_store_asks_for(values):
    chart, settings = values("elasticsearch"), base_settings()
    assert chart["replicas"] >= int(settings["LABCOMMONS_ES_REPLICAS"]) + 1
    assert chart["minimumMasterNodes"] == chart["replicas"] // 2 + 1
    # security and TLS as the chart makes them; the store verifies the chart's CA
    assert chart["protocol"] == "https" and chart["createCert"] is True and "esConfig" not in chart
    assert settings["LABCOMMONS_ES_CA_CERTS"].startswith("/etc/labcommons/elasticsearch/")
    assert not re.search(r"password\s*:", yaml.safe_dump(chart), re.IGNORECASE)
    # the metadata pods carry the label the chart's network policy admits
    admitted = f"{chart.get('clusterName', 'elasticsearch')}-{chart.get('nodeGroup', 'master')}-http-client"
    assert admitted in (DEPLOY / "base" / "metadata.yaml").read_text()
