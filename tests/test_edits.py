"""Reading edits out of replies the way small models write them."""

from __future__ import annotations

from turnout.agent.edits import fill_in_omissions, parse_reply

ORIGINAL = '''"""Doc."""

import re


def a(x):
    return x + 1


def b(y):
    return y * 2
'''
KNOWN = {"src/m.py": ORIGINAL, "src/other.py": "def z():\n    return 0\n"}


def test_a_path_line_before_the_fence_names_the_file() -> None:
    reply = parse_reply("The fix:\n\nsrc/other.py\n```python\ndef z():\n    return 1\n```\nDone.", KNOWN)
    assert [(e.path, e.kind) for e in reply.edits] == [("src/other.py", "whole")]
    assert reply.edits[0].content == "def z():\n    return 1\n"
    assert reply.prose == "The fix:\nDone."


def test_decorated_path_lines_and_info_strings_name_the_file() -> None:
    for header in ("**src/other.py**", "`src/other.py`", "File: src/other.py", "### src/other.py"):
        reply = parse_reply(f"{header}\n```python\ndef z():\n    return 2\n```", KNOWN)
        assert [e.path for e in reply.edits] == ["src/other.py"], header
    reply = parse_reply("```python src/other.py\ndef z():\n    return 2\n```", KNOWN)
    assert [e.path for e in reply.edits] == ["src/other.py"]


def test_a_fence_around_the_path_alone_then_the_codes_own_fence_is_one_file() -> None:
    reply = parse_reply("```python\nsrc/other.py\n```python\ndef z():\n    return 3\n```", KNOWN)
    assert [(e.path, e.kind) for e in reply.edits] == [("src/other.py", "whole")]
    assert reply.edits[0].content == "def z():\n    return 3\n"


def test_a_bare_file_name_resolves_to_the_one_shown_file_of_that_name() -> None:
    reply = parse_reply("other.py\n```python\ndef z():\n    return 3\n```", KNOWN)
    assert [e.path for e in reply.edits] == ["src/other.py"]


def test_a_block_with_no_path_goes_to_the_shown_file_it_resembles() -> None:
    rewritten = ORIGINAL.replace("y * 2", "y * 3")
    reply = parse_reply(f"Here you go:\n```python\n{rewritten}```", KNOWN)
    assert [e.path for e in reply.edits] == ["src/m.py"]
    assert reply.edits[0].content == rewritten


def test_a_prose_word_with_a_dot_is_not_a_path() -> None:
    reply = parse_reply("numpy.ndarray\n```python\ndef z():\n    return 4\n```", {"src/other.py": "x"})
    assert [e.path for e in reply.edits] == ["src/other.py"]  # the only shown file, not "numpy.ndarray"


def test_search_replace_blocks_are_read_inside_and_outside_fences() -> None:
    bare = "src/m.py\n<<<<<<< SEARCH\n    return y * 2\n=======\n    return y * 3\n>>>>>>> REPLACE\n"
    fenced = "src/m.py\n```python\n<<<<<<< SEARCH\n    return y * 2\n=======\n    return y * 3\n>>>>>>> REPLACE\n```\n"
    for text in (bare, fenced):
        reply = parse_reply(text, KNOWN)
        assert [(e.path, e.kind, e.search, e.replace) for e in reply.edits] == [
            ("src/m.py", "replace", "    return y * 2", "    return y * 3")
        ]


def test_a_search_block_without_its_end_is_a_problem_not_an_edit() -> None:
    reply = parse_reply("src/m.py\n<<<<<<< SEARCH\n    return y * 2\n", KNOWN)
    assert reply.edits == [] and "REPLACE" in reply.problems[0]


def test_an_unclosed_fence_at_the_end_of_a_cut_reply_still_counts() -> None:
    reply = parse_reply("src/other.py\n```python\ndef z():\n    return 5\n", KNOWN)
    assert reply.edits[0].content == "def z():\n    return 5\n"


def test_only_the_changed_function_is_spliced_into_the_file() -> None:
    merged = fill_in_omissions(ORIGINAL, "def b(y):\n    return y * 3\n")
    assert merged == ORIGINAL.replace("y * 2", "y * 3")


def test_a_new_function_and_a_new_import_are_added_and_nothing_is_lost() -> None:
    merged = fill_in_omissions(ORIGINAL, "import os\n\n\ndef c():\n    return os.sep\n")
    assert "import re\nimport os\n" in merged
    assert "def a(x):" in merged and "def b(y):" in merged and merged.rstrip().endswith("return os.sep")


def test_a_whole_file_that_keeps_every_definition_is_taken_as_written() -> None:
    rewritten = ORIGINAL.replace("import re\n", "")
    assert fill_in_omissions(ORIGINAL, rewritten) == rewritten


def test_a_reply_that_does_not_parse_is_left_for_the_syntax_check() -> None:
    broken = "def b(y):\n    return (y * 3\n"
    assert fill_in_omissions(ORIGINAL, broken) == broken
