"""The hub's settings: spawner modes, public addresses, and secrets made once into the data dir."""
from __future__ import annotations

import stat

import pytest

from ground.settings import Settings, SettingsError, load


def test_the_spawner_mode_is_checked():
    assert load({"LABCOMMONS_HUB_SPAWNER": "kubernetes"}).hub_spawner == "kubernetes"
    with pytest.raises(SettingsError, match="LABCOMMONS_HUB_SPAWNER: 'docker'"):
        load({"LABCOMMONS_HUB_SPAWNER": "docker"})


def test_the_sandbox_choice_is_checked():
    assert load({}).hub_sandbox == "auto" and load({"LABCOMMONS_HUB_SANDBOX": "on"}).hub_sandbox == "on"
    with pytest.raises(SettingsError, match="LABCOMMONS_HUB_SANDBOX: 'yes' is not allowed; use one of auto, on, off"):
        load({"LABCOMMONS_HUB_SANDBOX": "yes"})


def test_public_addresses_default_to_loopback_ports():
    settings = load({"LABCOMMONS_HUB_PORT": "8999", "LABCOMMONS_PORTAL_PORT": "8123"})
    assert settings.hub_public_url == "http://127.0.0.1:8999"
    assert settings.portal_public_url == "http://127.0.0.1:8123"
    assert Settings(hub_url="https://hub.example/").hub_public_url == "https://hub.example"


def test_a_shared_secret_is_made_once_private_and_an_environment_value_wins(tmp_path, monkeypatch):
    settings = Settings(data_dir=tmp_path / "data")
    first = settings.hub_secret("oauth-client-secret")
    assert len(first) == 64 and settings.hub_secret("oauth-client-secret") == first
    path = tmp_path / "data" / "hub" / "oauth-client-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setenv("LABCOMMONS_HUB_OAUTH_CLIENT_SECRET", "given")
    assert settings.hub_secret("oauth-client-secret") == "given"


def test_secrets_in_a_given_directory_are_read_as_the_operator_put_them(tmp_path):
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "oauth-client-secret").write_text("from-the-secret\n")
    settings = load({"LABCOMMONS_DATA_DIR": str(tmp_path / "data"), "LABCOMMONS_HUB_SECRETS_DIR": str(mounted)})
    assert settings.hub_secrets_dir == mounted
    assert settings.hub_secret("oauth-client-secret") == "from-the-secret"
    assert not (tmp_path / "data").exists()  # nothing made under the data dir either


@pytest.mark.parametrize("writable", [False, True])
def test_a_missing_secret_in_a_given_directory_is_an_error_never_made(tmp_path, writable):
    """Read-only as a mounted Secret is, or not: a value made here would match nobody else's."""
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "oauth-client-secret").write_text("x")
    mounted.chmod(0o755 if writable else 0o555)
    settings = Settings(data_dir=tmp_path / "data", hub_secrets_dir=mounted)
    try:
        with pytest.raises(SettingsError, match=r"LABCOMMONS_HUB_SECRETS_DIR: .*mounted/portal-service-token is "
                                                r"missing; add the key 'portal-service-token'"):
            settings.hub_secret("portal-service-token")
    finally:
        mounted.chmod(0o755)
    assert sorted(p.name for p in mounted.iterdir()) == ["oauth-client-secret"]
    assert not (tmp_path / "data").exists()


def test_an_empty_secret_or_a_relative_directory_is_refused(tmp_path):
    (tmp_path / "crypt-key").write_text("\n")
    with pytest.raises(SettingsError, match=r"LABCOMMONS_HUB_SECRETS_DIR: .*crypt-key is empty"):
        Settings(hub_secrets_dir=tmp_path).hub_secret("crypt-key")
    with pytest.raises(SettingsError, match="LABCOMMONS_HUB_SECRETS_DIR: 'etc/hub' is not allowed; give an absolute"):
        load({"LABCOMMONS_HUB_SECRETS_DIR": "etc/hub"})
    assert load({"LABCOMMONS_HUB_SECRETS_DIR": ""}).hub_secrets_dir is None  # empty: the data dir's, made


def test_the_portal_reaches_the_hub_inside_the_cluster_and_sends_browsers_to_its_public_address():
    inside = Settings(hub_url="https://hub.example/", hub_internal_url="http://proxy-public.jupyterhub.svc/")
    assert inside.hub_api_base_url == "http://proxy-public.jupyterhub.svc"
    assert inside.hub_public_url == "https://hub.example"
    assert Settings(hub_url="https://hub.example/").hub_api_base_url == "https://hub.example"


def test_a_portal_given_a_secrets_directory_without_a_shared_secret_does_not_start(tmp_path):
    from portal import create_app
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "oauth-client-secret").write_text("x")
    settings = Settings(data_dir=tmp_path / "data", hub_secrets_dir=mounted)
    with pytest.raises(SettingsError, match="portal-service-token is missing"):
        create_app({"SETTINGS": settings})
