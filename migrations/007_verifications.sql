-- Verifications: checking with Convai's list endpoint that sessions recorded deleted are gone.
-- A verify run lists each character's sessions and records, for every deleted row it checked,
-- whether the session was present or absent, in batches chained by SHA-256 like the v1 seals.
-- A session found present is no longer deleted: the next run claims and sends it again, and its
-- new deleted outcome gets the next epoch (one deleted outcome per session per epoch).
-- docs/COMPLIANCE.md describes the encoding and what a verification proves.

-- One row per `retention verify`.
CREATE TABLE retention.verify_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'finished', 'incomplete', 'interrupted', 'failed')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz NULL,
    scope       jsonb NOT NULL DEFAULT '{}',
    checked     bigint NOT NULL DEFAULT 0,
    present     bigint NOT NULL DEFAULT 0,
    absent      bigint NOT NULL DEFAULT 0,
    unlisted    bigint NOT NULL DEFAULT 0,
    host        text NOT NULL DEFAULT '',
    version     text NOT NULL DEFAULT '',
    error       text NULL,
    CHECK ((status = 'running') = (finished_at IS NULL))
);

-- A verify run's credential, as for runs: the SHA-256 of the token start_verify returned.
CREATE TABLE retention.verify_keys (
    verify_id  bigint PRIMARY KEY REFERENCES retention.verify_runs (id),
    token_hash bytea NOT NULL CHECK (octet_length(token_hash) = 32)
);

-- One row per recorded batch of verifications of one character, chained: hash =
-- SHA-256(prev_hash || retention.verification_content(seq)). seq numbers the chain from 1.
CREATE TABLE retention.verification_batches (
    seq          bigint PRIMARY KEY CHECK (seq >= 1),
    verify_id    bigint NOT NULL REFERENCES retention.verify_runs (id),
    character_id text NOT NULL,
    listed_at    timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    count        integer NOT NULL CHECK (count BETWEEN 1 AND 10000),
    prev_hash    bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash         bytea NOT NULL CHECK (octet_length(hash) = 32)
);
CREATE TABLE retention.verification_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint NOT NULL CHECK (seq >= 0),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32)
);
INSERT INTO retention.verification_head (seq, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- One row per deleted row checked: deletion_id is the id in retention.deletions (a v2 row's is
-- claim id * 16384 + ord), pos its place in the batch (from 1).
CREATE TABLE retention.verifications (
    batch_seq    bigint NOT NULL REFERENCES retention.verification_batches (seq),
    pos          integer NOT NULL CHECK (pos >= 1),
    deletion_id  bigint NOT NULL,
    character_id text NOT NULL,
    session_id   text NOT NULL,
    result       text NOT NULL CHECK (result IN ('present', 'absent')),
    PRIMARY KEY (batch_seq, pos)
);
-- "Was this deletion refuted?" is one probe.
CREATE INDEX verifications_present ON retention.verifications (deletion_id) WHERE result = 'present';
CREATE INDEX verifications_by_deletion ON retention.verifications (deletion_id);

CREATE TRIGGER verify_keys_kept BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.verify_keys
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();
CREATE TRIGGER verification_batches_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.verification_batches
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();
CREATE TRIGGER verifications_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.verifications
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();
CREATE TRIGGER verification_head_kept BEFORE DELETE OR TRUNCATE ON retention.verification_head
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- A session's deleted outcome carries its epoch: how many deleted outcomes of the session had
-- been verified present when it was recorded. The rule "one deleted outcome per session, ever"
-- becomes "one per session per epoch": a deletion that a verification refuted is history, and
-- the session may be deleted once more.
ALTER TABLE retention.outcomes ADD COLUMN epoch integer NOT NULL DEFAULT 0 CHECK (epoch >= 0);
DROP INDEX retention.outcomes_one_deleted;
CREATE UNIQUE INDEX outcomes_one_deleted_per_epoch ON retention.outcomes (character_id, session_id, epoch)
    WHERE status = 'deleted';
-- Its (character_id, session_id) prefix serves the "deleted?" probes: no second index on them,
-- which every recorded session would pay for.

-- is_deleted is the one rule "this session is deleted": it has a deleted row (v2 outcome or v1)
-- that no verification found present. The job's selection, claim, the backlog views and the
-- report all ask it. Each branch is an index probe.
CREATE FUNCTION retention.is_deleted(p_character text, p_session text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT true FROM retention.outcomes d
                     WHERE d.character_id = p_character AND d.session_id = p_session AND d.status = 'deleted'
                       AND NOT EXISTS (SELECT 1 FROM retention.verifications v
                                       WHERE v.deletion_id = d.claim_id * 16384 + d.ord AND v.result = 'present')
                     LIMIT 1), false)
        OR coalesce((SELECT true FROM retention.deletions_v1 d
                     WHERE d.character_id = p_character AND d.session_id = p_session AND d.status = 'deleted'
                       AND NOT EXISTS (SELECT 1 FROM retention.verifications v
                                       WHERE v.deletion_id = d.id AND v.result = 'present')
                     LIMIT 1), false)
$$;

-- deletion_epoch is the epoch a new deleted outcome of the session gets: the number of its
-- deleted rows that a verification found present.
CREATE FUNCTION retention.deletion_epoch(p_character text, p_session text) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT count(DISTINCT v.deletion_id)::integer FROM retention.verifications v
    WHERE v.character_id = p_character AND v.session_id = p_session AND v.result = 'present'
$$;
CREATE INDEX verifications_present_by_session ON retention.verifications (character_id, session_id)
    WHERE result = 'present';

-- verification_content is the canonical encoding of one batch, in seal_field netstrings:
--   "retention.verification/v1", seq, verify_id, character_id, listed_at, recorded_at, count,
-- then per verification in pos order: pos, deletion_id, session_id, result.
CREATE FUNCTION retention.verification_content(p_seq bigint) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to(
        retention.seal_field('retention.verification/v1') ||
        retention.seal_field(b.seq::text) ||
        retention.seal_field(b.verify_id::text) ||
        retention.seal_field(b.character_id) ||
        retention.seal_field(retention.seal_time(b.listed_at)) ||
        retention.seal_field(retention.seal_time(b.recorded_at)) ||
        retention.seal_field(b.count::text) ||
        coalesce((
            SELECT string_agg(
                       retention.seal_field(v.pos::text) ||
                       retention.seal_field(v.deletion_id::text) ||
                       retention.seal_field(v.session_id) ||
                       retention.seal_field(v.result),
                       '' ORDER BY v.pos)
            FROM retention.verifications v WHERE v.batch_seq = b.seq), ''),
        'UTF8')
    FROM retention.verification_batches b WHERE b.seq = p_seq
$$;

-- start_verify inserts a verify run and returns its id, its start (the server's clock) and its
-- token.
CREATE FUNCTION retention.start_verify(p_scope jsonb, p_host text, p_version text,
                                       OUT verify_id bigint, OUT started_at timestamptz, OUT token text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    token := encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, 'UTF8')), 'hex');
    INSERT INTO retention.verify_runs (scope, host, version)
    VALUES (coalesce(p_scope, '{}'), coalesce(p_host, ''), coalesce(p_version, ''))
    RETURNING id, verify_runs.started_at INTO verify_id, started_at;
    INSERT INTO retention.verify_keys (verify_id, token_hash) VALUES (verify_id, sha256(convert_to(token, 'UTF8')));
END
$$;

-- authorize_verify raises unless p_token is the credential of the running verify run p_verify.
CREATE FUNCTION retention.authorize_verify(p_verify bigint, p_token text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM retention.verify_keys k
                   WHERE k.verify_id = p_verify AND k.token_hash = sha256(convert_to(coalesce(p_token, ''), 'UTF8'))) THEN
        RAISE EXCEPTION 'verify run %: these are not its credentials', p_verify
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (SELECT status FROM retention.verify_runs WHERE id = p_verify) <> 'running' THEN
        RAISE EXCEPTION 'verify run % is finished: its records are closed', p_verify
            USING ERRCODE = 'restrict_violation';
    END IF;
END
$$;

-- record_verifications records one batch: for each deleted row p_deletion_ids[i] of
-- p_character, whether the list read at p_listed_at had the session. The session IDs come from
-- the rows themselves; every row must be deleted and completed before p_listed_at, which must
-- lie between the verify run's start and now. A session found present whose deletion removed
-- it from retention.sessions gets its row back (with the last activity the deletion recorded),
-- so the next run sends it again. It returns the batch's seq.
CREATE FUNCTION retention.record_verifications(p_verify bigint, p_token text, p_character text,
                                               p_listed_at timestamptz, p_deletion_ids bigint[],
                                               p_present boolean[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n      integer := cardinality(p_deletion_ids);
    found  integer;
    head    retention.verification_head;
    s       bigint;
    sids    text[];
    at      timestamptz;
    content bytea;
    h       bytea;
BEGIN
    PERFORM retention.authorize_verify(p_verify, p_token);
    IF n IS NULL OR n = 0 OR n > 10000 OR cardinality(p_present) IS DISTINCT FROM n THEN
        RAISE EXCEPTION 'record_verifications: want 1 to 10000 deletion IDs and as many results'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_listed_at < (SELECT started_at FROM retention.verify_runs WHERE id = p_verify) OR p_listed_at > now() THEN
        RAISE EXCEPTION 'record_verifications: the list time % is not within the verify run', p_listed_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT count(*) INTO found
      FROM unnest(p_deletion_ids) AS u(id)
      JOIN retention.deletions d ON d.id = u.id
     WHERE d.character_id = p_character AND d.status = 'deleted' AND d.completed_at <= p_listed_at;
    IF found <> n OR (SELECT count(DISTINCT x) FROM unnest(p_deletion_ids) x) <> n THEN
        RAISE EXCEPTION 'record_verifications: every ID must name a different deleted row of character %, completed before the list', p_character
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT array_agg(d.session_id ORDER BY u.pos) INTO sids
      FROM unnest(p_deletion_ids) WITH ORDINALITY AS u(id, pos)
      JOIN retention.deletions d ON d.id = u.id;

    SELECT * INTO head FROM retention.verification_head WHERE one FOR UPDATE;
    s := head.seq + 1;
    at := clock_timestamp();
    content := convert_to(
        retention.seal_field('retention.verification/v1') ||
        retention.seal_field(s::text) ||
        retention.seal_field(p_verify::text) ||
        retention.seal_field(p_character) ||
        retention.seal_field(retention.seal_time(p_listed_at)) ||
        retention.seal_field(retention.seal_time(at)) ||
        retention.seal_field(n::text) ||
        (SELECT string_agg(
                    retention.seal_field(u.pos::text) ||
                    retention.seal_field(u.id::text) ||
                    retention.seal_field(u.sid) ||
                    retention.seal_field(CASE WHEN u.present THEN 'present' ELSE 'absent' END),
                    '' ORDER BY u.pos)
           FROM unnest(p_deletion_ids, sids, p_present) WITH ORDINALITY AS u(id, sid, present, pos)),
        'UTF8');
    h := sha256(head.hash || content);
    INSERT INTO retention.verification_batches (seq, verify_id, character_id, listed_at, recorded_at, count, prev_hash, hash)
    VALUES (s, p_verify, p_character, p_listed_at, at, n, head.hash, h);
    INSERT INTO retention.verifications (batch_seq, pos, deletion_id, character_id, session_id, result)
    SELECT s, u.pos, u.id, p_character, u.sid, CASE WHEN u.present THEN 'present' ELSE 'absent' END
      FROM unnest(p_deletion_ids, sids, p_present) WITH ORDINALITY AS u(id, sid, present, pos);
    UPDATE retention.verification_head SET seq = s, hash = h WHERE one;

    INSERT INTO retention.sessions (character_id, session_id, last_active_at)
    SELECT d.character_id, d.session_id, d.last_active_at
      FROM unnest(p_deletion_ids, p_present) AS u(id, present)
      JOIN retention.deletions d ON d.id = u.id
      JOIN retention.runs r ON r.id = d.run_id
     WHERE u.present AND r.source = 'retention.sessions'
    ON CONFLICT (character_id, session_id) DO NOTHING;
    UPDATE retention.verify_runs
       SET checked = checked + n,
           present = present + (SELECT count(*) FROM unnest(p_present) p WHERE p),
           absent = absent + (SELECT count(*) FROM unnest(p_present) p WHERE NOT p)
     WHERE id = p_verify;
    RETURN s;
END
$$;

-- finish_verify closes a verify run with its final status, the number of characters whose list
-- could not be read, and an error, at the server's clock.
CREATE FUNCTION retention.finish_verify(p_verify bigint, p_token text, p_status text, p_unlisted bigint, p_error text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM retention.authorize_verify(p_verify, p_token);
    IF p_status NOT IN ('finished', 'incomplete', 'interrupted', 'failed') THEN
        RAISE EXCEPTION 'finish_verify: % is not a final status', p_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE retention.verify_runs
       SET status = p_status, finished_at = now(), unlisted = coalesce(p_unlisted, 0), error = nullif(p_error, '')
     WHERE id = p_verify;
END
$$;

-- claim, as in 004, leaves out the sessions retention.is_deleted says are deleted: a session
-- whose deletion a verification refuted is claimed and sent again.
CREATE OR REPLACE FUNCTION retention.claim(p_run bigint, p_token text, p_character text, p_policy_id bigint,
                                p_policy_character text, p_max_age interval, p_ids text[],
                                p_last_active timestamptz[],
                                OUT claim_id bigint, OUT session_ids text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ats timestamptz[];
BEGIN
    PERFORM retention.authorize(p_run, p_token, true);
    IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_last_active) THEN
        RAISE EXCEPTION 'claim: % session IDs but % last-active times', cardinality(p_ids), cardinality(p_last_active)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(p_ids) x) <> cardinality(p_ids) THEN
        RAISE EXCEPTION 'claim: a session ID appears twice' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(u.session_id ORDER BY u.ord), array_agg(u.last_active_at ORDER BY u.ord)
      INTO session_ids, ats
      FROM unnest(p_ids, p_last_active) WITH ORDINALITY AS u(session_id, last_active_at, ord)
     WHERE NOT EXISTS (
               SELECT 1 FROM retention.holds h
               WHERE h.released_at IS NULL AND h.character_id = p_character
                 AND (h.session_id IS NULL OR h.session_id = u.session_id))
       -- retention.is_deleted, written out: a SQL function with sub-selects is not inlined, and
       -- a call per session costs more than the probes themselves.
       AND NOT (coalesce((SELECT true FROM retention.outcomes d
                     WHERE d.character_id = p_character AND d.session_id = u.session_id AND d.status = 'deleted'
                       AND NOT EXISTS (SELECT 1 FROM retention.verifications v
                                       WHERE v.deletion_id = d.claim_id * 16384 + d.ord AND v.result = 'present')
                     LIMIT 1), false)
              OR coalesce((SELECT true FROM retention.deletions_v1 d
                     WHERE d.character_id = p_character AND d.session_id = u.session_id AND d.status = 'deleted'
                       AND NOT EXISTS (SELECT 1 FROM retention.verifications v
                                       WHERE v.deletion_id = d.id AND v.result = 'present')
                     LIMIT 1), false));
    IF session_ids IS NULL THEN
        claim_id := 0;
        session_ids := '{}';
        RETURN;
    END IF;
    INSERT INTO retention.claims (run_id, character_id, policy_id, policy_character_id, max_age, session_ids, last_active_at)
    VALUES (p_run, p_character, p_policy_id, p_policy_character, p_max_age, session_ids, ats)
    RETURNING id INTO claim_id;
END
$$;

-- Each deleted outcome gets its epoch as record inserts it: computed in the insert itself (an
-- index probe of the verifications found present, almost always none), not by a row trigger,
-- whose call per session cost more than the rest of the record (make bench). Only record writes
-- deleted outcomes; close_claims writes failed ones, whose epoch is 0.
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

-- expired_sessions_in, as in 005, counts a session whose deletion was refuted as waiting again.
CREATE OR REPLACE FUNCTION retention.expired_sessions_in(source regclass, cutoff timestamptz)
RETURNS TABLE (character_id text, session_id text, last_active_at timestamptz, policy_id bigint,
               policy_character_id text, max_age interval, expired_at timestamptz,
               expired_for interval, held boolean, hold_id bigint, hold_reason text)
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH horizon AS (
            SELECT max(retention.expiry_threshold(p.max_age, $1)) AS at
            FROM retention.policies p WHERE p.enabled
        ), candidates AS (
            SELECT DISTINCT s.character_id::text AS character_id, s.session_id::text AS session_id, s.last_active_at
            FROM %1$s s
            WHERE s.last_active_at <= (SELECT at FROM horizon)
              AND NOT EXISTS (
                    SELECT 1 FROM %1$s n
                    WHERE n.character_id = s.character_id AND n.session_id = s.session_id
                      AND (n.last_active_at > s.last_active_at OR n.last_active_at IS NULL))
        ), rules AS (
            SELECT c.character_id, r.*
            FROM (SELECT DISTINCT character_id FROM candidates) c
            CROSS JOIN LATERAL retention.policy_for(c.character_id) r
            WHERE r.decision IN ('own_policy', 'default_policy')
        )
        SELECT c.character_id, c.session_id, c.last_active_at, r.policy_id, r.policy_character_id, r.max_age,
               ((c.last_active_at AT TIME ZONE 'UTC') + r.max_age) AT TIME ZONE 'UTC',
               $1 - (((c.last_active_at AT TIME ZONE 'UTC') + r.max_age) AT TIME ZONE 'UTC'),
               h.id IS NOT NULL, h.id, h.reason
        FROM candidates c
        JOIN rules r ON r.character_id = c.character_id
        LEFT JOIN LATERAL (
            SELECT h.id, h.reason FROM retention.holds h
            WHERE h.released_at IS NULL AND h.character_id = c.character_id
              AND (h.session_id IS NULL OR h.session_id = c.session_id)
            ORDER BY h.session_id NULLS FIRST, h.id
            LIMIT 1) h ON true
        WHERE c.last_active_at <= retention.expiry_threshold(r.max_age, $1)
          AND retention.well_formed_id(c.character_id) AND retention.well_formed_id(c.session_id)
          AND NOT retention.is_deleted(c.character_id, c.session_id)
    $q$, source) USING cutoff;
END
$fn$;

COMMENT ON TABLE retention.verify_runs IS 'One row per retention verify: its scope and how many deleted sessions it found present or absent.';
COMMENT ON TABLE retention.verifications IS 'One row per deleted row checked against Convai''s list: present (the deletion is refuted) or absent.';
COMMENT ON TABLE retention.verification_batches IS 'Batches of verifications, chained: hash = SHA-256(prev_hash || retention.verification_content(seq)).';

REVOKE EXECUTE ON FUNCTION retention.authorize_verify(bigint, text) FROM PUBLIC;

-- Discoveries: sessions found in Convai's list that the app had never stored, added to
-- retention.sessions by `retention discover` with their latest interaction from the details
-- endpoint as last_active_at.
CREATE TABLE retention.discoveries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    character_id   text NOT NULL,
    session_id     text NOT NULL,
    last_active_at timestamptz NOT NULL,
    discovered_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX discoveries_by_character ON retention.discoveries (character_id);
CREATE TRIGGER discoveries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.discoveries
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- add_discovered adds sessions of one character to retention.sessions, unless the source has
-- them already or they have a deleted row, and records each one added in retention.discoveries.
-- Every time must lie in the past. It returns how many it added.
CREATE FUNCTION retention.add_discovered(p_character text, p_ids text[], p_last_active timestamptz[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_last_active) OR cardinality(p_ids) > 10000 THEN
        RAISE EXCEPTION 'add_discovered: want at most 10000 session IDs and as many times'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_last_active) t WHERE t IS NULL OR t > now()) THEN
        RAISE EXCEPTION 'add_discovered: a last activity is missing or in the future'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH added AS (
        INSERT INTO retention.sessions (character_id, session_id, last_active_at)
        SELECT p_character, u.id, u.at
          FROM unnest(p_ids, p_last_active) AS u(id, at)
         WHERE retention.well_formed_id(u.id) AND NOT retention.is_deleted(p_character, u.id)
        ON CONFLICT (character_id, session_id) DO NOTHING
        RETURNING session_id, last_active_at
    ), logged AS (
        INSERT INTO retention.discoveries (character_id, session_id, last_active_at)
        SELECT p_character, session_id, last_active_at FROM added
        RETURNING 1
    )
    SELECT count(*) INTO n FROM logged;
    RETURN n;
END
$$;
COMMENT ON TABLE retention.discoveries IS 'Sessions found at Convai that the app had not stored, added to retention.sessions by retention discover.';
