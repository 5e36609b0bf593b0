"""The typed client of the metadata service, used by the portal, notebooks, CLI and worker.

Nodes come back as plain dicts with decoded `properties`; errors are the IDL's exceptions
(ValidationError, NotFound, Conflict, Forbidden, Unauthenticated, InternalError), each with `code`
and `message`; ERRORS names them all, for the CLI and the portal to show.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

from thriftpy2.rpc import make_client
from thriftpy2.transport import TTransportException

from metadata.idl import metadata_thrift as T

# The server drops connections idle for 600 s (10 s before their first call; a call is sent
# right after connecting); reconnect well before that rather than retry a write whose fate is unknown.
RECONNECT_AFTER_IDLE_SECONDS = 300
READS = {"health", "whoami", "get_dictionary", "get_node", "find_node", "find_nodes_by_id_prefix", "list_nodes",
         "get_edges", "get_documents", "facets", "histogram", "hits", "manifest", "list_cohorts", "get_cohort",
         "list_accounts", "list_personal_tokens", "audit", "list_templates", "get_run", "list_runs",
         "list_triggers", "list_notifications", "list_parameter_sets", "get_parameter_set"}
ERRORS = (T.ValidationError, T.NotFound, T.Conflict, T.Forbidden, T.Unauthenticated, T.InternalError)
CLOSED_BY_SERVER = {"too_many_connections"}  # InternalError codes after which the server closed the connection


class MetadataClient:
    """One connection to the service, safe to share between threads (calls are serialized).

    `renew_token`, when given, is asked for a new token when the service says the current one
    has expired (a notebook server's token outlives its lifetime): the refused call did nothing,
    so it is sent again, once, with the new token. It raises T.Unauthenticated saying what to
    do when it has none."""

    def __init__(self, host: str, port: int, token: str, timeout_seconds: float = 120,
                 renew_token: Callable[[], str] | None = None):
        self.host, self.port, self.token = host, port, token
        self.renew_token = renew_token
        self._timeout_ms = int(timeout_seconds * 1000)
        self._client = None
        self._last_used = 0.0
        self._lock = threading.Lock()

    def _call(self, name: str, *args):
        with self._lock:
            try:
                return self._send(name, args)
            except T.Unauthenticated as refused:
                if self.renew_token is None or refused.code != "token_expired":
                    raise
                self.token = self.renew_token()
                return self._send(name, args)

    def _send(self, name: str, args: tuple):
        try:
            return self._invoke(name, args)
        except T.InternalError as error:
            if error.code in CLOSED_BY_SERVER:
                self.close()  # the next call connects again
            raise
        except (TTransportException, OSError):
            self.close()
            if name not in READS:
                raise
            return self._invoke(name, args)  # reads are safe to send again

    def _invoke(self, name: str, args: tuple):
        if self._client is None or time.monotonic() - self._last_used > RECONNECT_AFTER_IDLE_SECONDS:
            self.close()
            self._client = make_client(T.Metadata, self.host, self.port, timeout=self._timeout_ms)
        try:
            return getattr(self._client, name)(self.token, *args)
        finally:
            self._last_used = time.monotonic()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> "MetadataClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- calls --------------------------------------------------------------------------

    def health(self) -> T.Health:
        return self._call("health")

    def whoami(self) -> T.Identity:
        return self._call("whoami")

    def create_token(self, user: str, roles: list[str], grants: dict[str, str] | None = None,
                     ttl_seconds: int = 0) -> T.IssuedToken:
        return self._call("create_token", user, list(roles), dict(grants or {}), ttl_seconds)

    def dictionary(self) -> dict:
        return json.loads(self._call("get_dictionary"))

    def get(self, node_id: str) -> dict:
        return node_dict(self._call("get_node", node_id))

    def find(self, project_id: str, submitter_id: str) -> dict:
        return node_dict(self._call("find_node", project_id, submitter_id))

    def by_id_prefix(self, prefix: str, limit: int = 20) -> list[dict]:
        """The readable nodes whose id starts with prefix (4 characters at least), in id order."""
        return [node_dict(n) for n in self._call("find_nodes_by_id_prefix", prefix, limit)]

    def page(self, type_name: str, project_id: str = "", limit: int = 100, cursor: str = "") -> T.NodePage:
        return self._call("list_nodes", T.ListRequest(type=type_name, project_id=project_id or "",
                                                      limit=limit, cursor=cursor))

    def nodes(self, type_name: str, project_id: str = "", page_size: int = 500) -> Iterator[dict]:
        """Every node of a type the caller may read, page by page."""
        cursor = ""
        while True:
            page = self.page(type_name, project_id, page_size, cursor)
            yield from (node_dict(n) for n in page.nodes)
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def edges(self, node_id: str) -> list[T.Edge]:
        return self._call("get_edges", node_id)

    def submit(self, project_id: str, entities: list[dict] | None = None, body: str = "",
               fmt: str = "json", dry_run: bool = False) -> T.SubmitResult:
        """Submit entities (dicts) or a JSON/TSV body; all of the batch or none of it."""
        if entities is not None:
            body, fmt = json.dumps(entities), "json"
        return self._call("submit", T.SubmitRequest(project_id=project_id, format=fmt, body=body, dry_run=dry_run))

    def delete(self, project_id: str, ids: list[str]) -> list[str]:
        return self._call("delete_nodes", project_id, list(ids)).deleted_ids

    # -- exploration --------------------------------------------------------------------

    def documents(self) -> list[T.DocumentKind]:
        return self._call("get_documents")

    def facets(self, kind: str, fields: list[str], filter: dict | None = None, size: int = 100,
               exclude_own: bool = True) -> T.FacetResult:
        return self._call("facets", T.FacetRequest(kind=kind, filter_json=_filter(filter), fields=list(fields),
                                                   size=size, exclude_own=exclude_own))

    def histogram(self, kind: str, field: str, filter: dict | None = None, bins: int = 20,
                  bin_width: float = 0, exclude_own: bool = True) -> T.NumericStats:
        return self._call("histogram", T.HistogramRequest(kind=kind, filter_json=_filter(filter), field=field,
                                                          bins=bins, bin_width=bin_width, exclude_own=exclude_own))

    def hits(self, kind: str, filter: dict | None = None, sort: list[tuple[str, bool]] = (),
             limit: int = 50, offset: int = 0) -> tuple[int, list[dict]]:
        """(total, documents) of one page; sort is [(field, descending)]."""
        page = self._call("hits", T.HitsRequest(kind=kind, filter_json=_filter(filter), limit=limit, offset=offset,
                                                sort=[T.SortKey(field=f, descending=d) for f, d in sort]))
        return page.total, [json.loads(doc) for doc in page.documents_json]

    def manifest(self, kind: str, filter: dict | None = None, page_size: int = 1000) -> Iterator[dict]:
        """Every file behind the view, page by page (no cap)."""
        cursor = ""
        while True:
            page = self._call("manifest", T.ManifestRequest(kind=kind, filter_json=_filter(filter),
                                                            limit=page_size, cursor=cursor))
            yield from (json.loads(entry) for entry in page.entries_json)
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def reindex(self) -> dict[str, int]:
        return self._call("reindex")

    # -- cohorts ------------------------------------------------------------------------

    def save_cohort(self, name: str, kind: str, filter: dict | None, project_id: str = "",
                    shared: bool = False, description: str = "") -> T.Cohort:
        return self._call("save_cohort", T.Cohort(name=name, kind=kind, filter_json=_filter(filter),
                                                  project_id=project_id, shared=shared, description=description))

    def cohorts(self) -> list[T.Cohort]:
        return self._call("list_cohorts")

    def cohort(self, cohort_id: str) -> T.Cohort:
        return self._call("get_cohort", cohort_id)

    def delete_cohort(self, cohort_id: str) -> None:
        self._call("delete_cohort", cohort_id)

    # -- accounts, tokens, audit --------------------------------------------------------

    def save_account(self, user: str, password: str = "", roles: list[str] = (), grants: dict | None = None,
                     disabled: bool = False) -> T.Account:
        return self._call("save_account", user, password, list(roles), dict(grants or {}), disabled)

    def set_grant(self, user: str, project_id: str, access: str) -> T.Account:
        """access "read" or "write"; "" revokes."""
        return self._call("set_grant", user, project_id, access)

    def accounts(self) -> list[T.Account]:
        return self._call("list_accounts")

    def sign_in(self, user: str, password: str, client_address: str = "") -> T.IssuedToken:
        return self._call("sign_in", user, password, client_address)

    def sign_out_everywhere(self, user: str) -> None:
        self._call("sign_out_everywhere", user)

    def create_personal_token(self, name: str, ttl_seconds: int = 0) -> T.IssuedToken:
        return self._call("create_personal_token", name, ttl_seconds)

    def personal_tokens(self) -> list[T.PersonalToken]:
        return self._call("list_personal_tokens")

    def renew_personal_token(self, name: str, ttl_seconds: int = 0, revoke: bool = False) -> T.IssuedToken:
        return self._call("renew_personal_token", name, ttl_seconds, revoke)

    def revoke_personal_token(self, token_id: str) -> None:
        self._call("revoke_personal_token", token_id)

    def sign_out(self) -> None:
        """This client's token stops working now."""
        self._call("sign_out")

    def audit(self, user: str = "", action: str = "", since: str = "", before: str = "",
              limit: int = 100, cursor: str = "", project: str = "", outcome: str = "") -> T.AuditPage:
        return self._call("audit", T.AuditQuery(user=user, action=action, since=since, before=before,
                                                limit=limit, cursor=cursor, project=project, outcome=outcome))

    def tier_access_limit(self) -> int:
        return self._call("get_tier_access_limit")

    def set_tier_access_limit(self, limit: int) -> int:
        return self._call("set_tier_access_limit", limit)

    def tier_access(self) -> T.TierAccess:
        return self._call("get_tier_access")

    def set_tier_access(self, limit: int, granularity: int = 10, visible_fields: list[str] | None = None) -> T.TierAccess:
        """Sets tiered access at once; visible_fields None means the default (the enum facets)."""
        return self._call("set_tier_access", T.TierAccess(limit=limit, granularity=granularity,
                                                          visible_fields=list(visible_fields or []),
                                                          default_fields=visible_fields is None))

    # -- workflows ------------------------------------------------------------------------

    def templates(self) -> list[T.WorkflowTemplate]:
        return self._call("list_templates")

    def launch(self, template: str, input_ids: list[str], parameters: dict[str, str] | None = None,
               parameter_set_id: str = "", force: bool = False, reuse: bool = True) -> T.LaunchResult:
        request = T.LaunchRequest(template=template, input_ids=list(input_ids),
                                  parameters={k: str(v) for k, v in (parameters or {}).items()},
                                  parameter_set_id=parameter_set_id, force=force, reuse=reuse)
        return self._call("launch", request)

    def run(self, run_id: str) -> T.Run:
        return self._call("get_run", run_id)

    def runs(self, status: str = "", template: str = "", user: str = "", project_id: str = "",
             limit: int = 50, offset: int = 0, cursor: str = "", since: str = "", before: str = "") -> T.RunPage:
        query = T.RunQuery(status=status, template=template, user=user, project_id=project_id,
                           limit=limit, offset=offset, cursor=cursor, since=since, before=before)
        return self._call("list_runs", query)

    def cancel_run(self, run_id: str) -> T.Run:
        return self._call("cancel_run", run_id)

    def retry_run(self, run_id: str) -> T.Run:
        return self._call("retry_run", run_id)

    def claim_runs(self, worker: str, limit: int) -> list[T.Run]:
        return self._call("claim_runs", worker, limit)

    def claim_runs_waiting(self, worker: str, limit: int, wait_ms: int) -> list[T.Run]:
        """claim_runs, waiting up to wait_ms in the service for a run to be queued when none is."""
        return self._call("claim_runs_waiting", worker, limit, wait_ms)

    def update_run(self, update: T.RunUpdate) -> T.Run:
        return self._call("update_run", update)

    def record_deletion(self, deletion: T.RunDeletion) -> T.Run:
        return self._call("record_deletion", deletion)

    def record_step(self, run_id: str, record: T.StepRecord) -> None:
        """Keep a succeeded step's outputs for reuse (worker only)."""
        return self._call("record_step", run_id, record)

    def find_step_records(self, run_id: str, key: str, max_age_seconds: int = -1) -> list[T.StepRecord]:
        """The step records with this key the run may reuse, newest first (worker only)."""
        return self._call("find_step_records", run_id, key, max_age_seconds)

    def find_step_records_batch(self, run_id: str, keys: list[str],
                                max_age_seconds: int = -1) -> dict[str, list[T.StepRecord]]:
        """find_step_records for several keys in one call: per key, its records (worker only)."""
        return self._call("find_step_records_batch", run_id, keys, max_age_seconds)

    def run_stats(self, project_id: str = "", template: str = "", bucket: str = "day", since: str = "",
                  before: str = "") -> T.RunStats:
        query = T.RunStatsQuery(project_id=project_id, template=template, bucket=bucket, since=since, before=before)
        return self._call("run_stats", query)

    def report_storage(self, uses: list[T.StorageUse]) -> None:
        self._call("report_storage", list(uses))

    def alert_settings(self) -> T.AlertSettings:
        return self._call("get_alert_settings")

    def set_alert_settings(self, settings: T.AlertSettings) -> T.AlertSettings:
        return self._call("set_alert_settings", settings)

    def check_alerts(self) -> list[str]:
        return self._call("check_alerts")

    def triggers(self) -> list[T.Trigger]:
        return self._call("list_triggers")

    def set_trigger_enabled(self, name: str, enabled: bool) -> T.Trigger:
        return self._call("set_trigger_enabled", name, enabled)

    def fire_triggers(self, ids: list[str]) -> list[T.LaunchResult]:
        return self._call("fire_triggers", list(ids))

    def notifications(self, unread_only: bool = False) -> list[T.Notification]:
        return self._call("list_notifications", unread_only)

    def mark_notifications_read(self, ids: list[str]) -> None:
        self._call("mark_notifications_read", list(ids))


    # -- parameter sets ---------------------------------------------------------------------

    def save_parameter_set(self, template: str, name: str, params: dict, project_id: str = "", notes: str = "",
                           source: str = "", dataset_id: str = "") -> T.SavedParameterSet:
        """A new revision when the parameters differ from the newest one's (values as text or numbers)."""
        request = T.ParameterSetRequest(project_id=project_id, template=template, name=name,
                                        params={k: _param_text(v) for k, v in params.items()}, notes=notes,
                                        source=source, dataset_id=dataset_id)
        return self._call("save_parameter_set", request)

    def parameter_sets(self, project_id: str = "", template: str = "") -> list[T.ParameterSet]:
        """Sets by template and name, each with its revisions newest first."""
        return self._call("list_parameter_sets", project_id, template)

    def parameter_set(self, set_id: str) -> T.ParameterSetRevision:
        return self._call("get_parameter_set", set_id)


def _param_text(value) -> str:
    """A parameter as the text the service takes: booleans as true/false, the rest as str()."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _filter(filter: dict | str | None) -> str:
    """The filter as the JSON text the service takes ("" for everything)."""
    if not filter:
        return ""
    return filter if isinstance(filter, str) else json.dumps(filter)


def node_dict(node: T.Node) -> dict:
    """A node as a plain dict with its properties decoded."""
    return {"id": node.id, "type": node.type, "project_id": node.project_id,
            "submitter_id": node.submitter_id, "version": node.version,
            "properties": json.loads(node.properties_json or "{}"),
            "links": [vars(link).copy() for link in node.links or []],
            "created_at": node.created_at, "updated_at": node.updated_at,
            "created_by": node.created_by, "updated_by": node.updated_by}
