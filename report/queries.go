package report

// The report's statements. They read the views and functions of migration 003 (and
// retention.deletions for "not deleted since"), never the tables' own arithmetic, so a BI tool on
// the same views sees the same figures. Parameters: $1 since, $2 until, $3 character ('' for
// all), $4 the source relation, $5 the SLA (dailyOutcomesSQL, which reads no source: $4 the SLA).
//
// A deletion is late when it was confirmed more than the SLA after the session expired:
// completed_at > expired_at + SLA, the rule by which backlogChangesSQL counts a deleted session
// overdue until its deletion. A deletion under an erasure request has no expired_at: never late.

// charactersSQL is one row per character: outcomes of the period, the backlog now, the policy.
const charactersSQL = `
	WITH outcomes AS (
	    SELECT o.character_id,
	           count(*) FILTER (WHERE o.status = 'deleted') AS deleted,
	           count(*) FILTER (WHERE o.status = 'deleted' AND o.completed_at > o.expired_at + $5::interval) AS deleted_late,
	           percentile_disc(0.5) WITHIN GROUP (ORDER BY o.lag_seconds) FILTER (WHERE o.status = 'deleted') AS lag_p50,
	           percentile_disc(0.95) WITHIN GROUP (ORDER BY o.lag_seconds) FILTER (WHERE o.status = 'deleted') AS lag_p95,
	           max(o.lag_seconds) AS lag_max
	    FROM retention.deletion_outcomes o
	    WHERE o.status <> 'pending' AND o.completed_at >= $1::timestamptz AND o.completed_at < $2::timestamptz
	      AND ($3::text = '' OR o.character_id = $3::text)
	    GROUP BY o.character_id
	), failed AS (
	    SELECT o.character_id, count(DISTINCT o.session_id) AS failed
	    FROM retention.deletion_outcomes o
	    WHERE o.status = 'failed' AND o.completed_at >= $1::timestamptz AND o.completed_at < $2::timestamptz
	      AND ($3::text = '' OR o.character_id = $3::text)
	      AND NOT retention.is_deleted(o.character_id, o.session_id)
	    GROUP BY o.character_id
	), backlog AS (
	    SELECT e.character_id,
	           count(*) FILTER (WHERE NOT e.held) AS outstanding,
	           count(*) FILTER (WHERE e.held) AS held,
	           count(*) FILTER (WHERE NOT e.held AND e.expired_for > $5::interval) AS overdue
	    FROM retention.expired_sessions_in($4::text::regclass) e
	    WHERE $3::text = '' OR e.character_id = $3::text
	    GROUP BY e.character_id
	), characters AS (
	    SELECT character_id FROM outcomes
	    UNION SELECT character_id FROM failed
	    UNION SELECT character_id FROM backlog
	    UNION SELECT character_id FROM retention.policies
	          WHERE character_id IS NOT NULL AND ($3::text = '' OR character_id = $3::text)
	    UNION SELECT $3::text WHERE $3::text <> ''
	)
	SELECT c.character_id, p.decision, p.policy_id, p.max_age::text, p.held_by,
	       coalesce(o.deleted, 0), coalesce(o.deleted_late, 0), coalesce(f.failed, 0),
	       coalesce(b.outstanding, 0), coalesce(b.held, 0), coalesce(b.overdue, 0),
	       o.lag_p50, o.lag_p95, o.lag_max
	FROM characters c
	CROSS JOIN LATERAL retention.policy_for(c.character_id) p
	LEFT JOIN outcomes o ON o.character_id = c.character_id
	LEFT JOIN failed f ON f.character_id = c.character_id
	LEFT JOIN backlog b ON b.character_id = c.character_id
	ORDER BY c.character_id`

// totalLagSQL is the lag over all the deletions of the period.
const totalLagSQL = `
	SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY o.lag_seconds),
	       percentile_disc(0.95) WITHIN GROUP (ORDER BY o.lag_seconds),
	       max(o.lag_seconds)
	FROM retention.deletion_outcomes o
	WHERE o.status = 'deleted' AND o.completed_at >= $1::timestamptz AND o.completed_at < $2::timestamptz
	  AND ($3::text = '' OR o.character_id = $3::text)`

// runsSQL lists the runs that started in the period.
const runsSQL = `
	SELECT run_id, status, started_at, finished_at, duration_seconds, shard_index, shard_count,
	       selected, deleted, failed, skipped, budget_reached, coalesce(error, '')
	FROM retention.run_history
	WHERE started_at >= $1::timestamptz AND started_at < $2::timestamptz
	ORDER BY started_at, run_id`

// dailyOutcomesSQL counts the outcomes of each UTC day, as retention.daily_deletions does, but
// only within the period, and the late deletions among them.
const dailyOutcomesSQL = `
	SELECT (o.completed_at AT TIME ZONE 'UTC')::date,
	       count(*) FILTER (WHERE o.status = 'deleted'),
	       count(*) FILTER (WHERE o.status = 'deleted' AND o.completed_at > o.expired_at + $4::interval),
	       count(*) FILTER (WHERE o.status = 'failed')
	FROM retention.deletion_outcomes o
	WHERE o.status <> 'pending' AND o.completed_at >= $1::timestamptz AND o.completed_at < $2::timestamptz
	  AND ($3::text = '' OR o.character_id = $3::text)
	GROUP BY 1`

// backlogChangesSQL reconstructs how the backlog changed each UTC day up to the end of the
// period: a session deleted since the period began was waiting from its expiry to its confirmed
// deletion, and overdue from its expiry plus the SLA to its deletion; a session waiting now (and
// not held) has been waiting since its expiry, and overdue since its expiry plus the SLA. A day's
// backlog is the sum of the changes up to it.
const backlogChangesSQL = `
	WITH deleted AS (
	    SELECT o.expired_at, o.completed_at
	    FROM retention.deletion_outcomes o
	    WHERE o.status = 'deleted' AND o.completed_at >= $1::timestamptz AND o.expired_at < $2::timestamptz
	      AND ($3::text = '' OR o.character_id = $3::text)
	), waiting AS (
	    SELECT e.expired_at
	    FROM retention.expired_sessions_in($4::text::regclass) e
	    WHERE NOT e.held AND e.expired_at < $2::timestamptz AND ($3::text = '' OR e.character_id = $3::text)
	), changes AS (
	    SELECT expired_at AS at, 1 AS backlog, 0 AS overdue FROM deleted
	    UNION ALL SELECT completed_at, -1, 0 FROM deleted
	    UNION ALL SELECT expired_at + $5::interval, 0, 1 FROM deleted WHERE completed_at > expired_at + $5::interval
	    UNION ALL SELECT completed_at, 0, -1 FROM deleted WHERE completed_at > expired_at + $5::interval
	    UNION ALL SELECT expired_at, 1, 0 FROM waiting
	    UNION ALL SELECT expired_at + $5::interval, 0, 1 FROM waiting WHERE expired_at + $5::interval < now()
	)
	SELECT (at AT TIME ZONE 'UTC')::date, sum(backlog)::bigint, sum(overdue)::bigint
	FROM changes
	WHERE at < $2::timestamptz
	GROUP BY 1
	ORDER BY 1`
