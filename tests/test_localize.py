"""Localization: which source files the first prompt shows for a failure, and the repository map.

Every repository here is a few files written into tmp_path; one test runs real pytest on one
and feeds its real output through, since that is what the agent will see.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from turnout.agent.localize import (
    failing_test_files,
    localize,
    repo_map,
    resolve_imports,
    search_roots,
)
from turnout.agent.testrun import files_named_in


def write(repo: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return repo


SLUG = "def slugify(text):\n    return text.lower().replace(' ', '_')\n"
TEST_SLUG = "from slug import slugify\n\n\ndef test_slug():\n    assert slugify('A b') == 'a-b'\n"
# What pytest prints when an assertion fails inside the test: the test file and nothing else.
ASSERTION_ONLY = """\
F                                                                        [100%]
=================================== FAILURES ===================================
__________________________________ test_slug ___________________________________

    def test_slug():
>       assert slugify('A b') == 'a-b'
E       AssertionError: assert 'a_b' == 'a-b'

tests/test_slug.py:5: AssertionError
=========================== short test summary info ============================
FAILED tests/test_slug.py::test_slug - AssertionError: assert 'a_b' == 'a-b'
1 failed in 0.02s
"""

# The forms a test file or conftest uses to put a folder ("code", not the src/ that is looked in
# anyway) on sys.path.
INSERT_FORMS = {
    "os.path": 'import os\nimport sys\n\n'
    'sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "code"))\n',
    "abspath": "import os, sys\n"
    "sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..', 'code')))\n",
    "from os.path": "import sys\nfrom os.path import abspath, dirname, join\n"
    "sys.path.insert(0, abspath(join(dirname(__file__), '..', 'code')))\n",
    "pathlib parents": "import sys\nfrom pathlib import Path\n"
    'sys.path.append(str(Path(__file__).resolve().parents[1] / "code"))\n',
    "pathlib parent": "import sys\nfrom pathlib import Path\n"
    'sys.path.insert(0, str(Path(__file__).parent.parent / "code"))\n',
    "a name assigned once": "import sys\nfrom pathlib import Path\n\n"
    "ROOT = Path(__file__).resolve().parent.parent\n"
    "if str(ROOT / 'code') not in sys.path:\n"
    "    sys.path.insert(0, str(ROOT / 'code'))\n",
    "relative to the cwd": 'import sys\nsys.path.insert(0, "code")\n',
    "an f-string": "import pathlib, sys\n"
    "HERE = pathlib.Path(__file__).parent\n"
    'sys.path.insert(0, f"{HERE}/../code")\n',
    "joinpath": "import sys\nfrom pathlib import Path\n"
    'sys.path.insert(0, str(Path(__file__).absolute().parent.parent.joinpath("code")))\n',
}


@pytest.mark.parametrize("form", sorted(INSERT_FORMS))
def test_the_imports_of_a_test_file_that_inserts_src_on_sys_path_resolve_to_the_module_under_test(
    tmp_path: Path, form: str
) -> None:
    write(tmp_path, {"code/slug.py": SLUG, "tests/test_slug.py": INSERT_FORMS[form] + TEST_SLUG})

    assert tmp_path.resolve() / "code" in search_roots("tests/test_slug.py", tmp_path)
    assert resolve_imports("tests/test_slug.py", tmp_path) == ["code/slug.py"]


def test_a_folder_the_test_file_does_not_insert_is_no_search_root(tmp_path: Path) -> None:
    write(tmp_path, {"code/slug.py": SLUG, "tests/test_slug.py": TEST_SLUG})

    assert tmp_path.resolve() / "code" not in search_roots("tests/test_slug.py", tmp_path)
    assert resolve_imports("tests/test_slug.py", tmp_path) == []


def test_a_name_assigned_twice_or_an_unknown_expression_is_not_guessed_at(tmp_path: Path) -> None:
    header = (
        "import os, sys\n"
        "ROOT = os.path.dirname(__file__)\n"
        "ROOT = os.path.join(ROOT, '..')\n"
        "sys.path.insert(0, os.path.join(ROOT, 'code'))\n"
        "sys.path.insert(0, os.environ['SOMEWHERE'])\n"
        "sys.path.insert(0, compute())\n"
    )
    write(tmp_path, {"code/slug.py": SLUG, "tests/test_slug.py": header + TEST_SLUG})

    roots = search_roots("tests/test_slug.py", tmp_path)

    assert tmp_path.resolve() / "code" not in roots
    assert roots == [tmp_path.resolve() / "tests", tmp_path.resolve()]


@pytest.mark.parametrize("where", ["tests/conftest.py", "conftest.py"])
def test_a_conftest_that_inserts_src_puts_it_on_the_search_path(tmp_path: Path, where: str) -> None:
    parents = "parents[1]" if where.startswith("tests/") else "parent"
    conftest = (
        '"""Make the modules under code/ importable from the tests."""\n\n'
        "import sys\nfrom pathlib import Path\n\n"
        "def pytest_configure(config):\n"
        f'    sys.path.insert(0, str(Path(__file__).resolve().{parents} / "code"))\n'
    )
    write(tmp_path, {"code/slug.py": SLUG, where: conftest, "tests/test_slug.py": TEST_SLUG})

    roots = search_roots("tests/test_slug.py", tmp_path)

    # Under the test's own basedir (pytest inserts it at import time), over everything else.
    assert roots[:2] == [tmp_path.resolve() / "tests", tmp_path.resolve() / "code"]
    assert resolve_imports("tests/test_slug.py", tmp_path) == ["code/slug.py"]


def test_the_basedir_of_a_test_inside_packages_is_the_folder_above_its_outermost_package(
    tmp_path: Path,
) -> None:
    write(tmp_path, {
        "tests/__init__.py": "",
        "tests/unit/__init__.py": "",
        "tests/unit/test_a.py": "from tests.factories import make\n",
        "tests/factories.py": "from app.models import Model\n\ndef make():\n    return Model()\n",
        "tests/plain/test_b.py": "",
        "app/models.py": "class Model:\n    pass\n",
    })
    root = tmp_path.resolve()

    assert search_roots("tests/unit/test_a.py", tmp_path)[0] == root
    assert search_roots("tests/plain/test_b.py", tmp_path)[0] == root / "tests" / "plain"
    assert resolve_imports("tests/unit/test_a.py", tmp_path) == ["tests/factories.py"]
    # The factory module is a test helper: read through, it leads to the code under test.
    output = "FAILED tests/unit/test_a.py::test_make - AssertionError\n"
    assert localize(tmp_path, output).files == ["app/models.py"]


def test_package_imports_resolve_to_the_submodule_and_the_package_init(tmp_path: Path) -> None:
    write(tmp_path, {
        "src/app/__init__.py": "from app.core import parse\n\nVERSION = '1'\n",
        "src/app/core.py": "def parse(text):\n    return text\n",
        "src/quiet/__init__.py": '"""Only a docstring: nothing to show."""\n',
        "src/quiet/deep/__init__.py": "",
        "src/quiet/deep/mod.py": "X = 1\n",
        "tests/test_app.py": "import app.core\nimport quiet.deep.mod\n",
    })

    assert resolve_imports("tests/test_app.py", tmp_path) == [
        "src/app/core.py", "src/app/__init__.py", "src/quiet/deep/mod.py",
    ]


def test_from_package_import_submodule_resolves_to_the_submodule_file(tmp_path: Path) -> None:
    write(tmp_path, {
        "src/app/__init__.py": "",
        "src/app/core.py": "def parse(text):\n    return text\n",
        "src/app/cli.py": "def main():\n    pass\n",
        "src/other/__init__.py": "NAME = 'other'\n",
        "src/app/sub/__init__.py": "",
        "src/app/sub/deep.py": "from .. import core\nfrom ..cli import main\n"
        "from . import sibling\n",
        "src/app/sub/sibling.py": "Y = 2\n",
        "tests/test_app.py": "from app import core, cli\nfrom other import NAME\n",
        "tests/test_deep.py": "from app.sub import deep\n",
    })

    assert resolve_imports("tests/test_app.py", tmp_path) == [
        "src/app/core.py", "src/app/cli.py", "src/other/__init__.py",
    ]
    assert resolve_imports("src/app/sub/deep.py", tmp_path) == [
        "src/app/core.py", "src/app/cli.py", "src/app/sub/sibling.py",
    ]


def test_imports_inside_functions_and_try_blocks_count(tmp_path: Path) -> None:
    test = (
        "try:\n    import fastslug as impl\nexcept ImportError:\n    import slug as impl\n\n"
        "def test_late():\n    from helpers_mod import thing\n"
        "    import importlib\n    importlib.import_module('dyn')\n"
    )
    write(tmp_path, {
        "slug.py": SLUG, "helpers_mod.py": "thing = 1\n", "dyn.py": "Z = 3\n",
        "tests/test_x.py": test,
    })

    assert resolve_imports("tests/test_x.py", tmp_path) == ["slug.py", "helpers_mod.py", "dyn.py"]


@pytest.mark.parametrize(
    ("config", "text"),
    [
        ("pyproject.toml", '[tool.pytest.ini_options]\npythonpath = ["code", "missing"]\n'),
        ("pyproject.toml", '[tool.pytest]\npythonpath = ["code"]\n'),
        ("pytest.ini", "[pytest]\npythonpath = code\n"),
        ("setup.cfg", "[metadata]\nname = x\n\n[tool:pytest]\npythonpath =\n    code\n"),
        ("tox.ini", "[tox]\nenvlist = py311\n\n[pytest]\npythonpath = code other\n"),
    ],
)
def test_pyproject_pythonpath_is_a_search_root(tmp_path: Path, config: str, text: str) -> None:
    write(tmp_path, {config: text, "code/slug.py": SLUG, "tests/test_slug.py": TEST_SLUG})

    assert tmp_path.resolve() / "code" in search_roots("tests/test_slug.py", tmp_path)
    assert resolve_imports("tests/test_slug.py", tmp_path) == ["code/slug.py"]


def test_an_editable_install_layout_from_setuptools_config_resolves(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": '[tool.setuptools.package-dir]\n"corp.agent" = "agent"\n\n'
        '[tool.setuptools.packages.find]\nwhere = ["lib"]\n',
        "agent/__init__.py": "",
        "agent/loop.py": "def run():\n    pass\n",
        "lib/slug.py": SLUG,
        "tests/test_loop.py": "from corp.agent.loop import run\nfrom corp.agent import loop\n"
        "import slug\n",
    })

    assert resolve_imports("tests/test_loop.py", tmp_path) == ["agent/loop.py", "lib/slug.py"]


def test_a_broken_config_file_is_no_search_root_and_no_crash(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": "[tool.pytest.ini_options\npythonpath = ['code']\n",
        "setup.cfg": "this is not = an ini [file\n",
        "code/slug.py": SLUG,
        "tests/test_slug.py": TEST_SLUG,
    })

    assert resolve_imports("tests/test_slug.py", tmp_path) == []


CORE = (
    "from app.util import clean\n\n\n"
    "def slugify(text):\n    return clean(text).replace(' ', '_')\n"
)
UTIL = "from .deeper import strip\n\n\ndef clean(text):\n    return strip(text).lower()\n"
DEEPER = "def strip(text):\n    return text.strip()\n"
TEST_CORE = (
    "from app.core import slugify\n\n\n"
    "def test_slug():\n    assert slugify('A b') == 'a-b'\n"
)
FAILED_CORE = "FAILED tests/test_core.py::test_slug - AssertionError: assert 'a_b' == 'a-b'\n"


def app_repo(tmp_path: Path) -> Path:
    return write(tmp_path, {
        "src/app/__init__.py": "",
        "src/app/core.py": CORE,
        "src/app/util.py": UTIL,
        "src/app/deeper.py": DEEPER,
        "src/app/unrelated.py": "def other():\n    pass\n",
        "tests/test_core.py": TEST_CORE,
    })


def test_a_helper_imported_by_the_module_under_test_is_included_after_it(tmp_path: Path) -> None:
    app_repo(tmp_path)

    found = localize(tmp_path, FAILED_CORE)

    assert found.files == ["src/app/core.py", "src/app/util.py"]
    assert found.test_files == ["tests/test_core.py"]
    assert found.reasons == {
        "src/app/core.py": "imported by tests/test_core.py",
        "src/app/util.py": "imported by src/app/core.py",
    }
    assert localize(tmp_path, FAILED_CORE, max_depth=1).files == ["src/app/core.py"]
    assert localize(tmp_path, FAILED_CORE, max_depth=3).files == [
        "src/app/core.py", "src/app/util.py", "src/app/deeper.py",
    ]


def test_an_assertion_failure_that_names_only_the_test_file_still_localizes_the_source(
    tmp_path: Path,
) -> None:
    write(tmp_path, {
        "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["src"]\n',
        "src/slug.py": SLUG,
        "src/unrelated.py": "def other():\n    pass\n",
        "tests/test_slug.py": TEST_SLUG,
    })
    assert files_named_in(ASSERTION_ONLY, tmp_path) == ["tests/test_slug.py"]

    found = localize(tmp_path, ASSERTION_ONLY)

    assert found.files == ["src/slug.py"]
    assert found.test_files == ["tests/test_slug.py"]


def test_a_source_file_only_the_traceback_names_comes_after_the_imports(tmp_path: Path) -> None:
    app_repo(tmp_path)
    output = (
        FAILED_CORE
        + f'  File "{tmp_path}/src/app/unrelated.py", line 2, in other\n'
        + "src/app/core.py:5: in slugify\n"
        + f'  File "{tmp_path}/.venv/lib/python3.11/site-packages/lib.py", line 1, in f\n'
    )
    write(tmp_path, {".venv/lib/python3.11/site-packages/lib.py": "def f():\n    pass\n"})

    found = localize(tmp_path, output)

    assert found.files == ["src/app/core.py", "src/app/util.py", "src/app/unrelated.py"]
    assert found.reasons["src/app/unrelated.py"] == "named in the traceback"
    assert found.reasons["src/app/core.py"] == (
        "imported by tests/test_core.py; named in the traceback"
    )


# Real pytest output: a collection error for one module, a FAILED test and a setup ERROR in
# others, in the default (progress per file) and -v (progress per test) shapes.
COLLECTION_ERROR = """\
============================= test session starts ==============================
platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0
rootdir: {repo}
configfile: pytest.ini
collected 3 items / 1 error

==================================== ERRORS ====================================
____________________ ERROR collecting tests/test_broken.py _____________________
ImportError while importing test module '{repo}/tests/test_broken.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
/root/.pyenv/versions/3.11.7/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
tests/test_broken.py:1: in <module>
    from missing_mod import x
E   ModuleNotFoundError: No module named 'missing_mod'
=========================== short test summary info ============================
ERROR tests/test_broken.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
=============================== 1 error in 0.15s ===============================
"""
RUN_WITH_FAILURES = """\
collected 5 items

tests/test_ok.py ..                                                      [ 40%]
tests/test_err.py E                                                      [ 60%]
tests/test_fail.py F.                                                    [100%]

==================================== ERRORS ====================================
___________________________ ERROR at setup of test_c ___________________________

    @pytest.fixture
    def f():
>       raise RuntimeError("boom")
E       RuntimeError: boom

tests/test_err.py:4: RuntimeError
=================================== FAILURES ===================================
____________________________________ test_a ____________________________________

    def test_a():
>       assert 1 == 2
E       assert 1 == 2

tests/test_fail.py:2: AssertionError
=========================== short test summary info ============================
FAILED tests/test_fail.py::test_a - assert 1 == 2
ERROR tests/test_err.py::test_c - RuntimeError: boom
FAILED tests/test_gone.py::test_x - assert False
===================== 1 failed, 1 passed, 1 error in 0.04s =====================
"""
VERBOSE = """\
tests/test_ok.py::test_fine PASSED                                       [ 33%]
tests/unit/test_v.py::TestThing::test_x[1-2] FAILED                      [ 66%]
tests/test_fail.py::test_a FAILED                                        [100%]
"""


def test_failing_test_files_are_read_from_pytest_FAILED_lines_and_collection_errors(
    tmp_path: Path,
) -> None:
    write(tmp_path, {
        f"tests/{name}.py": "def test():\n    pass\n"
        for name in ("test_broken", "test_ok", "test_err", "test_fail", "unit/test_v")
    })
    repo = tmp_path.resolve()

    assert failing_test_files(COLLECTION_ERROR.format(repo=repo), tmp_path) == [
        "tests/test_broken.py",
    ]
    # In order of first mention; a file that passed, or that is not in the repo, is not listed.
    assert failing_test_files(RUN_WITH_FAILURES, tmp_path) == [
        "tests/test_err.py", "tests/test_fail.py",
    ]
    assert failing_test_files(VERBOSE, tmp_path) == ["tests/unit/test_v.py", "tests/test_fail.py"]
    native = f'Traceback (most recent call last):\n  File "{repo}/tests/test_fail.py", line 2\n'
    assert failing_test_files(native, tmp_path) == ["tests/test_fail.py"]
    assert failing_test_files("5 passed in 0.01s\n", tmp_path) == []


def test_paths_relative_to_a_subfolder_rootdir_or_another_checkout_are_found(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"calc/pytest.ini": "[pytest]\n", "calc/tests/test_calc.py": ""})

    assert failing_test_files("FAILED tests/test_calc.py::test_a - x\n", tmp_path) == [
        "calc/tests/test_calc.py",
    ]
    elsewhere = "ImportError while importing test module '/ci/checkout/calc/tests/test_calc.py'."
    assert failing_test_files(elsewhere, tmp_path) == ["calc/tests/test_calc.py"]


def test_stdlib_and_third_party_imports_are_skipped(tmp_path: Path) -> None:
    test = (
        "import os\nimport os.path\nimport json\nfrom collections import OrderedDict\n"
        "import pytest\nimport numpy as np\nfrom requests.adapters import HTTPAdapter\n"
        "from slug import slugify\n"
    )
    write(tmp_path, {"slug.py": SLUG, "tests/test_slug.py": test})

    assert resolve_imports("tests/test_slug.py", tmp_path) == ["slug.py"]


def test_a_module_inside_a_virtualenv_in_the_repo_is_never_resolved(tmp_path: Path) -> None:
    write(tmp_path, {
        ".venv/lib/python3.11/site-packages/slug.py": SLUG,
        "pytest.ini": "[pytest]\npythonpath = .venv/lib/python3.11/site-packages\n",
        "tests/test_slug.py": TEST_SLUG,
    })

    assert resolve_imports("tests/test_slug.py", tmp_path) == []


def task_repo(tmp_path: Path) -> Path:
    return write(tmp_path, {
        "src/app/__init__.py": "",
        "src/app/cli.py": "import argparse\n\n\ndef main(argv=None):\n    pass\n",
        "src/app/duration.py": "def parse_duration(text: str) -> int:\n    return 0\n",
        "src/app/money.py": "class Money:\n    def add(self, other):\n        return self\n",
        "src/app/words.py": "def add(a, b):\n    return a + b\n\n\ndef main():\n    pass\n",
        "src/app/models.py": "from app.money import Money\n",
        "tests/test_duration.py": "from app.duration import parse_duration\n",
        "tests/test_models.py": "from app import models\n",
    })


def test_task_text_naming_a_file_or_function_localizes_it_when_tests_pass(tmp_path: Path) -> None:
    task_repo(tmp_path)
    passing = "..                                                                       [100%]\n"
    task = "Add a --verbose flag to cli.py. parse_duration should accept '1h'; Money must add."

    found = localize(tmp_path, passing + "2 passed in 0.01s\n", task)

    # Named first (path, then definitions in the task's order), then the tests' imports, weakly.
    # "add" and "main" are plain words in prose: they name neither words.py nor cli.py's main.
    assert found.files == [
        "src/app/cli.py", "src/app/duration.py", "src/app/money.py", "src/app/models.py",
    ]
    assert found.reasons["src/app/cli.py"] == "named in the task"
    assert found.reasons["src/app/duration.py"] == "defines parse_duration, named in the task"
    assert found.reasons["src/app/money.py"] == "defines Money, named in the task"
    assert found.reasons["src/app/models.py"] == "imported by tests/test_models.py"
    # The tests worth showing are those about the files the task names.
    assert found.test_files == ["tests/test_duration.py"]


def test_a_task_names_files_by_full_path_dotted_module_or_backticked_name(tmp_path: Path) -> None:
    task_repo(tmp_path)

    by_path = localize(tmp_path, "", "In src/app/cli.py, the help text is wrong.")
    by_module = localize(tmp_path, "", "app.duration rounds down")
    by_backticks = localize(tmp_path, "", "`add` overflows for big numbers")

    assert by_path.files[0] == "src/app/cli.py"
    assert by_module.files[0] == "src/app/duration.py"
    assert by_backticks.files[0] == "src/app/words.py"
    assert by_backticks.reasons["src/app/words.py"] == "defines add, named in the task"


def test_test_files_and_conftest_are_never_in_files(tmp_path: Path) -> None:
    write(tmp_path, {
        "conftest.py": "import sys\nsys.path.insert(0, 'lib')\nfrom fixtures_src import data\n",
        "lib/fixtures_src.py": "data = 1\n",
        "lib/slug.py": SLUG,
        "tests/helpers.py": "from slug import slugify\n",
        "tests/test_slug.py": "from tests.helpers import slugify\nfrom helpers import slugify\n",
    })
    output = (
        "FAILED tests/test_slug.py::test_slug - AssertionError\n"
        "conftest.py:3: in <module>\n"
        "tests/helpers.py:1: in <module>\n"
    )
    task = "conftest.py and tests/helpers.py and test_slug.py look odd"

    found = localize(tmp_path, output, task)

    assert found.files == ["lib/slug.py", "lib/fixtures_src.py"]
    assert found.reasons["lib/slug.py"] == "imported by tests/helpers.py"
    assert found.reasons["lib/fixtures_src.py"] == "imported by conftest.py"
    assert found.test_files == ["tests/test_slug.py"]


def test_a_conftest_that_fails_to_import_localizes_what_it_imports(tmp_path: Path) -> None:
    write(tmp_path, {
        "src/db.py": "raise RuntimeError('no database')\n",
        "tests/conftest.py": "from db import connect\n",
        "tests/test_x.py": "def test_x():\n    pass\n",
    })
    output = (
        f"ImportError while loading conftest '{tmp_path.resolve()}/tests/conftest.py'.\n"
        "tests/conftest.py:1: in <module>\n    from db import connect\n"
        "E   ImportError: cannot import name 'connect' from 'db'\n"
    )

    found = localize(tmp_path, output)

    assert found.files[0] == "src/db.py"
    assert found.reasons["src/db.py"] == "imported by tests/conftest.py"


def test_unparseable_binary_huge_and_outside_files_are_tolerated(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    repo = write(tmp_path / "repo", {
        "src/broken.py": "def oops(:\n",
        "src/huge.py": "X = 1\n" * 200_000,
        "src/blob.py": "",
        "src/image.png": "",
        "tests/test_x.py": "import broken\nimport huge\nimport blob\nimport linked\n"
        "import pipe\nimport dangling\nfrom elsewhere import mod\n",
    })
    (repo / "src" / "blob.py").write_bytes(b"\x00\x01binary")
    (repo / "src" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    write(outside, {"linked.py": "SECRET = 1\n", "elsewhere/mod.py": "Y = 1\n"})
    (repo / "src" / "linked.py").symlink_to(outside / "linked.py")
    (repo / "src" / "elsewhere").symlink_to(outside / "elsewhere")
    (repo / "src" / "loop").symlink_to(repo / "src")
    (repo / "src" / "dangling.py").symlink_to(repo / "nowhere.py")
    os.mkfifo(repo / "src" / "pipe.py")  # a read of it would block forever

    found = localize(repo, "FAILED tests/test_x.py::test - SyntaxError\n", "fix `oops` in huge.py")

    # The file that does not parse is shown: it may well be the bug.
    assert found.files == ["src/broken.py"]
    text = repo_map(repo)
    assert text.splitlines() == ["src/broken.py", "src/huge.py", "tests/test_x.py"]


MAPPED = '''\
"""A module."""

import os

LIMIT = 3


def parse(text, strict=False, *args, sep: str = ",", **kwargs) -> list[str]:
    return []


async def fetch(url, /, timeout=...):
    pass


class Money(Base, metaclass=Meta):
    def __init__(self, cents: int) -> None:
        self.cents = cents

    def add(self, other: "Money") -> "Money":
        return self

    def _private(self):
        pass


if os.name == "nt":
    def windows_only(*, path):
        pass
'''


def test_repo_map_lists_signatures_and_marks_files_shown_above(tmp_path: Path) -> None:
    write(tmp_path, {
        "src/app/money.py": MAPPED,
        "src/app/cli.py": "def main(argv=None) -> int:\n    return 0\n",
        "README.md": "# app\n",
        "node_modules/x/index.js": "",
        ".git/HEAD": "ref: refs/heads/main\n",
        "src/app/__pycache__/money.cpython-311.pyc": "",
    })

    text = repo_map(tmp_path, exclude=["src/app/cli.py"])

    assert text == (
        "README.md\n"
        "src/app/cli.py (shown above)\n"
        "src/app/money.py\n"
        "  def parse(text, strict=..., *args, sep=..., **kwargs) -> list[str]\n"
        "  async def fetch(url, /, timeout=...)\n"
        "  class Money(Base, metaclass=Meta)\n"
        "    def __init__(self, cents) -> None\n"
        "    def add(self, other) -> 'Money'\n"
        "  def windows_only(*, path)"
    )


def test_repo_map_stays_within_its_budget(tmp_path: Path) -> None:
    write(tmp_path, {
        f"pkg/mod{i:02}.py": "".join(
            f"def function_{j}(alpha, beta=1):\n    pass\n\n" for j in range(i % 7 + 1)
        ) + "class Thing:\n    def method_one(self, x):\n        pass\n"
        for i in range(40)
    })
    full = repo_map(tmp_path, max_chars=1_000_000)
    assert "    def method_one(self, x)" in full

    no_methods = repo_map(tmp_path, max_chars=len(full) - 1)
    assert len(no_methods) <= len(full) - 1
    assert "method_one" not in no_methods and "  def function_0(alpha, beta=...)" in no_methods

    # Definitions go first where they are most: mod06 has seven functions, mod00 one.
    fewer_defs = repo_map(tmp_path, max_chars=len(no_methods) - 100)
    assert len(fewer_defs) <= len(no_methods) - 100
    assert "pkg/mod06.py\npkg/mod07.py\n  def function_0" in fewer_defs

    paths_only = repo_map(tmp_path, max_chars=200)
    assert len(paths_only) <= 200
    lines = paths_only.splitlines()
    assert lines[0] == "pkg/mod00.py" and "def" not in paths_only
    assert lines[-1] == f"... {40 - (len(lines) - 1)} more files"


def test_a_real_pytest_failure_in_a_src_layout_localizes_the_code_under_test(
    tmp_path: Path,
) -> None:
    repo = write(tmp_path / "shop", {
        "pytest.ini": "[pytest]\naddopts = -p no:cacheprovider\n",
        "src/shop/__init__.py": "",
        "src/shop/cart.py": "from shop.pricing import discounted\n\n\n"
        "def total(prices):\n    return sum(discounted(p) for p in prices)\n",
        "src/shop/pricing.py": "def discounted(price):\n    return price * 0.8\n",
        "src/shop/unused.py": "def nothing():\n    pass\n",
        "tests/conftest.py": "import sys\nfrom pathlib import Path\n\n"
        'sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))\n',
        "tests/test_cart.py": "from shop.cart import total\n\n\n"
        "def test_ten_percent_off():\n    assert total([10, 20]) == 27\n\n\n"
        "def test_empty():\n    assert total([]) == 0\n",
    })
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"], check=False, cwd=repo, env=env,
        capture_output=True, text=True, timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    # The premise: the traceback names the test file and none of the code under test.
    assert [f for f in files_named_in(output, repo) if f.startswith("src/")] == [], output

    found = localize(repo, output, "The cart total is wrong.")

    assert found.test_files == ["tests/test_cart.py"]
    assert found.files == ["src/shop/cart.py", "src/shop/pricing.py"]
