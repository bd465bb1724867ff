package migrations_test

// The layout of schema.sql: which section each table, view and function is printed in, in what
// order. An object no section names is printed in a last section, "Not yet placed in a
// section", of its part; a name the schema no longer has fails the generation.

// section is a group of objects in schema.sql, in the order a reader meets them. An object is
// named without its schema; a function name covers all its overloads.
type section struct {
	title string
	about string
	names []string
}

// tableSections order the tables (each with its constraints, indexes and triggers) by topic.
var tableSections = []section{
	{"The rules: policies, their history, holds",
		"What may be deleted and when. The job reads these; people (or `retention policy apply`) write them.",
		[]string{"policies", "policy_history", "holds"}},
	{"The session set",
		"The sessions the job knows, with their last activity: the app's source is synced into it " +
			"(`retention sync`), `retention discover` adds what Convai has and the app never stored.",
		[]string{"sessions", "syncs", "forgotten_sessions", "discoveries"}},
	{"Runs and what they recorded",
		"A run claims a chunk of sessions before it sends them (claims) and writes one outcome per " +
			"session after the answer (outcomes). deletions_v1 holds the rows written before migration 004.",
		[]string{"runs", "run_keys", "claims", "outcomes", "deletions_v1"}},
	{"The results log: Merkle tree, checkpoints, the v1 seal chain",
		"Every recorded claim becomes a leaf of a Merkle log (docs/COMPLIANCE.md); the v1 rows are sealed " +
			"by a hash chain instead.",
		[]string{"unsealed", "log_leaves", "log_hashes", "log_roots", "log_head", "checkpoints", "seals", "seal_head"}},
	{"Verifications",
		"`retention verify` checks recorded deletions against Convai's lists; its batches are chained by SHA-256. " +
			"The sessions its lists show as added to long-term memory are recorded once each (memory_sightings).",
		[]string{"verify_runs", "verify_keys", "verification_batches", "verification_head", "verifications", "memory_sightings"}},
	{"Erasure requests",
		"Requests that sessions be deleted whatever their age or policy (`retention erase`).",
		[]string{"erasure_requests", "erasure_completions"}},
	{"Bookkeeping",
		"The version the migrations brought the schema to (written by `retention migrate`).",
		[]string{"schema_version"}},
}

// viewSections order the views.
var viewSections = []section{
	{"Views: what the report, BI tools and auditors read", "",
		[]string{"deletions", "deletion_outcomes", "daily_deletions", "run_history", "expired_sessions",
			"erasure_status", "forgotten_in_set"}},
}

// functionSections group the functions by what they serve.
var functionSections = []section{
	{"The rules in SQL",
		"Copies of the Go rules (package policy) for the views, the report and the claim; this package's " +
			"conformance tests run every case of policy/policytest through both. is_deleted is \"this session is " +
			"deleted\", which source.TestDeletedRuleIsOne holds to the copies written out for speed.",
		[]string{"well_formed_id", "policy_for", "expiry_threshold", "expired_sessions_in", "policies_as_of",
			"is_deleted", "deletion_epoch"}},
	{"A run: start, claim, record, finish",
		"The job's role writes only through these; they check the run's token, its status and (for a claim) its lock.",
		[]string{"authorize", "start_run", "claim", "record", "close_claims", "close_run", "finish_run"}},
	{"The results log: leaf contents, tree, seal",
		"The canonical bytes of a claim (audit.ClaimContent computes the same in Go), the tree over them, and " +
			"the v1 chain's encoding.",
		[]string{"claim_content", "tlog_index", "tlog_root", "seal", "seal_field", "seal_time", "seal_content"}},
	{"Verifications",
		"",
		[]string{"authorize_verify", "start_verify", "record_verifications", "record_memory_sightings", "finish_verify",
			"verification_content"}},
	{"Erasure requests",
		"",
		[]string{"claim_erasure", "complete_erasure"}},
	{"The session set: sync and discovery",
		"",
		[]string{"sync_merge", "add_discovered"}},
	{"Trigger functions: guards, history, stamps",
		"Called by the triggers listed with the tables.",
		[]string{"touch_updated_at", "holds_keep_history", "policies_max_age_floor", "policies_history",
			"erasure_request_filed", "runs_guard", "deletions_guard", "seals_guard", "seal_outcomes"}},
}
