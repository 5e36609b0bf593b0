"""The portal's user accounts: a small JSON file of password hashes in the data dir.

A stand-in until full accounts (flask-login, `labcommons user ...`) arrive: on first start the
portal creates the demo users ana (analyst), tom (technician) and ada (admin) with random
passwords, keeps only werkzeug hashes in `portal-users.json` (0600) and writes the plain
passwords once to `demo-passwords.txt` (0600) for the person who ran `labcommons up`.
"""
from __future__ import annotations

import functools
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from labcommons.settings import write_private

USERS_FILE = "portal-users.json"
PASSWORDS_FILE = "demo-passwords.txt"
DEMO_USERS = {"ana": "analyst", "tom": "technician", "ada": "admin"}
PROJECT_ACCESS = {"analyst": "read", "technician": "write"}


@dataclass(frozen=True)
class User:
    name: str
    role: str


def ensure_demo_users(data_dir: Path) -> bool:
    """Create the demo users unless the users file exists; True when it was created now."""
    users_path = data_dir / USERS_FILE
    if users_path.exists():
        return False
    data_dir.mkdir(parents=True, exist_ok=True)
    passwords = {name: secrets.token_urlsafe(12) for name in DEMO_USERS}
    # passwords first: a crash in between regenerates both files at the next start
    write_private(data_dir / PASSWORDS_FILE, _password_note(passwords))
    users = {name: {"role": role, "password_hash": generate_password_hash(passwords[name])}
             for name, role in DEMO_USERS.items()}
    write_private(users_path, json.dumps({"users": users}, indent=2) + "\n")
    return True


def _password_note(passwords: dict[str, str]) -> str:
    lines = ["# labcommons portal demo accounts (sign in at the portal's /signin).",
             "# Only hashes are kept by the portal; delete this file once you have noted them."]
    lines += [f"{name}\t{DEMO_USERS[name]}\t{password}" for name, password in passwords.items()]
    return "\n".join(lines) + "\n"


def authenticate(data_dir: Path, name: str, password: str) -> User | None:
    """The user whose name and password these are, else None (in about the same time either way)."""
    record = _read(data_dir / USERS_FILE).get(name)
    if record is None:
        check_password_hash(_dummy_hash(), password)  # do not reveal which names exist by timing
        return None
    if not check_password_hash(record["password_hash"], password):
        return None
    return User(name, record["role"])


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text()).get("users", {})
    except FileNotFoundError:
        return {}


def access(user: User, projects: list[str]) -> tuple[list[str], dict[str, str]]:
    """(roles, grants) of a user's token: admins need no grants; others get their role's
    access to every project listed by the service."""
    if user.role == "admin":
        return ["admin"], {}
    return [user.role], {project: PROJECT_ACCESS.get(user.role, "read") for project in projects}
