-- Erasure requests: a person asks that sessions be deleted, whatever their age and whatever the
-- policies say. A real run sends the sessions of every open request of its shard first; an
-- active hold still wins (the request stays open, blocked by the hold). Each erasure claim names
-- its request, and its leaf in the log seals the request's terms with the outcomes.

-- One row per request, never changed or removed. session_id NULL asks for every session of the
-- character (in the source, and those Convai lists). requested_at is when the person asked (it
-- may lie in the past, for a request received by other means); due_at defaults to 30 days
-- after it. filed_by and filed_at are the database's own: who inserted the row, and when.
CREATE TABLE retention.erasure_requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    character_id text NOT NULL,
    session_id   text NULL,
    reason       text NOT NULL,
    requested_by text NOT NULL DEFAULT current_user,
    requested_at timestamptz NOT NULL DEFAULT now(),
    due_at       timestamptz NOT NULL,
    filed_by     name NOT NULL DEFAULT current_user,
    filed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT erasure_character_well_formed CHECK (retention.well_formed_id(character_id)),
    CONSTRAINT erasure_session_well_formed CHECK (session_id IS NULL OR retention.well_formed_id(session_id)),
    CONSTRAINT erasure_reason_given CHECK (btrim(reason) <> '' AND length(reason) <= 1000),
    CONSTRAINT erasure_requester_named CHECK (btrim(requested_by) <> '' AND length(requested_by) <= 200),
    CONSTRAINT erasure_due_after_request CHECK (due_at > requested_at)
);
CREATE INDEX erasure_requests_by_character ON retention.erasure_requests (character_id);

-- erasure_request_filed fills due_at, and sets filed_by and filed_at whatever the insert says;
-- a request cannot be dated in the future.
CREATE FUNCTION retention.erasure_request_filed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.filed_by := current_user;
    NEW.filed_at := clock_timestamp();
    IF NEW.requested_at > NEW.filed_at + interval '5 minutes' THEN
        RAISE EXCEPTION 'erasure request: requested_at % is in the future', NEW.requested_at
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.due_at := coalesce(NEW.due_at, NEW.requested_at + interval '30 days');
    RETURN NEW;
END
$$;
CREATE TRIGGER erasure_request_filed BEFORE INSERT ON retention.erasure_requests
    FOR EACH ROW EXECUTE FUNCTION retention.erasure_request_filed();
CREATE TRIGGER erasure_requests_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.erasure_requests
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- A request is complete when every one of its sessions is confirmed deleted: the run that finds
-- it so writes this row, through retention.complete_erasure.
CREATE TABLE retention.erasure_completions (
    request_id   bigint PRIMARY KEY REFERENCES retention.erasure_requests (id),
    run_id       bigint NOT NULL REFERENCES retention.runs (id),
    sessions     bigint NOT NULL CHECK (sessions >= 0),
    completed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TRIGGER erasure_completions_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.erasure_completions
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- An erasure claim names its request and has no policy; a session the source does not know has
-- no last activity (a NULL in last_active_at).
ALTER TABLE retention.claims ADD COLUMN erasure_request_id bigint NULL REFERENCES retention.erasure_requests (id);
ALTER TABLE retention.claims ALTER COLUMN max_age DROP NOT NULL;
ALTER TABLE retention.claims ADD CONSTRAINT claims_policy_or_request
    CHECK ((erasure_request_id IS NULL) = (max_age IS NOT NULL));
CREATE INDEX claims_by_erasure ON retention.claims (erasure_request_id) WHERE erasure_request_id IS NOT NULL;

-- claim_content: a policy claim's bytes are the v2 encoding, unchanged. An erasure claim's are
-- "retention.claim/v3": the v2 head (policy and max_age NULL), then the request's terms (id,
-- session_id, requested_by, requested_at, due_at), then the sessions as in v2. The reason is
-- left out: it may name a person, and it must stay redactable without breaking the log. The Go
-- function audit.ClaimContent computes the same bytes from the rows.
CREATE OR REPLACE FUNCTION retention.claim_content(p_claim bigint) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to(
        retention.seal_field(CASE WHEN c.erasure_request_id IS NULL THEN 'retention.claim/v2' ELSE 'retention.claim/v3' END) ||
        retention.seal_field(c.id::text) ||
        retention.seal_field(c.run_id::text) ||
        retention.seal_field(c.character_id) ||
        retention.seal_field(c.policy_id::text) ||
        retention.seal_field(c.policy_character_id) ||
        retention.seal_field((extract(year FROM c.max_age) * 12 + extract(month FROM c.max_age))::bigint::text) ||
        retention.seal_field(extract(day FROM c.max_age)::bigint::text) ||
        retention.seal_field((extract(hour FROM c.max_age) * 3600000000
                              + extract(minute FROM c.max_age) * 60000000
                              + extract(microseconds FROM c.max_age))::bigint::text) ||
        retention.seal_field(retention.seal_time(c.requested_at)) ||
        CASE WHEN c.erasure_request_id IS NULL THEN '' ELSE
            retention.seal_field(e.id::text) ||
            retention.seal_field(e.session_id) ||
            retention.seal_field(e.requested_by) ||
            retention.seal_field(retention.seal_time(e.requested_at)) ||
            retention.seal_field(retention.seal_time(e.due_at))
        END ||
        retention.seal_field(cardinality(c.session_ids)::text) ||
        coalesce((
            SELECT string_agg(
                       retention.seal_field(o.ord::text) ||
                       retention.seal_field(o.session_id) ||
                       retention.seal_field(retention.seal_time(c.last_active_at[o.ord])) ||
                       retention.seal_field(o.status) ||
                       retention.seal_field(o.attempts::text) ||
                       retention.seal_field(o.http_status::text) ||
                       retention.seal_field(o.error) ||
                       retention.seal_field(retention.seal_time(o.completed_at)),
                       '' ORDER BY o.ord)
            FROM retention.outcomes o WHERE o.claim_id = c.id), ''),
        'UTF8')
    FROM retention.claims c
    LEFT JOIN retention.erasure_requests e ON e.id = c.erasure_request_id
    WHERE c.id = p_claim
$$;

-- claim_erasure writes a chunk of an open erasure request's sessions as the run's claim, like
-- retention.claim: the caller must be the running run, with its token and its lock. A request
-- for one session may claim that session only; any session an active hold protects, or already
-- deleted (retention.is_deleted), is left out. A complete request may claim again the sessions
-- it deleted whose deletion a verification refuted. Only the IDs it returns may be sent.
CREATE FUNCTION retention.claim_erasure(p_run bigint, p_token text, p_request bigint, p_ids text[],
                                        p_last_active timestamptz[],
                                        OUT claim_id bigint, OUT session_ids text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    req retention.erasure_requests;
    ats timestamptz[];
BEGIN
    PERFORM retention.authorize(p_run, p_token, true);
    SELECT * INTO req FROM retention.erasure_requests WHERE id = p_request;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'claim_erasure: there is no erasure request %', p_request USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A complete request claims again only sessions it deleted before that a verification has
    -- since found present at Convai (their deletion refuted): they are sent again under it.
    IF EXISTS (SELECT 1 FROM retention.erasure_completions WHERE request_id = p_request)
       AND EXISTS (SELECT 1 FROM unnest(p_ids) x
                   WHERE NOT EXISTS (SELECT 1 FROM retention.claims c
                                     WHERE c.erasure_request_id = p_request AND x = ANY (c.session_ids))
                      OR retention.is_deleted(req.character_id, x)) THEN
        RAISE EXCEPTION 'claim_erasure: erasure request % is complete', p_request USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_last_active) OR coalesce(cardinality(p_ids), 0) = 0 THEN
        RAISE EXCEPTION 'claim_erasure: want session IDs and as many last-active times'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(p_ids) x) <> cardinality(p_ids) THEN
        RAISE EXCEPTION 'claim_erasure: a session ID appears twice' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF req.session_id IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(p_ids) x WHERE x IS DISTINCT FROM req.session_id) THEN
        RAISE EXCEPTION 'claim_erasure: erasure request % is for one session only', p_request
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_ids) x WHERE NOT retention.well_formed_id(x)) THEN
        RAISE EXCEPTION 'claim_erasure: a session ID is malformed' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(u.session_id ORDER BY u.ord), array_agg(u.last_active_at ORDER BY u.ord)
      INTO session_ids, ats
      FROM unnest(p_ids, p_last_active) WITH ORDINALITY AS u(session_id, last_active_at, ord)
     WHERE NOT EXISTS (
               SELECT 1 FROM retention.holds h
               WHERE h.released_at IS NULL AND h.character_id = req.character_id
                 AND (h.session_id IS NULL OR h.session_id = u.session_id))
       AND NOT retention.is_deleted(req.character_id, u.session_id);
    IF session_ids IS NULL THEN
        claim_id := 0;
        session_ids := '{}';
        RETURN;
    END IF;
    INSERT INTO retention.claims (run_id, character_id, policy_id, policy_character_id, max_age, session_ids,
                                  last_active_at, erasure_request_id)
    VALUES (p_run, req.character_id, NULL, NULL, NULL, session_ids, ats, p_request)
    RETURNING id INTO claim_id;
END
$$;

-- complete_erasure marks an open request complete when the database can see that every one of
-- its sessions is deleted: every session ever claimed for it, the requested session itself, and
-- for a character's request every session of the character in retention.sessions and in the
-- run's source, when the schema's owner can read that source (grant it SELECT to have it
-- checked; otherwise the run vouches for its source). Nothing is written, and false returned,
-- while a session is not deleted or an active hold matches the request. It returns true when the
-- request is complete.
CREATE FUNCTION retention.complete_erasure(p_run bigint, p_token text, p_request bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    req       retention.erasure_requests;
    src       text;
    rel       regclass;
    remaining boolean;
    n         bigint;
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    SELECT * INTO req FROM retention.erasure_requests WHERE id = p_request;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'complete_erasure: there is no erasure request %', p_request USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM retention.erasure_completions WHERE request_id = p_request) THEN
        RETURN true;
    END IF;
    IF EXISTS (SELECT 1 FROM retention.holds h
               WHERE h.released_at IS NULL AND h.character_id = req.character_id
                 AND (h.session_id IS NULL OR req.session_id IS NULL OR h.session_id = req.session_id)) THEN
        RETURN false;
    END IF;
    IF req.session_id IS NOT NULL AND NOT retention.is_deleted(req.character_id, req.session_id) THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM retention.claims c
               CROSS JOIN LATERAL unnest(c.session_ids) AS s(session_id)
               WHERE c.erasure_request_id = p_request AND NOT retention.is_deleted(c.character_id, s.session_id)) THEN
        RETURN false;
    END IF;
    IF req.session_id IS NULL AND EXISTS (
           SELECT 1 FROM retention.sessions s
           WHERE s.character_id = req.character_id AND NOT retention.is_deleted(s.character_id, s.session_id)) THEN
        RETURN false;
    END IF;
    SELECT r.source INTO src FROM retention.runs r WHERE r.id = p_run;
    rel := to_regclass(src);
    IF req.session_id IS NULL AND rel IS NOT NULL AND rel <> 'retention.sessions'::regclass THEN
        BEGIN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s s WHERE s.character_id::text = $1 AND s.session_id IS NOT NULL
                                             AND NOT retention.is_deleted($1, s.session_id::text))', rel)
               INTO remaining USING req.character_id;
        EXCEPTION WHEN insufficient_privilege OR undefined_column OR undefined_function OR datatype_mismatch THEN
            remaining := false; -- the owner cannot read the run's source: the run vouches for it
        END;
        IF remaining THEN
            RETURN false;
        END IF;
    END IF;
    SELECT count(DISTINCT s.session_id) INTO n
      FROM retention.claims c CROSS JOIN LATERAL unnest(c.session_ids) AS s(session_id)
     WHERE c.erasure_request_id = p_request;
    IF req.session_id IS NOT NULL THEN
        n := 1;
    END IF;
    INSERT INTO retention.erasure_completions (request_id, run_id, sessions) VALUES (p_request, p_run, n)
    ON CONFLICT (request_id) DO NOTHING;
    RETURN true;
END
$$;

-- finish_run, as in 006, except that an aborted run may have claimed erasure requests'
-- sessions: the safety cap stops what the policies select, never what a person asked for.
CREATE OR REPLACE FUNCTION retention.finish_run(p_run bigint, p_token text, p_status text, p_selected bigint,
                                     p_deleted bigint, p_failed bigint, p_skipped bigint,
                                     p_skipped_by_reason jsonb, p_budget_reached boolean, p_error text,
                                     p_size bigint, p_root bytea, p_note text,
                                     p_would_send bigint, p_source_sessions bigint, p_abort_limit bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
    INSERT INTO retention.checkpoints (run_id, size, root, note) VALUES (p_run, p_size, p_root, p_note);
    UPDATE retention.runs
    SET status = p_status, finished_at = now(), selected = p_selected, deleted = p_deleted, failed = p_failed,
        skipped = p_skipped, skipped_by_reason = coalesce(p_skipped_by_reason, '{}'),
        budget_reached = p_budget_reached, error = p_error,
        would_send = p_would_send, source_sessions = p_source_sessions, abort_limit = p_abort_limit
    WHERE id = p_run;
END
$$;

-- erasure_status: each request with its state. completed: a run found every session deleted.
-- blocked: open, and an active hold matches it (blocked_by names the holds). overdue: open past
-- due_at (a blocked request can be overdue too: see the overdue column). lag_seconds: from the
-- request to its completion.
CREATE VIEW retention.erasure_status AS
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
           extract(epoch FROM c.completed_at - e.requested_at)::double precision AS lag_seconds
    FROM retention.erasure_requests e
    LEFT JOIN retention.erasure_completions c ON c.request_id = e.id
    LEFT JOIN LATERAL (
        SELECT array_agg(hd.id ORDER BY hd.id) AS holds FROM retention.holds hd
        WHERE c.request_id IS NULL AND hd.released_at IS NULL AND hd.character_id = e.character_id
          AND (hd.session_id IS NULL OR e.session_id IS NULL OR hd.session_id = e.session_id)
    ) h ON true;

-- deletions gains the request a row was sent under (NULL: a policy's deletion).
CREATE OR REPLACE VIEW retention.deletions AS
    SELECT d.id, d.run_id, d.character_id, d.session_id, d.status, d.attempts, d.http_status, d.error,
           d.last_active_at, d.policy_id, d.policy_character_id, d.max_age, d.requested_at, d.completed_at,
           NULL::bigint AS erasure_request_id
    FROM retention.deletions_v1 d
    UNION ALL
    SELECT c.id * 16384 + o.ord, c.run_id, o.character_id, o.session_id, o.status, o.attempts, o.http_status, o.error,
           c.last_active_at[o.ord], c.policy_id, c.policy_character_id, c.max_age, c.requested_at, o.completed_at,
           c.erasure_request_id
    FROM retention.outcomes o
    JOIN retention.claims c ON c.id = o.claim_id
    UNION ALL
    SELECT c.id * 16384 + e.ord, c.run_id, c.character_id, e.session_id, 'pending', 0, NULL::integer, NULL::text,
           e.last_active_at, c.policy_id, c.policy_character_id, c.max_age, c.requested_at, NULL::timestamptz,
           c.erasure_request_id
    FROM retention.runs r
    JOIN retention.claims c ON c.run_id = r.id
    CROSS JOIN LATERAL unnest(c.session_ids, c.last_active_at) WITH ORDINALITY AS e(session_id, last_active_at, ord)
    WHERE r.status = 'running'
      AND NOT EXISTS (SELECT 1 FROM retention.outcomes o WHERE o.claim_id = c.id AND o.ord = e.ord);

COMMENT ON TABLE retention.erasure_requests IS 'Requests that sessions be deleted whatever their age; session_id NULL: every session of the character. Never changed or removed.';
COMMENT ON TABLE retention.erasure_completions IS 'The run that found every session of an erasure request deleted, and when.';
COMMENT ON VIEW retention.erasure_status IS 'Each erasure request with its state (open, blocked, overdue, completed), the holds blocking it and its lag.';

REVOKE EXECUTE ON FUNCTION retention.claim_erasure(bigint, text, bigint, text[], timestamptz[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION retention.complete_erasure(bigint, text, bigint) FROM PUBLIC;
