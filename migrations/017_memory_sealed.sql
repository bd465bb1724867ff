-- Long-term memory, the rest of issue 18: memory_max_age in the policy history, the memory flag
-- from a run's own lists, and every memory erasure and memory deletion a leaf of the log.
-- Each part below is its own section.

-- ---------------------------------------------------------------------------------------------
-- Part A: memory_max_age in the policy history.
-- ---------------------------------------------------------------------------------------------

-- The history kept max_age, enabled and note; memory_max_age (016) changed unseen. Each row now
-- carries the old and new memory_max_age too, a change of memory_max_age alone is a version
-- (intervals compared as text: '1 mon' and '30 days' are equal as intervals, not as thresholds;
-- max_age likewise from now on),
-- and each policy that sets one gets a baseline row: what was in force when the history began
-- to see it (before this migration, when it was set is not known).
ALTER TABLE retention.policy_history ADD COLUMN old_memory_max_age interval NULL,
                                     ADD COLUMN new_memory_max_age interval NULL;

CREATE OR REPLACE FUNCTION retention.policies_history() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    actor  text := nullif(btrim(current_setting('retention.actor', true)), '');
    reason text := nullif(btrim(current_setting('retention.reason', true)), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO retention.policy_history (policy_id, op, new_character_id, new_max_age, new_enabled, new_note,
                                              new_memory_max_age, actor, reason)
        VALUES (NEW.id, 'insert', NEW.character_id, NEW.max_age, NEW.enabled, NEW.note, NEW.memory_max_age,
                actor, coalesce(reason, nullif(NEW.note, '')));
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO retention.policy_history (policy_id, op, old_character_id, old_max_age, old_enabled, old_note,
                                              old_memory_max_age, new_character_id, new_max_age, new_enabled, new_note,
                                              new_memory_max_age, actor, reason)
        VALUES (NEW.id, 'update', OLD.character_id, OLD.max_age, OLD.enabled, OLD.note, OLD.memory_max_age,
                NEW.character_id, NEW.max_age, NEW.enabled, NEW.note, NEW.memory_max_age,
                actor, coalesce(reason, nullif(NEW.note, '')));
    ELSE
        INSERT INTO retention.policy_history (policy_id, op, old_character_id, old_max_age, old_enabled, old_note,
                                              old_memory_max_age, actor, reason)
        VALUES (OLD.id, 'delete', OLD.character_id, OLD.max_age, OLD.enabled, OLD.note, OLD.memory_max_age,
                actor, coalesce(reason, nullif(OLD.note, '')));
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER policies_history_update ON retention.policies;
CREATE TRIGGER policies_history_update AFTER UPDATE ON retention.policies FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.character_id IS DISTINCT FROM NEW.character_id
          OR OLD.max_age::text IS DISTINCT FROM NEW.max_age::text OR OLD.enabled IS DISTINCT FROM NEW.enabled
          OR OLD.note IS DISTINCT FROM NEW.note OR OLD.memory_max_age::text IS DISTINCT FROM NEW.memory_max_age::text)
    EXECUTE FUNCTION retention.policies_history();

INSERT INTO retention.policy_history (policy_id, op, new_character_id, new_max_age, new_enabled, new_note,
                                      new_memory_max_age, reason)
SELECT id, 'baseline', character_id, max_age, enabled, note, memory_max_age,
       'memory_max_age in force when the policy history began to record it (migration 017)'
FROM retention.policies WHERE memory_max_age IS NOT NULL
ORDER BY id;

-- policies_as_of(t) gives each policy's memory_max_age too. Its result changes, so it is dropped
-- and made again (no view or function depends on it). The grants it had are given again, so
-- that a database where sql/roles.sql ran (EXECUTE revoked from PUBLIC, granted to
-- retention_auditor) keeps exactly them until roles.sql runs again; one where it did not keeps
-- the default, EXECUTE for PUBLIC.
SELECT set_config('retention.m017_policies_as_of_acl', coalesce(p.proacl::text, ''), true)
FROM pg_catalog.pg_proc p WHERE p.oid = 'retention.policies_as_of(timestamptz)'::regprocedure;

DROP FUNCTION retention.policies_as_of(timestamptz);

-- policies_as_of(t) is the policies in force at t, each with its version (a policy_history id).
-- memory_max_age: NULL when the policy kept memory as long as Convai did, or when the version
-- was recorded before migration 017, which is when the history began to record it (a policy
-- that set one then has a baseline row of 017).
CREATE FUNCTION retention.policies_as_of(t timestamptz)
RETURNS TABLE (policy_id bigint, version bigint, character_id text, max_age interval, enabled boolean, note text,
               changed_at timestamptz, changed_by text, actor text, reason text, memory_max_age interval)
LANGUAGE sql STABLE AS $$
    SELECT h.policy_id, h.id, h.new_character_id, h.new_max_age, h.new_enabled, h.new_note,
           h.changed_at, h.changed_by, h.actor, h.reason, h.new_memory_max_age
    FROM (SELECT DISTINCT ON (x.policy_id) x.*
          FROM retention.policy_history x
          WHERE x.changed_at <= t
          ORDER BY x.policy_id, x.changed_at DESC, x.id DESC) h
    WHERE h.op <> 'delete'
    ORDER BY h.new_character_id NULLS FIRST, h.policy_id
$$;

DO $$
DECLARE
    acl   text := current_setting('retention.m017_policies_as_of_acl');
    fn    regprocedure := 'retention.policies_as_of(timestamptz)'::regprocedure;
    owner oid := (SELECT p.proowner FROM pg_catalog.pg_proc p WHERE p.oid = fn);
    g     record;
BEGIN
    IF acl = '' THEN
        RETURN; -- the default ACL, which the new function has too
    END IF;
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    FOR g IN SELECT a.grantee, a.is_grantable FROM pg_catalog.aclexplode(acl::aclitem[]) a
             WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> owner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s%s', fn,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END,
                       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;

-- (end of part A)

-- ---------------------------------------------------------------------------------------------
-- Part B: the memory flag from a run's own lists (settle, erasure requests).
-- ---------------------------------------------------------------------------------------------

-- A run lists a character too: once to settle a single session the API refused (job's
-- settler), and once for a character's erasure request (the sessions the app never stored).
-- Those lists say is_added_to_memory of every session they show, as a verification's do; a run
-- now records what they said in the same two tables, under its own ID: a row has either the
-- verification's (verify_id) or the run's (run_id), never both. The first list that said so
-- keeps the row, whoever read it.
ALTER TABLE retention.memory_sightings ALTER COLUMN verify_id DROP NOT NULL,
    ADD COLUMN run_id bigint NULL REFERENCES retention.runs (id),
    ADD CONSTRAINT memory_sightings_one_list CHECK ((verify_id IS NULL) <> (run_id IS NULL));
ALTER TABLE retention.memory_listings ALTER COLUMN verify_id DROP NOT NULL,
    ADD COLUMN run_id bigint NULL REFERENCES retention.runs (id),
    ADD CONSTRAINT memory_listings_one_list CHECK ((verify_id IS NULL) <> (run_id IS NULL));

-- memory_flags_insert records what a list of p_character read at p_listed_at said of each of
-- p_session_ids (1 to 10000 well-formed IDs): p_said[i] is added, not_added or unstated. An
-- added session goes into memory_sightings with the end user the set names for it now (NULL if
-- none), the others into memory_listings, each with the reader's ID (p_verify or p_run, exactly
-- one); a session and answer recorded before (by any list) keep their first row. It returns how
-- many rows it added. p_caller names the function in errors. It is the shared body of
-- record_memory_flags and record_run_memory_flags, which authorize the reader and check the list
-- time first; no role may call it itself.
CREATE FUNCTION retention.memory_flags_insert(p_caller text, p_verify bigint, p_run bigint, p_character text,
                                              p_listed_at timestamptz, p_session_ids text[], p_said text[])
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n      integer := cardinality(p_session_ids);
    added  integer;
    others integer;
BEGIN
    IF n IS NULL OR n = 0 OR n > 10000 OR cardinality(p_said) IS DISTINCT FROM n THEN
        RAISE EXCEPTION '%: want 1 to 10000 session IDs and as many answers', p_caller
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_said) x WHERE x IS NULL OR x NOT IN ('added', 'not_added', 'unstated')) THEN
        RAISE EXCEPTION '%: an answer is not added, not_added or unstated', p_caller
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT retention.well_formed_id(p_character)
       OR EXISTS (SELECT 1 FROM unnest(p_session_ids) x WHERE NOT retention.well_formed_id(x)) THEN
        RAISE EXCEPTION '%: every ID must be well-formed', p_caller
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retention.memory_sightings (character_id, session_id, verify_id, run_id, listed_at, end_user_id)
    SELECT DISTINCT p_character, u.id, p_verify, p_run, p_listed_at,
           (SELECT s.end_user_id FROM retention.sessions s WHERE s.character_id = p_character AND s.session_id = u.id)
      FROM unnest(p_session_ids, p_said) AS u(id, said)
     WHERE u.said = 'added'
    ON CONFLICT (character_id, session_id) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    INSERT INTO retention.memory_listings (character_id, session_id, said, verify_id, run_id, listed_at)
    SELECT DISTINCT p_character, u.id, u.said, p_verify, p_run, p_listed_at
      FROM unnest(p_session_ids, p_said) AS u(id, said)
     WHERE u.said <> 'added'
    ON CONFLICT (character_id, session_id, said) DO NOTHING;
    GET DIAGNOSTICS others = ROW_COUNT;
    RETURN added + others;
END
$$;
REVOKE EXECUTE ON FUNCTION retention.memory_flags_insert(text, bigint, bigint, text, timestamptz, text[], text[]) FROM PUBLIC;

-- record_memory_flags, as in 016, through memory_flags_insert: a verification's list.
CREATE OR REPLACE FUNCTION retention.record_memory_flags(p_verify bigint, p_token text, p_character text,
                                                         p_listed_at timestamptz, p_session_ids text[], p_said text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    PERFORM retention.authorize_verify(p_verify, p_token);
    IF p_listed_at IS NULL OR p_listed_at < (SELECT started_at FROM retention.verify_runs WHERE id = p_verify)
       OR p_listed_at > now() THEN
        RAISE EXCEPTION 'record_memory_flags: the list time % is not within the verify run', p_listed_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN retention.memory_flags_insert('record_memory_flags', p_verify, NULL, p_character, p_listed_at,
                                         p_session_ids, p_said);
END
$$;

-- record_run_memory_flags is record_memory_flags for a running run (its settle and erasure
-- request lists): only the run, with its token, while it is running, may record, and the list
-- time must be within the run.
CREATE FUNCTION retention.record_run_memory_flags(p_run bigint, p_token text, p_character text,
                                                  p_listed_at timestamptz, p_session_ids text[], p_said text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    IF p_listed_at IS NULL OR p_listed_at < (SELECT started_at FROM retention.runs WHERE id = p_run)
       OR p_listed_at > now() THEN
        RAISE EXCEPTION 'record_run_memory_flags: the list time % is not within the run', p_listed_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN retention.memory_flags_insert('record_run_memory_flags', NULL, p_run, p_character, p_listed_at,
                                         p_session_ids, p_said);
END
$$;
REVOKE EXECUTE ON FUNCTION retention.record_run_memory_flags(bigint, text, text, timestamptz, text[], text[]) FROM PUBLIC;

-- deleted_in_memory as in 016, with whose list it was: listed_by is verify (verify_id names
-- the verification), run (run_id, the last column, names the run) or discover.
CREATE OR REPLACE VIEW retention.deleted_in_memory AS
    SELECT x.id AS deletion_id, x.character_id, x.session_id, x.completed_at AS deleted_at, x.erasure_request_id,
           f.listed_at, f.listed_by, f.verify_id,
           coalesce(q.end_user_id, f.end_user_id) AS end_user_id,
           me.id AS memory_erasure_id, me.completed_at AS memory_erased_at,
           f.run_id
    FROM (SELECT ms.character_id, ms.session_id, ms.listed_at,
                 CASE WHEN ms.verify_id IS NOT NULL THEN 'verify' ELSE 'run' END AS listed_by,
                 ms.verify_id, ms.end_user_id, ms.run_id
          FROM retention.memory_sightings ms
          UNION ALL
          SELECT d.character_id, d.session_id, min(d.discovered_at), 'discover', NULL::bigint, NULL::text, NULL::bigint
          FROM retention.discoveries d
          WHERE d.memory = 'added'
            AND NOT EXISTS (SELECT 1 FROM retention.memory_sightings ms
                            WHERE ms.character_id = d.character_id AND ms.session_id = d.session_id)
          GROUP BY d.character_id, d.session_id) f
    JOIN retention.deletions x ON x.character_id = f.character_id AND x.session_id = f.session_id AND x.status = 'deleted'
    LEFT JOIN retention.erasure_requests er ON er.id = x.erasure_request_id
    LEFT JOIN retention.end_user_requests q ON q.id = er.end_user_request_id
    LEFT JOIN LATERAL (
        SELECT m.id, m.completed_at FROM retention.memory_erasures m
        JOIN retention.end_user_requests mq ON mq.id = m.request_id
        WHERE mq.end_user_id = coalesce(q.end_user_id, f.end_user_id) AND m.character_id = x.character_id
          AND m.status = 'erased' AND m.completed_at >= x.completed_at AND NOT retention.memory_found_again(m.id)
        ORDER BY m.completed_at, m.id LIMIT 1
    ) me ON true;

COMMENT ON TABLE retention.memory_listings IS 'Sessions a list (a verification''s or a run''s) showed with is_added_to_memory false (not_added) or without a readable answer (unstated), the first list each.';
COMMENT ON VIEW retention.deleted_in_memory IS 'Each deleted row whose session a list (a verification''s, a run''s or discover''s) showed as added to long-term memory, with its end user where known and the first erasure of that memory since.';

-- (end of part B)

-- ---------------------------------------------------------------------------------------------
-- Part C: memory erasures and memory deletions as leaves of the log.
-- ---------------------------------------------------------------------------------------------

-- 016 recorded each memory erasure (retention.memory_erasures) and each memory deleted under
-- memory_max_age (retention.memory_deletions), append-only, but outside the log: a row edited
-- with the triggers off showed nowhere. Each such row is now a leaf of the same Merkle log as
-- the claims, queued when it is written (and those written before this migration, queued now),
-- sealed by retention.seal() with the claims and covered by the runs' signed checkpoints;
-- `retention audit verify` recomputes each leaf from its row. The leaf's bytes are netstrings
-- as in claim_content ("-," for NULL):
--   memory_erasure_content: "retention.memory_erasure/v1", id, run_id, then the request's terms
--     (id, end_user_id, character_id, end_user_record, requested_by, requested_at, due_at; the
--     reason is left out, as in a claim's leaf, so it stays redactable), then the erasure's
--     character_id (NULL: the end user's record), status, attempts, http_status, remaining,
--     listed_before, error, started_at, completed_at.
--   memory_deletion_content: "retention.memory_deletion/v1", id, run_id, character_id,
--     end_user_id, memory_id, updated_at, policy_id, memory_max_age months, days, microseconds,
--     threshold, status, attempts, http_status, error, completed_at.
-- Times are microseconds since 1970 (retention.seal_time). audit.MemoryErasureContent and
-- audit.MemoryDeletionContent compute the same bytes in Go.

ALTER TABLE retention.unsealed DROP CONSTRAINT unsealed_pkey;
ALTER TABLE retention.unsealed
    ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY,
    ADD CONSTRAINT unsealed_pkey PRIMARY KEY (seq),
    ALTER COLUMN claim_id DROP NOT NULL,
    ADD COLUMN memory_erasure_id bigint NULL REFERENCES retention.memory_erasures (id),
    ADD COLUMN memory_deletion_id bigint NULL REFERENCES retention.memory_deletions (id),
    ADD CONSTRAINT unsealed_claim_id_key UNIQUE (claim_id),
    ADD CONSTRAINT unsealed_memory_erasure_id_key UNIQUE (memory_erasure_id),
    ADD CONSTRAINT unsealed_memory_deletion_id_key UNIQUE (memory_deletion_id),
    ADD CONSTRAINT unsealed_one_record CHECK (num_nonnulls(claim_id, memory_erasure_id, memory_deletion_id) = 1);

ALTER TABLE retention.log_leaves
    ALTER COLUMN claim_id DROP NOT NULL,
    ADD COLUMN memory_erasure_id bigint NULL REFERENCES retention.memory_erasures (id),
    ADD COLUMN memory_deletion_id bigint NULL REFERENCES retention.memory_deletions (id),
    ADD CONSTRAINT log_leaves_memory_erasure_id_key UNIQUE (memory_erasure_id),
    ADD CONSTRAINT log_leaves_memory_deletion_id_key UNIQUE (memory_deletion_id),
    ADD CONSTRAINT log_leaves_one_record CHECK (num_nonnulls(claim_id, memory_erasure_id, memory_deletion_id) = 1);

CREATE FUNCTION retention.memory_erasure_content(p_id bigint) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to(
               retention.seal_field('retention.memory_erasure/v1')
            || retention.seal_field(m.id::text)
            || retention.seal_field(m.run_id::text)
            || retention.seal_field(q.id::text)
            || retention.seal_field(q.end_user_id)
            || retention.seal_field(q.character_id)
            || retention.seal_field(q.end_user_record::text)
            || retention.seal_field(q.requested_by)
            || retention.seal_field(retention.seal_time(q.requested_at))
            || retention.seal_field(retention.seal_time(q.due_at))
            || retention.seal_field(m.character_id)
            || retention.seal_field(m.status)
            || retention.seal_field(m.attempts::text)
            || retention.seal_field(m.http_status::text)
            || retention.seal_field(m.remaining::text)
            || retention.seal_field(m.listed_before::text)
            || retention.seal_field(m.error)
            || retention.seal_field(retention.seal_time(m.started_at))
            || retention.seal_field(retention.seal_time(m.completed_at)), 'UTF8')
    FROM retention.memory_erasures m
    JOIN retention.end_user_requests q ON q.id = m.request_id
    WHERE m.id = p_id
$$;

CREATE FUNCTION retention.memory_deletion_content(p_id bigint) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to(
               retention.seal_field('retention.memory_deletion/v1')
            || retention.seal_field(d.id::text)
            || retention.seal_field(d.run_id::text)
            || retention.seal_field(d.character_id)
            || retention.seal_field(d.end_user_id)
            || retention.seal_field(d.memory_id)
            || retention.seal_field(retention.seal_time(d.updated_at))
            || retention.seal_field(d.policy_id::text)
            || retention.seal_field((extract(year FROM d.memory_max_age) * 12 + extract(month FROM d.memory_max_age))::bigint::text)
            || retention.seal_field(extract(day FROM d.memory_max_age)::bigint::text)
            || retention.seal_field((extract(hour FROM d.memory_max_age) * 3600000000
                                     + extract(minute FROM d.memory_max_age) * 60000000
                                     + extract(microseconds FROM d.memory_max_age))::bigint::text)
            || retention.seal_field(retention.seal_time(d.threshold))
            || retention.seal_field(d.status)
            || retention.seal_field(d.attempts::text)
            || retention.seal_field(d.http_status::text)
            || retention.seal_field(d.error)
            || retention.seal_field(retention.seal_time(d.completed_at)), 'UTF8')
    FROM retention.memory_deletions d
    WHERE d.id = p_id
$$;

-- queue_memory_leaf queues a memory erasure or deletion for the log as it is written, with its
-- leaf's record hash, as record does for a claim: only when record_memory_erasure or
-- record_memory_deletion writes it (they set retention.recording for their own duration). A
-- row written by plain SQL is not queued, so retention audit verify reports it
-- (unsealed_memory), as it does outcomes written outside record.
CREATE FUNCTION retention.queue_memory_leaf() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('retention.recording', true), '') <> 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'memory_erasures' THEN
        INSERT INTO retention.unsealed (memory_erasure_id, leaf)
        VALUES (NEW.id, sha256('\x00'::bytea || retention.memory_erasure_content(NEW.id)));
    ELSE
        INSERT INTO retention.unsealed (memory_deletion_id, leaf)
        VALUES (NEW.id, sha256('\x00'::bytea || retention.memory_deletion_content(NEW.id)));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER memory_erasures_queued AFTER INSERT ON retention.memory_erasures
    FOR EACH ROW EXECUTE FUNCTION retention.queue_memory_leaf();
CREATE TRIGGER memory_deletions_queued AFTER INSERT ON retention.memory_deletions
    FOR EACH ROW EXECUTE FUNCTION retention.queue_memory_leaf();
ALTER FUNCTION retention.record_memory_erasure(bigint, text, bigint, text, text, integer, integer, bigint, text, timestamptz, bigint)
    SET retention.recording = 'on';
ALTER FUNCTION retention.record_memory_deletion(bigint, text, text, text, text, timestamptz, text, integer, integer, text)
    SET retention.recording = 'on';

INSERT INTO retention.unsealed (memory_erasure_id, leaf)
SELECT id, sha256('\x00'::bytea || retention.memory_erasure_content(id)) FROM retention.memory_erasures ORDER BY id;
INSERT INTO retention.unsealed (memory_deletion_id, leaf)
SELECT id, sha256('\x00'::bytea || retention.memory_deletion_content(id)) FROM retention.memory_deletions ORDER BY id;

-- seal, as in 004, takes every queued record in the order it was queued (unsealed.seq): a
-- claim, a memory erasure or a memory deletion.
CREATE OR REPLACE FUNCTION retention.seal(OUT size bigint, OUT root bytea) RETURNS record
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '15s'
SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n     bigint;
    leaf  bytea;
    h     bytea;
    base  bigint;
    lvl   integer;
    q     record;
    added boolean := false;
BEGIN
    SELECT l.size INTO n FROM retention.log_head l WHERE one FOR UPDATE;
    FOR q IN SELECT u.seq, u.claim_id, u.memory_erasure_id, u.memory_deletion_id, u.leaf FROM retention.unsealed u
             ORDER BY u.seq LIMIT 256 LOOP
        leaf := q.leaf;
        base := retention.tlog_index(0, n);
        INSERT INTO retention.log_hashes (id, hash) VALUES (base, leaf);
        h := leaf;
        lvl := 0;
        WHILE ((n + 1) >> lvl) & 1 = 0 LOOP
            h := sha256('\x01'::bytea
                        || (SELECT x.hash FROM retention.log_hashes x WHERE x.id = retention.tlog_index(lvl, (n >> lvl) - 1))
                        || h);
            INSERT INTO retention.log_hashes (id, hash) VALUES (base + lvl + 1, h);
            lvl := lvl + 1;
        END LOOP;
        INSERT INTO retention.log_leaves (idx, claim_id, memory_erasure_id, memory_deletion_id, hash)
        VALUES (n, q.claim_id, q.memory_erasure_id, q.memory_deletion_id, leaf);
        DELETE FROM retention.unsealed WHERE seq = q.seq;
        n := n + 1;
        added := true;
        -- A bounded transaction whatever the load: what is left waits for the next call.
        EXIT WHEN clock_timestamp() - statement_timestamp() > interval '200 milliseconds';
    END LOOP;
    IF added THEN
        root := retention.tlog_root(n);
        UPDATE retention.log_head SET size = n, root = seal.root WHERE one;
        INSERT INTO retention.log_roots (size, root) VALUES (n, seal.root);
    ELSE
        SELECT l.root INTO root FROM retention.log_head l WHERE one;
    END IF;
    size := n;
END
$$;

COMMENT ON TABLE retention.unsealed IS 'Records (claims, memory erasures, memory deletions) written and not yet in the log, with their leaf''s record hash, in the order they were queued. seal() empties it.';
COMMENT ON TABLE retention.log_leaves IS 'The Merkle log: one leaf per recorded claim, memory erasure or memory deletion (exactly one of the three ids), with its record hash.';
COMMENT ON FUNCTION retention.memory_erasure_content(bigint) IS 'The bytes of a memory erasure''s leaf in the log (audit.MemoryErasureContent).';
COMMENT ON FUNCTION retention.memory_deletion_content(bigint) IS 'The bytes of a memory deletion''s leaf in the log (audit.MemoryDeletionContent).';

-- (end of part C)
