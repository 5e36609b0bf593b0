"""The metadata service's handler: one method per IDL method, each given the verified caller.

server.py checks the token, applies the policy table (policy.py) and maps errors; this class
decides only what the table cannot say, and delegates.
"""
from __future__ import annotations

import json

from ground.storage import Layout
from metadata import auth, lifecycle, policy
from metadata.alerts import Alerts
from metadata.accounts import AuditLog, Registry, account_thrift, token_thrift
from metadata.auth import Identity, Tokens
from metadata.cohorts import Cohorts
from metadata.dictionary import Dictionary
from metadata.exploration import Explorer
from metadata.flatten import Flattening
from metadata.entities import ValueLimits, parse
from metadata.errors import Clash, Invalid, Missing
from metadata.idl import metadata_thrift as T
from metadata.parameter_sets import ParameterSets, revision_thrift, set_thrift
from metadata.store.base import Store, StoredNode
from metadata.run_stats import RunStats
from metadata.runs import FINAL, RunRegistry, run_thrift
from metadata.step_records import StepRecords
from metadata.submission import Planner
from metadata.triggers import Triggers
from metadata.tiering import TierSetting

VERSION = "0.1.0"
MAX_PAGE = 1000
MIN_ID_PREFIX, MAX_PREFIX_MATCHES = 4, 100  # a short id: git's shortest abbreviation; a list to choose from
RETRIES_ON_RACE = 3


class MetadataService:
    def __init__(self, store: Store, dictionary: Dictionary, flattening: Flattening, tokens: Tokens,
                 catalog, rules=(), notifier=None, max_batch_entities: int = 10_000,
                 max_batch_bytes: int = 64 * 1024 * 1024, value_limits: ValueLimits = ValueLimits(), *,
                 layout: Layout):
        self.store, self.dictionary, self.tokens, self.catalog = store, dictionary, tokens, catalog
        self.layout = layout  # where each project's files may lie (storage_url checks)
        self.runs = RunRegistry(store, dictionary, catalog, layout)
        self.step_records = StepRecords(store, dictionary, layout)
        self.triggers = Triggers(store, self.runs, list(rules))
        self.stats = RunStats(store, self.runs)
        self.parameter_sets = ParameterSets(store, dictionary, catalog)
        self.notifier = notifier
        self.tier = TierSetting(store)
        self.explorer, self.cohorts = Explorer(store, flattening, self.tier), Cohorts(store, flattening)
        self.registry, self.audit_log = Registry(store, tokens), AuditLog(store)
        self.alerts = Alerts(store, self.stats, notifier, self._admins)
        self.max_batch_entities, self.max_batch_bytes = max_batch_entities, max_batch_bytes
        self.value_limits = value_limits
        self._dictionary_json = dictionary.as_json()

    def health(self, who: Identity) -> T.Health:
        """Status for everyone; node counts only for callers who read every project, since
        commons-wide counts tell others about projects they may not read."""
        counts = {} if who.readable_projects is not None else {
            t: n for t, n in self.store.counts().items() if not t.startswith("_")}  # graph types only
        status = "storage_full" if self.store.storage_full else "ok"
        return T.Health(status=status, version=VERSION, store=self.store.name, counts=counts)

    def whoami(self, who: Identity) -> T.Identity:
        return _identity(who)

    def create_token(self, who: Identity, user: str, roles: list[str], grants: dict[str, str],
                     ttl_seconds: int) -> T.IssuedToken:
        token, identity = self.tokens.mint(user, roles or [], grants or {}, ttl_seconds)
        return T.IssuedToken(token=token, identity=_identity(identity))

    def get_dictionary(self, who: Identity) -> str:
        return self._dictionary_json

    def get_node(self, who: Identity, node_id: str) -> T.Node:
        return to_thrift(self._graph_node(node_id))

    def find_node(self, who: Identity, project_id: str, submitter_id: str) -> T.Node:
        node = self.store.find(project_id, [submitter_id]).get(submitter_id)
        if node is None or self.dictionary.get(node.type) is None:
            raise Missing(f"no node {submitter_id!r} in project {project_id!r}")
        return to_thrift(node)

    def find_nodes_by_id_prefix(self, who: Identity, prefix: str, limit: int) -> list[T.Node]:
        if len(prefix) < MIN_ID_PREFIX:
            raise Invalid(f"prefix: {prefix!r} is too short; give at least {MIN_ID_PREFIX} characters of the id")
        if not 1 <= limit <= MAX_PREFIX_MATCHES:
            raise Invalid(f"limit: {limit} is out of range; give 1 to {MAX_PREFIX_MATCHES}")
        graph = [self.dictionary.get(name) for name in self.dictionary.names()]
        everywhere = [t.id for t in graph if t.is_global]  # programs and projects: listed to every caller
        scoped = [t.id for t in graph if not t.is_global]
        nodes = self.store.with_id_prefix(prefix, everywhere, None, limit) + \
            self.store.with_id_prefix(prefix, scoped, who.readable_projects, limit)
        return [to_thrift(n) for n in sorted(nodes, key=lambda n: n.id)[:limit]]

    def list_nodes(self, who: Identity, request: T.ListRequest) -> T.NodePage:
        node_type = self.dictionary.get(request.type)
        if node_type is None:
            raise Invalid(f"type: {request.type!r} is not a node type; choose from {', '.join(self.dictionary.names())}")
        if not 1 <= request.limit <= MAX_PAGE:
            raise Invalid(f"limit: {request.limit} is out of range; give 1 to {MAX_PAGE}")
        projects = None if node_type.is_global and not request.project_id else \
            auth.listing_projects(who, request.project_id)
        try:
            page = self.store.list(request.type, projects, request.limit, request.cursor)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        return T.NodePage(nodes=[to_thrift(n) for n in page.nodes], total=page.total, next_cursor=page.next_cursor)

    def get_edges(self, who: Identity, node_id: str) -> list:
        self._graph_node(node_id)
        return [T.Edge(**vars(edge)) for edge in self.store.edges(node_id)]

    def submit(self, who: Identity, request: T.SubmitRequest) -> T.SubmitResult:
        if len(request.body.encode()) > self.max_batch_bytes:
            raise Invalid(f"the batch is {len(request.body.encode()):,} bytes; the limit is "
                          f"{self.max_batch_bytes:,}: split it", code="too_large")
        entities = parse(request.body, request.format, self.dictionary, self.value_limits)
        if len(entities) > self.max_batch_entities:
            raise Invalid(f"the batch has {len(entities):,} entities; the limit is "
                          f"{self.max_batch_entities:,}: split it", code="too_large")
        administrative = any(getattr(self.dictionary.get(str(e.doc.get("type"))), "is_global", False)
                             for e in entities)
        if administrative:
            auth.require_admin(who, "writing programs and projects")
        for attempt in range(RETRIES_ON_RACE):
            plan = Planner(self.dictionary, self.store, request.project_id, who.user, self.layout,
                           who.can_read).plan(entities)
            if request.dry_run or not plan.writes:
                break
            try:  # the batch and its audit entry commit together
                self.store.apply(plan.writes + self.audit_log.take(), plan.parent_ids)
                break
            except Clash as clash:
                # another batch wrote the same nodes between our plan and our write: plan again
                if clash.code != "stale" or attempt == RETRIES_ON_RACE - 1:
                    raise
        if not request.dry_run:
            self.triggers.fire([w.node for w in plan.writes])
        return _submit_result(plan, request.dry_run)

    def delete_nodes(self, who: Identity, project_id: str, ids: list[str]) -> T.DeleteResult:
        if not ids:
            raise Invalid("ids: give at least one node id to delete")
        nodes = {i: n for i, n in self.store.get_many(ids).items()
                 if self.dictionary.get(n.type) and n.project_id == project_id}
        missing = [i for i in ids if i not in nodes]  # a node of another project is not found in this one
        if missing:
            raise Missing(f"ids: no node with id {missing[0]!r} in project {project_id!r}"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        if any(self.dictionary.get(n.type).is_global for n in nodes.values()):
            auth.require_admin(who, "deleting programs and projects")
        self.store.delete(list(nodes))
        return T.DeleteResult(deleted_ids=list(nodes))

    # -- exploration and cohorts --------------------------------------------------------

    def get_documents(self, who: Identity) -> list:
        return self.explorer.kinds()

    def facets(self, who: Identity, request: T.FacetRequest) -> T.FacetResult:
        return self.explorer.facets(who, request)

    def histogram(self, who: Identity, request: T.HistogramRequest) -> T.NumericStats:
        return self.explorer.histogram(who, request)

    def hits(self, who: Identity, request: T.HitsRequest) -> T.HitsPage:
        return self.explorer.hits(who, request)

    def manifest(self, who: Identity, request: T.ManifestRequest) -> T.ManifestPage:
        return self.explorer.manifest(who, request)

    def get_tier_access_limit(self, who: Identity) -> int:
        return self.tier.limit

    def set_tier_access_limit(self, who: Identity, limit: int) -> int:
        return self.tier.set(limit, who.user)

    def get_tier_access(self, who: Identity) -> T.TierAccess:
        return self.explorer.tier_access()

    def set_tier_access(self, who: Identity, access: T.TierAccess) -> T.TierAccess:
        auth.require_admin(who, "setting tiered access")
        return self.explorer.set_tier_access(access, who.user)

    def reindex(self, who: Identity) -> dict[str, int]:
        return self.store.reindex()

    def save_cohort(self, who: Identity, cohort: T.Cohort) -> T.Cohort:
        return self.cohorts.save(who, cohort)

    def list_cohorts(self, who: Identity) -> list:
        return self.cohorts.list(who)

    def get_cohort(self, who: Identity, cohort_id: str) -> T.Cohort:
        return self.cohorts.get(who, cohort_id)

    def delete_cohort(self, who: Identity, cohort_id: str) -> None:
        self.cohorts.delete(who, cohort_id)

    # -- accounts, tokens, audit ---------------------------------------------------------

    def save_account(self, who: Identity, user: str, password: str, roles: list[str],
                     grants: dict[str, str], disabled: bool) -> T.Account:
        return account_thrift(self.registry.save(user, password, roles or [], grants or {}, disabled))

    def set_grant(self, who: Identity, user: str, project_id: str, access: str) -> T.Account:
        project = self.store.find(project_id, [project_id]).get(project_id)
        if access and (project is None or project.type != "project"):
            raise Invalid(f"project_id: there is no project {project_id!r}")
        return account_thrift(self.registry.set_grant(user, project_id, access))

    def list_accounts(self, who: Identity) -> list:
        return [account_thrift(n) for _, n in sorted(self.registry.accounts.items())]

    def sign_in(self, who: Identity, user: str, password: str, client_address: str) -> T.IssuedToken:
        token, identity = self.registry.sign_in(user, password)
        return T.IssuedToken(token=token, identity=_identity(identity))

    def sign_out_everywhere(self, who: Identity, user: str) -> None:
        if user != who.user:
            auth.require_admin(who, "signing another user out")
        self.registry.sign_out_everywhere(user)

    def create_personal_token(self, who: Identity, name: str, ttl_seconds: int) -> T.IssuedToken:
        token, identity = self.registry.create_personal(who, name, ttl_seconds)
        return T.IssuedToken(token=token, identity=_identity(identity))

    def renew_personal_token(self, who: Identity, name: str, ttl_seconds: int, revoke: bool) -> T.IssuedToken:
        token, identity = self.registry.renew_personal(who, name, ttl_seconds, revoke)
        return T.IssuedToken(token=token, identity=_identity(identity))

    def list_personal_tokens(self, who: Identity) -> list:
        return [token_thrift(n) for n in self.registry.list_personal(who)]

    def revoke_personal_token(self, who: Identity, token_id: str) -> None:
        self.registry.revoke_personal(who, token_id)

    def sign_out(self, who: Identity) -> None:
        self.registry.sign_out(who)

    def audit(self, who: Identity, query: T.AuditQuery) -> T.AuditPage:
        return self.audit_log.query(query)

    # -- workflows ----------------------------------------------------------------------

    def list_templates(self, who: Identity) -> list:
        return [self.catalog.thrift(t) for t in self.catalog.templates()]

    def launch(self, who: Identity, request: T.LaunchRequest) -> T.LaunchResult:
        run, existing = self.runs.launch(who, request)
        return T.LaunchResult(run=self._run(run), existing=existing)

    def get_run(self, who: Identity, run_id: str) -> T.Run:
        return self._run(self.runs.get(who, run_id))

    def list_runs(self, who: Identity, query: T.RunQuery) -> T.RunPage:
        page = self.runs.list(who, query)
        outputs = self.store.children([r.id for r in page.nodes], "data_file")  # one call for the page
        return T.RunPage(runs=[run_thrift(r, outputs.get(r.id, [])) for r in page.nodes], total=page.total,
                         next_cursor=page.next_cursor)

    def cancel_run(self, who: Identity, run_id: str) -> T.Run:
        return self._run(self.runs.cancel(who, run_id))

    def retry_run(self, who: Identity, run_id: str) -> T.Run:
        return self._run(self.runs.retry(who, run_id))

    def claim_runs(self, who: Identity, worker: str, limit: int) -> list:
        return [self._run(r) for r in self.runs.claim(who, worker, limit)]

    def claim_runs_waiting(self, who: Identity, worker: str, limit: int, wait_ms: int) -> list:
        return [self._run(r) for r in self.runs.claim_waiting(who, worker, limit, wait_ms)]

    def update_run(self, who: Identity, update: T.RunUpdate) -> T.Run:
        run = self.runs.update(who, update)
        if update.outputs:
            self.triggers.fire([self.store.get(i) for i in self.runs.outputs(run)])
        if update.status in FINAL and self.notifier is not None:
            self.notifier.run_ended(run, f"/runs/{run.id}")
        return self._run(run)

    def record_deletion(self, who: Identity, deletion: T.RunDeletion) -> T.Run:
        return self._run(lifecycle.record(self.runs, who, deletion))

    def record_step(self, who: Identity, run_id: str, record: T.StepRecord) -> None:
        self.step_records.record(who, run_id, record)

    def find_step_records(self, who: Identity, run_id: str, key: str, max_age_seconds: int) -> list:
        return self.step_records.find(who, run_id, key, max_age_seconds)

    def find_step_records_batch(self, who: Identity, run_id: str, keys: list, max_age_seconds: int) -> dict:
        return self.step_records.find_batch(who, run_id, keys, max_age_seconds)

    def run_stats(self, who: Identity, query: T.RunStatsQuery) -> T.RunStats:
        return self.stats.compute(who, query)

    def report_storage(self, who: Identity, uses: list) -> None:
        self.stats.report_storage(who, uses or [])

    def get_alert_settings(self, who: Identity) -> T.AlertSettings:
        return self.alerts.settings()

    def set_alert_settings(self, who: Identity, settings: T.AlertSettings) -> T.AlertSettings:
        return self.alerts.set(who.user, settings)

    def check_alerts(self, who: Identity) -> list:
        return self.alerts.check()

    def _admins(self) -> list[str]:
        """The admins' accounts (not disabled): who alerts are told to."""
        return [user for user, node in sorted(self.registry.accounts.items())
                if "admin" in node.props["roles"] and not node.props.get("disabled")]

    def list_triggers(self, who: Identity) -> list:
        return self.triggers.list()

    def set_trigger_enabled(self, who: Identity, name: str, enabled: bool) -> T.Trigger:
        return self.triggers.set_enabled(who, name, enabled)

    def fire_triggers(self, who: Identity, ids: list[str]) -> list:
        if not ids or len(ids) > 1000:
            raise Invalid("ids: give 1 to 1000 node ids")
        nodes = self.store.get_many(list(ids))
        missing = [i for i in ids if i not in nodes or self.dictionary.get(nodes[i].type) is None]
        if missing:
            raise Missing(f"ids: no node with id {missing[0]!r}")
        return [T.LaunchResult(run=self._run(run), existing=existing)
                for _, run, existing in self.triggers.fire([nodes[i] for i in ids])]

    def list_notifications(self, who: Identity, unread_only: bool) -> list:
        return self.notifier.list(who, unread_only)

    def mark_notifications_read(self, who: Identity, ids: list[str]) -> None:
        self.notifier.mark_read(who, ids or [])

    # -- parameter sets -------------------------------------------------------------------

    def save_parameter_set(self, who: Identity, request: T.ParameterSetRequest) -> T.SavedParameterSet:
        node, existing = self.parameter_sets.save(who, request)
        return T.SavedParameterSet(revision=revision_thrift(node), existing=existing)

    def list_parameter_sets(self, who: Identity, project_id: str, template: str) -> list:
        return [set_thrift(key, revisions) for key, revisions in self.parameter_sets.list(who, project_id, template)]

    def get_parameter_set(self, who: Identity, set_id: str) -> T.ParameterSetRevision:
        return revision_thrift(self.parameter_sets.get(who, set_id))

    def _run(self, node: StoredNode) -> T.Run:
        run = run_thrift(node, self.runs.outputs(node))
        run.deletions = lifecycle.deletions_of(node.props)
        return run

    def _graph_node(self, node_id: str) -> StoredNode:
        """A node of the dictionary's graph; internal nodes (cohorts) are not found through here.
        Read-only callers (get_node, get_edges): the policy has just read it for this call."""
        node = policy.read_for_call(self.store, node_id) if node_id else None
        if node is None or not policy.NODE.accepts(self.dictionary, node.type):
            raise policy.missing(policy.NODE, node_id)
        return node


def to_thrift(node: StoredNode) -> T.Node:
    return T.Node(id=node.id, type=node.type, project_id=node.project_id, submitter_id=node.submitter_id,
                  version=node.version, properties_json=json.dumps(node.props),
                  links=[T.Link(**vars(link)) for link in node.links],
                  created_at=node.created_at, updated_at=node.updated_at,
                  created_by=node.created_by, updated_by=node.updated_by)


def _identity(who: Identity) -> T.Identity:
    return T.Identity(user=who.user, roles=list(who.roles), grants=dict(who.grants), expires_at=who.expires_at,
                      token_id=who.token_id, kind=who.kind)


def _submit_result(plan, dry_run: bool) -> T.SubmitResult:
    entities = [T.EntityResult(index=e.index, row=e.row, id=n.id, type=n.type, submitter_id=n.submitter_id,
                               action=action, version=n.version) for e, n, action in plan.outcomes]
    count = lambda action: sum(1 for r in entities if r.action == action)  # noqa: E731
    return T.SubmitResult(dry_run=dry_run, created=count("create"), updated=count("update"),
                          unchanged=count("unchanged"), entities=entities)
