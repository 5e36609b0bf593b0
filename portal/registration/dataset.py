"""Registering one dataset: the measurement and its imzML + ibd data files in one step.

`check` asks the service for a dry run of the measurement, so the form has one validator: the
service's. `register` claims the user's staged uploads, verifies that the ibd belongs to the imzML
(headers.verified: UUID, stored checksum, sizes), dry-runs the whole batch, moves the
files to `<project>/<measurement>/<file name>` and submits the batch; when anything is refused
it removes the moved files and the staged ones, so nothing is half-registered.
"""
from __future__ import annotations

from thriftpy2.transport import TTransportException

from metadata.client import ERRORS, MetadataClient
from metadata.idl import metadata_thrift as T
from metadata.submission import PROJECT_PATTERN
from portal.registration import form as register_form, headers, uploads
from portal.objects import ObjectStore
from portal.registration.uploads import Staged, UploadRefused


class Refused(Exception):
    """A registration refused: messages by form field, and those that belong to no field."""

    def __init__(self, fields: dict[str, list[str]], general: list[str], status: int = 400):
        super().__init__("; ".join([m for ms in fields.values() for m in ms] + general))
        self.fields, self.general, self.status = fields, general, status


def can_write(identity: T.Identity, project: str) -> bool:
    """What the service's own rule says (metadata/auth.py): admin, or a write grant."""
    return "admin" in identity.roles or identity.grants.get(project) == "write"


def project_problem(project: str) -> str | None:
    """Why a project name cannot name a storage directory (the service's own pattern), or None."""
    if PROJECT_PATTERN.match(project):
        return None
    return f"project: {project!r} is not a project name; choose one of the projects you may write"


def writable_projects(client: MetadataClient) -> list[str]:
    """The projects the signed-in user may register into."""
    identity = client.whoami()
    return sorted(p["submitter_id"] for p in client.nodes("project") if can_write(identity, p["submitter_id"]))


def check(client: MetadataClient, project: str, values: dict, type_def: dict) -> tuple[dict, list]:
    """(messages by field, other messages) for the measurement the form describes; empty when fine."""
    names = register_form.form_names(type_def)
    fields: dict[str, list[str]] = {}
    if problem := register_form.identifier_problem(str(values.get("submitter_id", "")).strip()):
        fields["submitter_id"] = [problem]
    entity = register_form.measurement_entity(values, type_def)
    try:
        result = client.submit(project, [entity], dry_run=True)
    except T.ValidationError as error:
        found, general = register_form.issues_by_field(error.issues, names)
        return _merge(fields, found), general or ([] if found else [error.message])
    except ERRORS as error:
        return fields, [error.message]
    if result.entities and result.entities[0].action != "create":
        fields.setdefault("submitter_id", []).append(
            f"submitter_id: measurement {entity['submitter_id']!r} is already registered in project "
            f"{project!r}; give the new measurement its own identifier")
    return fields, []


def _merge(first: dict, second: dict) -> dict:
    return {name: first.get(name, []) + second.get(name, []) for name in first.keys() | second.keys()}


def register(client: MetadataClient, store: ObjectStore, user: str, project: str, values: dict,
             upload_ids: list[str], type_def: dict, existing: str = "") -> T.SubmitResult:
    """Register the measurement (new, from values; or the stored one `existing` names) and its
    staged files in one batch, or nothing at all."""
    if problem := project_problem(project):
        raise Refused({"project": [problem]}, [])
    staged = _claim_all(store, upload_ids, user, project)
    values = _verified(store, staged, values, type_def)  # before anything is moved or written
    try:
        _require_pair(staged)
        if existing:
            measurement = _without_files(client, project, existing, staged)
        else:
            measurement = _new_measurement(client, project, values, type_def)
        keys = {s.upload_id: final_key(project, measurement["submitter_id"], s) for s in staged}
        entities = [] if existing else [measurement]
        entities += [register_form.data_file_entity(measurement["submitter_id"], s, store.url(keys[s.upload_id]))
                     for s in staged]
        _dry_run(client, project, entities)
        return _move_and_submit(client, store, project, entities, staged, keys)
    finally:
        for each in staged:
            uploads.discard(store, each)


def _new_measurement(client: MetadataClient, project: str, values: dict, type_def: dict) -> dict:
    fields, general = check(client, project, values, type_def)
    if fields or general:
        raise Refused(fields, general)
    return register_form.measurement_entity(values, type_def)


def _without_files(client: MetadataClient, project: str, submitter_id: str, staged: list[Staged]) -> dict:
    """The stored measurement the files are for, refused if it has data files of these kinds already."""
    try:
        node = client.find(project, submitter_id)
    except (T.NotFound, T.ValidationError):
        node = {}
    if node.get("type") != "measurement":
        raise Refused({"measurement": [f"measurement: no measurement {submitter_id!r} in project {project!r}; "
                                       "give the submitter id of one you can read, or register a new one"]}, [])
    if register_form.identifier_problem(submitter_id):  # submitted elsewhere as, say, '../theirs/x'
        raise Refused({"measurement": [f"measurement: {submitter_id!r} cannot name a storage folder (letters, "
                                       "digits, '-', '_' and single dots); register the files under a new "
                                       "measurement"]}, [])
    for each in staged:
        try:
            client.find(project, f"{submitter_id}.{each.data_format}")
        except (T.NotFound, T.ValidationError):
            continue
        raise Refused({"measurement": [f"measurement: {submitter_id!r} has its {each.data_format} data file already "
                                       f"({submitter_id}.{each.data_format}); register the files under a new "
                                       "measurement"]}, [], 409)
    return node


def measurement_of(result: T.SubmitResult) -> str | None:
    """The measurement a registration wrote or attached files to (data files are <measurement>.<format>)."""
    named = {e.type: e.submitter_id for e in result.entities}
    if "measurement" in named:
        return named["measurement"]
    return named["data_file"].rpartition(".")[0] if "data_file" in named else None


def final_key(project: str, measurement: str, staged: Staged) -> str:
    return f"{project}/{measurement}/{staged.file_name}"


def _claim_all(store: ObjectStore, upload_ids: list[str], user: str, project: str) -> list[Staged]:
    """Every named upload, or none: an unknown id discards the ones already claimed."""
    claimed = []
    try:
        for upload_id in upload_ids:
            claimed.append(uploads.claim(store, str(upload_id), user, project))
    except UploadRefused as refused:
        for each in claimed:
            uploads.discard(store, each)
        raise Refused({"files": [refused.message]}, []) from None
    return claimed


def _require_pair(staged: list[Staged]) -> None:
    formats = sorted(s.data_format for s in staged)
    if formats != ["ibd", "imzML"]:
        got = ", ".join(s.file_name for s in staged) or "no files"
        raise Refused({"files": [f"files: give one .imzML file and one .ibd file (got {got})"]}, [])


def _verified(store: ObjectStore, staged: list[Staged], values: dict, type_def: dict) -> dict:
    """The values, with what the imzML's header adds, once the staged files are one imzML and the
    ibd that belongs to it (headers.verified); on any refusal the staged files are discarded."""
    try:
        _require_pair(staged)
        return headers.verified(store, staged, values, type_def)
    except BaseException as error:
        for each in staged:
            uploads.discard(store, each)
        if isinstance(error, headers.PairRefused):
            raise Refused({"files": error.problems}, []) from None
        raise


def _dry_run(client: MetadataClient, project: str, entities: list[dict]) -> None:
    try:
        client.submit(project, entities, dry_run=True)
    except T.ValidationError as error:
        raise _refused_by(error) from None
    except ERRORS as error:
        raise Refused({}, [error.message], 403 if isinstance(error, T.Forbidden) else 400) from None


def _refused_by(error: T.ValidationError) -> Refused:
    fields, general = register_form.issues_by_field(error.issues, {"submitter_id", "experiment", "sample"})
    return Refused(fields, general or [error.message])


def _move_and_submit(client, store: ObjectStore, project: str, entities: list[dict], staged: list[Staged],
                     keys: dict[str, str]) -> T.SubmitResult:
    """Move the files into place, submit; on refusal remove what was moved."""
    taken = [key for key in keys.values() if store.exists(key)]
    if taken:
        raise Refused({"files": [f"files: {', '.join(taken)} already exist in the storage root; "
                                 "register the files under a new measurement identifier"]}, [], 409)
    moved = []
    try:
        for each in staged:
            store.move(uploads.staged_key(each), keys[each.upload_id])
            moved.append(keys[each.upload_id])
        return client.submit(project, entities)
    except BaseException as error:
        if not (isinstance(error, (TTransportException, OSError)) and _was_stored(client, project, entities[0])):
            for key in moved:
                store.remove(key)
        if isinstance(error, T.ValidationError):
            raise _refused_by(error) from None
        if isinstance(error, ERRORS):
            raise Refused({}, [error.message]) from None
        raise


def _was_stored(client: MetadataClient, project: str, measurement: dict) -> bool:
    """After a lost connection: did the batch reach the store anyway? (Then the files must stay.)"""
    try:
        client.find(project, measurement["submitter_id"])
        return True
    except Exception:
        return False
