from globmatch import PatternList, match_path


def test_basename_pattern_any_depth():
    assert match_path("*.log", "var/log/app.log")
    assert not match_path("*.log", "var/log/app.txt")


def test_anchored_pattern():
    assert match_path("src/*.py", "src/main.py")
    assert not match_path("src/*.py", "src/pkg/main.py")


def test_double_star():
    assert match_path("src/**/*.py", "src/main.py")
    assert match_path("src/**/*.py", "src/a/b/c.py")
    assert match_path("**/build", "x/y/build")
    assert not match_path("src/**/*.py", "lib/a.py")


def test_pattern_list_last_match_wins():
    rules = PatternList(["# comment", "*.log", "!keep.log", "", "build/"])
    assert rules.matches("logs/app.log")
    assert not rules.matches("logs/keep.log")
    assert rules.matches("build", is_dir=True)
    assert not rules.matches("build")


def test_filter():
    rules = PatternList(["*.pyc", "__pycache__/"])
    assert rules.filter(["a.py", "a.pyc", "b/c.pyc"]) == ["a.py"]
