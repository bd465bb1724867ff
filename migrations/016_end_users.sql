-- End users: who talked to a character, and erasing everything of one end user, their long-term
-- memory included (issue 18, parts 2 and 3).
--
-- A source may carry an end_user_id column: the sync copies it into retention.sessions (a
-- source without it leaves the column NULL), and retention.end_users keeps every end user and
-- character seen together, after the sessions are deleted too: Convai keeps long-term memory per
-- end user and character, and a session's deletion is not known to remove it.
--
-- An end user's erasure request (retention.end_user_requests) deletes every session of the end
-- user (with every character, or one) and then the end user's long-term memory with each of
-- those characters. Its sessions are deleted through one erasure request per character
-- (retention.erasure_requests with end_user_request_id set: the request's children), claimed,
-- sent, recorded and sealed like any erasure request's. Each memory erasure is a row of
-- retention.memory_erasures: recorded, append-only (a leaf of the log since 017).
-- docs/COMPLIANCE.md ("Erasing an end user") says what each row proves and what it cannot.

-- The end user of a session, when the source names one.
ALTER TABLE retention.sessions ADD COLUMN end_user_id text NULL;
CREATE INDEX sessions_by_end_user ON retention.sessions (end_user_id, character_id) WHERE end_user_id IS NOT NULL;

-- Each end user and character seen together in the set, since when. Never removed: it outlives
-- the sessions, as the memory may.
CREATE TABLE retention.end_users (
    end_user_id   text NOT NULL,
    character_id  text NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (end_user_id, character_id)
);
CREATE INDEX end_users_by_character ON retention.end_users (character_id);

-- end_users_seen adds the pairs of the rows a statement inserted into retention.sessions: an app
-- that writes the set itself is known as well as a synced source (whose merge also adds the pairs
-- of the sessions it updates or finds deleted already). An update of the set adds nothing here:
-- a sync's may touch every row, and the set itself still says who the end user is.
CREATE FUNCTION retention.end_users_seen() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    INSERT INTO retention.end_users (end_user_id, character_id)
    SELECT DISTINCT n.end_user_id, n.character_id FROM new_rows n
     WHERE n.end_user_id IS NOT NULL AND retention.well_formed_id(n.end_user_id)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER sessions_end_users_inserted AFTER INSERT ON retention.sessions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION retention.end_users_seen();

-- sync_merge, as in 010, plus: the staging table has a fifth column, end_user_id text (NULL when
-- the source has none); a session's end user is the greatest well-formed one of its rows; a new
-- session gets it, a session of the set gets it when the source names one (a source that names
-- none never clears it); every end user and character read, deleted sessions' included, go into
-- retention.end_users. And "deleted already" is asked as an anti-join in the insert of the new
-- sessions, not as a probe per session read in the temporary table's target list, where the
-- planner cannot hash it: after a first run deleted a view's sessions, every sync probed the
-- deleted outcomes once for each session it read (make bench, scenarios w and x).
CREATE OR REPLACE FUNCTION retention.sync_merge(p_source text, p_full boolean, p_changed_column text, p_since timestamptz,
                                     p_high_water timestamptz, p_started timestamptz)
RETURNS retention.syncs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET work_mem = '64MB'
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    r       retention.syncs;
    n       bigint;
    refuted boolean;
    v1      boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(1380275271, 1); -- "RETG" 1: one merge at a time
    IF btrim(coalesce(p_source, '')) = '' OR length(p_source) > 200 THEN
        RAISE EXCEPTION 'sync_merge: a source name is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT count(*), count(*) FILTER (WHERE st.bad_time OR NOT retention.well_formed_id(st.character_id)
                                            OR NOT retention.well_formed_id(st.session_id))
      INTO r.rows_read, r.malformed
      FROM pg_temp.retention_sync_staging st;

    -- One pass: each session read, with where the set stands on it (in_set and set_at). Whether
    -- a session not in the set is deleted already is asked by the insert below, as an anti-join.
    CREATE TEMP TABLE retention_sync_sessions ON COMMIT DROP AS
        SELECT g.character_id, g.session_id, g.last_active_at, g.undated, g.end_user_id,
               s.session_id IS NOT NULL AS in_set, s.last_active_at AS set_at
        FROM (SELECT st.character_id, st.session_id, max(st.last_active_at) AS last_active_at,
                     bool_or(st.last_active_at IS NULL) AS undated,
                     max(st.end_user_id) FILTER (WHERE st.end_user_id IS NOT NULL AND retention.well_formed_id(st.end_user_id)) AS end_user_id
              FROM pg_temp.retention_sync_staging st
              WHERE retention.well_formed_id(st.character_id) AND retention.well_formed_id(st.session_id)
              GROUP BY 1, 2) g
        LEFT JOIN retention.sessions s ON s.character_id = g.character_id AND s.session_id = g.session_id;
    ANALYZE pg_temp.retention_sync_sessions;

    SELECT count(*), count(*) FILTER (WHERE g.undated)
      INTO r.sessions, r.undated
      FROM pg_temp.retention_sync_sessions g;
    refuted := EXISTS (SELECT 1 FROM retention.verifications v WHERE v.result = 'present');
    v1 := EXISTS (SELECT 1 FROM retention.deletions_v1 d WHERE d.status = 'deleted');

    -- An undated session stays in the set (an erasure request still finds it, and no sync can
    -- make a session leave the set) with the last activity 'infinity': no policy ever selects it.
    UPDATE retention.sessions s
       SET last_active_at = CASE WHEN g.undated THEN 'infinity' ELSE g.last_active_at END
      FROM pg_temp.retention_sync_sessions g
     WHERE g.in_set AND s.character_id = g.character_id AND s.session_id = g.session_id
       AND CASE WHEN g.undated THEN g.set_at <> 'infinity'
                ELSE g.last_active_at > g.set_at OR g.set_at = 'infinity' END;
    GET DIAGNOSTICS n = ROW_COUNT;
    r.changed := n;
    -- retention.is_deleted written out, in the WHERE clause where the planner can hash it: an
    -- anti-join of the sessions read against the deleted outcomes. The probes of refutations and
    -- v1 deletions are planned only where such rows exist.
    INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id)
    SELECT g.character_id, g.session_id, CASE WHEN g.undated THEN 'infinity' ELSE g.last_active_at END, g.end_user_id
      FROM pg_temp.retention_sync_sessions g
     WHERE NOT g.in_set
       AND NOT EXISTS (SELECT 1 FROM retention.outcomes d
                       WHERE d.character_id = g.character_id AND d.session_id = g.session_id AND d.status = 'deleted'
                         AND NOT (refuted AND EXISTS (SELECT 1 FROM retention.verifications v
                                                      WHERE v.deletion_id = d.claim_id * 16384 + d.ord AND v.result = 'present')))
       AND NOT (v1 AND EXISTS (SELECT 1 FROM retention.deletions_v1 d
                               WHERE d.character_id = g.character_id AND d.session_id = g.session_id AND d.status = 'deleted'
                                 AND NOT EXISTS (SELECT 1 FROM retention.verifications v
                                                 WHERE v.deletion_id = d.id AND v.result = 'present')));
    GET DIAGNOSTICS n = ROW_COUNT;
    r.added := n;
    -- A session read and not in the set was added, or is deleted already.
    r.already_deleted := (SELECT count(*) FROM pg_temp.retention_sync_sessions g WHERE NOT g.in_set) - r.added;
    -- The end user: a source that names one sets it; one that names none (no such column, or
    -- NULL) leaves what the set knows. Not counted as a change of the session.
    UPDATE retention.sessions s
       SET end_user_id = g.end_user_id
      FROM pg_temp.retention_sync_sessions g
     WHERE g.in_set AND g.end_user_id IS NOT NULL AND s.character_id = g.character_id AND s.session_id = g.session_id
       AND s.end_user_id IS DISTINCT FROM g.end_user_id;
    -- Who talked to whom stays known after the sessions are deleted (already deleted ones too).
    INSERT INTO retention.end_users (end_user_id, character_id)
    SELECT DISTINCT g.end_user_id, g.character_id FROM pg_temp.retention_sync_sessions g
     WHERE g.end_user_id IS NOT NULL
    ON CONFLICT DO NOTHING;
    r.unchanged := (SELECT count(*) FROM pg_temp.retention_sync_sessions g WHERE g.in_set) - r.changed;

    DELETE FROM retention.forgotten_sessions f USING pg_temp.retention_sync_sessions g
     WHERE f.character_id = g.character_id AND f.session_id = g.session_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    r.returned := n;
    r.forgotten := 0;
    IF p_full THEN
        INSERT INTO retention.forgotten_sessions (character_id, session_id)
        SELECT s.character_id, s.session_id FROM retention.sessions s
         WHERE NOT EXISTS (SELECT 1 FROM pg_temp.retention_sync_sessions g
                           WHERE g.character_id = s.character_id AND g.session_id = s.session_id)
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
    r.forgotten := n;
        -- Forgotten sessions deleted since: no longer in the set.
        DELETE FROM retention.forgotten_sessions f
         WHERE NOT EXISTS (SELECT 1 FROM retention.sessions s WHERE s.character_id = f.character_id AND s.session_id = f.session_id);
    END IF;
    DROP TABLE pg_temp.retention_sync_sessions;

    INSERT INTO retention.syncs (source, full_pass, changed_column, since, high_water, started_at, rows_read, sessions,
                                 added, changed, unchanged, already_deleted, undated, malformed, forgotten, returned)
    VALUES (p_source, p_full, p_changed_column, p_since, p_high_water, p_started, r.rows_read, r.sessions,
            r.added, r.changed, r.unchanged, r.already_deleted, r.undated, r.malformed, r.forgotten, r.returned)
    RETURNING * INTO r;
    RETURN r;
END
$$;
REVOKE EXECUTE ON FUNCTION retention.sync_merge(text, boolean, text, timestamptz, timestamptz, timestamptz) FROM PUBLIC;

-- One row per end user's erasure request, never changed or removed. character_id NULL asks for
-- every character the end user talked to; end_user_record asks, once every memory is confirmed
-- gone, that the end user's record at Convai be deleted too. The other columns are as in
-- retention.erasure_requests, and filled by the same trigger.
CREATE TABLE retention.end_user_requests (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    end_user_id     text NOT NULL,
    character_id    text NULL,
    end_user_record boolean NOT NULL DEFAULT false,
    reason          text NOT NULL,
    requested_by    text NOT NULL DEFAULT current_user,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    due_at          timestamptz NOT NULL,
    filed_by        name NOT NULL DEFAULT current_user,
    filed_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT end_user_request_user_well_formed CHECK (retention.well_formed_id(end_user_id)),
    CONSTRAINT end_user_request_character_well_formed CHECK (character_id IS NULL OR retention.well_formed_id(character_id)),
    CONSTRAINT end_user_request_reason_given CHECK (btrim(reason) <> '' AND length(reason) <= 1000),
    CONSTRAINT end_user_request_requester_named CHECK (btrim(requested_by) <> '' AND length(requested_by) <= 200),
    CONSTRAINT end_user_request_due_after_request CHECK (due_at > requested_at)
);
CREATE INDEX end_user_requests_by_end_user ON retention.end_user_requests (end_user_id);
CREATE TRIGGER end_user_request_filed BEFORE INSERT ON retention.end_user_requests
    FOR EACH ROW EXECUTE FUNCTION retention.erasure_request_filed();
CREATE TRIGGER end_user_requests_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.end_user_requests
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- The request's children: one erasure request per character, for the end user's sessions only.
ALTER TABLE retention.erasure_requests ADD COLUMN end_user_request_id bigint NULL REFERENCES retention.end_user_requests (id);
CREATE UNIQUE INDEX erasure_requests_end_user_character ON retention.erasure_requests (end_user_request_id, character_id)
    WHERE end_user_request_id IS NOT NULL;

-- expand_end_user_request files a child for every character the request covers that has none
-- yet: the characters the end user talked to (retention.end_users, and the set's sessions), or
-- the one it names, known or not. It returns how many it filed. A complete request files none.
CREATE FUNCTION retention.expand_end_user_request(p_request bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    req retention.end_user_requests;
    n   integer;
BEGIN
    SELECT * INTO req FROM retention.end_user_requests WHERE id = p_request;
    IF NOT FOUND OR EXISTS (SELECT 1 FROM retention.end_user_completions c WHERE c.request_id = p_request) THEN
        RETURN 0;
    END IF;
    INSERT INTO retention.erasure_requests (character_id, session_id, reason, requested_by, requested_at, due_at,
                                            end_user_request_id)
    SELECT ch.character_id, NULL, req.reason, req.requested_by, req.requested_at, req.due_at, req.id
      FROM (SELECT u.character_id FROM retention.end_users u WHERE u.end_user_id = req.end_user_id
            UNION SELECT s.character_id FROM retention.sessions s WHERE s.end_user_id = req.end_user_id
            UNION SELECT req.character_id WHERE req.character_id IS NOT NULL) ch
     WHERE (req.character_id IS NULL OR ch.character_id = req.character_id)
       AND retention.well_formed_id(ch.character_id)
       AND NOT EXISTS (SELECT 1 FROM retention.erasure_requests e
                       WHERE e.end_user_request_id = req.id AND e.character_id = ch.character_id)
    ORDER BY ch.character_id
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE EXECUTE ON FUNCTION retention.expand_end_user_request(bigint) FROM PUBLIC;

-- A request filed gets its children at once, for the characters known then.
CREATE FUNCTION retention.end_user_request_expand() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    PERFORM retention.expand_end_user_request(NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER end_user_request_expanded AFTER INSERT ON retention.end_user_requests
    FOR EACH ROW EXECUTE FUNCTION retention.end_user_request_expand();

-- expand_end_user_requests files, for a running run, the children of every open request for
-- the characters seen since (a sync may have brought a new one). It returns how many it filed.
CREATE FUNCTION retention.expand_end_user_requests(p_run bigint, p_token text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n integer := 0;
    r bigint;
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    FOR r IN SELECT q.id FROM retention.end_user_requests q
             WHERE NOT EXISTS (SELECT 1 FROM retention.end_user_completions c WHERE c.request_id = q.id)
             ORDER BY q.id LOOP
        n := n + retention.expand_end_user_request(r);
    END LOOP;
    RETURN n;
END
$$;
REVOKE EXECUTE ON FUNCTION retention.expand_end_user_requests(bigint, text) FROM PUBLIC;

-- A child's claim names only the end user's sessions: those the set gives to the end user, or
-- claimed before under the same child (a deletion a verification refuted, sent again).
CREATE FUNCTION retention.end_user_claim_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    eu text;
BEGIN
    IF NEW.erasure_request_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT q.end_user_id INTO eu FROM retention.erasure_requests e
      JOIN retention.end_user_requests q ON q.id = e.end_user_request_id
     WHERE e.id = NEW.erasure_request_id;
    IF eu IS NULL THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(NEW.session_ids) x
               WHERE NOT EXISTS (SELECT 1 FROM retention.sessions s
                                 WHERE s.character_id = NEW.character_id AND s.session_id = x AND s.end_user_id = eu)
                 AND NOT EXISTS (SELECT 1 FROM retention.claims c
                                 WHERE c.erasure_request_id = NEW.erasure_request_id AND x = ANY (c.session_ids))) THEN
        RAISE EXCEPTION 'claim_erasure: erasure request % is for one end user''s sessions only', NEW.erasure_request_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER claims_end_user_only BEFORE INSERT ON retention.claims
    FOR EACH ROW WHEN (NEW.erasure_request_id IS NOT NULL) EXECUTE FUNCTION retention.end_user_claim_check();

-- end_user_holds: the active holds that block an end user's erasure with a character: a hold on
-- the character as a whole, or on one of the end user's sessions of it in the set. Holds win:
-- the character's sessions (those held) and its memory are left alone.
CREATE FUNCTION retention.end_user_holds(p_end_user text, p_character text) RETURNS bigint[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(h.id ORDER BY h.id) FROM retention.holds h
    WHERE h.released_at IS NULL AND h.character_id = p_character
      AND (h.session_id IS NULL
           OR EXISTS (SELECT 1 FROM retention.sessions s
                      WHERE s.character_id = p_character AND s.session_id = h.session_id
                        AND s.end_user_id = p_end_user))
$$;

-- One row per memory erasure a run carried out: for a character, /memory/delete-all then
-- /memory/list until the list is empty (character_id set); for the end user's record,
-- /user/end-users/delete (character_id NULL). status: erased (delete-all accepted and the list
-- then empty; the record's deletion accepted), pending (accepted, the list not yet empty when
-- the run stopped waiting: the next run asks again), failed, unavailable (404: this account or
-- API does not offer long-term memory), forbidden (403: the key may not touch the character).
-- remaining is the last list's count; listed_before what a whole list showed before the
-- delete-all (NULL: none could be read), so that an erased row says the same list saw memories
-- and then none. started_at and completed_at are the server's clock.
CREATE TABLE retention.memory_erasures (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id   bigint NOT NULL REFERENCES retention.end_user_requests (id),
    run_id       bigint NOT NULL REFERENCES retention.runs (id),
    character_id text NULL,
    status       text NOT NULL CHECK (status IN ('erased', 'pending', 'failed', 'unavailable', 'forbidden')),
    attempts     integer NOT NULL CHECK (attempts >= 0),
    http_status  integer NULL,
    remaining    bigint NULL CHECK (remaining >= 0),
    listed_before bigint NULL CHECK (listed_before >= 0),
    error        text NULL CHECK (length(error) <= 1000),
    started_at   timestamptz NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT memory_erasure_character_well_formed CHECK (character_id IS NULL OR retention.well_formed_id(character_id)),
    CONSTRAINT memory_erasure_erased_empty CHECK (status <> 'erased' OR character_id IS NULL OR remaining = 0)
);
CREATE INDEX memory_erasures_by_request ON retention.memory_erasures (request_id, character_id, id);
CREATE TRIGGER memory_erasures_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.memory_erasures
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- A request is complete when every child is complete, every character's last memory erasure
-- says erased and, if asked, the end user's record is erased: the run that finds it so writes
-- this row, through retention.complete_end_user_erasure.
CREATE TABLE retention.end_user_completions (
    request_id   bigint PRIMARY KEY REFERENCES retention.end_user_requests (id),
    run_id       bigint NOT NULL REFERENCES retention.runs (id),
    characters   integer NOT NULL CHECK (characters >= 0),
    sessions     bigint NOT NULL CHECK (sessions >= 0),
    completed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TRIGGER end_user_completions_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.end_user_completions
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- record_memory_erasure records one memory erasure of a running run, at the server's clock (the
-- start is the caller's estimate of it, kept within the run). A character's erasure must be of a
-- child of the open request, or of a completed request whose erasure of that character a re-check
-- refuted with no erasure standing since (retention.end_user_memory's memory_reopened), and an
-- erased one needs no hold on it now;
-- the record's erasure needs every character's memory erased. Returns the row's id.
CREATE FUNCTION retention.record_memory_erasure(p_run bigint, p_token text, p_request bigint, p_character text,
                                                p_status text, p_attempts integer, p_http_status integer,
                                                p_remaining bigint, p_error text, p_started_at timestamptz,
                                                p_listed_before bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    req       retention.end_user_requests;
    id        bigint;
    run_start timestamptz;
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    SELECT * INTO req FROM retention.end_user_requests q WHERE q.id = p_request;
    IF NOT FOUND OR (EXISTS (SELECT 1 FROM retention.end_user_completions c WHERE c.request_id = p_request)
                     AND NOT EXISTS (SELECT 1 FROM retention.end_user_memory e
                                     WHERE e.request_id = p_request AND e.character_id = p_character
                                       AND e.memory_reopened)) THEN
        RAISE EXCEPTION 'record_memory_erasure: end user request % is not open', p_request
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The caller's estimate of the database's clock: refused when far outside the run, kept
    -- within it.
    SELECT r.started_at INTO run_start FROM retention.runs r WHERE r.id = p_run;
    IF p_started_at IS NULL OR p_started_at < run_start - interval '5 minutes'
       OR p_started_at > clock_timestamp() + interval '5 minutes' THEN
        RAISE EXCEPTION 'record_memory_erasure: the start % is not within the run', p_started_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    p_started_at := least(greatest(p_started_at, run_start), clock_timestamp());
    IF p_character IS NOT NULL AND NOT EXISTS (SELECT 1 FROM retention.erasure_requests e
                                               WHERE e.end_user_request_id = p_request AND e.character_id = p_character) THEN
        RAISE EXCEPTION 'record_memory_erasure: end user request % does not cover character %', p_request, p_character
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_status = 'erased' AND p_character IS NOT NULL
       AND retention.end_user_holds(req.end_user_id, p_character) IS NOT NULL THEN
        RAISE EXCEPTION 'record_memory_erasure: a hold protects end user request %''s sessions of %', p_request, p_character
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_status = 'erased' AND p_character IS NULL AND (NOT req.end_user_record OR EXISTS (
           SELECT 1 FROM retention.end_user_memory e
           WHERE e.request_id = p_request AND (e.memory_status IS DISTINCT FROM 'erased' OR e.blocked_by IS NOT NULL))) THEN
        RAISE EXCEPTION 'record_memory_erasure: end user request %''s record may go only when asked and once every memory is erased', p_request
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retention.memory_erasures (request_id, run_id, character_id, status, attempts, http_status, remaining,
                                           listed_before, error, started_at)
    VALUES (p_request, p_run, p_character, p_status, p_attempts, p_http_status, p_remaining, p_listed_before,
            left(p_error, 1000), p_started_at)
    RETURNING memory_erasures.id INTO id;
    RETURN id;
END
$$;
REVOKE EXECUTE ON FUNCTION retention.record_memory_erasure(bigint, text, bigint, text, text, integer, integer, bigint, text, timestamptz, bigint) FROM PUBLIC;

-- memory_found_again: whether the last re-check of memory erasure p_erasure that could check (a
-- verification's whole list of the end user's memories with the character, retention.memory_rechecks,
-- defined at the end of this file) found memories: the erasure is refuted, and counts as not done
-- until a run erases again. A re-check that could not check (not_checked) neither confirms nor
-- refutes, so it does not undo an earlier found. Read when called, so it may come before the table.
CREATE FUNCTION retention.memory_found_again(p_erasure bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN coalesce((SELECT r.result = 'found' FROM retention.memory_rechecks r
                     WHERE r.memory_erasure_id = p_erasure AND r.result <> 'not_checked'
                     ORDER BY r.id DESC LIMIT 1), false);
END
$$;
REVOKE EXECUTE ON FUNCTION retention.memory_found_again(bigint) FROM PUBLIC;

-- end_user_memory: each child of each end user's request (one character) with where it stands:
-- the end user's sessions of the character still to delete (in the set, or claimed under it and
-- not deleted), the holds that block it, and its last memory erasure. memory_status is that
-- erasure's status, except found_again: the erasure said erased and the last re-check of it
-- found memories (retention.memory_found_again), so the memory is not erased and the next run
-- erases it again, a completed request's too. memory_reopened: an erasure of the character was
-- refuted and no erasure stands since (a later one that says erased and was not found again): a
-- completed request's character stays to erase, through a pending or failed attempt too, until
-- one stands. Holds block an open request's character and a reopened one.
CREATE VIEW retention.end_user_memory AS
    SELECT q.id AS request_id, q.end_user_id, e.character_id, e.id AS erasure_request_id,
           ec.completed_at AS sessions_completed_at,
           (SELECT count(*) FROM retention.sessions s
            WHERE s.character_id = e.character_id AND s.end_user_id = q.end_user_id
              AND NOT retention.is_deleted(s.character_id, s.session_id))
         + (SELECT count(DISTINCT x.session_id) FROM retention.claims cl
            CROSS JOIN LATERAL unnest(cl.session_ids) AS x(session_id)
            WHERE cl.erasure_request_id = e.id
              AND NOT EXISTS (SELECT 1 FROM retention.sessions s
                              WHERE s.character_id = e.character_id AND s.session_id = x.session_id
                                AND s.end_user_id = q.end_user_id)
              AND NOT retention.is_deleted(e.character_id, x.session_id)) AS sessions_left,
           (SELECT count(*) FROM retention.claims cl JOIN retention.outcomes o ON o.claim_id = cl.id
            WHERE cl.erasure_request_id = e.id AND o.status = 'deleted') AS sessions_deleted,
           CASE WHEN uc.request_id IS NULL OR ro.reopened THEN retention.end_user_holds(q.end_user_id, e.character_id) END AS blocked_by,
           CASE WHEN m.status = 'erased' AND retention.memory_found_again(m.id) THEN 'found_again' ELSE m.status END
               AS memory_status, m.attempts AS memory_attempts, m.http_status AS memory_http_status,
           m.remaining AS memory_remaining, m.error AS memory_error, m.completed_at AS memory_checked_at,
           m.run_id AS memory_run_id, m.listed_before AS memory_listed_before,
           (SELECT count(*) FROM retention.memory_erasures x
            WHERE x.request_id = q.id AND x.character_id = e.character_id) AS memory_erasures,
           m.id AS memory_erasure_id, ro.reopened AS memory_reopened
    FROM retention.end_user_requests q
    JOIN retention.erasure_requests e ON e.end_user_request_id = q.id
    LEFT JOIN retention.erasure_completions ec ON ec.request_id = e.id
    LEFT JOIN retention.end_user_completions uc ON uc.request_id = q.id
    LEFT JOIN LATERAL (
        SELECT x.* FROM retention.memory_erasures x
        WHERE x.request_id = q.id AND x.character_id = e.character_id
        ORDER BY x.id DESC LIMIT 1
    ) m ON true
    CROSS JOIN LATERAL (
        SELECT EXISTS (
            SELECT 1 FROM retention.memory_erasures x
            WHERE x.request_id = q.id AND x.character_id = e.character_id AND x.status = 'erased'
              AND retention.memory_found_again(x.id)
              AND NOT EXISTS (SELECT 1 FROM retention.memory_erasures y
                              WHERE y.request_id = q.id AND y.character_id = e.character_id AND y.id > x.id
                                AND y.status = 'erased' AND NOT retention.memory_found_again(y.id))) AS reopened
    ) ro;

-- complete_end_user_erasure completes what a running run finds done: each child (character)
-- with no hold and none of the end user's sessions left gets its erasure_completions row; the
-- request gets its end_user_completions row when every child is complete, no hold blocks it,
-- every character's last memory erasure says erased and, if asked, the end user's record is
-- erased. It returns the request's state: completed, blocked (a hold matches; see
-- end_user_holds) or open.
CREATE FUNCTION retention.complete_end_user_erasure(p_run bigint, p_token text, p_request bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    req      retention.end_user_requests;
    ch       record;
    n        bigint;
    blocked  boolean := false;
    open_    boolean := false;
    chars    integer := 0;
    sessions bigint := 0;
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    SELECT * INTO req FROM retention.end_user_requests q WHERE q.id = p_request;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'complete_end_user_erasure: there is no end user request %', p_request
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM retention.end_user_completions c WHERE c.request_id = p_request) THEN
        RETURN 'completed';
    END IF;
    FOR ch IN SELECT * FROM retention.end_user_memory m WHERE m.request_id = p_request ORDER BY m.character_id LOOP
        chars := chars + 1;
        IF ch.blocked_by IS NOT NULL THEN
            blocked := true;
            CONTINUE;
        END IF;
        IF ch.memory_status IS DISTINCT FROM 'erased' THEN
            open_ := true;
        END IF;
        IF ch.sessions_left > 0 THEN
            open_ := true;
            CONTINUE;
        END IF;
        SELECT count(DISTINCT s.session_id) INTO n
          FROM retention.claims c CROSS JOIN LATERAL unnest(c.session_ids) AS s(session_id)
         WHERE c.erasure_request_id = ch.erasure_request_id;
        sessions := sessions + n;
        INSERT INTO retention.erasure_completions (request_id, run_id, sessions) VALUES (ch.erasure_request_id, p_run, n)
        ON CONFLICT (request_id) DO NOTHING;
    END LOOP;
    IF blocked THEN
        RETURN 'blocked';
    END IF;
    IF open_ OR (req.end_user_record AND NOT coalesce((
           SELECT x.status = 'erased' FROM retention.memory_erasures x
           WHERE x.request_id = p_request AND x.character_id IS NULL ORDER BY x.id DESC LIMIT 1), false)) THEN
        RETURN 'open';
    END IF;
    INSERT INTO retention.end_user_completions (request_id, run_id, characters, sessions)
    VALUES (p_request, p_run, chars, sessions) ON CONFLICT (request_id) DO NOTHING;
    RETURN 'completed';
END
$$;
REVOKE EXECUTE ON FUNCTION retention.complete_end_user_erasure(bigint, text, bigint) FROM PUBLIC;

-- end_user_erasure_status: each end user's request with its state. completed: a run found
-- every session deleted and every memory erased (and the record, if asked). blocked: open, and
-- a hold matches one of its characters. overdue: open past due_at.
CREATE VIEW retention.end_user_erasure_status AS
    SELECT q.id, q.end_user_id, q.character_id, q.end_user_record, q.reason, q.requested_by, q.requested_at, q.due_at,
           q.filed_by, q.filed_at,
           c.completed_at, c.run_id AS completed_by_run,
           coalesce(m.characters, 0) AS characters,
           coalesce(m.memory_erased, 0) AS characters_memory_erased,
           coalesce(m.sessions_deleted, 0) AS sessions_deleted,
           coalesce(m.sessions_left, 0) AS sessions_left,
           m.blocked_by,
           r.status AS record_status,
           CASE WHEN c.request_id IS NOT NULL THEN 'completed'
                WHEN m.blocked_by IS NOT NULL THEN 'blocked'
                WHEN now() > q.due_at THEN 'overdue'
                ELSE 'open' END AS state,
           c.request_id IS NULL AND now() > q.due_at AS overdue,
           extract(epoch FROM c.completed_at - q.requested_at)::double precision AS lag_seconds
    FROM retention.end_user_requests q
    LEFT JOIN retention.end_user_completions c ON c.request_id = q.id
    LEFT JOIN LATERAL (
        SELECT count(*) AS characters,
               count(*) FILTER (WHERE em.memory_status = 'erased') AS memory_erased,
               sum(em.sessions_deleted) AS sessions_deleted, sum(em.sessions_left) AS sessions_left,
               (SELECT array_agg(DISTINCT h ORDER BY h) FROM retention.end_user_memory e2, unnest(e2.blocked_by) h
                WHERE e2.request_id = q.id) AS blocked_by
        FROM retention.end_user_memory em WHERE em.request_id = q.id
    ) m ON true
    LEFT JOIN LATERAL (
        SELECT x.status FROM retention.memory_erasures x
        WHERE x.request_id = q.id AND x.character_id IS NULL ORDER BY x.id DESC LIMIT 1
    ) r ON true;

-- erasure_status, as in 008, plus end_user_request_id; a child of an end user's request is
-- blocked by the holds of retention.end_user_holds, not by every hold of its character.
CREATE OR REPLACE VIEW retention.erasure_status AS
    SELECT e.id, e.character_id, e.session_id, e.reason, e.requested_by, e.requested_at, e.due_at,
           e.filed_by, e.filed_at,
           c.completed_at, c.run_id AS completed_by_run, c.sessions AS sessions_completed,
           h.holds AS blocked_by,
           CASE WHEN c.request_id IS NOT NULL THEN 'completed'
                WHEN h.holds IS NOT NULL THEN 'blocked'
                WHEN now() > e.due_at THEN 'overdue'
                ELSE 'open' END AS state,
           c.request_id IS NULL AND now() > e.due_at AS overdue,
           (SELECT count(*) FROM retention.claims cl JOIN retention.outcomes o ON o.claim_id = cl.id
            WHERE cl.erasure_request_id = e.id AND o.status = 'deleted') AS sessions_deleted,
           (SELECT max(cl.requested_at) FROM retention.claims cl WHERE cl.erasure_request_id = e.id) AS last_sent_at,
           extract(epoch FROM c.completed_at - e.requested_at)::double precision AS lag_seconds,
           e.end_user_request_id
    FROM retention.erasure_requests e
    LEFT JOIN retention.erasure_completions c ON c.request_id = e.id
    LEFT JOIN retention.end_user_requests q ON q.id = e.end_user_request_id
    LEFT JOIN LATERAL (
        SELECT CASE WHEN q.id IS NOT NULL THEN retention.end_user_holds(q.end_user_id, e.character_id)
                    ELSE (SELECT array_agg(hd.id ORDER BY hd.id) FROM retention.holds hd
                          WHERE hd.released_at IS NULL AND hd.character_id = e.character_id
                            AND (hd.session_id IS NULL OR e.session_id IS NULL OR hd.session_id = e.session_id))
               END AS holds
        WHERE c.request_id IS NULL
    ) h ON true;

-- Memory retention by age (issue 18, part 4): a policy may set memory_max_age. A run lists the
-- memories of each end user of a character under such a policy (retention.end_users) and deletes,
-- one by one, those last updated at or before the threshold, unless a hold blocks that end user
-- with the character (retention.end_user_holds). NULL: the policy keeps memory as long as Convai
-- does. It is set with SQL; a policy's row removed takes it along.
ALTER TABLE retention.policies ADD COLUMN memory_max_age interval NULL
    CONSTRAINT policies_memory_max_age_check
    CHECK (memory_max_age IS NULL OR (memory_max_age >= interval '1 hour' AND memory_max_age <= interval '200 years'
                                      AND extract(day FROM memory_max_age) >= 0
                                      AND (extract(year FROM memory_max_age) * 12 + extract(month FROM memory_max_age)) >= 0));

-- memory_policies: for each character an end user was seen with, whose policy in force
-- (retention.policy_for: its own enabled policy, or the enabled default) sets memory_max_age,
-- that policy and the memories' threshold at the cut-off (retention.expiry_threshold). It runs
-- as the owner: the job's role may not call policy_for itself.
CREATE FUNCTION retention.memory_policies(p_cutoff timestamptz)
RETURNS TABLE (character_id text, policy_id bigint, memory_max_age interval, threshold timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.character_id, p.id, p.memory_max_age, retention.expiry_threshold(p.memory_max_age, p_cutoff)
    FROM (SELECT DISTINCT u.character_id FROM retention.end_users u) c
    CROSS JOIN LATERAL retention.policy_for(c.character_id) pf
    JOIN retention.policies p ON p.id = pf.policy_id
    WHERE pf.decision IN ('own_policy', 'default_policy') AND p.memory_max_age IS NOT NULL
      AND EXISTS (SELECT 1 FROM retention.policies x WHERE x.memory_max_age IS NOT NULL)
$$;

REVOKE EXECUTE ON FUNCTION retention.memory_policies(timestamptz) FROM PUBLIC;

-- One row per memory a run tried to delete under memory_max_age. status: deleted (confirmed),
-- gone (the API says there is no such memory), failed, unavailable (404), forbidden (403).
-- updated_at is the memory's, as the list gave it; threshold the policy's at the run's cut-off.
CREATE TABLE retention.memory_deletions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         bigint NOT NULL REFERENCES retention.runs (id),
    character_id   text NOT NULL,
    end_user_id    text NOT NULL,
    memory_id      text NOT NULL,
    updated_at     timestamptz NOT NULL,
    policy_id      bigint NOT NULL,
    memory_max_age interval NOT NULL,
    threshold      timestamptz NOT NULL,
    status         text NOT NULL CHECK (status IN ('deleted', 'gone', 'failed', 'unavailable', 'forbidden')),
    attempts       integer NOT NULL CHECK (attempts >= 0),
    http_status    integer NULL,
    error          text NULL CHECK (length(error) <= 1000),
    completed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT memory_deletion_ids_well_formed CHECK (retention.well_formed_id(character_id)
        AND retention.well_formed_id(end_user_id) AND retention.well_formed_id(memory_id)),
    CONSTRAINT memory_deletion_was_due CHECK (updated_at <= threshold)
);
CREATE INDEX memory_deletions_by_end_user ON retention.memory_deletions (end_user_id, character_id);
CREATE INDEX memory_deletions_by_run ON retention.memory_deletions (run_id);
CREATE TRIGGER memory_deletions_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.memory_deletions
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- record_memory_deletion records one memory deletion of a running run. The policy and the
-- threshold are the database's (retention.memory_policies at the run's cut-off), not the
-- caller's: a memory updated after the threshold, or of an end user a hold blocks with the
-- character, is refused. Returns the row's id.
CREATE FUNCTION retention.record_memory_deletion(p_run bigint, p_token text, p_character text, p_end_user text,
                                                 p_memory text, p_updated_at timestamptz, p_status text,
                                                 p_attempts integer, p_http_status integer, p_error text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    mp record;
    id bigint;
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    SELECT m.* INTO mp FROM retention.memory_policies((SELECT r.cutoff FROM retention.runs r WHERE r.id = p_run)) m
     WHERE m.character_id = p_character;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'record_memory_deletion: no policy in force for % sets memory_max_age', p_character
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retention.end_users u WHERE u.end_user_id = p_end_user AND u.character_id = p_character) THEN
        RAISE EXCEPTION 'record_memory_deletion: end user % was never seen with %', p_end_user, p_character
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_updated_at IS NULL OR p_updated_at > mp.threshold THEN
        RAISE EXCEPTION 'record_memory_deletion: memory % was updated at %, after the threshold %', p_memory, p_updated_at, mp.threshold
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retention.end_user_holds(p_end_user, p_character) IS NOT NULL THEN
        RAISE EXCEPTION 'record_memory_deletion: a hold protects end user %''s sessions of %', p_end_user, p_character
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retention.memory_deletions (run_id, character_id, end_user_id, memory_id, updated_at, policy_id,
                                            memory_max_age, threshold, status, attempts, http_status, error)
    VALUES (p_run, p_character, p_end_user, p_memory, p_updated_at, mp.policy_id, mp.memory_max_age, mp.threshold,
            p_status, p_attempts, p_http_status, left(p_error, 1000))
    RETURNING memory_deletions.id INTO id;
    RETURN id;
END
$$;
REVOKE EXECUTE ON FUNCTION retention.record_memory_deletion(bigint, text, text, text, text, timestamptz, text, integer, integer, text) FROM PUBLIC;

COMMENT ON TABLE retention.memory_deletions IS 'Each memory a run tried to delete under a policy''s memory_max_age, with its attempts, status and the server''s time.';
COMMENT ON TABLE retention.end_users IS 'Each end user and character seen together in the set, kept after the sessions are deleted.';
COMMENT ON TABLE retention.end_user_requests IS 'Requests that every session and the long-term memory of an end user be erased. Never changed or removed.';
COMMENT ON TABLE retention.memory_erasures IS 'Each memory erasure of an end user request a run carried out, with its attempts, status and the server''s time.';
COMMENT ON TABLE retention.end_user_completions IS 'The run that found an end user request complete, and when.';
COMMENT ON VIEW retention.end_user_erasure_status IS 'Each end user request with its state (open, blocked, overdue, completed), its characters and its memory erasures.';

-- The memory flag as evidence (issue 18, part 1). Convai's session list says of each session
-- is_added_to_memory: whether long-term memory was drawn from it. A verification records every
-- answer its lists give: true in retention.memory_sightings (014; now with the end user the set
-- named then, since a deletion takes the session's row, and its end user, out of the set),
-- false or no readable answer in retention.memory_listings; discover records the answer of each
-- session it adds (retention.discoveries.memory). The flag is Convai's word: docs/COMPLIANCE.md
-- ("Long-term memory") says what it proves and what it cannot.
ALTER TABLE retention.memory_sightings ADD COLUMN end_user_id text NULL;

-- One row per session and answer a verification's list gave other than true: not_added (false)
-- or unstated (no is_added_to_memory, or neither true nor false; never taken as false), the
-- first list that said so. A session may have both, and a sighting too: memory is drawn when a
-- session closes, so a later list may say true of a session an earlier one said false of.
CREATE TABLE retention.memory_listings (
    character_id text NOT NULL,
    session_id   text NOT NULL,
    said         text NOT NULL CHECK (said IN ('not_added', 'unstated')),
    verify_id    bigint NOT NULL REFERENCES retention.verify_runs (id),
    listed_at    timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (character_id, session_id, said)
);
CREATE TRIGGER memory_listings_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.memory_listings
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- What the list said of a session discover added: added, not_added or unstated; NULL for the
-- rows added before 016.
ALTER TABLE retention.discoveries ADD COLUMN memory text NULL
    CONSTRAINT discoveries_memory_check CHECK (memory IN ('added', 'not_added', 'unstated'));

-- record_memory_flags records what the list of p_character read at p_listed_at (between the
-- verify run's start and now) said of each of p_session_ids (1 to 10000 well-formed IDs):
-- p_said[i] is added, not_added or unstated. An added session goes into memory_sightings with
-- the end user the set names for it now (NULL if none), the others into memory_listings; a
-- session and answer recorded before keep their first row. It returns how many rows it added.
CREATE FUNCTION retention.record_memory_flags(p_verify bigint, p_token text, p_character text,
                                              p_listed_at timestamptz, p_session_ids text[], p_said text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n        integer := cardinality(p_session_ids);
    added    integer;
    others   integer;
BEGIN
    PERFORM retention.authorize_verify(p_verify, p_token);
    IF n IS NULL OR n = 0 OR n > 10000 OR cardinality(p_said) IS DISTINCT FROM n THEN
        RAISE EXCEPTION 'record_memory_flags: want 1 to 10000 session IDs and as many answers'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_said) x WHERE x IS NULL OR x NOT IN ('added', 'not_added', 'unstated')) THEN
        RAISE EXCEPTION 'record_memory_flags: an answer is not added, not_added or unstated'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_listed_at IS NULL OR p_listed_at < (SELECT started_at FROM retention.verify_runs WHERE id = p_verify)
       OR p_listed_at > now() THEN
        RAISE EXCEPTION 'record_memory_flags: the list time % is not within the verify run', p_listed_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT retention.well_formed_id(p_character)
       OR EXISTS (SELECT 1 FROM unnest(p_session_ids) x WHERE NOT retention.well_formed_id(x)) THEN
        RAISE EXCEPTION 'record_memory_flags: every ID must be well-formed'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retention.memory_sightings (character_id, session_id, verify_id, listed_at, end_user_id)
    SELECT DISTINCT p_character, u.id, p_verify, p_listed_at,
           (SELECT s.end_user_id FROM retention.sessions s WHERE s.character_id = p_character AND s.session_id = u.id)
      FROM unnest(p_session_ids, p_said) AS u(id, said)
     WHERE u.said = 'added'
    ON CONFLICT (character_id, session_id) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    INSERT INTO retention.memory_listings (character_id, session_id, said, verify_id, listed_at)
    SELECT DISTINCT p_character, u.id, u.said, p_verify, p_listed_at
      FROM unnest(p_session_ids, p_said) AS u(id, said)
     WHERE u.said <> 'added'
    ON CONFLICT (character_id, session_id, said) DO NOTHING;
    GET DIAGNOSTICS others = ROW_COUNT;
    RETURN added + others;
END
$$;
REVOKE EXECUTE ON FUNCTION retention.record_memory_flags(bigint, text, text, timestamptz, text[], text[]) FROM PUBLIC;

-- add_discovered, as in 011, with what the list said of each session's is_added_to_memory
-- (added, not_added or unstated; NULL is unstated), kept in retention.discoveries.memory.
CREATE FUNCTION retention.add_discovered(p_character text, p_ids text[], p_last_active timestamptz[], p_memory text[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n bigint;
BEGIN
    IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_last_active) OR cardinality(p_ids) IS DISTINCT FROM cardinality(p_memory)
       OR cardinality(p_ids) > 10000 THEN
        RAISE EXCEPTION 'add_discovered: want at most 10000 session IDs and as many times and memory answers'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_last_active) t WHERE t IS NULL OR t > now() OR t <= '0001-01-01T00:00:00Z') THEN
        RAISE EXCEPTION 'add_discovered: a last activity is missing, in the future or before the year 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_memory) x WHERE x NOT IN ('added', 'not_added', 'unstated')) THEN
        RAISE EXCEPTION 'add_discovered: a memory answer is not added, not_added or unstated'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH listed AS (
        SELECT DISTINCT ON (u.id) u.id, u.at, coalesce(u.memory, 'unstated') AS memory
          FROM unnest(p_ids, p_last_active, p_memory) AS u(id, at, memory)
         ORDER BY u.id
    ), added AS (
        INSERT INTO retention.sessions (character_id, session_id, last_active_at)
        SELECT p_character, l.id, l.at
          FROM listed l
         WHERE retention.well_formed_id(l.id) AND NOT retention.is_deleted(p_character, l.id)
        ON CONFLICT (character_id, session_id) DO NOTHING
        RETURNING session_id, last_active_at
    ), logged AS (
        INSERT INTO retention.discoveries (character_id, session_id, last_active_at, memory)
        SELECT p_character, a.session_id, a.last_active_at, l.memory
          FROM added a JOIN listed l ON l.id = a.session_id
        RETURNING 1
    )
    SELECT count(*) INTO n FROM logged;
    RETURN n;
END
$$;
REVOKE EXECUTE ON FUNCTION retention.add_discovered(text, text[], timestamptz[], text[]) FROM PUBLIC;

-- deleted_in_memory: each deleted row whose session a list showed as added to long-term memory
-- (a verification's, retention.memory_sightings, or discover's), with the end user where known
-- (the set's when the list was recorded, or the end user whose request the session was deleted
-- under) and the first erasure of that end user's memory of the character completed since the
-- deletion that no re-check refuted (memory_erased_at NULL: none; the memory the session gave
-- may still be there).
CREATE VIEW retention.deleted_in_memory AS
    SELECT x.id AS deletion_id, x.character_id, x.session_id, x.completed_at AS deleted_at, x.erasure_request_id,
           f.listed_at, f.listed_by, f.verify_id,
           coalesce(q.end_user_id, f.end_user_id) AS end_user_id,
           me.id AS memory_erasure_id, me.completed_at AS memory_erased_at
    FROM (SELECT ms.character_id, ms.session_id, ms.listed_at, 'verify' AS listed_by, ms.verify_id, ms.end_user_id
          FROM retention.memory_sightings ms
          UNION ALL
          SELECT d.character_id, d.session_id, min(d.discovered_at), 'discover', NULL::bigint, NULL::text
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

-- erasure_memory_left: each completed erasure request some of whose deleted sessions a list
-- showed as added to long-term memory with no erasure of their end user's memory of the
-- character since: memory left behind by an erasure. A child of an end user's request counts
-- only once that request is complete (until then its memory erasure is still to come).
-- end_user_unknown counts the sessions whose end user is not known: their memory cannot be
-- erased by end user from here.
CREATE VIEW retention.erasure_memory_left AS
    SELECT er.id AS request_id, er.character_id, er.session_id AS request_session_id, er.end_user_request_id,
           ec.completed_at, count(*) AS sessions_in_memory,
           count(*) FILTER (WHERE d.end_user_id IS NULL) AS end_user_unknown,
           array_agg(DISTINCT d.end_user_id ORDER BY d.end_user_id) FILTER (WHERE d.end_user_id IS NOT NULL) AS end_user_ids
    FROM retention.erasure_requests er
    JOIN retention.erasure_completions ec ON ec.request_id = er.id
    JOIN retention.deleted_in_memory d ON d.erasure_request_id = er.id
    WHERE d.memory_erased_at IS NULL
      AND (er.end_user_request_id IS NULL
           OR EXISTS (SELECT 1 FROM retention.end_user_completions uc WHERE uc.request_id = er.end_user_request_id))
    GROUP BY er.id, er.character_id, er.session_id, er.end_user_request_id, ec.completed_at;

COMMENT ON TABLE retention.memory_listings IS 'Sessions a verification''s list showed with is_added_to_memory false (not_added) or without a readable answer (unstated), the first list each.';
COMMENT ON VIEW retention.deleted_in_memory IS 'Each deleted row whose session a list showed as added to long-term memory, with its end user where known and the first erasure of that memory since.';
COMMENT ON VIEW retention.erasure_memory_left IS 'Completed erasure requests with deleted sessions that went into long-term memory and no erasure of that memory since.';

-- Re-checks of erased memories (issue 18, part 5). A verification lists again the memories of
-- each end user with each character whose last memory erasure (of a request) says erased, and
-- records what the list showed against that erasure: gone (a whole list, nothing listed and a
-- total_count of 0), found (memories listed or counted: the erasure is refuted, and
-- retention.end_user_memory shows found_again until a run erases again) or not_checked (no
-- whole list: failure says why, as a class, never the answer's body: unavailable and not_found
-- are 404s, forbidden a 403, failed anything else). listed_at is the database's clock before the
-- list was asked for, recorded_at when the row was written.
CREATE TABLE retention.memory_rechecks (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    verify_id         bigint NOT NULL REFERENCES retention.verify_runs (id),
    memory_erasure_id bigint NOT NULL REFERENCES retention.memory_erasures (id),
    result            text NOT NULL CHECK (result IN ('gone', 'found', 'not_checked')),
    listed            bigint NULL CHECK (listed >= 0),
    total_count       bigint NULL CHECK (total_count >= 0),
    failure           text NULL CHECK (failure IN ('unavailable', 'not_found', 'forbidden', 'failed')),
    http_status       integer NULL CHECK (http_status BETWEEN 100 AND 599),
    attempts          integer NOT NULL CHECK (attempts >= 0),
    listed_at         timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT memory_recheck_says_one_thing CHECK (
        (result = 'gone' AND listed = 0 AND total_count = 0 AND failure IS NULL)
     OR (result = 'found' AND listed IS NOT NULL AND total_count IS NOT NULL AND (listed > 0 OR total_count > 0)
         AND failure IS NULL)
     OR (result = 'not_checked' AND listed IS NULL AND total_count IS NULL AND failure IS NOT NULL))
);
CREATE INDEX memory_rechecks_by_erasure ON retention.memory_rechecks (memory_erasure_id, id);
CREATE INDEX memory_rechecks_by_verify ON retention.memory_rechecks (verify_id);
CREATE TRIGGER memory_rechecks_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.memory_rechecks
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- record_memory_recheck records what one list of an end user's memories with a character, read
-- at p_listed_at (between the verify run's start and now, on the database's clock), showed of
-- each of p_erasures (1 to 1000 memory erasures of that end user and character, each erased and
-- completed before the list): p_result gone, found or not_checked, with the list's count and
-- total_count or the failure's class (the table's checks). It returns how many rows it added.
CREATE FUNCTION retention.record_memory_recheck(p_verify bigint, p_token text, p_erasures bigint[],
                                                p_listed_at timestamptz, p_result text, p_listed bigint,
                                                p_total_count bigint, p_failure text, p_http_status integer,
                                                p_attempts integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n     integer := cardinality(p_erasures);
    pairs integer;
    found integer;
BEGIN
    PERFORM retention.authorize_verify(p_verify, p_token);
    IF n IS NULL OR n = 0 OR n > 1000 OR (SELECT count(DISTINCT x) FROM unnest(p_erasures) x) <> n THEN
        RAISE EXCEPTION 'record_memory_recheck: want 1 to 1000 different memory erasures'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_listed_at IS NULL OR p_listed_at < (SELECT started_at FROM retention.verify_runs WHERE id = p_verify)
       OR p_listed_at > now() THEN
        RAISE EXCEPTION 'record_memory_recheck: the list time % is not within the verify run', p_listed_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT count(*), count(DISTINCT (q.end_user_id, m.character_id)) INTO found, pairs
      FROM unnest(p_erasures) AS u(id)
      JOIN retention.memory_erasures m ON m.id = u.id
      JOIN retention.end_user_requests q ON q.id = m.request_id
     WHERE m.status = 'erased' AND m.character_id IS NOT NULL AND m.completed_at <= p_listed_at;
    IF found <> n OR pairs <> 1 THEN
        RAISE EXCEPTION 'record_memory_recheck: every ID must name an erased memory of one end user and character, completed before the list'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retention.memory_rechecks (verify_id, memory_erasure_id, result, listed, total_count, failure,
                                           http_status, attempts, listed_at)
    SELECT p_verify, u.id, p_result, p_listed, p_total_count, p_failure, nullif(p_http_status, 0), p_attempts, p_listed_at
      FROM unnest(p_erasures) AS u(id);
    RETURN n;
END
$$;
REVOKE EXECUTE ON FUNCTION retention.record_memory_recheck(bigint, text, bigint[], timestamptz, text, bigint, bigint, text, integer, integer) FROM PUBLIC;

COMMENT ON TABLE retention.memory_rechecks IS 'Each re-check by a verification of an erased memory: gone, found (the erasure refuted: the next run erases again) or not_checked, at the server''s time.';
