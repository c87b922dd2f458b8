import pytest
from cli import main


@pytest.fixture
def files(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("one two\nthree\n")
    b = tmp_path / "b.txt"
    b.write_text("four\n")
    return str(a), str(b)


def test_one_file(files, capsys):
    assert main([files[0]]) == 0
    assert capsys.readouterr().out == f"      2       3      14 {files[0]}\n"


def test_total_for_several_files(files, capsys):
    assert main(list(files)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "      3       4      19 total"


def test_missing_file(files, capsys, tmp_path):
    missing = str(tmp_path / "nope.txt")
    assert main([files[1], missing]) == 1
    assert "nope.txt" in capsys.readouterr().err
