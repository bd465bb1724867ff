-- No false deletion, no overlap of shard layouts.
--
-- start_run: runs of different shard layouts (--shard-count) never run at once. The Go side
-- checked the locks held before start_run, but two starts at the same moment could each miss the
-- other, and a caller of start_run itself skipped the check. start_run now takes a
-- transaction-scoped gate, so starts are serialised, and refuses (SQLSTATE RL002) while a run of
-- another layout holds its lock.
--
-- record: a chunk's outcomes are never lost because another claim recorded one of its sessions
-- deleted first. The unique index of deleted outcomes per epoch used to fail the whole call; now
-- the first outcome stands and this claim's confirmation for that session is written failed,
-- with a note.
--
-- finish_run: a run's deleted and failed counts are counted from its outcomes, not taken from the
-- caller, and a checkpoint note must be a signed note of the checkpoint itself.
--
-- seal: waits at most 15 s for the log's lock (a session holding seal() open in a transaction
-- would otherwise stall every run's finish); the run then says its row stays running.

CREATE OR REPLACE FUNCTION retention.start_run(p_shard_index integer, p_shard_count integer, p_source text,
                                    p_settings jsonb, p_host text, p_pid integer, p_version text,
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
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND classid = 1380275269::bigint::oid AND objid = my_key::bigint::oid
          AND objsubid = 2 AND granted AND pid = pg_backend_pid()
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) THEN
        RAISE EXCEPTION 'start_run: this connection does not hold the run lock of shard % of %', p_shard_index, p_shard_count
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
    VALUES (run_id, sha256(convert_to(token, 'UTF8')), pg_backend_pid(), my_key);
END
$$;

CREATE OR REPLACE FUNCTION retention.record(p_run bigint, p_token text, p_claim bigint, p_status text[],
                                 p_attempts integer[], p_http_status integer[], p_error text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c        retention.claims;
    n        integer;
    inserted integer;
    src      text;
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    SELECT * INTO c FROM retention.claims WHERE id = p_claim AND run_id = p_run;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'record: claim % is not a claim of run %', p_claim, p_run USING ERRCODE = 'invalid_parameter_value';
    END IF;
    n := cardinality(c.session_ids);
    IF cardinality(p_status) IS DISTINCT FROM n OR cardinality(p_attempts) IS DISTINCT FROM n
       OR cardinality(p_http_status) IS DISTINCT FROM n OR cardinality(p_error) IS DISTINCT FROM n THEN
        RAISE EXCEPTION 'record: claim % has % sessions; every outcome array must have as many', p_claim, n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM retention.outcomes o WHERE o.claim_id = p_claim AND o.ord = 1) THEN
        RETURN 0;
    END IF;
    BEGIN
        INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, http_status, error, epoch)
        SELECT p_claim, u.ord, c.character_id, c.session_ids[u.ord], u.status, u.attempts,
               nullif(u.http_status, 0), nullif(u.error, ''),
               CASE WHEN u.status = 'deleted' AND EXISTS (
                        SELECT 1 FROM retention.verifications v
                        WHERE v.character_id = c.character_id AND v.session_id = c.session_ids[u.ord] AND v.result = 'present') THEN
                   -- retention.deletion_epoch, written out (a function call per session is not
                   -- inlined); counted only for the rare session a verification found present.
                   (SELECT count(DISTINCT v.deletion_id)::integer FROM retention.verifications v
                    WHERE v.character_id = c.character_id AND v.session_id = c.session_ids[u.ord] AND v.result = 'present')
               ELSE 0 END
        FROM unnest(p_status, p_attempts, p_http_status, p_error) WITH ORDINALITY AS u(status, attempts, http_status, error, ord)
        -- A run that found this one dead may have closed the claim a moment ago: its failed
        -- outcomes stand (the sessions are sent again), and this answer is not recorded.
        ON CONFLICT (claim_id, ord) DO NOTHING;
    EXCEPTION WHEN unique_violation THEN
        -- Another run recorded one of these sessions deleted first (runs whose shards overlapped,
        -- which start_run now refuses, or a claim made before such a run recorded): its outcome
        -- stands, this claim's other outcomes are kept, and this confirmation is written as a
        -- failed outcome that says so. Only this rare path pays for the probe.
        INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, http_status, error, epoch)
        SELECT p_claim, u.ord, c.character_id, c.session_ids[u.ord],
               CASE WHEN u.dup THEN 'failed' ELSE u.status END, u.attempts,
               nullif(u.http_status, 0),
               CASE WHEN u.dup THEN 'confirmed again, but another claim already recorded this session deleted: its outcome stands'
                    ELSE nullif(u.error, '') END,
               CASE WHEN u.status = 'deleted' AND NOT u.dup AND EXISTS (
                        SELECT 1 FROM retention.verifications v
                        WHERE v.character_id = c.character_id AND v.session_id = c.session_ids[u.ord] AND v.result = 'present') THEN
                   -- retention.deletion_epoch, written out (a function call per session is not
                   -- inlined); counted only for the rare session a verification found present.
                   (SELECT count(DISTINCT v.deletion_id)::integer FROM retention.verifications v
                    WHERE v.character_id = c.character_id AND v.session_id = c.session_ids[u.ord] AND v.result = 'present')
               ELSE 0 END
        FROM (SELECT x.*, x.status = 'deleted' AND retention.is_deleted(c.character_id, c.session_ids[x.ord]) AS dup
              FROM unnest(p_status, p_attempts, p_http_status, p_error) WITH ORDINALITY AS x(status, attempts, http_status, error, ord)) u
        -- A run that found this one dead may have closed the claim a moment ago: its failed
        -- outcomes stand (the sessions are sent again), and this answer is not recorded.
        ON CONFLICT (claim_id, ord) DO NOTHING;
    END;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF inserted = 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO retention.unsealed (claim_id, leaf) VALUES (p_claim, sha256('\x00'::bytea || retention.claim_content(p_claim)))
    ON CONFLICT (claim_id) DO NOTHING;
    SELECT r.source INTO src FROM retention.runs r WHERE r.id = p_run;
    IF src = 'retention.sessions' THEN
        DELETE FROM retention.sessions s
        USING unnest(c.session_ids, c.last_active_at, p_status) AS u(session_id, last_active_at, status)
        WHERE u.status = 'deleted' AND s.character_id = c.character_id AND s.session_id = u.session_id
          AND s.last_active_at = u.last_active_at;
    END IF;
    RETURN n;
END
$$;

-- The failed outcomes of a claim, for finish_run's count: failures are few, deletions many.
CREATE INDEX outcomes_failed ON retention.outcomes (claim_id) WHERE status = 'failed';

-- finish_run, as in 008, with the counts from the rows and the note checked.
CREATE OR REPLACE FUNCTION retention.finish_run(p_run bigint, p_token text, p_status text, p_selected bigint,
                                     p_deleted bigint, p_failed bigint, p_skipped bigint,
                                     p_skipped_by_reason jsonb, p_budget_reached boolean, p_error text,
                                     p_size bigint, p_root bytea, p_note text,
                                     p_would_send bigint, p_source_sessions bigint, p_abort_limit bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tree text := format(E'go.sum database tree\n%s\n%s\n\n', p_size, encode(p_root, 'base64'));
    n_deleted bigint;
    n_failed  bigint;
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    IF p_status NOT IN ('succeeded', 'partial', 'failed', 'interrupted', 'aborted') THEN
        RAISE EXCEPTION 'finish_run: % is not a final status', p_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_status = 'aborted' AND EXISTS (SELECT 1 FROM retention.claims c
                                        WHERE c.run_id = p_run AND c.erasure_request_id IS NULL) THEN
        RAISE EXCEPTION 'finish_run: run % claimed sessions its policies selected, so it cannot be aborted', p_run
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT ((p_size = 0 AND p_root = sha256(''::bytea))
            OR EXISTS (SELECT 1 FROM retention.log_roots l WHERE l.size = p_size AND l.root = p_root)) THEN
        RAISE EXCEPTION 'finish_run: the log never had size % with root %', p_size, encode(p_root, 'hex')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The note is sealed beside the checkpoint: it must be a signed note of exactly this size and
    -- root (golang.org/x/mod/sumdb/note over tlog.FormatTree), or none. Its signatures are
    -- checked by audit verify against the operator's key, which the database does not have.
    IF p_note IS NOT NULL AND NOT (octet_length(p_note) <= 4096 AND starts_with(p_note, tree)
                                   AND substr(p_note, length(tree) + 1) ~ '^(— [^ \n]+ [A-Za-z0-9+/]+=*\n)+$') THEN
        RAISE EXCEPTION 'finish_run: the note is not a signed note of the log at size % with root %', p_size, encode(p_root, 'hex')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The counts are the run's rows, whatever the caller says. close_run has given every claimed
    -- session its one outcome by now, so the deleted ones are the claimed ones less the failed
    -- ones: a sum over the run's claims and a scan of its few failures (outcomes_failed), not
    -- of every outcome (a 1M-session run's finish took 2.7 s that way).
    SELECT coalesce(sum(cardinality(c.session_ids)), 0),
           coalesce(sum((SELECT count(*) FROM retention.outcomes o WHERE o.claim_id = c.id AND o.status = 'failed')), 0)
      INTO n_deleted, n_failed
      FROM retention.claims c
     WHERE c.run_id = p_run;
    n_deleted := n_deleted - n_failed;
    INSERT INTO retention.checkpoints (run_id, size, root, note) VALUES (p_run, p_size, p_root, p_note);
    UPDATE retention.runs
    SET status = p_status, finished_at = now(), selected = p_selected, deleted = n_deleted, failed = n_failed,
        skipped = p_skipped, skipped_by_reason = coalesce(p_skipped_by_reason, '{}'),
        budget_reached = p_budget_reached, error = p_error,
        would_send = p_would_send, source_sessions = p_source_sessions, abort_limit = p_abort_limit
    WHERE id = p_run;
END
$$;

ALTER FUNCTION retention.seal() SET lock_timeout = '15s';
