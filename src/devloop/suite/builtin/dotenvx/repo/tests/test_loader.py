from dotenvx import dotenv_values, find_dotenv, load_dotenv


def write(tmp_path, text, name=".env"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_into_mapping(tmp_path):
    env = {}
    applied = load_dotenv(write(tmp_path, "A=1\nB=${A}2\n"), environ=env)
    assert env == {"A": "1", "B": "12"} == applied


def test_existing_variables_win(tmp_path):
    env = {"A": "real"}
    applied = load_dotenv(write(tmp_path, "A=file\nB=2\n"), environ=env)
    assert env == {"A": "real", "B": "2"}
    assert applied == {"B": "2"}


def test_override(tmp_path):
    env = {"A": "real"}
    load_dotenv(write(tmp_path, "A=file\n"), override=True, environ=env)
    assert env["A"] == "file"


def test_expansion_defaults_and_escape(tmp_path):
    env = {"HOME": "/home/ann"}
    path = write(tmp_path, 'DATA=${HOME}/data\nLEVEL=${LOG_LEVEL:-info}\nLIT="\\${HOME}"\n')
    load_dotenv(path, environ=env)
    assert (env["DATA"], env["LEVEL"], env["LIT"]) == ("/home/ann/data", "info", "${HOME}")


def test_single_quotes_not_expanded(tmp_path):
    assert dotenv_values(write(tmp_path, "A='${X}'\n"), environ={"X": "1"}) == {"A": "${X}"}


def test_find_dotenv_walks_up(tmp_path):
    write(tmp_path, "A=1\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_dotenv(deep) == tmp_path / ".env"
    assert find_dotenv(deep, name=".env.missing") is None
