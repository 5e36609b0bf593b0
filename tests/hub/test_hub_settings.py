"""The hub's settings: spawner modes, public addresses, and secrets made once into the data dir."""
from __future__ import annotations

import stat

import pytest

from labcommons.settings import Settings, SettingsError, load


def test_the_spawner_mode_is_checked():
    assert load({"LABCOMMONS_HUB_SPAWNER": "kubernetes"}).hub_spawner == "kubernetes"
    with pytest.raises(SettingsError, match="LABCOMMONS_HUB_SPAWNER: 'docker'"):
        load({"LABCOMMONS_HUB_SPAWNER": "docker"})


def test_public_addresses_default_to_loopback_ports(monkeypatch):
    monkeypatch.setenv("LABCOMMONS_PORTAL_PORT", "8123")
    settings = load({"LABCOMMONS_HUB_PORT": "8999"})
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
