import io

from tablemd.cli import main


def test_cli_renders_csv():
    out = io.StringIO()
    assert main(["--delimiter", ";"], stdin=io.StringIO("a;b\n1;2\n"), stdout=out) == 0
    assert out.getvalue().splitlines()[2] == "| 1   | 2   |"


def test_cli_empty_input(capsys):
    assert main([], stdin=io.StringIO(""), stdout=io.StringIO()) == 1
    assert "no input" in capsys.readouterr().err


def test_cli_ragged_rows(capsys):
    assert main([], stdin=io.StringIO("a\n1,2\n"), stdout=io.StringIO()) == 1
    assert "row 1 has 2 cells" in capsys.readouterr().err
