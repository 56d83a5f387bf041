import pytest

from urlrouter import RouteError, Router


def view():
    return None


def test_build_urls():
    r = Router()
    r.add("/users/{id:int}/posts/{slug}", view, name="post")
    r.add("/static/{file:path}", view, name="static")
    assert r.url_for("post", id=3, slug="a b/c") == "/users/3/posts/a%20b%2Fc"
    assert r.url_for("static", file="css/main.css") == "/static/css/main.css"


def test_missing_value():
    r = Router()
    r.add("/users/{id:int}", view, name="user")
    with pytest.raises(RouteError, match="missing value"):
        r.url_for("user")


def test_unknown_name():
    with pytest.raises(RouteError, match="no route named"):
        Router().url_for("nope")
