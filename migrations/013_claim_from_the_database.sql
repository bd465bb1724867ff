-- claim derives what it claims from the database (issue: a stolen job credential claimed, in a run
-- of its own, sessions of a character whose policy says never, with a forged policy and a
-- back-dated last activity). As in 007, plus:
--   - the policy is retention.policy_for(character): no policy, or a disabled own policy, claims
--     nothing; the claim records the database's policy, not the caller's arguments;
--   - a run of the job's own set (source retention.sessions: every run of the binary, which
--     syncs an app's source into it first) takes each session's last activity from the set, and
--     a session not in the set is left out;
--   - a session is claimed only if its last activity is at or before the policy's threshold at
--     the run's cut-off (retention.expiry_threshold, the rule the conformance test pins).
-- A session left out is not sent; the job counts it as left out at the claim.
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
    SELECT r.source = 'retention.sessions', retention.expiry_threshold(pol.max_age, r.cutoff)
      INTO from_set, threshold
      FROM retention.runs r WHERE r.id = p_run;
    IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_last_active) THEN
        RAISE EXCEPTION 'claim: % session IDs but % last-active times', cardinality(p_ids), cardinality(p_last_active)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(p_ids) x) <> cardinality(p_ids) THEN
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
       AND NOT EXISTS (
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
    VALUES (p_run, p_character, pol.policy_id, pol.policy_character_id, pol.max_age, session_ids, ats)
    RETURNING id INTO claim_id;
END
$$;
