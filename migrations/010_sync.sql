-- Syncing a source of the app's own into retention.sessions.
--
-- A view over the app's tables cannot be walked page by page: each page re-aggregates the view.
-- `retention sync` (and the first step of every `retention run` with --source) reads the source
-- once, in one streaming pass, into a temporary table of its own session
-- (pg_temp.retention_sync_staging), and sync_merge brings retention.sessions up to date from
-- it. Everything else reads retention.sessions, indexed, as if the app wrote it.
--
-- A session once seen stays in the set until it is deleted at Convai: when the source no longer
-- has it (the app forgot it), it keeps its last activity and is deleted when that expires, like
-- any other. retention.forgotten_sessions lists those sessions, for the report.

-- One row per sync that merged (a failed or rehearsed sync leaves none).
CREATE TABLE retention.syncs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          text NOT NULL,
    full_pass       boolean NOT NULL,
    -- changed_column: the source's column an incremental pass reads by (NULL: a full pass);
    -- since: it read the rows at or after this value; high_water: the latest value it read.
    changed_column  text NULL,
    since           timestamptz NULL,
    high_water      timestamptz NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    rows_read       bigint NOT NULL CHECK (rows_read >= 0),
    sessions        bigint NOT NULL,  -- distinct well-formed sessions read
    added           bigint NOT NULL,  -- new to the set
    changed         bigint NOT NULL,  -- in the set, with a later last activity now
    unchanged       bigint NOT NULL,  -- in the set, nothing later
    already_deleted bigint NOT NULL,  -- deleted at Convai already: not added again
    undated         bigint NOT NULL,  -- a row without a usable last activity: kept as 'infinity', never selected
    malformed       bigint NOT NULL,  -- rows with an ID the rules refuse or a timestamp out of range
    forgotten       bigint NOT NULL,  -- (full pass) in the set, no longer in the source, newly
    returned        bigint NOT NULL   -- back in the source after being forgotten
);
CREATE INDEX syncs_by_source ON retention.syncs (source, id);

-- Sessions of the set that the source no longer had at a full pass, since when.
CREATE TABLE retention.forgotten_sessions (
    character_id text NOT NULL,
    session_id   text NOT NULL,
    since        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (character_id, session_id)
);

-- sync_merge merges pg_temp.retention_sync_staging (character_id text, session_id text,
-- last_active_at timestamptz, bad_time boolean), which the caller filled in this transaction and
-- granted SELECT on to this function's owner, into retention.sessions, and records the sync. One
-- sync merges at a time. A row is malformed when an ID is not well formed or bad_time is set (a
-- timestamp outside years 1-9999, or infinite: its last_active_at arrives NULL); a session with a
-- row without a usable date is undated, as policy.ValidLastActive and the page query have it:
-- it is kept in the set with the last activity 'infinity', which no policy selects (an erasure
-- request still sends it). A session already deleted (retention.is_deleted) is not added again.
-- A later last activity replaces the set's; an earlier one does not (the set keeps the latest
-- it saw). Nothing a sync is given removes a session from the set: only its deletion does.
CREATE FUNCTION retention.sync_merge(p_source text, p_full boolean, p_changed_column text, p_since timestamptz,
                                     p_high_water timestamptz, p_started timestamptz)
RETURNS retention.syncs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET work_mem = '64MB' AS $$
DECLARE
    r retention.syncs;
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1380275271, 1); -- "RETG" 1: one merge at a time
    IF btrim(coalesce(p_source, '')) = '' OR length(p_source) > 200 THEN
        RAISE EXCEPTION 'sync_merge: a source name is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT count(*), count(*) FILTER (WHERE st.bad_time OR NOT retention.well_formed_id(st.character_id)
                                            OR NOT retention.well_formed_id(st.session_id))
      INTO r.rows_read, r.malformed
      FROM pg_temp.retention_sync_staging st;

    -- One pass: each session read, with where the set stands on it. in_set and set_at come from
    -- the set; deleted is retention.is_deleted written out as anti-joins the planner can hash.
    CREATE TEMP TABLE retention_sync_sessions ON COMMIT DROP AS
        SELECT g.character_id, g.session_id, g.last_active_at, g.undated,
               s.session_id IS NOT NULL AS in_set, s.last_active_at AS set_at,
               s.session_id IS NULL AND (
                   EXISTS (SELECT 1 FROM retention.outcomes d
                           WHERE d.character_id = g.character_id AND d.session_id = g.session_id AND d.status = 'deleted'
                             AND NOT EXISTS (SELECT 1 FROM retention.verifications v
                                             WHERE v.deletion_id = d.claim_id * 16384 + d.ord AND v.result = 'present'))
                OR EXISTS (SELECT 1 FROM retention.deletions_v1 d
                           WHERE d.character_id = g.character_id AND d.session_id = g.session_id AND d.status = 'deleted'
                             AND NOT EXISTS (SELECT 1 FROM retention.verifications v
                                             WHERE v.deletion_id = d.id AND v.result = 'present'))) AS deleted
        FROM (SELECT st.character_id, st.session_id, max(st.last_active_at) AS last_active_at,
                     bool_or(st.last_active_at IS NULL) AS undated
              FROM pg_temp.retention_sync_staging st
              WHERE retention.well_formed_id(st.character_id) AND retention.well_formed_id(st.session_id)
              GROUP BY 1, 2) g
        LEFT JOIN retention.sessions s ON s.character_id = g.character_id AND s.session_id = g.session_id;
    ANALYZE pg_temp.retention_sync_sessions;

    SELECT count(*), count(*) FILTER (WHERE g.undated), count(*) FILTER (WHERE g.deleted)
      INTO r.sessions, r.undated, r.already_deleted
      FROM pg_temp.retention_sync_sessions g;

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
    INSERT INTO retention.sessions (character_id, session_id, last_active_at)
    SELECT g.character_id, g.session_id, CASE WHEN g.undated THEN 'infinity' ELSE g.last_active_at END
      FROM pg_temp.retention_sync_sessions g
     WHERE NOT g.in_set AND NOT g.deleted;
    GET DIAGNOSTICS n = ROW_COUNT;
    r.added := n;
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

-- The set's sessions the source no longer has, for the report.
CREATE VIEW retention.forgotten_in_set AS
    SELECT f.character_id, f.session_id, f.since, s.last_active_at
    FROM retention.forgotten_sessions f
    JOIN retention.sessions s ON s.character_id = f.character_id AND s.session_id = f.session_id;
