"""Demo accounts, one per role, created in the metadata service by `labcommons demo`.

Passwords are random and written once, for the person running the commons, to a file only
they can read (`demo-passwords.txt` in the data dir); the service keeps only argon2 hashes.
"""
from __future__ import annotations

import secrets
from pathlib import Path

from ground.settings import write_private
from metadata.client import MetadataClient

PASSWORDS_FILE = "demo-passwords.txt"
DEMO_ACCOUNTS = {"ana": "analyst", "tom": "technician", "ada": "admin"}
PROJECT_ACCESS = {"analyst": "read", "technician": "write"}
HEADER = ["# labcommons demo accounts (sign in at the portal's /signin): user, role, password.",
          "# The service keeps only hashes; delete this file once you have noted them."]


def ensure_demo_accounts(client: MetadataClient, passwords_path: Path, projects: list[str]) -> list[str]:
    """Create the demo accounts that do not exist yet and grant them these projects; new names."""
    existing = {account.user for account in client.accounts()}
    created = {name: secrets.token_urlsafe(12) for name in DEMO_ACCOUNTS if name not in existing}
    if created:
        # the file first: if the service then fails, the next run makes new accounts and a new file
        write_private(passwords_path, _note(passwords_path, created))
    for name, password in created.items():
        client.save_account(name, password, [DEMO_ACCOUNTS[name]])
    for name, role in DEMO_ACCOUNTS.items():
        for project in projects if role in PROJECT_ACCESS else ():
            client.set_grant(name, project, PROJECT_ACCESS[role])
    return sorted(created)


def read_passwords(passwords_path: Path) -> dict[str, str]:
    """user -> password, as written by ensure_demo_accounts."""
    lines = passwords_path.read_text().splitlines()
    return {line.split("\t")[0]: line.split("\t")[2] for line in lines if line and not line.startswith("#")}


def _note(path: Path, passwords: dict[str, str]) -> str:
    kept = [f"{n}\t{DEMO_ACCOUNTS[n]}\t{p}" for n, p in read_passwords(path).items() if n not in passwords] \
        if path.exists() else []
    fresh = [f"{n}\t{DEMO_ACCOUNTS[n]}\t{p}" for n, p in passwords.items()]
    return "\n".join(HEADER + kept + fresh) + "\n"
