-- Long-term memory, the rest of issue 18: memory_max_age in the policy history, the memory flag
-- from a run's own lists, and every memory erasure and memory deletion a leaf of the log.
-- Each part below is its own section.

-- ---------------------------------------------------------------------------------------------
-- Part A: memory_max_age in the policy history.
-- ---------------------------------------------------------------------------------------------

-- The history kept max_age, enabled and note; memory_max_age (016) changed unseen. Each row now
-- carries the old and new memory_max_age too, a change of memory_max_age alone is a version,
-- and each policy that sets one gets a baseline row: what was in force when the history began
-- to see it (before this migration, when it was set is not known).
ALTER TABLE retention.policy_history ADD COLUMN old_memory_max_age interval NULL,
                                     ADD COLUMN new_memory_max_age interval NULL;

CREATE OR REPLACE FUNCTION retention.policies_history() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    actor  text := nullif(btrim(current_setting('retention.actor', true)), '');
    reason text := nullif(btrim(current_setting('retention.reason', true)), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO retention.policy_history (policy_id, op, new_character_id, new_max_age, new_enabled, new_note,
                                              new_memory_max_age, actor, reason)
        VALUES (NEW.id, 'insert', NEW.character_id, NEW.max_age, NEW.enabled, NEW.note, NEW.memory_max_age,
                actor, coalesce(reason, nullif(NEW.note, '')));
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO retention.policy_history (policy_id, op, old_character_id, old_max_age, old_enabled, old_note,
                                              old_memory_max_age, new_character_id, new_max_age, new_enabled, new_note,
                                              new_memory_max_age, actor, reason)
        VALUES (NEW.id, 'update', OLD.character_id, OLD.max_age, OLD.enabled, OLD.note, OLD.memory_max_age,
                NEW.character_id, NEW.max_age, NEW.enabled, NEW.note, NEW.memory_max_age,
                actor, coalesce(reason, nullif(NEW.note, '')));
    ELSE
        INSERT INTO retention.policy_history (policy_id, op, old_character_id, old_max_age, old_enabled, old_note,
                                              old_memory_max_age, actor, reason)
        VALUES (OLD.id, 'delete', OLD.character_id, OLD.max_age, OLD.enabled, OLD.note, OLD.memory_max_age,
                actor, coalesce(reason, nullif(OLD.note, '')));
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER policies_history_update ON retention.policies;
CREATE TRIGGER policies_history_update AFTER UPDATE ON retention.policies FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.character_id IS DISTINCT FROM NEW.character_id
          OR OLD.max_age IS DISTINCT FROM NEW.max_age OR OLD.enabled IS DISTINCT FROM NEW.enabled
          OR OLD.note IS DISTINCT FROM NEW.note OR OLD.memory_max_age IS DISTINCT FROM NEW.memory_max_age)
    EXECUTE FUNCTION retention.policies_history();

INSERT INTO retention.policy_history (policy_id, op, new_character_id, new_max_age, new_enabled, new_note,
                                      new_memory_max_age, reason)
SELECT id, 'baseline', character_id, max_age, enabled, note, memory_max_age,
       'memory_max_age in force when the policy history began to record it (migration 017)'
FROM retention.policies WHERE memory_max_age IS NOT NULL
ORDER BY id;

-- (end of part A)

-- ---------------------------------------------------------------------------------------------
-- Part B: the memory flag from a run's own lists (settle, erasure requests).
-- ---------------------------------------------------------------------------------------------

-- A run lists a character too: once to settle a single session the API refused (job's
-- settler), and once for a character's erasure request (the sessions the app never stored).
-- Those lists say is_added_to_memory of every session they show, as a verification's do; a run
-- now records what they said in the same two tables, under its own ID: a row has either the
-- verification's (verify_id) or the run's (run_id), never both. The first list that said so
-- keeps the row, whoever read it.
ALTER TABLE retention.memory_sightings ALTER COLUMN verify_id DROP NOT NULL,
    ADD COLUMN run_id bigint NULL REFERENCES retention.runs (id),
    ADD CONSTRAINT memory_sightings_one_list CHECK ((verify_id IS NULL) <> (run_id IS NULL));
ALTER TABLE retention.memory_listings ALTER COLUMN verify_id DROP NOT NULL,
    ADD COLUMN run_id bigint NULL REFERENCES retention.runs (id),
    ADD CONSTRAINT memory_listings_one_list CHECK ((verify_id IS NULL) <> (run_id IS NULL));

-- record_run_memory_flags is record_memory_flags for a running run: what the list of p_character
-- read at p_listed_at (between the run's start and now) said of each of p_session_ids (1 to
-- 10000 well-formed IDs): p_said[i] is added, not_added or unstated. An added session goes into
-- memory_sightings with the end user the set names for it now (NULL if none), the others into
-- memory_listings, each with the run's ID; a session and answer recorded before (by any list)
-- keep their first row. Only the run, with its token, while it is running, may record. It
-- returns how many rows it added.
CREATE FUNCTION retention.record_run_memory_flags(p_run bigint, p_token text, p_character text,
                                                  p_listed_at timestamptz, p_session_ids text[], p_said text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n        integer := cardinality(p_session_ids);
    added    integer;
    others   integer;
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    IF n IS NULL OR n = 0 OR n > 10000 OR cardinality(p_said) IS DISTINCT FROM n THEN
        RAISE EXCEPTION 'record_run_memory_flags: want 1 to 10000 session IDs and as many answers'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_said) x WHERE x IS NULL OR x NOT IN ('added', 'not_added', 'unstated')) THEN
        RAISE EXCEPTION 'record_run_memory_flags: an answer is not added, not_added or unstated'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_listed_at IS NULL OR p_listed_at < (SELECT started_at FROM retention.runs WHERE id = p_run)
       OR p_listed_at > now() THEN
        RAISE EXCEPTION 'record_run_memory_flags: the list time % is not within the run', p_listed_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT retention.well_formed_id(p_character)
       OR EXISTS (SELECT 1 FROM unnest(p_session_ids) x WHERE NOT retention.well_formed_id(x)) THEN
        RAISE EXCEPTION 'record_run_memory_flags: every ID must be well-formed'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retention.memory_sightings (character_id, session_id, run_id, listed_at, end_user_id)
    SELECT DISTINCT p_character, u.id, p_run, p_listed_at,
           (SELECT s.end_user_id FROM retention.sessions s WHERE s.character_id = p_character AND s.session_id = u.id)
      FROM unnest(p_session_ids, p_said) AS u(id, said)
     WHERE u.said = 'added'
    ON CONFLICT (character_id, session_id) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    INSERT INTO retention.memory_listings (character_id, session_id, said, run_id, listed_at)
    SELECT DISTINCT p_character, u.id, u.said, p_run, p_listed_at
      FROM unnest(p_session_ids, p_said) AS u(id, said)
     WHERE u.said <> 'added'
    ON CONFLICT (character_id, session_id, said) DO NOTHING;
    GET DIAGNOSTICS others = ROW_COUNT;
    RETURN added + others;
END
$$;
REVOKE EXECUTE ON FUNCTION retention.record_run_memory_flags(bigint, text, text, timestamptz, text[], text[]) FROM PUBLIC;

-- deleted_in_memory as in 016, with whose list it was: listed_by is verify (verify_id names
-- the verification), run (run_id, the last column, names the run) or discover.
CREATE OR REPLACE VIEW retention.deleted_in_memory AS
    SELECT x.id AS deletion_id, x.character_id, x.session_id, x.completed_at AS deleted_at, x.erasure_request_id,
           f.listed_at, f.listed_by, f.verify_id,
           coalesce(q.end_user_id, f.end_user_id) AS end_user_id,
           me.id AS memory_erasure_id, me.completed_at AS memory_erased_at,
           f.run_id
    FROM (SELECT ms.character_id, ms.session_id, ms.listed_at,
                 CASE WHEN ms.verify_id IS NOT NULL THEN 'verify' ELSE 'run' END AS listed_by,
                 ms.verify_id, ms.end_user_id, ms.run_id
          FROM retention.memory_sightings ms
          UNION ALL
          SELECT d.character_id, d.session_id, min(d.discovered_at), 'discover', NULL::bigint, NULL::text, NULL::bigint
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

COMMENT ON TABLE retention.memory_listings IS 'Sessions a list (a verification''s or a run''s) showed with is_added_to_memory false (not_added) or without a readable answer (unstated), the first list each.';
COMMENT ON VIEW retention.deleted_in_memory IS 'Each deleted row whose session a list (a verification''s, a run''s or discover''s) showed as added to long-term memory, with its end user where known and the first erasure of that memory since.';

-- (end of part B)

-- ---------------------------------------------------------------------------------------------
-- Part C: memory erasures and memory deletions as leaves of the log.
-- ---------------------------------------------------------------------------------------------

-- (end of part C)
