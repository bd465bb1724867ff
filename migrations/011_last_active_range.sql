-- A last activity is usable only after the zero time (0001-01-01 00:00:00 UTC, which Go reads as
-- none) and before the year 10000: policy.ValidLastActive. PostgreSQL's infinity and -infinity,
-- a year BC or a year past 9999 are no session's; the job counts such a row as malformed, like a
-- row without a last activity, and a session with such a row is superseded as by an undated one.
--
-- expired_sessions_in, as in 007, passes over those rows (the subtraction of an infinite expiry
-- failed, and a year BC could not be printed as JSON) and treats them as undated. Only the lower
-- bound needs saying: a candidate is at or before the horizon, which is before now, and a row
-- after the year 9999 (infinity too) is later than any candidate, so it supersedes it already.
-- add_discovered, as in 007, also refuses a time at or before the zero time (a later one than
-- now it refused already).

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
              AND s.last_active_at > '0001-01-01T00:00:00Z'
              AND NOT EXISTS (
                    SELECT 1 FROM %1$s n
                    WHERE n.character_id = s.character_id AND n.session_id = s.session_id
                      AND (n.last_active_at > s.last_active_at OR n.last_active_at IS NULL
                           OR n.last_active_at <= '0001-01-01T00:00:00Z'))
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

CREATE OR REPLACE FUNCTION retention.add_discovered(p_character text, p_ids text[], p_last_active timestamptz[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_last_active) OR cardinality(p_ids) > 10000 THEN
        RAISE EXCEPTION 'add_discovered: want at most 10000 session IDs and as many times'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_last_active) t WHERE t IS NULL OR t > now() OR t <= '0001-01-01T00:00:00Z') THEN
        RAISE EXCEPTION 'add_discovered: a last activity is missing, in the future or before the year 1'
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
