-- The database's work per deleted session (make bench; docs/BENCHMARKS.md, "Recording cost").
-- A profile of the server processes during a run (perf, scenario b) put 14% of their CPU in the
-- foreign-key check of every outcome row, 28% in planning (the statements of the write functions
-- are planned with their arguments on every call, and the leaf's SQL function inlined some forty
-- small SQL functions each time it was planned) and 12% in rescanning empty tables (the probes of
-- v1 deletions and of refuting verifications ran once per session, a relation-size system call
-- each, on installs that have neither). Nothing here changes what is recorded, claimed or sealed:
-- the bytes of every leaf are the same (audit.ClaimContent computes them too), and the rules are
-- those of 013 and 009.

-- An outcome's claim exists: only record and close_claims write outcomes, both for a claim they
-- read from retention.claims, whose rows are never deleted or changed (claims_append_only). The
-- check of the foreign key, one query per outcome row, repeated what they know.
ALTER TABLE retention.outcomes DROP CONSTRAINT outcomes_claim_id_fkey;

-- seal_field, as in 002, on a database whose encoding is UTF-8 (PostgreSQL's default, and the
-- only one whose text can hold every session ID): the octet length of the text is its UTF-8
-- length already, so it is not converted first. A database's encoding never changes; on any
-- other, seal_field stays as it was. The bytes are the same either way.
DO $$
BEGIN
    IF getdatabaseencoding() = 'UTF8' THEN
        CREATE OR REPLACE FUNCTION retention.seal_field(v text) RETURNS text
        LANGUAGE sql STABLE PARALLEL SAFE AS $f$
            SELECT CASE WHEN v IS NULL THEN '-,' ELSE octet_length(v)::text || ':' || v || ',' END
        $f$;
    END IF;
END
$$;

-- claim_content, as in 008, built by a loop over the claim's outcomes instead of one statement:
-- the same bytes (audit.ClaimContent, TestClaimContentMatchesGo), without planning the encoding
-- of every field each time a leaf is made.
CREATE OR REPLACE FUNCTION retention.claim_content(p_claim bigint) RETURNS bytea
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c     retention.claims;
    e     retention.erasure_requests;
    o     record;
    parts text[];
BEGIN
    SELECT * INTO c FROM retention.claims WHERE id = p_claim;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    parts := ARRAY[
        retention.seal_field(CASE WHEN c.erasure_request_id IS NULL THEN 'retention.claim/v2' ELSE 'retention.claim/v3' END),
        retention.seal_field(c.id::text),
        retention.seal_field(c.run_id::text),
        retention.seal_field(c.character_id),
        retention.seal_field(c.policy_id::text),
        retention.seal_field(c.policy_character_id),
        retention.seal_field((extract(year FROM c.max_age) * 12 + extract(month FROM c.max_age))::bigint::text),
        retention.seal_field(extract(day FROM c.max_age)::bigint::text),
        retention.seal_field((extract(hour FROM c.max_age) * 3600000000
                              + extract(minute FROM c.max_age) * 60000000
                              + extract(microseconds FROM c.max_age))::bigint::text),
        retention.seal_field(retention.seal_time(c.requested_at))];
    IF c.erasure_request_id IS NOT NULL THEN
        SELECT * INTO e FROM retention.erasure_requests WHERE id = c.erasure_request_id;
        parts := parts || ARRAY[
            retention.seal_field(e.id::text),
            retention.seal_field(e.session_id),
            retention.seal_field(e.requested_by),
            retention.seal_field(retention.seal_time(e.requested_at)),
            retention.seal_field(retention.seal_time(e.due_at))];
    END IF;
    parts := array_append(parts, retention.seal_field(cardinality(c.session_ids)::text));
    FOR o IN SELECT x.ord, x.session_id, x.status, x.attempts, x.http_status, x.error, x.completed_at
             FROM retention.outcomes x WHERE x.claim_id = p_claim ORDER BY x.ord LOOP
        parts := array_append(parts,
                              retention.seal_field(o.ord::text) ||
                              retention.seal_field(o.session_id) ||
                              retention.seal_field(retention.seal_time(c.last_active_at[o.ord])) ||
                              retention.seal_field(o.status) ||
                              retention.seal_field(o.attempts::text) ||
                              retention.seal_field(o.http_status::text) ||
                              retention.seal_field(o.error) ||
                              retention.seal_field(retention.seal_time(o.completed_at)));
    END LOOP;
    RETURN convert_to(array_to_string(parts, ''), 'UTF8');
END
$$;

-- claim, as in 013, with each per-session probe asked once first for the whole call: whether the
-- character has an active hold at all, whether any verification ever found a deleted session
-- present, and whether any v1 deletion exists. The statement is planned with these answers, so a
-- probe whose answer is known is not made per session (most installs have no v1 rows, no
-- refutations and no holds on most characters).
CREATE OR REPLACE FUNCTION retention.claim(p_run bigint, p_token text, p_character text, p_policy_id bigint,
                                p_policy_character text, p_max_age interval, p_ids text[],
                                p_last_active timestamptz[],
                                OUT claim_id bigint, OUT session_ids text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    ats       timestamptz[];
    pol       record;
    from_set  boolean;
    threshold timestamptz;
    held      boolean;
    refuted   boolean;
    v1        boolean;
    dup       boolean;
BEGIN
    PERFORM retention.authorize(p_run, p_token, true);
    -- The policy and the eligibility are the database's: the caller's policy arguments are not
    -- trusted, and for a run of the job's own set its last activities are not either.
    SELECT pf.decision, pf.policy_id, pf.policy_character_id, pf.max_age INTO pol FROM retention.policy_for(p_character) pf;
    IF pol.decision NOT IN ('own_policy', 'default_policy') THEN
        claim_id := 0;
        session_ids := '{}';
        RETURN;
    END IF;
    IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_last_active) THEN
        RAISE EXCEPTION 'claim: % session IDs but % last-active times', cardinality(p_ids), cardinality(p_last_active)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT r.source = 'retention.sessions', retention.expiry_threshold(pol.max_age, r.cutoff),
           EXISTS (SELECT 1 FROM retention.holds h WHERE h.released_at IS NULL AND h.character_id = p_character),
           EXISTS (SELECT 1 FROM retention.verifications v WHERE v.result = 'present'),
           EXISTS (SELECT 1 FROM retention.deletions_v1 d WHERE d.status = 'deleted'),
           (SELECT count(DISTINCT x) FROM unnest(p_ids) x) <> cardinality(p_ids)
      INTO from_set, threshold, held, refuted, v1, dup
      FROM retention.runs r WHERE r.id = p_run;
    IF dup THEN
        RAISE EXCEPTION 'claim: a session ID appears twice' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(u.session_id ORDER BY u.ord), array_agg(u.last_active_at ORDER BY u.ord)
      INTO session_ids, ats
      FROM (SELECT g.session_id, g.ord,
                   CASE WHEN from_set THEN (SELECT s.last_active_at FROM retention.sessions s
                                            WHERE s.character_id = p_character AND s.session_id = g.session_id)
                        ELSE g.last_active_at END AS last_active_at
            FROM unnest(p_ids, p_last_active) WITH ORDINALITY AS g(session_id, last_active_at, ord)) u
     WHERE u.last_active_at <= threshold
       AND NOT (held AND EXISTS (
               SELECT 1 FROM retention.holds h
               WHERE h.released_at IS NULL AND h.character_id = p_character
                 AND (h.session_id IS NULL OR h.session_id = u.session_id)))
       -- retention.is_deleted, written out: a SQL function with sub-selects is not inlined, and
       -- a call per session costs more than the probes themselves.
       AND NOT (coalesce((SELECT true FROM retention.outcomes d
                     WHERE d.character_id = p_character AND d.session_id = u.session_id AND d.status = 'deleted'
                       AND NOT (refuted AND EXISTS (SELECT 1 FROM retention.verifications v
                                       WHERE v.deletion_id = d.claim_id * 16384 + d.ord AND v.result = 'present'))
                     LIMIT 1), false)
              OR (v1 AND coalesce((SELECT true FROM retention.deletions_v1 d
                     WHERE d.character_id = p_character AND d.session_id = u.session_id AND d.status = 'deleted'
                       AND NOT (refuted AND EXISTS (SELECT 1 FROM retention.verifications v
                                       WHERE v.deletion_id = d.id AND v.result = 'present'))
                     LIMIT 1), false)));
    IF session_ids IS NULL THEN
        claim_id := 0;
        session_ids := '{}';
        RETURN;
    END IF;
    INSERT INTO retention.claims (run_id, character_id, policy_id, policy_character_id, max_age, session_ids, last_active_at)
    VALUES (p_run, p_character, pol.policy_id, pol.policy_character_id, pol.max_age, session_ids, ats)
    RETURNING id INTO claim_id;
END
$$;

-- record, as in 009, without a subtransaction per call and with the refutation probe asked once:
-- the outcomes go in with ON CONFLICT DO NOTHING over every unique index, so a confirmation of a
-- session another claim already recorded deleted is simply not written by the first insert, and
-- a second insert, made only then, writes it as a failed outcome that says so (009's rule, which
-- 009 reached through an exception block: a savepoint on every call). Outcomes of a claim that a
-- run which found this one dead has closed meanwhile stand, as before.
CREATE OR REPLACE FUNCTION retention.record(p_run bigint, p_token text, p_claim bigint, p_status text[],
                                 p_attempts integer[], p_http_status integer[], p_error text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    c        retention.claims;
    n        integer;
    written  integer[];
    inserted integer;
    src      text;
    extra    integer;
    refuted  boolean;
    recorded boolean;
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
    SELECT r.source,
           EXISTS (SELECT 1 FROM retention.verifications v WHERE v.result = 'present'),
           EXISTS (SELECT 1 FROM retention.outcomes o WHERE o.claim_id = p_claim AND o.ord = 1)
      INTO src, refuted, recorded
      FROM retention.runs r WHERE r.id = p_run;
    IF recorded THEN
        RETURN 0;
    END IF;
    WITH ins AS (
        INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, http_status, error, epoch)
        SELECT p_claim, u.ord, c.character_id, c.session_ids[u.ord], u.status, u.attempts,
               nullif(u.http_status, 0), nullif(u.error, ''),
               CASE WHEN refuted AND u.status = 'deleted' AND EXISTS (
                        SELECT 1 FROM retention.verifications v
                        WHERE v.character_id = c.character_id AND v.session_id = c.session_ids[u.ord] AND v.result = 'present') THEN
                   -- retention.deletion_epoch, written out (a function call per session is not
                   -- inlined); counted only for the rare session a verification found present.
                   (SELECT count(DISTINCT v.deletion_id)::integer FROM retention.verifications v
                    WHERE v.character_id = c.character_id AND v.session_id = c.session_ids[u.ord] AND v.result = 'present')
               ELSE 0 END
        FROM unnest(p_status, p_attempts, p_http_status, p_error) WITH ORDINALITY AS u(status, attempts, http_status, error, ord)
        -- Every unique index arbitrates: the claim's own rows (a run that found this one dead
        -- may have closed the claim a moment ago: its failed outcomes stand, the sessions are
        -- sent again, and this answer is not recorded), and one deleted outcome per session and
        -- epoch (another claim recorded this session deleted first: its outcome stands).
        ON CONFLICT DO NOTHING
        RETURNING ord)
    SELECT coalesce(array_agg(ins.ord), '{}') INTO written FROM ins;
    inserted := cardinality(written);
    IF inserted < n THEN
        -- Another run recorded one of these sessions deleted first (runs whose shards overlapped,
        -- which start_run now refuses, or a claim made before such a run recorded): its outcome
        -- stands, this claim's other outcomes are kept, and this confirmation is written as a
        -- failed outcome that says so. Rows of a claim closed meanwhile exist, and stay.
        INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, http_status, error, epoch)
        SELECT p_claim, u.ord, c.character_id, c.session_ids[u.ord], 'failed', u.attempts,
               nullif(u.http_status, 0),
               'confirmed again, but another claim already recorded this session deleted: its outcome stands', 0
        FROM unnest(p_attempts, p_http_status) WITH ORDINALITY AS u(attempts, http_status, ord)
        WHERE u.ord <> ALL (written)
        ON CONFLICT (claim_id, ord) DO NOTHING;
        GET DIAGNOSTICS extra = ROW_COUNT;
        inserted := inserted + extra;
    END IF;
    IF inserted = 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO retention.unsealed (claim_id, leaf) VALUES (p_claim, sha256('\x00'::bytea || retention.claim_content(p_claim)))
    ON CONFLICT (claim_id) DO NOTHING;
    IF src = 'retention.sessions' THEN
        DELETE FROM retention.sessions s
        USING unnest(c.session_ids, c.last_active_at, p_status) AS u(session_id, last_active_at, status)
        WHERE u.status = 'deleted' AND s.character_id = c.character_id AND s.session_id = u.session_id
          AND s.last_active_at = u.last_active_at;
    END IF;
    RETURN n;
END
$$;
