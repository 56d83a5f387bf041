"""Requirements files read the official way, and install steps layered into one list."""

from __future__ import annotations

import pytest

from devloop.swebench.requirements import expand_requirements, layer, requirement_lines


def test_expand_requirements_follows_the_official_reader() -> None:
    files = {
        "requirements/dev.txt": "-r base.txt\n-r missing.txt\n# a comment\n-e .\n.[test]\npytest==7.1\ntypes-pkg_resources==0.1\n",
        "requirements/base.txt": "click>=8\n-e .\n",
    }
    path, text = expand_requirements(
        files.get, ["requirements.txt", "requirements/dev.txt"], [("types-pkg_resources", "types-setuptools")]
    )
    assert path == "requirements/dev.txt"
    assert text == "click>=8\n\npytest==7.1\ntypes-setuptools\n"
    assert requirement_lines(text) == ["click>=8", "pytest==7.1", "types-setuptools"]


def test_expand_requirements_removes_a_package_replaced_by_none_and_says_when_no_file_exists() -> None:
    _, text = expand_requirements({"r.txt": "a==1\nb==2\n"}.get, ["r.txt"], [("a", None)])
    assert text == "b==2\n"
    with pytest.raises(LookupError, match="no requirements file at r.txt, s.txt"):
        expand_requirements({}.get, ["r.txt", "s.txt"])


def test_layer_keeps_the_earlier_pin_for_a_bare_name_and_takes_a_later_pin() -> None:
    assert layer(["numpy==1.19", "scipy", "pytest"], ["numpy", "scipy==1.5", "Cython", "--pre"]) == [
        "numpy==1.19",
        "scipy==1.5",
        "pytest",
        "Cython",
        "--pre",
    ]
