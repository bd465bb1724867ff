-- Least-privilege roles for the retention schema.
--
-- `retention migrate` does not apply this script: creating roles and handing over ownership needs
-- a superuser (or a role with CREATEROLE that can take over the schema). Run it in the database
-- that holds the retention schema, after the first `retention migrate`, and again after every
-- upgrade that adds a migration (it is idempotent, and re-grants exactly what is listed here):
--
--   psql "postgres://SUPERUSER@HOST/DATABASE" -v ON_ERROR_STOP=1 -f sql/roles.sql
--
-- Three roles, created with LOGIN and no password (give each one: ALTER ROLE ... PASSWORD ...,
-- or map them to your authentication, e.g. certificates or IAM):
--
--   retention_owner    owns the schema retention and everything in it; the role that runs
--                      `retention migrate`. It can do anything to these objects, including
--                      disabling the guard triggers: the seal chain is what detects that.
--   retention_job      the role of `retention run` and `retention schedule`. It reads the
--                      policies, the holds and the session source, and writes only through the
--                      schema's functions, which let the run that is running, holds its lock and
--                      knows its token add that run's records at the server's clock, and nothing
--                      else: no plain INSERT or UPDATE on any table, no finished run, no other
--                      run's records, no time of its choosing.
--   retention_auditor  the role of `retention report` and `retention audit verify`: reads the
--                      results, the seals, the rules and the views; writes nothing.
--
-- The policies: written by the owner. A role of your own that edits them (e.g. for `retention
-- policy apply`) needs SELECT, INSERT, UPDATE, DELETE on retention.policies and INSERT on
-- retention.policy_history, which the policies' trigger writes as that role. Its plan counts
-- with the job's reads; when a policy sets memory_max_age it also reads the memory retention
-- (EXECUTE on retention.memory_policies and retention.end_user_holds, SELECT on
-- retention.end_users), as retention_job may.
--
-- Erasure requests: a role of your own that files them (e.g. for `retention erase`, or plain
-- SQL) needs INSERT on retention.erasure_requests and SELECT on it and retention.erasure_status;
-- the database stamps each row with that role (filed_by) and the time. Nobody edits or removes
-- a request: an active hold is how to keep a request's sessions, and it blocks the request.
--
-- The session source: retention.sessions is granted here. A source of your own (`--source
-- app.sessions_v`) needs its own grant to the job and, for the report's live counts, to the
-- auditor:   GRANT USAGE ON SCHEMA app TO retention_job, retention_auditor;
--            GRANT SELECT ON app.sessions_v TO retention_job, retention_auditor;
-- On PostgreSQL 14 or older, also REVOKE CREATE ON SCHEMA public FROM PUBLIC.

BEGIN;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'retention_owner') THEN
        CREATE ROLE retention_owner LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'retention_job') THEN
        CREATE ROLE retention_job LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'retention_auditor') THEN
        CREATE ROLE retention_auditor LOGIN;
    END IF;
    -- CREATE on the database: migrate runs CREATE SCHEMA IF NOT EXISTS retention.
    EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO retention_owner', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO retention_job, retention_auditor', current_database());
END
$$;

-- The owner owns the schema and every table, view and function in it (the identity sequences
-- follow their tables), whoever created them.
ALTER SCHEMA retention OWNER TO retention_owner;
DO $$
DECLARE
    stmt text;
BEGIN
    FOR stmt IN
        SELECT format('ALTER %s %s OWNER TO retention_owner',
                      CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
                      c.oid::regclass)
        FROM pg_class c
        WHERE c.relnamespace = 'retention'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
        UNION ALL
        SELECT format('ALTER ROUTINE %s OWNER TO retention_owner', p.oid::regprocedure)
        FROM pg_proc p
        WHERE p.pronamespace = 'retention'::regnamespace
    LOOP
        EXECUTE stmt;
    END LOOP;
END
$$;

-- Start from nothing, so running this again leaves exactly the grants below.
REVOKE ALL ON SCHEMA retention FROM PUBLIC, retention_job, retention_auditor;
REVOKE ALL ON ALL TABLES IN SCHEMA retention FROM PUBLIC, retention_job, retention_auditor;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA retention FROM PUBLIC, retention_job, retention_auditor;
REVOKE ALL ON ALL ROUTINES IN SCHEMA retention FROM PUBLIC, retention_job, retention_auditor;

GRANT USAGE ON SCHEMA retention TO retention_job, retention_auditor;

-- retention_job: every statement of the source package, and no more. It reads the rules and
-- the source, and writes nothing directly: every write is a call of a function that runs as
-- retention_owner and checks that the caller is the running run, with its token (and, for a
-- claim, its lock), at the server's clock.
--   migrations.Check                     reads schema_version
--   Rules, Held                          read policies and holds
--   Page, Undated                        read the session source, and probe outcomes,
--                                        deletions_v1 and verifications for sessions already
--                                        deleted (the rule written out; see source/inspect.go)
--   Sync                                 copies the source into a temporary table of its own
--                                        session and merges it through retention.sync_merge;
--                                        reads syncs (the last high-water mark)
--   Lock                                 reads pg_locks and pg_database (granted to PUBLIC)
--   StartRun, Claim, Record, Finish      retention.start_run, claim, record, close_run, seal,
--                                        finish_run
--   Verify                               reads deletions and verifications; writes through
--                                        retention.start_verify, record_verifications,
--                                        record_memory_flags, finish_verify; at its end reads
--                                        deleted_in_memory and erasure_memory_left (views)
--   Verify's memory re-checks            read end_user_memory (which reads memory_rechecks
--                                        through retention.memory_found_again); write through
--                                        retention.record_memory_recheck
--   Discover                             reads the source and retention.is_deleted; adds through
--                                        retention.add_discovered (the four-argument one, which
--                                        keeps what the list said of long-term memory)
--   OpenErasures, CompleteErasure        read erasure_requests, erasure_completions and, for a
--                                        deletion a verification refuted, the claims made under
--                                        a request; claim through retention.claim_erasure,
--                                        complete through retention.complete_erasure
--   OpenEndUserErasures, the memory phase read end_user_requests, end_user_memory (a view over
--                                        them, memory_erasures and end_user_completions) and
--                                        the set; write through retention.expand_end_user_requests,
--                                        record_memory_erasure, complete_end_user_erasure
--   MemoryPolicies, RecordMemoryDeletion read retention.memory_policies and end_users; write
--                                        through retention.record_memory_deletion
--   RecordMemory (a run's)               writes what the run's own lists (settle, a character's
--                                        erasure request) said of long-term memory through
--                                        retention.record_run_memory_flags
GRANT SELECT ON retention.schema_version, retention.policies, retention.holds, retention.sessions,
                retention.runs, retention.deletions, retention.deletions_v1, retention.outcomes,
                retention.verifications, retention.erasure_requests, retention.erasure_completions,
                retention.claims, retention.syncs, retention.forgotten_sessions, retention.forgotten_in_set,
                retention.end_user_requests, retention.end_user_completions, retention.memory_erasures,
                retention.end_user_memory, retention.end_users, retention.deleted_in_memory,
                retention.erasure_memory_left, retention.memory_rechecks
    TO retention_job;
GRANT EXECUTE ON FUNCTION
    retention.is_deleted(text, text),
    retention.start_verify(jsonb, text, text),
    retention.record_verifications(bigint, text, text, timestamptz, bigint[], boolean[]),
    retention.record_memory_flags(bigint, text, text, timestamptz, text[], text[]),
    retention.finish_verify(bigint, text, text, bigint, text),
    retention.record_memory_recheck(bigint, text, bigint[], timestamptz, text, bigint, bigint, text, integer, integer),
    retention.memory_found_again(bigint),
    retention.add_discovered(text, text[], timestamptz[], text[]),
    retention.start_run(integer, integer, text, jsonb, text, integer, text),
    retention.start_run(integer, integer, text, jsonb, text, integer, text, integer),
    retention.claim(bigint, text, text, bigint, text, interval, text[], timestamptz[]),
    retention.claim_erasure(bigint, text, bigint, text[], timestamptz[]),
    retention.complete_erasure(bigint, text, bigint),
    retention.record(bigint, text, bigint, text[], integer[], integer[], text[]),
    retention.close_run(bigint, text),
    retention.finish_run(bigint, text, text, bigint, bigint, bigint, bigint, jsonb, boolean, text, bigint, bytea, text,
                         bigint, bigint, bigint),
    retention.seal(),
    retention.sync_merge(text, boolean, text, timestamptz, timestamptz, timestamptz),
    retention.end_user_holds(text, text),
    retention.expand_end_user_requests(bigint, text),
    retention.record_memory_erasure(bigint, text, bigint, text, text, integer, integer, bigint, text, timestamptz, bigint),
    retention.complete_end_user_erasure(bigint, text, bigint),
    retention.memory_policies(timestamptz),
    retention.record_memory_deletion(bigint, text, text, text, text, timestamptz, text, integer, integer, text),
    retention.record_run_memory_flags(bigint, text, text, timestamptz, text[], text[])
    TO retention_job;

-- retention_auditor: read the results, the seals, the rules and the views; call the read-only
-- functions the views and the report use.
GRANT SELECT ON retention.schema_version, retention.policies, retention.holds, retention.sessions,
                retention.runs, retention.deletions, retention.deletions_v1, retention.seals,
                retention.seal_head, retention.claims, retention.outcomes, retention.unsealed,
                retention.log_leaves, retention.log_hashes, retention.log_roots, retention.log_head,
                retention.checkpoints, retention.policy_history, retention.expired_sessions, retention.deletion_outcomes,
                retention.daily_deletions, retention.run_history, retention.verify_runs,
                retention.verifications, retention.verification_batches, retention.verification_head,
                retention.discoveries, retention.erasure_requests, retention.erasure_completions,
                retention.erasure_status, retention.syncs, retention.forgotten_sessions, retention.forgotten_in_set,
                retention.memory_sightings, retention.end_users, retention.end_user_requests,
                retention.end_user_completions, retention.memory_erasures, retention.end_user_memory,
                retention.end_user_erasure_status, retention.memory_deletions, retention.memory_listings,
                retention.deleted_in_memory, retention.erasure_memory_left, retention.memory_rechecks
    TO retention_auditor;
GRANT EXECUTE ON FUNCTION retention.policy_for(text), retention.expired_sessions_in(regclass),
                          retention.expired_sessions_in(regclass, timestamptz),
                          retention.expiry_threshold(interval, timestamptz),
                          retention.well_formed_id(text), retention.seal_field(text),
                          retention.seal_time(timestamptz), retention.seal_content(retention.deletions_v1),
                          retention.claim_content(bigint), retention.memory_erasure_content(bigint),
                          retention.memory_deletion_content(bigint),
                          retention.policies_as_of(timestamptz), retention.is_deleted(text, text),
                          retention.verification_content(bigint), retention.end_user_holds(text, text),
                          retention.memory_policies(timestamptz), retention.memory_found_again(bigint)
    TO retention_auditor;

COMMIT;
