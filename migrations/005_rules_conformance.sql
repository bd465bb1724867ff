-- The SQL copies of the job's rules (policy/) brought back in line with the Go rules, and given
-- the cut-off as a parameter, so that migrations/conformance_test.go can run every case of the
-- rules' tests (policy/policytest) through them at the cases' fixed cut-off and compare. The
-- report, the BI views and the job then agree on every session.

-- well_formed_id is policy.Check for one ID: present, not blank (white space as Go's
-- unicode.IsSpace sees it, spelled out so that the database's locale cannot widen it), at most
-- 256 bytes, no control character (Go's unicode.IsControl: C0, DEL and C1). 003 refused only C0
-- and DEL, so an ID holding U+0085 was skipped by every run but counted as waiting here.
CREATE OR REPLACE FUNCTION retention.well_formed_id(id text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT id IS NOT NULL
       AND octet_length(id) <= 256
       AND id !~ '[\x01-\x1f\x7f-\x9f]'
       AND id !~ '^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$'
$$;

-- expiry_threshold is a policy's threshold at a cut-off: a session last active at or before it
-- has expired. Computed in UTC, as the job computes it when a run loads its rules.
CREATE FUNCTION retention.expiry_threshold(max_age interval, cutoff timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((cutoff AT TIME ZONE 'UTC') - max_age) AT TIME ZONE 'UTC'
$$;

-- expired_sessions_in(source, cutoff) is the backlog as a run with that cut-off would see it; see
-- expired_sessions_in(source) in 003 for the columns. expired_for is cutoff - expired_at.
CREATE FUNCTION retention.expired_sessions_in(source regclass, cutoff timestamptz)
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
          AND NOT EXISTS (
                SELECT 1 FROM retention.deletions d
                WHERE d.character_id = c.character_id AND d.session_id = c.session_id AND d.status = 'deleted')
    $q$, source) USING cutoff;
END
$fn$;

-- expired_sessions_in(source) is the backlog now: the same rules at the cut-off now().
CREATE OR REPLACE FUNCTION retention.expired_sessions_in(source regclass)
RETURNS TABLE (character_id text, session_id text, last_active_at timestamptz, policy_id bigint,
               policy_character_id text, max_age interval, expired_at timestamptz,
               expired_for interval, held boolean, hold_id bigint, hold_reason text)
LANGUAGE sql STABLE AS $$
    SELECT * FROM retention.expired_sessions_in(source, now())
$$;
