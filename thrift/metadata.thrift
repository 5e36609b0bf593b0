/*
 * labcommons metadata service: the one contract between the store and everything else
 * (portal, notebooks, CLI, worker).
 *
 * Conventions
 * - Every method takes the caller's signed token first and declares what it throws.
 * - Node properties travel as a JSON object (`properties_json`): their types come from the
 *   data dictionary, which the service validates against; the envelope around them is typed.
 * - Exceptions carry a machine-readable `code` and a `message` a person can act on.
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

/* ---------- identity and health ---------- */

struct Identity {
    1: string user,
    2: list<string> roles,
    /** project_id -> "read" or "write". */
    3: map<string, string> grants,
    4: i64 expires_at,
}

struct IssuedToken {
    1: string token,
    2: Identity identity,
}

struct Health {
    1: string status,
    2: string version,
    3: string store,
    /** Node count per type. */
    4: map<string, i64> counts,
}

service Metadata {
    Health health(1: string token)
        throws (1: Unauthenticated unauthenticated),

    Identity whoami(1: string token)
        throws (1: Unauthenticated unauthenticated),

    /** Admin only. Mints a signed, expiring token for scripts and notebooks. */
    IssuedToken create_token(1: string token, 2: string user, 3: list<string> roles,
                             4: map<string, string> grants, 5: i64 ttl_seconds)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid),

    /** The data dictionary in force, as JSON: {type: schema}. */
    string get_dictionary(1: string token)
        throws (1: Unauthenticated unauthenticated),

    Node get_node(1: string token, 2: string id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found),

    Node find_node(1: string token, 2: string project_id, 3: string submitter_id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found),

    NodePage list_nodes(1: string token, 2: ListRequest request)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid),

    /** Edges into (children) and out of (parents) one node. */
    list<Edge> get_edges(1: string token, 2: string id)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found),

    /** Validates and upserts a batch by submitter_id; all of it or none of it. */
    SubmitResult submit(1: string token, 2: SubmitRequest request)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: ValidationError invalid, 4: Conflict conflict),

    /** Deletes nodes by id; refused, with the children named, while any has children. */
    DeleteResult delete_nodes(1: string token, 2: string project_id, 3: list<string> ids)
        throws (1: Unauthenticated unauthenticated, 2: Forbidden forbidden,
                3: NotFound not_found, 4: Conflict conflict,
                5: ValidationError invalid),
}
