-- Views for compliance reporting and BI tools. `retention report` reads these same views and
-- functions, so a dashboard and the report cannot disagree. docs/COMPLIANCE.md documents them.
-- Days are UTC days; instants are timestamptz.

-- well_formed_id applies the job's rule for an ID it will send (policy.Check): present, not
-- blank (white space as Go's unicode.IsSpace sees it), at most 256 bytes, no control character.
CREATE FUNCTION retention.well_formed_id(id text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT id IS NOT NULL
       AND octet_length(id) <= 256
       AND id !~ '[\x01-\x1f\x7f]'
       AND id !~ '^[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$'
$$;

-- policy_for is the policy in force for one character now, with the job's precedence: the
-- character's own row wins over the default; an own row that is disabled means never; without
-- an own row the enabled default applies; otherwise no policy. decision is one of own_policy,
-- default_policy, disabled, no_policy (the job's words). It always returns one row. held_by is
-- the oldest active hold on the whole character, if any: a held character is never touched.
CREATE FUNCTION retention.policy_for(for_character text)
RETURNS TABLE (decision text, policy_id bigint, policy_character_id text, max_age interval, held_by bigint)
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p.id IS NULL THEN 'no_policy'
                WHEN p.character_id IS NOT NULL AND p.enabled THEN 'own_policy'
                WHEN p.character_id IS NOT NULL THEN 'disabled'
                WHEN p.enabled THEN 'default_policy'
                ELSE 'no_policy' END,
           p.id, p.character_id, p.max_age,
           (SELECT min(h.id) FROM retention.holds h
             WHERE h.released_at IS NULL AND h.character_id = for_character AND h.session_id IS NULL)
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT * FROM retention.policies
        WHERE character_id = for_character OR character_id IS NULL
        ORDER BY character_id NULLS LAST
        LIMIT 1) p ON true
$$;

-- expired_sessions_in lists the sessions of a source that have expired and are not deleted: the
-- backlog, with the rules of the job. A session is taken at its latest row (one with a later row,
-- or with a row without last_active_at, is not expired); its IDs must be well-formed; its
-- character's policy must delete (own or default, enabled); it has expired when last_active_at
-- <= now() - max_age (computed in UTC, as the job does); and no deletion of it is recorded.
-- held is true when an active hold protects it (hold_id and hold_reason name the hold): held
-- sessions wait legitimately and are not overdue. expired_at is last_active_at + max_age.
CREATE FUNCTION retention.expired_sessions_in(source regclass)
RETURNS TABLE (character_id text, session_id text, last_active_at timestamptz, policy_id bigint,
               policy_character_id text, max_age interval, expired_at timestamptz,
               expired_for interval, held boolean, hold_id bigint, hold_reason text)
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH horizon AS (
            SELECT max(((now() AT TIME ZONE 'UTC') - p.max_age) AT TIME ZONE 'UTC') AS at
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
               now() - (((c.last_active_at AT TIME ZONE 'UTC') + r.max_age) AT TIME ZONE 'UTC'),
               h.id IS NOT NULL, h.id, h.reason
        FROM candidates c
        JOIN rules r ON r.character_id = c.character_id
        LEFT JOIN LATERAL (
            SELECT h.id, h.reason FROM retention.holds h
            WHERE h.released_at IS NULL AND h.character_id = c.character_id
              AND (h.session_id IS NULL OR h.session_id = c.session_id)
            ORDER BY h.session_id NULLS FIRST, h.id
            LIMIT 1) h ON true
        WHERE c.last_active_at <= ((now() AT TIME ZONE 'UTC') - r.max_age) AT TIME ZONE 'UTC'
          AND retention.well_formed_id(c.character_id) AND retention.well_formed_id(c.session_id)
          AND NOT EXISTS (
                SELECT 1 FROM retention.deletions d
                WHERE d.character_id = c.character_id AND d.session_id = c.session_id AND d.status = 'deleted')
    $q$, source);
END
$fn$;

-- expired_sessions is the backlog of the default source, retention.sessions. Overdue sessions
-- are those not held and expired for longer than the service level, e.g.
--   SELECT * FROM retention.expired_sessions WHERE NOT held AND expired_for > interval '7 days'
CREATE VIEW retention.expired_sessions AS
    SELECT * FROM retention.expired_sessions_in('retention.sessions');

-- deletion_outcomes is retention.deletions with what an auditor derives from each row: when
-- its session expired under the policy recorded on the row, how long after that it was
-- confirmed deleted, and its seal.
CREATE VIEW retention.deletion_outcomes AS
    SELECT d.id AS deletion_id, d.run_id, d.character_id, d.session_id, d.status, d.attempts,
           d.http_status, d.error, d.last_active_at, d.policy_id, d.policy_character_id, d.max_age,
           ((d.last_active_at AT TIME ZONE 'UTC') + d.max_age) AT TIME ZONE 'UTC' AS expired_at,
           d.requested_at, d.completed_at,
           CASE WHEN d.status = 'deleted' THEN
               extract(epoch FROM d.completed_at
                   - (((d.last_active_at AT TIME ZONE 'UTC') + d.max_age) AT TIME ZONE 'UTC'))::double precision
           END AS lag_seconds,
           s.seq AS seal_seq, encode(s.hash, 'hex') AS seal_hash, s.sealed_at
    FROM retention.deletions d
    LEFT JOIN retention.seals s ON s.deletion_id = d.id;

-- daily_deletions counts final outcomes per UTC day of completion and character. deleted and
-- failed count rows (a session that failed twice counts twice); lag is from expiry to the
-- confirmed deletion, in seconds, over the deleted rows; percentiles are percentile_disc (the
-- p95 is a lag some deletion had, and 95 % of the deletions took at most that long).
CREATE VIEW retention.daily_deletions AS
    SELECT (o.completed_at AT TIME ZONE 'UTC')::date AS day,
           o.character_id,
           count(*) FILTER (WHERE o.status = 'deleted') AS deleted,
           count(*) FILTER (WHERE o.status = 'failed') AS failed,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY o.lag_seconds) FILTER (WHERE o.status = 'deleted') AS lag_p50_seconds,
           percentile_disc(0.95) WITHIN GROUP (ORDER BY o.lag_seconds) FILTER (WHERE o.status = 'deleted') AS lag_p95_seconds,
           max(o.lag_seconds) AS lag_max_seconds
    FROM retention.deletion_outcomes o
    WHERE o.status <> 'pending'
    GROUP BY 1, 2;

-- run_history is one row per run, with its duration.
CREATE VIEW retention.run_history AS
    SELECT r.id AS run_id, r.status, r.started_at, r.finished_at,
           extract(epoch FROM r.finished_at - r.started_at)::double precision AS duration_seconds,
           r.cutoff, r.source, r.shard_index, r.shard_count, r.selected, r.deleted, r.failed,
           r.skipped, r.skipped_by_reason, r.budget_reached, r.host, r.version, r.error
    FROM retention.runs r;

COMMENT ON VIEW retention.expired_sessions IS 'Sessions of retention.sessions expired under the job''s rules and not deleted; overdue = NOT held AND expired_for > SLA.';
COMMENT ON VIEW retention.deletion_outcomes IS 'Every deletion attempt with its expiry, its lag to confirmed deletion and its seal.';
COMMENT ON VIEW retention.daily_deletions IS 'Final outcomes per UTC day of completion and character, with lag percentiles (percentile_disc).';
COMMENT ON VIEW retention.run_history IS 'One row per run with its duration and counts.';
