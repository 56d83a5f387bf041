import pytest

from tinytpl import Template, TemplateError, TemplateSyntaxError, render


class User:
    def __init__(self, name):
        self.name = name


def test_variables_and_attributes():
    assert render("Hi {{ user.name }}!", user=User("Ann")) == "Hi Ann!"
    assert render("{{ d.k }}/{{ xs.1 }}", d={"k": "v"}, xs=[1, 2]) == "v/2"


def test_missing_is_empty():
    assert render("[{{ nope.deeper }}]") == "[]"


def test_autoescape_and_safe():
    assert render("{{ x }}", x="<b>") == "&lt;b&gt;"
    assert render("{{ x|safe }}", x="<b>") == "<b>"
    assert Template("{{ x }}", autoescape=False).render(x="<b>") == "<b>"


def test_if_else():
    tpl = Template("{% if user %}hi {{ user.name }}{% else %}anon{% endif %}")
    assert tpl.render(user=User("Bo")) == "hi Bo"
    assert tpl.render() == "anon"


def test_for_loop():
    assert render("{% for x in items %}<{{ x }}>{% endfor %}", items=[1, 2]) == "<1><2>"


def test_unclosed_block_reports_line():
    with pytest.raises(TemplateSyntaxError, match="line 2"):
        render("a\n{% if x %}\nb")


def test_stray_end():
    with pytest.raises(TemplateSyntaxError):
        render("{% endfor %}")


def test_invalid_expression():
    with pytest.raises(TemplateError):
        render("{{ 1 + 2 }}")
