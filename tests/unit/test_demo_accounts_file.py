"""The demo passwords file keeps earlier accounts' lines when new ones are added."""
from labcommons.demo.accounts import _note, read_passwords


def test_new_passwords_are_added_to_the_file_without_losing_the_old(tmp_path):
    path = tmp_path / "demo-passwords.txt"
    path.write_text(_note(path, {"ana": "one"}))
    path.write_text(_note(path, {"tom": "two"}))
    assert read_passwords(path) == {"ana": "one", "tom": "two"}
