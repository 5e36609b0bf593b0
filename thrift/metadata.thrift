/*
 * labcommons metadata service: the one contract between the store and everything else
 * (portal, notebooks, CLI, worker).
 *
 * Conventions
 * - Every method takes the caller's signed token first and declares what it throws.
 * - Node properties travel as a JSON object (`properties_json`): their types come from the
 *   data dictionary, which the service validates against; the envelope around them is typed.
 * - Exceptions carry a machine-readable `code` and a `message` a person can act on.
 *
 * Wire format (what a client in another language must speak; docs/thrift-clients.md)
 * - Transport: one plain TCP connection (LABCOMMONS_HOST:LABCOMMONS_PORT, default 127.0.0.1:9090),
 *   unframed: thriftpy2's TBufferedTransport only buffers on each side and adds nothing on the wire.
 *   Use Java's TSocket, Node.js's TBufferedTransport, Go's TBufferedTransport or a bare socket; NOT
 *   TFramedTransport (a 4-byte length prefix is read as a bad version and the connection is closed).
 *   No TLS: on a cluster, reach the service inside the cluster or through a TLS-terminating proxy.
 * - Protocol: the binary protocol, strict: every message begins with the i32 0x80010000 | type
 *   (1 call, 2 reply, 3 exception, 4 oneway), then the method name (i32 length, UTF-8 bytes) and
 *   the i32 seqid; integers big-endian, strings UTF-8. Java's, Node.js's and Go's TBinaryProtocol
 *   write this by default; a message without the version header is refused. Not compact, not JSON.
 * - The token: every method's argument 1 (`token`, a string), the caller's signed token (JWT): a
 *   minted one (`labcommons token create`), a personal token, or the operator's data/admin.token.
 * - A declared exception comes back as a reply whose result struct sets that exception's field
 *   (field 0 is the return value); a call the service cannot decode closes the connection.
 * - One call at a time per connection; the first call must arrive within 10 s of connecting
 *   (LABCOMMONS_FIRST_CALL_TIMEOUT_SECONDS), and a connection idle for 600 s is closed: reconnect.
 * - Generate a client with the Apache Thrift compiler: `thrift --gen java thrift/metadata.thrift`
 *   (or `--gen js:node`, `--gen go`, ...); the `py` namespace below is thriftpy2's.
 */

namespace py metadata_thrift

/* ---------- errors ---------- */

/** One located problem in a submission: which entity (0-based) or TSV row (1-based), which field. */
struct Issue {
    1: i32 index,
    2: i32 row,
    3: string field,
    4: string message,
}

exception ValidationError {
    1: string code,
    2: string message,
    3: list<Issue> issues,
}

exception NotFound {
    1: string code,
    2: string message,
}

/** A write raced another (stale version) or would break the graph (a node with children). */
exception Conflict {
    1: string code,
    2: string message,
}

exception Forbidden {
    1: string code,
    2: string message,
}

exception Unauthenticated {
    1: string code,
    2: string message,
}

/**
 * The service could not answer, through no fault of the request. `code`: "internal" (an
 * unexpected error: the message gives a reference to the service log's traceback),
 * "storage_full" (the store's disk is full: nothing was written; reads still work; retry once
 * an operator has freed space) or "too_many_connections" (the service is at its connection
 * limit and closed this connection; connect again later). Every method may throw it.
 */
exception InternalError {
    1: string code,
    2: string message,
}

/* ---------- the graph ---------- */

/** An outgoing link of a node to one parent. */
struct Link {
    1: string name,
    2: string target_id,
    3: string target_type,
    4: string target_submitter_id,
}

struct Node {
    1: string id,
    2: string type,
    3: string project_id,
    4: string submitter_id,
    5: i64 version,
    6: string properties_json,
    7: list<Link> links,
    8: string created_at,
    9: string updated_at,
    10: string created_by,
    11: string updated_by,
}

/** A directed edge child -> parent, labelled by the dictionary link it came from. */
struct Edge {
    1: string child_id,
    2: string child_type,
    3: string link_name,
    4: string parent_id,
    5: string parent_type,
}

struct NodePage {
    1: list<Node> nodes,
    2: i64 total,
    /** Pass back as `cursor` for the next page; empty when this is the last page. */
    3: string next_cursor,
}

struct ListRequest {
    1: string type,
    /** Empty: every project the caller may read. */
    2: string project_id = "",
    3: i32 limit = 100,
    4: string cursor = "",
}

/* ---------- submission ---------- */

struct SubmitRequest {
    1: string project_id,
    /** "json" (an object or a list of objects) or "tsv" (one node type, header row first). */
    2: string format,
    3: string body,
    4: bool dry_run = false,
}

struct EntityResult {
    1: i32 index,
    2: i32 row,
    3: string id,
    4: string type,
    5: string submitter_id,
    /** "create", "update" or "unchanged". */
    6: string action,
    7: i64 version,
}

struct SubmitResult {
    1: bool dry_run,
    2: i32 created,
    3: i32 updated,
    4: i32 unchanged,
    5: list<EntityResult> entities,
}

struct DeleteResult {
    1: list<string> deleted_ids,
}

/* ---------- exploration: flattened documents ---------- */

/**
 * Queries run over flattened documents of one `kind` ("case", "file": see get_documents).
 * `filter_json` is the filter language (docs/filters.md); empty means everything. Every query
 * sees only the projects the caller may read.
 */

struct FieldInfo {
    1: string name,
    /** keyword, text, integer, number, boolean, date */
    2: string kind,
    3: bool multi,
    /** Sub-field names when the field is a list of records (filter with `nested`). */
    4: list<string> nested,
    5: list<string> enum_values,
    /** The dictionary property's title ("" when it has none: name the field from its name). */
    6: string title,
    /** The dictionary property's unit ("" for none), such as bytes, years or µm. */
    7: string unit,
}

struct DocumentKind {
    1: string kind,
    2: string title,
    3: string root_type,
    4: list<FieldInfo> fields,
    5: list<string> facets,
    6: list<string> search,
    7: list<string> columns,
}

struct FacetBucket {
    /** "__missing__" counts documents with no value. */
    1: string value,
    2: i64 count,
    /** Tiered access: nonzero when projects the caller cannot read may add fewer than this many
        documents (possibly none) that are not in `count`: their share is shown only from
        max(limit, granularity) on, rounded down to the granularity. */
    3: i64 withheld_below = 0,
}

struct Facet {
    1: string field,
    2: list<FacetBucket> buckets,
    /** Documents whose values fell outside the `size` largest buckets. */
    3: i64 other_count,
    /** Tiered access: non-empty when this field is not tier-visible, so its buckets count the
        readable projects only; says why. */
    4: string tier_withheld = "",
}

/** Facet counts: each field's counts ignore the filter's own clauses on that field (exclude_own). */
struct FacetRequest {
    1: string kind,
    2: string filter_json = "",
    /** The fields to count; the service refuses a request without them (required). */
    3: required list<string> fields,
    4: i32 size = 100,
    /** false: count every field under the whole filter (for a chart rather than a facet panel). */
    5: bool exclude_own = true,
}

struct FacetResult {
    1: i64 total,
    2: list<Facet> facets,
    /** Tiered access in force for this caller (0: off, counts cover readable projects only).
        When nonzero, counts and total include projects the caller cannot read wherever those
        projects' share reaches this limit (rounded down to tier_granularity), unless
        tier_withheld says why this view leaves them out. */
    3: i64 tier_access_limit = 0,
    /** The documents the caller may read (the rows hits would page through). */
    4: i64 readable_total = 0,
    /** As FacetBucket.withheld_below, for the total. */
    5: i64 total_withheld_below = 0,
    /** Tiered access: non-empty when the filter uses a field that is not tier-visible (or text
        search), so no count includes projects the caller cannot read; says why. */
    6: string tier_withheld = "",
    /** Tiered access: shares of unreadable projects are rounded down to a multiple of this. */
    7: i64 tier_granularity = 0,
}

struct HistogramBin {
    1: double low,
    2: double high,
    3: i64 count,
}

/** Stats and a histogram of a numeric field: `bins` equal bins, or bins of `bin_width`. */
struct HistogramRequest {
    1: string kind,
    2: string filter_json = "",
    3: string field,
    4: i32 bins = 20,
    5: double bin_width = 0,
    /** Ignore the filter's own clauses on this field (for a facet's slider). */
    6: bool exclude_own = true,
}

struct NumericStats {
    1: string field,
    2: i64 count,
    3: i64 missing,
    4: double min,
    5: double max,
    6: double mean,
    7: double sum,
    8: list<HistogramBin> bins,
}

struct SortKey {
    1: string field,
    2: bool descending = false,
}

struct HitsRequest {
    1: string kind,
    2: string filter_json = "",
    3: list<SortKey> sort = [],
    4: i32 limit = 50,
    5: i64 offset = 0,
}

struct HitsPage {
    1: i64 total,
    2: i64 offset,
    /** One JSON object per document. */
    3: list<string> documents_json,
}

/**
 * The files behind a view, in pages: from kind "file", the matching files; from kind "case",
 * every file of the matching cases. No cap: follow next_cursor until it is empty.
 */
struct ManifestRequest {
    1: string kind,
    2: string filter_json = "",
    3: i32 limit = 1000,
    4: string cursor = "",
}

struct ManifestPage {
    1: i64 total,
    /** One JSON object per file: id, file_name, data_format, file_size, md5sum, storage_url,
        project_id, case, sample, measurement. */
    2: list<string> entries_json,
    3: string next_cursor,
}

/**
 * A saved filter. Private to its owner, or shared with everyone who may read `project_id`.
 * Names are unique per owner (private) or per project (shared).
 */
struct Cohort {
    1: string id,
    2: string name,
    3: string kind,
    4: string filter_json,
    5: string project_id = "",
    6: bool shared = false,
    7: string owner,
    8: string description = "",
    9: string created_at,
    10: string updated_at,
}

/* ---------- identity and health ---------- */

struct Identity {
    1: string user,
    2: list<string> roles,
    /** project_id -> "read" or "write". */
    3: map<string, string> grants,
    4: i64 expires_at,
    /** The token's own id (personal tokens are revoked by it) and kind: script, session, personal. */
    5: string token_id,
    6: string kind,
}

struct IssuedToken {
    1: string token,
    2: Identity identity,
}

/** A registered user: roles and project grants live here, so a change applies to every token. */
struct Account {
    1: string user,
    2: list<string> roles,
    /** project_id -> "read" or "write". */
    3: map<string, string> grants,
    4: bool disabled,
    5: string created_at,
    6: string updated_at,
}

/** A personal API token's record (the token itself is shown once, when created). */
struct PersonalToken {
    1: string id,
    2: string name,
    3: string user,
    4: string created_at,
    5: i64 expires_at,
    6: bool revoked,
    /** Renewed (renew_personal_token): it has had its one successor; it works until it expires. */
    7: bool renewed,
}

struct AuditEntry {
    1: string at,
    2: string user,
    3: string action,
    4: string target,
    5: string detail_json,
    6: string client,
    /** "ok" or the refusal's code. */
    7: string outcome,
}

struct AuditQuery {
    1: string user = "",
    2: string action = "",
    3: string since = "",
    4: string before = "",
    5: i32 limit = 100,
    6: string cursor = "",
    /** The project the call was about (a submission's or a grant's project). */
    7: string project = "",
    /** "ok" or a refusal's code. */
    8: string outcome = "",
}

struct AuditPage {
    1: list<AuditEntry> entries,
    2: string next_cursor,
}

struct Health {
    /** "ok", or "storage_full" from a write refused for lack of disk space until a write succeeds. */
    1: string status,
    2: string version,
    3: string store,
    /** Node count per type. */
    4: map<string, i64> counts,
}

/* ---------- workflows: templates, runs, triggers ---------- */

/** One parameter of a workflow template, as a launch form shows it. */
struct TemplateParameter {
    1: string name,
    /** string, integer, number or boolean */
    2: string type = "string",
    3: string description = "",
    4: list<string> enum_values,
    5: string default_value = "",
    6: bool is_required,
    7: optional double minimum,
    8: optional double maximum,
    9: string unit = "",
}

/** A template of the catalog (workflow_templates/). */
struct WorkflowTemplate {
    1: string name,
    2: string title,
    3: string description,
    /** The data formats of the input files it accepts, e.g. ["imzML", "ibd"]. */
    4: list<string> input_formats,
    5: list<TemplateParameter> parameters,
    /** sha256 of the canonical template: a run names the exact definition it ran. */
    6: string digest,
    /** Standard templates may be launched by technicians; others need the analyst role. */
    7: bool standard,
}

struct LaunchRequest {
    1: string template,
    /** Data files, or measurements (meaning their raw files). */
    2: required list<string> input_ids,
    3: map<string, string> parameters,
    /** A parameter set node whose parameters fill those not given; "" for none. */
    4: string parameter_set_id = "",
    /** Launch again even when an identical run is queued, running or succeeded. */
    5: bool force = false,
    /** Let the run's steps reuse the outputs of earlier identical steps (docs/workflows.md). */
    6: bool reuse = true,
}

/** One node of a run's step graph, as the engine reports it. */
struct RunStep {
    1: string id,
    2: string name,
    3: string template,
    /** Pending, Running, Succeeded, Failed, Error, Skipped, Omitted */
    4: string phase,
    5: string started_at = "",
    6: string finished_at = "",
    7: i32 exit_code = -1,
    8: string message = "",
    /** Where the step's log is kept (a storage URL). */
    9: string log_url = "",
    10: list<string> children,
    11: i32 attempts = 0,
    /** The image the template names, when the local engine ran the step with the host's
        tools instead (it runs no images); empty on Argo, which pulls it. */
    12: string replaced_image = "",
    /** When the step did not run but reused an earlier identical step's outputs: that step's
        run id and name. */
    13: string reused_from_run = "",
    14: string reused_from_step = "",
}

/** Files a storage lifecycle rule deleted from a run's folder (docs/operations.md). */
struct RunDeletion {
    1: string run_id,
    /** The lifecycle rule that deleted them. */
    2: string rule,
    /** When the deletion ended (ISO 8601); the service sets it. */
    3: string at = "",
    /** The deleted files' paths relative to the run's folder (at most 200; `files` counts all). */
    4: list<string> paths,
    5: i64 files = 0,
    6: i64 bytes_freed = 0,
    /** False when the deletion stopped half way: `paths` is what went, `message` says why the rest stayed. */
    7: bool complete = true,
    8: string message = "",
}

struct Run {
    1: string id,
    2: string project_id,
    3: string template,
    4: string template_digest,
    5: map<string, string> parameters,
    6: list<string> input_ids,
    7: string parameter_set_id,
    8: i64 parameter_set_revision,
    /** queued, running, succeeded, failed, cancelled */
    9: string status,
    10: string launch_key,
    11: string created_by,
    12: string created_at,
    13: string started_at,
    14: string finished_at,
    15: string message,
    /** The worker that claimed it, and the engine's own name for it (an Argo workflow name). */
    16: string worker,
    17: string engine_ref,
    18: list<RunStep> steps,
    19: list<string> output_ids,
    20: bool cancel_requested,
    /** Asked to re-run only its failed steps. */
    21: bool retry_requested,
    22: i32 attempt,
    23: string submitter_id,
    /** The verdict of a finished run, apart from its status: passed, failed or "" (none: the
        template declares no verdict, or the run did not succeed). */
    24: string outcome = "",
    /** When the outcome is failed: each failing check as "metric value (minimum threshold)". */
    25: list<string> failed_checks,
    /** The files storage lifecycle rules deleted from the run's folder, oldest first. */
    26: list<RunDeletion> deletions,
    /** Whether its steps may reuse earlier identical steps' outputs (the launch's `reuse`). */
    27: bool reuse = true,
}

struct LaunchResult {
    1: Run run,
    /** True when an identical launch already had this run: nothing new was started. */
    2: bool existing,
}

struct RunQuery {
    1: string status = "",
    2: string template = "",
    3: string user = "",
    4: string project_id = "",
    5: i32 limit = 50,
    /** Runs to skip (at most 10,000); `cursor` pages at any depth and wins when given. */
    6: i32 offset = 0,
    /** A RunPage's next_cursor: the page after it, in the same order and filters. */
    7: string cursor = "",
    /** Only runs created at or after this instant (ISO 8601, e.g. 2026-12-07 or 2026-12-07T05:00:00Z). */
    8: string since = "",
    /** Only runs created before this instant (ISO 8601). */
    9: string before = "",
}

struct RunPage {
    1: list<Run> runs,
    2: i64 total,
    /** Empty on the last page. */
    3: string next_cursor = "",
}

/** A file a run produced, registered as a data_file generated by the run. */
struct OutputFile {
    1: string file_name,
    2: string data_format,
    3: i64 file_size,
    4: string md5sum,
    5: string storage_url,
    6: string data_category = "",
    7: string sha256 = "",
}

/** A succeeded step's outputs, kept so a later step with the same key reuses them
    (docs/workflows.md, "Step reuse across runs"). */
struct StepRecord {
    /** sha256 of the step's template, resolved parameters, input checksums and the keys of the
        steps before it; or, with Argo's memoize, its cache name and key. */
    1: string key,
    /** The run and step that wrote the outputs (the run: set by the service). */
    2: string run_id = "",
    3: string step = "",
    4: string node_id = "",
    /** The run's folder when the step ran (absolute, in the run's project). */
    5: string folder,
    /** The files the step wrote: JSON [{path (relative to folder), sha256, size}]. */
    6: string files_json = "[]",
    /** The step's outputs (parameters, result) as JSON, the run's folder as a placeholder. */
    7: string outputs_json = "{}",
    /** When it was recorded (ISO 8601; the service sets it). */
    8: string recorded_at = "",
}

/** Which runs the workflows dashboard summarizes (docs/operations.md). */
struct RunStatsQuery {
    /** "" for every project the caller may read. */
    1: string project_id = "",
    /** "" for every template. */
    2: string template = "",
    /** day or week: the buckets of the time series. */
    3: string bucket = "day",
    /** Runs created from this instant (ISO 8601; "" : 30 days ago) until `before` ("" : now). */
    4: string since = "",
    5: string before = "",
}

/** The runs of one template created in one day or week (the bucket's first day, UTC). */
struct RunStatsRow {
    1: string template,
    2: string bucket,
    3: i64 runs,
    4: i64 succeeded,
    5: i64 failed,
    /** Succeeded, with the verdict failed. `succeeded` counts only those that passed or have none. */
    6: i64 qc_failed,
    7: i64 cancelled,
    /** Runs still queued or running. */
    8: i64 open,
    /** succeeded / ended runs, 0 to 1 (-1 when none ended). */
    9: double success_rate,
    /** Seconds from start to end of the ended runs: median, 90th and 99th percentile (-1: none). */
    10: double duration_p50_s,
    11: double duration_p90_s,
    12: double duration_p99_s,
    /** Seconds from launch to start: median and 90th percentile (-1: none). */
    13: double queued_p50_s,
    14: double queued_p90_s,
    /** Steps that needed more than one attempt. */
    15: i64 steps_retried,
}

/** QC verdicts of one project's runs on one instrument's measurements. */
struct QcStatsRow {
    1: string project_id,
    2: string instrument,
    3: i64 runs,
    4: i64 passed,
    5: double pass_rate,
}

/** One step of a template over the window: how often it ran, failed, and how long it took. */
struct StepStatsRow {
    1: string template,
    2: string step,
    3: i64 runs,
    4: i64 failed,
    5: double duration_p50_s,
    6: double duration_max_s,
}

/** A project's storage as the worker last measured it. */
struct StorageUse {
    1: string project_id,
    2: i64 bytes,
    3: string measured_at,
    /** The quota a lifecycle rule sets for it, 0 for none. */
    4: i64 quota_bytes = 0,
}

/** A worker and how long ago it last claimed runs (-1: not since the service started). */
struct WorkerSeen {
    1: string worker,
    2: double seconds_ago,
}

struct RunStats {
    1: list<RunStatsRow> rows,
    2: list<QcStatsRow> qc,
    /** The steps that took longest (median), then those that failed most, ten each. */
    3: list<StepStatsRow> slowest_steps,
    4: list<StepStatsRow> failing_steps,
    /** Now: runs waiting for a worker, and the age in seconds of the oldest (0: none). */
    5: i64 queued,
    6: double oldest_queued_s,
    7: list<WorkerSeen> workers,
    8: list<StorageUse> storage,
    9: string since,
    10: string before,
}

/** The thresholds whose crossing tells the admins (docs/operations.md); 0 turns one off. */
struct AlertSettings {
    /** Alert when a template's success rate over its last `over_last_runs` ended runs is below this (0 to 1). */
    1: double min_success_rate = 0,
    2: i32 over_last_runs = 20,
    /** Alert when a run has waited in the queue longer than this. */
    3: i64 max_queued_seconds = 0,
    /** Alert when a worker has not claimed runs for this long. */
    4: i64 worker_silent_seconds = 0,
}

/** What a worker reports about a run it claimed. */
struct RunUpdate {
    1: string run_id,
    /** running, succeeded, failed or cancelled; "" keeps the status. */
    2: string status = "",
    3: list<RunStep> steps,
    4: string message = "",
    5: string engine_ref = "",
    /** Registered with the final status, in the same write. */
    6: list<OutputFile> outputs,
    /** With the status succeeded: the verdict read from the template's verdict output. */
    7: string outcome = "",
    8: list<string> failed_checks,
}

/** A message for one user, e.g. that a run they launched has ended. */
struct Notification {
    1: string id,
    2: string at,
    3: string subject,
    4: string body,
    /** Where in the portal to look, e.g. /runs/<id>. */
    5: string link,
    6: string status,
    7: bool read,
}

struct Trigger {
    1: string name,
    2: string description,
    3: string template,
    4: bool enabled,
    /** The rule as YAML, for display. */
    5: string rule_yaml,
}

/* ---------- parameter sets ---------- */

/** Save parameters for a template under a name: a new revision when they differ from the
    newest one, else that newest revision. */
struct ParameterSetRequest {
    /** The project to save into; "" means the dataset's project. */
    1: string project_id = "",
    2: string template,
    3: string name,
    4: required map<string, string> params,
    5: string notes = "",
    /** Where the parameters were tuned, e.g. a notebook's path. */
    6: string source = "",
    /** The measurement or data file they were tuned on; "" for none. */
    7: string dataset_id = "",
}

/** One immutable revision of a parameter set: a node of its own, which runs link to. */
struct ParameterSetRevision {
    1: string id,
    2: string project_id,
    3: string template,
    4: string name,
    5: i64 revision,
    /** Only the parameters the set gives, as canonical strings. */
    6: map<string, string> params,
    7: string notes,
    8: string source,
    9: string dataset_id,
    10: string created_by,
    11: string created_at,
    12: string submitter_id,
}

struct SavedParameterSet {
    1: ParameterSetRevision revision,
    /** True when the parameters equalled the newest revision's: nothing new was written. */
    2: bool existing,
}

/** A set: its revisions, newest first. */
struct ParameterSet {
    1: string project_id,
    2: string template,
    3: string name,
    4: list<ParameterSetRevision> revisions,
}

/** Tiered access as an admin sets it (docs/admin.md, "Tiered access"). */
struct TierAccess {
    /** 0: off (data of unreadable projects is hidden entirely); else the least unreadable share counted. */
    1: i64 limit = 0,
    /** Unreadable shares are rounded down to a multiple of this (1: no rounding). */
    2: i64 granularity = 10,
    /** The fields an unreadable share may be filtered and faceted by, whose values make its cells
        (facets only; never ids, submitter ids, text or lists). Reading: the fields in force.
        Setting: ignored when default_fields is true. */
    3: list<string> visible_fields,
    /** The default tier-visible fields: every document kind's single-valued enum facets. */
    4: bool default_fields = true,
}

service Metadata {
    Health health(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal),

    Identity whoami(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal),

    /** Admin only. Mints a signed, expiring token for scripts and notebooks. */
    IssuedToken create_token(1: string token, 2: string user, 3: list<string> roles,
                             4: map<string, string> grants, 5: i64 ttl_seconds)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** The data dictionary in force, as JSON: {type: schema}. */
    string get_dictionary(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal),

    Node get_node(1: string token, 2: string id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found, 4: InternalError internal, 5: ValidationError invalid),

    Node find_node(1: string token, 2: string project_id, 3: string submitter_id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found, 4: InternalError internal, 5: ValidationError invalid),

    NodePage list_nodes(1: string token, 2: ListRequest request)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** The graph's nodes whose id starts with `prefix` (4 characters at least), in projects the
        caller may read, in id order, at most `limit` (1 to 100): how a short id is read. */
    list<Node> find_nodes_by_id_prefix(1: string token, 2: string prefix, 3: i32 limit)
        throws (1: Unauthenticated unauthenticated, 2: ValidationError invalid, 3: InternalError internal),

    /** Edges into (children) and out of (parents) one node. */
    list<Edge> get_edges(1: string token, 2: string id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found, 4: InternalError internal, 5: ValidationError invalid),

    /** Validates and upserts a batch by submitter_id; all of it or none of it. */
    SubmitResult submit(1: string token, 2: SubmitRequest request)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: Conflict conflict, 5: InternalError internal),

    /** The document kinds for exploration, with their fields, facets, search fields, columns. */
    list<DocumentKind> get_documents(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal),

    FacetResult facets(1: string token, 2: FacetRequest request)
        throws (1: Unauthenticated unauthenticated, 2: ValidationError invalid,
                3: InternalError internal),

    NumericStats histogram(1: string token, 2: HistogramRequest request)
        throws (1: Unauthenticated unauthenticated, 2: ValidationError invalid,
                3: InternalError internal),

    HitsPage hits(1: string token, 2: HitsRequest request)
        throws (1: Unauthenticated unauthenticated, 2: ValidationError invalid,
                3: InternalError internal),

    ManifestPage manifest(1: string token, 2: ManifestRequest request)
        throws (1: Unauthenticated unauthenticated, 2: ValidationError invalid,
                3: InternalError internal),

    /** Saves (or, by name, updates) one of the caller's cohorts. */
    Cohort save_cohort(1: string token, 2: Cohort cohort)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** The caller's own cohorts and those shared in projects the caller may read. */
    list<Cohort> list_cohorts(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal),

    Cohort get_cohort(1: string token, 2: string id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden, 3: NotFound not_found,
                4: InternalError internal, 5: ValidationError invalid),

    void delete_cohort(1: string token, 2: string id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden, 3: NotFound not_found,
                4: InternalError internal, 5: ValidationError invalid),

    /** Admin only. Rebuilds every flattened document from the graph; returns counts per kind. */
    map<string, i64> reindex(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden, 3: InternalError internal),

    /** Admin only. Creates or updates an account; an empty password keeps the current one. */
    Account save_account(1: string token, 2: string user, 3: string password, 4: list<string> roles,
                         5: map<string, string> grants, 6: bool disabled)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** Admin only. Grants ("read"/"write") or, with access "", revokes a project to a user. */
    Account set_grant(1: string token, 2: string user, 3: string project_id, 4: string access)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden, 3: ValidationError invalid,
                4: NotFound not_found, 5: InternalError internal),

    list<Account> list_accounts(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden, 3: InternalError internal),

    /** Admin only (the portal calls it with its operator token): a session token for a user whose
        password matches. Repeated failures slow the account down. */
    IssuedToken sign_in(1: string token, 2: string user, 3: string password, 4: string client_address)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: InternalError internal, 4: ValidationError invalid),

    /** Every token of the user issued so far stops working (the user themself, or an admin). */
    void sign_out_everywhere(1: string token, 2: string user)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden, 3: NotFound not_found,
                4: InternalError internal, 5: ValidationError invalid),

    /** A named token for scripts and notebooks, for the calling (registered) user. */
    IssuedToken create_personal_token(1: string token, 2: string name, 3: i64 ttl_seconds)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    list<PersonalToken> list_personal_tokens(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal),

    void revoke_personal_token(1: string token, 2: string id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden, 3: NotFound not_found,
                4: InternalError internal, 5: ValidationError invalid),

    /** The calling personal token's successor, named and lasting as given. Each personal token
        is renewed at most once: a second renewal is refused (Unauthenticated, code token_renewed),
        so a chain of grants (the portal's OAuth codes and refresh tokens) cannot be forked or
        replayed. revoke: the calling token also stops working now; otherwise it works until it
        expires (a running notebook may hold it). */
    IssuedToken renew_personal_token(1: string token, 2: string name, 3: i64 ttl_seconds, 4: bool revoke)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** Admin only. The audit log, newest first, filtered. */
    AuditPage audit(1: string token, 2: AuditQuery query)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** The tier-access limit in force (0: off; data of unreadable projects is hidden entirely). */
    i64 get_tier_access_limit(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal),

    /** Admin only. Sets the tier-access limit (0 turns it off); returns the limit now in force. */
    i64 set_tier_access_limit(1: string token, 2: i64 limit)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** Deletes nodes by id; refused, with the children named, while any has children. */
    DeleteResult delete_nodes(1: string token, 2: string project_id, 3: list<string> ids)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found, 4: Conflict conflict,
                5: ValidationError invalid, 6: InternalError internal),

    /* ---------- workflows ---------- */

    list<WorkflowTemplate> list_templates(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal),

    /** Records a run, or returns the identical one that is queued, running or succeeded. */
    LaunchResult launch(1: string token, 2: LaunchRequest request)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: NotFound not_found, 5: InternalError internal),

    Run get_run(1: string token, 2: string id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found, 4: InternalError internal, 5: ValidationError invalid),

    /** Runs the caller may read, newest first. */
    RunPage list_runs(1: string token, 2: RunQuery query)
        throws (1: Unauthenticated unauthenticated, 2: ValidationError invalid,
                3: Forbidden forbidden, 4: InternalError internal),

    /** A queued run is cancelled at once; a running one when its worker stops it. */
    Run cancel_run(1: string token, 2: string id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found, 4: Conflict conflict, 5: InternalError internal,
                6: ValidationError invalid),

    /** Queues a failed run again; its worker re-runs only the failed steps. */
    Run retry_run(1: string token, 2: string id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found, 4: Conflict conflict, 5: InternalError internal,
                6: ValidationError invalid),

    /** Worker only. The runs this worker already follows, then up to `limit` queued ones, now its own. */
    list<Run> claim_runs(1: string token, 2: string worker, 3: i32 limit)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** Worker only. As claim_runs, but when no queued run can be claimed at once it waits, up to
        wait_ms (0 to 10,000), until a run is queued, and claims then: a worker learns of a new run
        within milliseconds instead of polling. */
    list<Run> claim_runs_waiting(1: string token, 2: string worker, 3: i32 limit, 4: i32 wait_ms)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** Worker only: status, steps and, with the final status, the outputs. */
    Run update_run(1: string token, 2: RunUpdate update)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: NotFound not_found, 5: Conflict conflict,
                6: InternalError internal),

    /** Worker only: records files a lifecycle rule deleted from a run's folder, on the run
        and in the audit log. */
    Run record_deletion(1: string token, 2: RunDeletion deletion)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: NotFound not_found, 5: Conflict conflict,
                6: InternalError internal),

    /** Worker only: records a succeeded step's outputs for reuse, in the run's project. */
    void record_step(1: string token, 2: string run_id, 3: StepRecord record)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: NotFound not_found, 5: InternalError internal),

    /** Worker only: the records of succeeded runs' steps with this key that the run may reuse
        (none when it was launched without reuse), newest first, only in the projects its launcher
        could read at the launch; max_age_seconds >= 0 leaves out older records. */
    list<StepRecord> find_step_records(1: string token, 2: string run_id, 3: string key,
                                       4: i64 max_age_seconds)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: NotFound not_found, 5: InternalError internal),

    /** Worker only: find_step_records for several keys at once (the steps of a run that are
        ready together): per key asked, its records, newest first (an empty list for none). */
    map<string, list<StepRecord>> find_step_records_batch(1: string token, 2: string run_id,
                                                          3: list<string> keys, 4: i64 max_age_seconds)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: NotFound not_found, 5: InternalError internal),

    /** Admins and analysts: the workflows dashboard over the projects the caller may read. */
    RunStats run_stats(1: string token, 2: RunStatsQuery query)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** Worker only: each project's storage use as measured in the storage root. */
    void report_storage(1: string token, 2: list<StorageUse> uses)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** Admin only. */
    AlertSettings get_alert_settings(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden, 3: InternalError internal),

    /** Admin only. */
    AlertSettings set_alert_settings(1: string token, 2: AlertSettings settings)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** Admin only. Checks the thresholds now (the service also does every minute); the alerts
        that began with this check, each told to the admins once. */
    list<string> check_alerts(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden, 3: InternalError internal),

    list<Trigger> list_triggers(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal),

    /** Admin only. */
    Trigger set_trigger_enabled(1: string token, 2: string name, 3: bool enabled)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found, 4: InternalError internal, 5: ValidationError invalid),

    /** Admin only. Evaluates the enabled triggers on these nodes as if they had just been
        written (a replay, or a backfill after enabling a rule); launches go through the launch
        key, so replaying an event never makes a second run. */
    list<LaunchResult> fire_triggers(1: string token, 2: list<string> ids)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: NotFound not_found, 5: InternalError internal),

    /** Your own notifications, newest first. */
    list<Notification> list_notifications(1: string token, 2: bool unread_only)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal,
                3: ValidationError invalid),

    void mark_notifications_read(1: string token, 2: list<string> ids)
        throws (1: Unauthenticated unauthenticated, 2: ValidationError invalid,
                3: InternalError internal),

    /* ---------- parameter sets ---------- */

    /** Checks the parameters against the template; needs write access to the project. */
    SavedParameterSet save_parameter_set(1: string token, 2: ParameterSetRequest request)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: NotFound not_found, 5: Conflict conflict,
                6: InternalError internal),

    /** The sets the caller may read ("" for any project or template), by template and name. */
    list<ParameterSet> list_parameter_sets(1: string token, 2: string project_id, 3: string template)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: InternalError internal),

    /** One revision, by its node id. */
    ParameterSetRevision get_parameter_set(1: string token, 2: string id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden, 3: NotFound not_found,
                4: InternalError internal, 5: ValidationError invalid),

    /* ---------- sessions ---------- */

    /** The calling token stops working now, whatever its kind (the portal's sign-out ends the
        session's token this way, so a copied session cookie is useless afterwards). */
    void sign_out(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal),

    /* ---------- tiered access ---------- */

    /** The tiered-access settings in force: limit, granularity, tier-visible fields. */
    TierAccess get_tier_access(1: string token)
        throws (1: Unauthenticated unauthenticated, 2: InternalError internal),

    /** Admin only. Sets the limit, the granularity and the tier-visible fields at once;
        returns the settings now in force. */
    TierAccess set_tier_access(1: string token, 2: TierAccess access)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden, 3: ValidationError invalid,
                4: InternalError internal),
}
