"""Notifications when a run ends (and alerts, metadata/alerts.py): kept for the portal, and sent by e-mail.

Each is a reserved `_notification` node in the user's private scope ("~<user>"), so the portal
lists them and marks them read. The e-mail goes through SMTP when LABCOMMONS_SMTP_HOST is set;
otherwise it is written to the outbox directory (data/outbox/, one .eml file per message), so
nothing is lost and an operator can see what would have been sent. The address is the user name
when it is one, else <user>@<LABCOMMONS_MAIL_DOMAIN>.
"""
from __future__ import annotations

import json
import logging
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path

from metadata.auth import Identity
from metadata.cohorts import private_scope
from metadata.errors import Invalid
from metadata.idl import metadata_thrift as T
from metadata.records import Notification
from metadata.store.base import Store, StoredNode, Write, reserved_node
from metadata.store.record_index import RecordQuery

log = logging.getLogger(__name__)
NOTE_TYPE = "_notification"
MAX_LISTED = 200


class Notifier:
    def __init__(self, store: Store, outbox: Path, smtp_host: str = "", smtp_port: int = 25,
                 mail_from: str = "labcommons@localhost", mail_domain: str = "localhost"):
        self.store, self.outbox = store, Path(outbox)
        self.smtp_host, self.smtp_port = smtp_host, smtp_port
        self.mail_from, self.mail_domain = mail_from, mail_domain

    def run_ended(self, run: StoredNode, portal_path: str) -> None:
        """Tell the run's launcher how it ended; a failure to mail is logged, never raised."""
        user, status = run.created_by, run.props.get("status", "")
        if not user or user.startswith("trigger:"):
            return  # runs launched by triggers have no person to tell (their admins see the runs list)
        subject = f"{run.props['template']} run {run.submitter_id} {status}{verdict_phrase(run)}"
        body = (f"{subject}.\n\n{run.props.get('message', '')}\n{failed_lines(run)}\nProject: {run.project_id}\n"
                f"Open it: {portal_path}\n")
        self.tell(user, subject, body, portal_path, status)

    def tell(self, user: str, subject: str, body: str, portal_path: str, status: str) -> None:
        """A notification for the portal and a mail to one user; a failure to mail is logged, never raised."""
        props = Notification(subject=subject, body=body, link=portal_path, status=status).to_props()
        note = reserved_node(NOTE_TYPE, private_scope(user), uuid.uuid4().hex, props, None, "service")
        self.store.apply([Write(note, None)], set())
        try:
            self._mail(self.address(user), subject, body)
        except (OSError, smtplib.SMTPException) as error:
            log.warning("could not send the notification %r to %s: %s", subject, user, error)

    def address(self, user: str) -> str:
        return user if "@" in user else f"{user}@{self.mail_domain}"

    def _mail(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.mail_from, to, subject
        message.set_content(body)
        if self.smtp_host:
            with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=10) as smtp:
                smtp.send_message(message)
            return
        self.outbox.mkdir(parents=True, exist_ok=True)
        (self.outbox / f"{uuid.uuid4().hex}.eml").write_bytes(message.as_bytes())

    def list(self, who: Identity, unread_only: bool) -> list[T.Notification]:
        """The newest MAX_LISTED of the caller's notifications (only the unread ones when asked)."""
        where = {"read": "false"} if unread_only else {}
        page = self.store.query(RecordQuery(NOTE_TYPE, where, [private_scope(who.user)], limit=MAX_LISTED))
        return [_thrift(Notification.from_node(n)) for n in page.nodes]

    def mark_read(self, who: Identity, ids: list[str]) -> None:
        if len(ids) > MAX_LISTED:
            raise Invalid(f"ids: give at most {MAX_LISTED} notifications at once")
        found = self.store.get_many(ids)
        writes = []
        for note_id in ids:
            node = found.get(note_id)
            if node is None or node.type != NOTE_TYPE or node.project_id != private_scope(who.user):
                raise Invalid(f"ids: {note_id!r} is not one of your notifications")
            note = Notification.from_node(node)
            if not note.read:
                writes.append(Write(reserved_node(NOTE_TYPE, node.project_id, node.submitter_id,
                                                  note.but(read=True).to_props(), node, who.user), node.version))
        if writes:
            self.store.apply(writes, set())


def verdict_phrase(run: StoredNode) -> str:
    """", QC failed: <checks>" or ", QC passed" for a run with an outcome; else ""."""
    outcome = run.props.get("outcome")
    if outcome == "failed":
        return f", QC failed: {'; '.join(json.loads(run.props.get('failed_checks_json') or '[]'))}"
    return ", QC passed" if outcome == "passed" else ""


def failed_lines(run: StoredNode) -> str:
    """The failing checks, one a line, for the body of a run that failed QC."""
    checks = json.loads(run.props.get("failed_checks_json") or "[]")
    return "".join(f"\nQC failed: {check}" for check in checks) + ("\n" if checks else "")


def _thrift(note: Notification) -> T.Notification:
    return T.Notification(id=note.id, at=note.node.created_at, subject=note.subject, body=note.body, link=note.link,
                          status=note.status, read=bool(note.read))
