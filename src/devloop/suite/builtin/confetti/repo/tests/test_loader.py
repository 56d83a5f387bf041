import pytest

from confetti import ConfigError, load

DEFAULTS = {
    "debug": False,
    "workers": 4,
    "timeout": 2.5,
    "name": "svc",
    "hosts": ["a"],
    "database": {"host": "localhost", "port": 5432, "ssl": True},
}


def test_defaults_only():
    cfg = load(DEFAULTS, environ={})
    assert cfg["database.port"] == 5432
    assert cfg.get("database.missing", "x") == "x"


def test_file_overrides_defaults(tmp_path):
    path = tmp_path / "app.toml"
    path.write_text('workers = 8\n[database]\nhost = "db"\n')
    cfg = load(DEFAULTS, path, environ={})
    assert cfg["workers"] == 8
    assert cfg["database.host"] == "db"
    assert cfg["database.port"] == 5432


def test_json_file(tmp_path):
    path = tmp_path / "app.json"
    path.write_text('{"database": {"port": 6000}}')
    assert load(DEFAULTS, path, environ={})["database.port"] == 6000


def test_bad_file_names_the_file(tmp_path):
    path = tmp_path / "app.toml"
    path.write_text("workers = = 3\n")
    with pytest.raises(ConfigError, match="app.toml"):
        load(DEFAULTS, path, environ={})


def test_section_cannot_become_value(tmp_path):
    path = tmp_path / "app.toml"
    path.write_text('database = "x"\n')
    with pytest.raises(ConfigError, match="database must be a section"):
        load(DEFAULTS, path, environ={})


def test_env_overrides_file(tmp_path):
    path = tmp_path / "app.toml"
    path.write_text("workers = 8\n")
    cfg = load(DEFAULTS, path, environ={"APP_WORKERS": "16", "OTHER": "1"})
    assert cfg["workers"] == 16
    assert cfg.sources["workers"] == "env"


def test_defaults_not_mutated():
    load(DEFAULTS, environ={"APP_DATABASE__PORT": "1"})
    assert DEFAULTS["database"]["port"] == 5432
