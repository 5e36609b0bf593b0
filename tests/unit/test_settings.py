"""Settings come from LABCOMMONS_* variables over an optional TOML file, and refuse bad values."""
import stat
from pathlib import Path

import pytest

from ground.settings import Settings, SettingsError, load


def test_defaults_serve_the_embedded_run():
    settings = load({})
    assert settings == Settings() and settings.store == "embedded" and settings.host == "127.0.0.1"


def test_environment_overrides_the_toml_file(tmp_path):
    config = tmp_path / "lc.toml"
    config.write_text('[labcommons]\nport = 7000\ndata_dir = "/srv/lc"\n')
    settings = load({"LABCOMMONS_CONFIG": str(config), "LABCOMMONS_PORT": "7100"})
    assert settings.port == 7100 and settings.data_dir == Path("/srv/lc")


@pytest.mark.parametrize("environ, words", [
    ({"LABCOMMONS_PORT": "ninety"}, "LABCOMMONS_PORT: 'ninety' is not a whole number"),
    ({"LABCOMMONS_STORE": "mongo"}, "LABCOMMONS_STORE: 'mongo' is not a store"),
    ({"LABCOMMONS_CONFIG": "/nonexistent.toml"}, "LABCOMMONS_CONFIG: cannot read"),
    ({"LABCOMMONS_ES_SHARDS": "0"}, "LABCOMMONS_ES_SHARDS: 0 is not a number of shards"),
    ({"LABCOMMONS_PREVIEW_CACHE_BYTES": "-1"}, "LABCOMMONS_PREVIEW_CACHE_BYTES: -1 is not allowed; give a size"),
])
def test_bad_values_name_the_variable(environ, words):
    with pytest.raises(SettingsError, match=words):
        load(environ)


def test_unknown_toml_keys_are_refused(tmp_path):
    config = tmp_path / "lc.toml"
    config.write_text("[labcommons]\nprot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load({"LABCOMMONS_CONFIG": str(config)})


def test_the_signing_key_is_generated_once_and_private(tmp_path):
    settings = Settings(data_dir=tmp_path)
    key = settings.signing_key()
    assert key == settings.signing_key() and len(key) >= 48
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
