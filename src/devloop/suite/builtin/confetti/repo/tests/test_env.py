import pytest

from confetti import ConfigError, coerce, load
from confetti.env import env_path

DEFAULTS = {"workers": 4, "timeout": 2.5, "hosts": ["a"], "database": {"port": 5432, "user": "app"}}


def test_env_path():
    assert env_path("APP_DATABASE__PORT", "APP_") == ["database", "port"]
    assert env_path("OTHER_X", "APP_") is None


def test_nested_override():
    cfg = load(DEFAULTS, environ={"APP_DATABASE__PORT": "0x1538", "APP_DATABASE__USER": "root"})
    assert cfg["database.port"] == 5432
    assert cfg["database.user"] == "root"


def test_numbers():
    cfg = load(DEFAULTS, environ={"APP_WORKERS": "12", "APP_TIMEOUT": "0.5"})
    assert (cfg["workers"], cfg["timeout"]) == (12, 0.5)


def test_bad_integer_names_variable():
    with pytest.raises(ConfigError, match="APP_WORKERS: expected an integer"):
        load(DEFAULTS, environ={"APP_WORKERS": "many"})


def test_lists():
    assert coerce("x, y,z", ["a"], "V") == ["x", "y", "z"]
    assert coerce('["x", 1]', ["a"], "V") == ["x", 1]


def test_unknown_setting_strict_and_lenient():
    with pytest.raises(ConfigError, match="unknown setting databse.port"):
        load(DEFAULTS, environ={"APP_DATABSE__PORT": "1"})
    assert load(DEFAULTS, environ={"APP_DATABSE__PORT": "1"}, strict_env=False)["database.port"] == 5432


def test_whole_section_rejected():
    with pytest.raises(ConfigError, match="APP_DATABASE"):
        load(DEFAULTS, environ={"APP_DATABASE": "x"})
