import pytest
from cli import main


@pytest.fixture
def files(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("one two\nthree\n")
    b = tmp_path / "b.txt"
    b.write_text("four\n")
    return str(a), str(b)


def test_verbose_names_each_file_on_stderr(files, capsys):
    assert main(["--verbose", *files]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"processing {files[0]}", f"processing {files[1]}"]


def test_short_flag(files, capsys):
    assert main(["-v", files[1]]) == 0
    assert capsys.readouterr().err == f"processing {files[1]}\n"


def test_stdout_is_unchanged(files, capsys):
    main(list(files))
    plain = capsys.readouterr().out
    main(["--verbose", *files])
    assert capsys.readouterr().out == plain


def test_without_the_flag_stderr_is_quiet(files, capsys):
    main(list(files))
    assert capsys.readouterr().err == ""


def test_missing_file_with_verbose(files, capsys, tmp_path):
    missing = str(tmp_path / "nope.txt")
    assert main(["-v", missing]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"processing {missing}"
