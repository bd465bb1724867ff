-- Working through a connection pooler (PgBouncer and the pooled ports of managed platforms).
--
-- In transaction pooling a client's transactions run on whichever server session the pooler
-- picks for each one, so nothing of a session outlives its transaction for that client: not a
-- session-level advisory lock, not a named prepared statement, not a setting.
--
-- The run lock: a run takes its lock with pg_try_advisory_xact_lock in a transaction that stays
-- open for the whole run, on a connection of its own. A pooler in any mode keeps that
-- transaction on one server session, which holds the lock until the run rolls back, the
-- connection (or the pooler's, for a dead client) closes, or the session stays idle longer than
-- the lease the run sets (idle_in_transaction_session_timeout; the run renews it by using the
-- connection, see source/runlock.go). start_run cannot run in that transaction, since its rows
-- would commit only when the run ends: it runs on another connection and names the server
-- process that holds the lock (p_lock_pid), which must hold the shard's lock now and be a
-- session of the caller's role. The start_run of seven arguments is that with the caller's own
-- process, as before. authorize already checks the process recorded in run_keys.lock_pid.
--
-- Custom plans: the job used to send plan_cache_mode = force_custom_plan as a startup parameter,
-- which PgBouncer refuses, and which a pooler would not keep on the sessions it hands out
-- anyway. The job's own statements no longer use named prepared statements (an unnamed one is
-- planned with its arguments every time); the statements inside the schema's functions are
-- cached per server session, so every SECURITY DEFINER plpgsql function (the functions the job
-- writes through) now runs them with custom plans itself. A migration that replaces one of them
-- restates SET plan_cache_mode = force_custom_plan; migrations/pooler_test.go checks it.

-- start_run starts a run for the server process p_lock_pid, which must hold the shard's run lock
-- now and be a session of the caller's role (the run's lock lives in a transaction of its own, on
-- another connection). It marks the runs found dead as interrupted (a run still marked running is
-- dead when nobody holds its shard's lock, or when the lock is this run's), closes their claims
-- without an outcome, inserts the new run with the server's now() as its cut-off and returns the
-- run's token. It refuses (RL002) while a run of another shard layout holds its lock.
CREATE FUNCTION retention.start_run(p_shard_index integer, p_shard_count integer, p_source text,
                                    p_settings jsonb, p_host text, p_pid integer, p_version text,
                                    p_lock_pid integer,
                                    OUT run_id bigint, OUT cutoff timestamptz, OUT token text,
                                    OUT recovered bigint[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    my_key       integer := (p_shard_count << 16) | p_shard_index;
    held         integer[];
    running      bigint[];
    running_keys integer[];
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.classid = 1380275269::bigint::oid AND l.objid = my_key::bigint::oid
          AND l.objsubid = 2 AND l.granted AND l.pid = p_lock_pid
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND pg_has_role(session_user, a.usesysid, 'MEMBER')) THEN
        RAISE EXCEPTION 'start_run: server process % does not hold the run lock of shard % of % in a session of role %',
                        p_lock_pid, p_shard_index, p_shard_count, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    -- One start at a time in this database: a run that checks the layout below and then inserts
    -- its row does so before any other run checks, so two runs of different shard layouts
    -- cannot both find the other absent. The gate is held until the transaction ends.
    PERFORM pg_advisory_xact_lock(1380275271, 0); -- "RETG": not a run lock's class

    -- The running runs first, then the locks: a run takes its lock before its row exists, so
    -- every run row seen here has its lock in the list read after it, unless the run is dead.
    SELECT coalesce(array_agg(r.id ORDER BY r.id), '{}'), coalesce(array_agg((r.shard_count << 16) | r.shard_index ORDER BY r.id), '{}')
      INTO running, running_keys
      FROM (SELECT id, shard_index, shard_count FROM retention.runs WHERE status = 'running' FOR UPDATE) r;
    SELECT coalesce(array_agg(objid::bigint::integer), '{}') INTO held FROM pg_locks
    WHERE locktype = 'advisory' AND classid = 1380275269::bigint::oid AND objsubid = 2 AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database());
    SELECT coalesce(array_agg(u.id ORDER BY u.id), '{}') INTO recovered
      FROM unnest(running, running_keys) AS u(id, k)
     WHERE NOT u.k = ANY (held) OR u.k = my_key;
    -- A live run of another shard layout owns characters this run's shard also owns.
    IF EXISTS (SELECT 1 FROM unnest(running, running_keys) AS u(id, k)
               WHERE u.k = ANY (held) AND u.k <> my_key AND (u.k >> 16) <> p_shard_count) THEN
        RAISE EXCEPTION 'start_run: runs of another shard layout are in progress (this run splits by %): '
                        'their shards would overlap this one''s', p_shard_count
            USING ERRCODE = 'RL002';
    END IF;
    IF cardinality(recovered) > 0 THEN
        UPDATE retention.deletions_v1
        SET status = 'failed', completed_at = now(),
            error = 'the run ended before an answer was recorded; the session will be sent again'
        WHERE deletions_v1.run_id = ANY (recovered) AND status = 'pending';
        PERFORM retention.close_claims(recovered, 'the run ended before an answer was recorded; the session will be sent again');
        UPDATE retention.runs r
        SET status = 'interrupted', finished_at = now(),
            deleted = (SELECT count(*) FROM retention.deletions_v1 d WHERE d.run_id = r.id AND d.status = 'deleted')
                    + (SELECT count(*) FROM retention.claims c JOIN retention.outcomes o ON o.claim_id = c.id
                       WHERE c.run_id = r.id AND o.status = 'deleted'),
            failed  = (SELECT count(*) FROM retention.deletions_v1 d WHERE d.run_id = r.id AND d.status = 'failed')
                    + (SELECT count(*) FROM retention.claims c JOIN retention.outcomes o ON o.claim_id = c.id
                       WHERE c.run_id = r.id AND o.status = 'failed'),
            error = coalesce(r.error, 'the process ended without finishing the run')
        WHERE r.id = ANY (recovered);
    END IF;

    token := encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, 'UTF8')), 'hex');
    INSERT INTO retention.runs (cutoff, source, shard_index, shard_count, settings, host, pid, version)
    VALUES (now(), p_source, p_shard_index, p_shard_count, coalesce(p_settings, '{}'), coalesce(p_host, ''), p_pid, coalesce(p_version, ''))
    RETURNING id, runs.cutoff INTO run_id, cutoff;
    INSERT INTO retention.run_keys (run_id, token_hash, lock_pid, lock_key)
    VALUES (run_id, sha256(convert_to(token, 'UTF8')), p_lock_pid, my_key);
END
$$;

-- start_run on the connection that holds the shard's run lock (binaries before this migration).
CREATE OR REPLACE FUNCTION retention.start_run(p_shard_index integer, p_shard_count integer, p_source text,
                                               p_settings jsonb, p_host text, p_pid integer, p_version text,
                                               OUT run_id bigint, OUT cutoff timestamptz, OUT token text,
                                               OUT recovered bigint[])
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM retention.start_run(p_shard_index, p_shard_count, p_source, p_settings, p_host, p_pid, p_version,
                                      pg_backend_pid())
$$;

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = 'retention'::regnamespace AND p.prosecdef
          AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET plan_cache_mode = force_custom_plan', f);
    END LOOP;
END
$$;
