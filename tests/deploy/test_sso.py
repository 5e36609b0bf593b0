"""Single sign-on in the cluster edition: the portal and the chart's hub share the Secret
labcommons-hub, know each other's addresses, may reach each other through the NetworkPolicies, and
the hub's extraConfig loads hub/sso.py into a configuration the way the zero-to-jupyterhub hub does."""
from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import pytest
from jupyterhub.app import JupyterHub
from oauthenticator.generic import GenericOAuthenticator
from traitlets.config import Config, PyFileConfigLoader

from ground import settings as settings_module
from tests.deploy.conftest import DEPLOY, ENVIRONMENTS, ROOT
from tests.deploy.test_manifests import container, deployment, of_kind, one
from tests.deploy.test_values import z2jh_values

HUB_SECRET = "labcommons-hub"
SHARED_KEYS = {"oauth-client-secret", "portal-service-token"}
PORTAL_LABELS = {"app.kubernetes.io/name": "labcommons", "app.kubernetes.io/component": "portal"}


def portal_settings(objects) -> settings_module.Settings:
    """The portal's settings as its container gets them: the ConfigMap, then its own env values."""
    (config,) = of_kind(objects, "ConfigMap")
    own = {e["name"]: e["value"] for e in container(objects, "portal")["env"] if "value" in e}
    return settings_module.load({**config["data"], **own})


def hub_env(values) -> dict:
    """hub.extraEnv as the hub's container environment, each secretKeyRef standing for its key."""
    env = {}
    for name, item in values("jupyterhub")["hub"]["extraEnv"].items():
        if isinstance(item, str):
            env[name] = item
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[name] = f"from-{ref['name']}-{ref['key']}"
    return env


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_portal_reads_the_shared_secrets_from_the_mounted_hub_secret(rendered, env):
    objects = rendered(env)
    pod = deployment(objects, "portal")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == HUB_SECRET]
    assert {item["key"] for item in volume["secret"]["items"]} == SHARED_KEYS
    assert all(item["key"] == item["path"] for item in volume["secret"]["items"])  # the names hub_secret() reads
    (mount,) = [m for m in container(objects, "portal")["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    settings = portal_settings(objects)
    assert str(settings.hub_secrets_dir) == mount["mountPath"]
    # only the portal holds them; the other components never see the hub's secrets
    for component in ("metadata", "worker"):
        volumes = deployment(objects, component)["spec"]["template"]["spec"]["volumes"]
        assert HUB_SECRET not in {v.get("secret", {}).get("secretName") for v in volumes}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_portal_replica_gets_the_same_signing_key_from_a_secret(rendered, env):
    objects = rendered(env)
    (key,) = [e for e in container(objects, "portal")["env"] if e["name"] == "LABCOMMONS_SECRET_KEY"]
    assert key["valueFrom"]["secretKeyRef"] == {"name": "labcommons-signing-key", "key": "secret-key"}
    metadata_key = [e for e in container(objects, "metadata")["env"] if e["name"] == "LABCOMMONS_SECRET_KEY"]
    assert metadata_key == [key]  # the service verifies the tokens the portal's sessions carry
    if env == "prod":
        assert deployment(objects, "portal")["spec"]["replicas"] == 3


def test_the_hub_and_the_portal_share_one_secret_by_key(values):
    env = values("jupyterhub")["hub"]["extraEnv"]
    refs = {name: item["valueFrom"]["secretKeyRef"] for name, item in env.items() if not isinstance(item, str)}
    assert {ref["name"] for ref in refs.values()} == {HUB_SECRET}
    # the variable names are the ones ground.settings.hub_secret() and hub/sso.py read
    assert {name: ref["key"] for name, ref in refs.items()} == {
        f"LABCOMMONS_HUB_{key.upper().replace('-', '_')}": key for key in SHARED_KEYS}
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert f"kubectl create secret generic {HUB_SECRET} --namespace jupyterhub" in guide
    assert f"kubectl create secret generic {HUB_SECRET} --namespace labcommons" in guide


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_portal_and_the_hub_know_each_others_addresses(rendered, values, env):
    settings, hub = portal_settings(rendered(env)), hub_env(values)
    if env == "prod":  # the chart's values describe the production hub
        assert settings.hub_public_url == hub["LABCOMMONS_HUB_URL"] == "https://hub.example.org"
        assert urlsplit(hub["LABCOMMONS_HUB_URL"]).hostname in values("jupyterhub")["ingress"]["hosts"]
        portal_host = one(rendered(env), "Ingress", "labcommons-portal")["spec"]["rules"][0]["host"]
        assert hub["LABCOMMONS_PORTAL_URL"] == f"https://{portal_host}"
    else:
        assert settings.hub_public_url == "http://hub.localtest.me"
    # the portal calls the hub through the proxy's Service in the hub's namespace
    assert urlsplit(settings.hub_api_base_url).hostname == "proxy-public.jupyterhub.svc.cluster.local"
    # the hub calls the portal's Service, whose port leads to the portal's container port
    inside = urlsplit(hub["LABCOMMONS_PORTAL_INTERNAL_URL"])
    assert inside.hostname == "labcommons-portal.labcommons.svc.cluster.local"
    service = one(rendered(env), "Service", "labcommons-portal")
    assert (inside.port or 80) in {p["port"] for p in service["spec"]["ports"]}


def test_the_hub_may_reach_the_portal_and_the_portal_the_proxy(rendered, values):
    objects = rendered("prod")
    portal_port = container(objects, "portal")["ports"][0]["containerPort"]
    assert PORTAL_LABELS.items() <= deployment(objects, "portal")["spec"]["template"]["metadata"]["labels"].items()
    # labcommons' side: the portal admits the hub's pod on its port
    policy = one(objects, "NetworkPolicy", "labcommons-portal")["spec"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": portal_port}]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "jupyterhub"}},
            "podSelector": {"matchLabels": {"app": "jupyterhub", "component": "hub"}}} in rule["from"]
    # the chart's side: the hub may call out to the portal, and the proxy admits the portal
    chart = values("jupyterhub")
    (egress,) = chart["hub"]["networkPolicy"]["egress"]
    assert egress["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "labcommons"}},
                             "podSelector": {"matchLabels": PORTAL_LABELS}}]
    assert egress["ports"] == [{"port": portal_port, "protocol": "TCP"}]
    (ingress,) = chart["proxy"]["chp"]["networkPolicy"]["ingress"]
    assert ingress["from"] == egress["to"]
    assert ingress["ports"] == [{"port": 8000, "protocol": "TCP"}]  # the proxy container's http port
    assert z2jh_values(values)["proxy"]["chp"]["networkPolicy"]["enabled"] is True


# -- the hub's configuration, loaded as the zero-to-jupyterhub hub loads it ------------------------

def z2jh_config() -> Config:
    """What the chart's jupyterhub_config.py has set when it runs hub.extraConfig: its default
    authenticator (hub.config), and its culler as a service with a role."""
    c = Config()
    c.JupyterHub.authenticator_class = "dummy"
    c.JupyterHub.services = [{"name": "jupyterhub-idle-culler", "command": ["python3", "-m", "jupyterhub_idle_culler"]}]
    c.JupyterHub.load_roles = [{"name": "jupyterhub-idle-culler", "services": ["jupyterhub-idle-culler"],
                                "scopes": ["list:users"]}]
    c.CryptKeeper.keys = ["00" * 32]
    return c


def run_extra_config(values, c: Config, mounted: dict[str, str]) -> None:
    """Each hub.extraConfig snippet, in the chart's order, with every hub.extraFiles mount path
    pointing at the file the install command gives it (mounted: mount path -> file)."""
    hub = values("jupyterhub")["hub"]

    def load_subconfig(path: str) -> None:
        c.merge(PyFileConfigLoader(os.path.basename(path), os.path.dirname(path)).load_config())

    for _, snippet in sorted(hub["extraConfig"].items()):
        for mount, path in mounted.items():
            snippet = snippet.replace(mount, path)
        exec(snippet, {"c": c, "load_subconfig": load_subconfig, "os": os, "sys": sys})


def checkout_files(values) -> dict[str, str]:
    """mount path -> the checkout's file, as `--set-file hub.extraFiles.<key>.stringData=hub/...` gives it."""
    files = z2jh_values(values)["hub"]["extraFiles"]
    header = (DEPLOY / "values" / "jupyterhub.yaml").read_text()
    found = {}
    for key, item in files.items():
        (path,) = [p for p in (ROOT / "hub").glob("*.py") if f"hub.extraFiles.{key}.stringData=hub/{p.name}" in header]
        assert item["stringData"] == path.read_text()
        found[item["mountPath"]] = str(path)
    return found


@pytest.fixture
def z2jh_hub_env(values, monkeypatch):
    for name, value in hub_env(values).items():
        monkeypatch.setenv(name, value)


def test_the_chart_hub_signs_in_through_the_portal_from_hub_sso(values, z2jh_hub_env):
    c = z2jh_config()
    run_extra_config(values, c, checkout_files(values))
    hub = JupyterHub(config=c)
    assert c.JupyterHub.authenticator_class == "generic-oauth"
    auth = GenericOAuthenticator(config=c)
    assert auth.client_id == "jupyterhub" and auth.client_secret == "from-labcommons-hub-oauth-client-secret"
    assert auth.oauth_callback_url == "https://hub.example.org/hub/oauth_callback"
    assert auth.authorize_url == "https://labcommons.example.org/oauth/authorize"
    assert auth.token_url == "http://labcommons-portal.labcommons.svc.cluster.local/oauth/token"
    assert auth.userdata_url == "http://labcommons-portal.labcommons.svc.cluster.local/oauth/userinfo"
    assert auth.enable_pkce and auth.enable_auth_state and auth.refresh_pre_spawn
    assert auth.auth_refresh_age == 2 * 3600  # a quarter of the default 8-hour token lifetime
    # the portal's service joins the chart's culler, with its roles; nothing of the chart's is lost
    assert hub.services == [z2jh_config().JupyterHub.services[0],
                            {"name": "labcommons-portal", "api_token": "from-labcommons-hub-portal-service-token"}]
    roles = {role["name"]: role for role in hub.load_roles}
    assert set(roles) == {"jupyterhub-idle-culler", "user", "labcommons-portal"}
    assert roles["labcommons-portal"]["services"] == ["labcommons-portal"]
    assert {"admin:users", "admin:auth_state", "servers", "access:servers"} <= set(roles["labcommons-portal"]["scopes"])
    assert "admin:auth_state!user" in roles["user"]["scopes"]
    # and the KubeSpawner settings still load beside it, with the token hook for every spawner
    assert c.KubeSpawner.environment["LABCOMMONS_HOST"] == "labcommons-metadata.labcommons.svc.cluster.local"
    spawner_env: dict = {}
    c.Spawner.auth_state_hook(type("Spawner", (), {"environment": spawner_env})(),
                              {"oauth_user": {"name": "ana", "labcommons_token": "tok-ana"}})
    assert spawner_env == {"LABCOMMONS_TOKEN": "tok-ana"}


def test_the_chart_hub_refuses_to_start_without_the_shared_secret(values, z2jh_hub_env, monkeypatch):
    monkeypatch.delenv("LABCOMMONS_HUB_PORTAL_SERVICE_TOKEN")
    with pytest.raises(ValueError, match="LABCOMMONS_HUB_PORTAL_SERVICE_TOKEN is not set"):
        run_extra_config(values, z2jh_config(), checkout_files(values))


def test_the_chart_hub_refuses_a_malformed_address(values, z2jh_hub_env, monkeypatch):
    monkeypatch.setenv("LABCOMMONS_PORTAL_URL", "labcommons.example.org")
    with pytest.raises(ValueError, match="LABCOMMONS_PORTAL_URL: 'labcommons.example.org' is not allowed"):
        run_extra_config(values, z2jh_config(), checkout_files(values))


def test_the_chart_hub_fails_rather_than_start_without_hub_sso(values, z2jh_hub_env, tmp_path):
    """A forgotten --set-file must not leave the chart's default authenticator (dummy) in place."""
    mounted = {mount: (str(tmp_path / "missing.py") if path.endswith("sso.py") else path)
               for mount, path in checkout_files(values).items()}
    with pytest.raises(FileNotFoundError):
        run_extra_config(values, z2jh_config(), mounted)
