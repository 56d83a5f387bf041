import pytest

from tinytpl import TemplateError, render


def test_case_filters():
    assert render("{{ s|upper }} {{ s|title }}", s="hello world") == "HELLO WORLD Hello World"


def test_filter_arguments():
    assert render("{{ xs|join(' / ') }}", xs=["a", "b"]) == "a / b"
    assert render("{{ missing|default('n/a') }}") == "n/a"
    assert render("{{ s|truncate(5) }}", s="abcdefgh") == "abcd…"


def test_length_chain():
    assert render("{{ xs|length }}", xs=[1, 2, 3]) == "3"



def test_escape_filter_not_doubled():
    assert render("{{ s|escape }}", s="a&b") == "a&amp;b"


def test_default_keeps_falsy_numbers():
    assert render("{{ n|default('none') }}", n=0) == "0"
