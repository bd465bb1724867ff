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
--                      policies, the holds and the session source, and writes only what the
--                      run's protocol needs: runs (a new row, then its outcome while it is
--                      running) and deletions (a pending row, then its outcome). It cannot read or
--                      write the seals, change a policy or a hold, delete anything, or change a
--                      final outcome or a finished run (the triggers of migration 002 reject that
--                      even where a column privilege would allow it).
--   retention_auditor  the role of `retention report` and `retention audit verify`: reads the
--                      results, the seals, the rules and the views; writes nothing.
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

-- retention_job: every statement of the source package, and no more.
--   migrations.Check                     reads schema_version
--   Rules, Held, Claim                   read policies and holds
--   Page, Undated, counts                read the session source and deletions
--   Lock, Claim                          read pg_locks and pg_database (granted to PUBLIC)
--   StartRun                             locks running runs (SELECT ... FOR UPDATE needs UPDATE),
--                                        fails the pending deletions of dead runs, marks those
--                                        runs interrupted, inserts its own run
--   Claim                                inserts pending deletions
--   Record, FinishRun                    turns pending deletions into outcomes, finishes the run
-- Sealing runs in a SECURITY DEFINER trigger owned by retention_owner: no grant on the seals.
GRANT SELECT ON retention.schema_version, retention.policies, retention.holds, retention.sessions,
                retention.runs, retention.deletions
    TO retention_job;
GRANT INSERT (cutoff, source, shard_index, shard_count, settings, host, pid, version)
    ON retention.runs TO retention_job;
GRANT UPDATE (status, finished_at, selected, deleted, failed, skipped, skipped_by_reason, budget_reached, error)
    ON retention.runs TO retention_job;
GRANT INSERT (run_id, character_id, session_id, status, last_active_at, policy_id, policy_character_id, max_age)
    ON retention.deletions TO retention_job;
GRANT UPDATE (status, attempts, http_status, error, completed_at)
    ON retention.deletions TO retention_job;

-- retention_auditor: read the results, the seals, the rules and the views; call the read-only
-- functions the views and the report use.
GRANT SELECT ON retention.schema_version, retention.policies, retention.holds, retention.sessions,
                retention.runs, retention.deletions, retention.seals, retention.seal_head,
                retention.expired_sessions, retention.deletion_outcomes, retention.daily_deletions,
                retention.run_history
    TO retention_auditor;
GRANT EXECUTE ON FUNCTION retention.policy_for(text), retention.expired_sessions_in(regclass),
                          retention.expired_sessions_in(regclass, timestamptz),
                          retention.expiry_threshold(interval, timestamptz),
                          retention.well_formed_id(text), retention.seal_field(text),
                          retention.seal_time(timestamptz), retention.seal_content(retention.deletions)
    TO retention_auditor;

COMMIT;
