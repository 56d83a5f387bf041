import uuid

import pytest

from urlrouter import MethodNotAllowed, NotFound, RouteError, Router


def handler(**kw):
    return kw


@pytest.fixture
def router():
    r = Router()
    r.add("/", handler, name="home")
    r.add("/users/{id:int}", handler, methods=("GET", "PUT"), name="user")
    r.add("/tokens/{token:uuid}", handler, name="token")
    r.add("/static/{file:path}", handler, name="static")
    r.add("/tags/{tag}", handler, name="tag")
    return r


def test_static_root(router):
    assert router.resolve("GET", "/").route == "home"


def test_int_param(router):
    m = router.resolve("PUT", "/users/42")
    assert (m.route, m.params) == ("user", {"id": 42})


def test_int_rejects_text(router):
    with pytest.raises(NotFound):
        router.resolve("GET", "/users/abc")


def test_uuid(router):
    u = uuid.uuid4()
    assert router.resolve("GET", f"/tokens/{u}").params == {"token": u}


def test_path_converter_matches_slashes(router):
    assert router.resolve("GET", "/static/css/site/main.css").params == {"file": "css/site/main.css"}


def test_str_param_unquoted(router):
    assert router.resolve("GET", "/tags/hello%20world").params == {"tag": "hello world"}


def test_method_not_allowed(router):
    with pytest.raises(MethodNotAllowed) as info:
        router.resolve("DELETE", "/users/1")
    assert info.value.allowed == ["GET", "PUT"]


def test_head_falls_back_to_get(router):
    assert router.resolve("HEAD", "/tags/x").route == "tag"


def test_bad_templates():
    r = Router()
    with pytest.raises(RouteError):
        r.add("users", handler)
    with pytest.raises(RouteError):
        r.add("/a/{x:float}", handler)
    with pytest.raises(RouteError):
        r.add("/a/{x}/{x}", handler)
