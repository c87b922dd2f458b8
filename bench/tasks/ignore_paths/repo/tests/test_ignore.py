from ignore import filter_paths, is_ignored, parse_rules

RULES = parse_rules("""
# build output
build/
*.pyc
docs/_build/*
""")


def test_rules_are_parsed():
    assert RULES == ["build/", "*.pyc", "docs/_build/*"]


def test_posix_paths():
    assert is_ignored("build/lib/app.o", RULES)
    assert is_ignored("src/pkg/mod.pyc", RULES)
    assert is_ignored("docs/_build/index.html", RULES)
    assert not is_ignored("src/pkg/mod.py", RULES)


def test_windows_paths():
    assert is_ignored("build\\lib\\app.o", RULES)
    assert is_ignored("docs\\_build\\index.html", RULES)
    assert not is_ignored("src\\build.py", RULES)


def test_filter_keeps_the_original_form():
    paths = ["README.md", "build\\x.o", ".\\src\\main.py", "src/main.pyc"]
    assert filter_paths(paths, RULES) == ["README.md", ".\\src\\main.py"]
