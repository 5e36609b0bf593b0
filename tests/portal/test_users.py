"""The portal's demo accounts: created once, hashes only, passwords handed over once."""
import json
import stat

from portal import users


def test_demo_users_are_created_once_with_hashes_only(tmp_path):
    assert users.ensure_demo_users(tmp_path)
    stored = (tmp_path / users.USERS_FILE).read_text()
    note = (tmp_path / users.PASSWORDS_FILE).read_text()
    for path in (tmp_path / users.USERS_FILE, tmp_path / users.PASSWORDS_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    passwords = {line.split("\t")[0]: line.split("\t")[2] for line in note.splitlines() if not line.startswith("#")}
    assert set(passwords) == {"ana", "tom", "ada"}
    assert not any(password in stored for password in passwords.values())
    assert json.loads(stored)["users"]["tom"]["role"] == "technician"
    assert not users.ensure_demo_users(tmp_path)  # a second start changes nothing
    assert (tmp_path / users.PASSWORDS_FILE).read_text() == note


def test_authenticate_checks_the_password(tmp_path):
    users.ensure_demo_users(tmp_path)
    note = (tmp_path / users.PASSWORDS_FILE).read_text().splitlines()
    password = next(line.split("\t")[2] for line in note if line.startswith("ada\t"))
    assert users.authenticate(tmp_path, "ada", password) == users.User("ada", "admin")
    assert users.authenticate(tmp_path, "ada", password + "x") is None
    assert users.authenticate(tmp_path, "nobody", password) is None


def test_access_follows_the_role():
    projects = ["p1", "p2"]
    assert users.access(users.User("ana", "analyst"), projects) == (["analyst"], {"p1": "read", "p2": "read"})
    assert users.access(users.User("tom", "technician"), projects) == (["technician"], {"p1": "write", "p2": "write"})
    assert users.access(users.User("ada", "admin"), projects) == (["admin"], {})
