-- Long-term memory: what deleting chat history may leave behind. Convai's session list says of
-- each session is_added_to_memory: whether Convai drew long-term memory from it, which deleting
-- the session's chat history is not known to remove. A verify records every session its lists
-- show as added (retention.record_memory_sightings, through the verify run's credentials), live
-- or deleted; the report counts, per character, the deleted sessions recorded so.
-- docs/COMPLIANCE.md ("Long-term memory") says what the record proves and what it cannot.

-- One row per session a verification's list showed with is_added_to_memory true: the first such
-- list (once added, a session stays added). A session never shown so may still have gone into
-- memory: no list saw it, or none saw it before its deletion took it off the list.
CREATE TABLE retention.memory_sightings (
    character_id text NOT NULL,
    session_id   text NOT NULL,
    verify_id    bigint NOT NULL REFERENCES retention.verify_runs (id),
    listed_at    timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (character_id, session_id)
);
CREATE TRIGGER memory_sightings_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.memory_sightings
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- record_memory_sightings records that the list of p_character read at p_listed_at (between the
-- verify run's start and now) showed each of p_session_ids (1 to 10000 well-formed IDs) with
-- is_added_to_memory true. A session recorded before keeps its first row. It returns how many
-- rows it added. Planned with its arguments, as every write function (012).
CREATE FUNCTION retention.record_memory_sightings(p_verify bigint, p_token text, p_character text,
                                                  p_listed_at timestamptz, p_session_ids text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n        integer := cardinality(p_session_ids);
    inserted integer;
BEGIN
    PERFORM retention.authorize_verify(p_verify, p_token);
    IF n IS NULL OR n = 0 OR n > 10000 THEN
        RAISE EXCEPTION 'record_memory_sightings: want 1 to 10000 session IDs'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_listed_at IS NULL OR p_listed_at < (SELECT started_at FROM retention.verify_runs WHERE id = p_verify)
       OR p_listed_at > now() THEN
        RAISE EXCEPTION 'record_memory_sightings: the list time % is not within the verify run', p_listed_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT retention.well_formed_id(p_character)
       OR EXISTS (SELECT 1 FROM unnest(p_session_ids) x WHERE NOT retention.well_formed_id(x)) THEN
        RAISE EXCEPTION 'record_memory_sightings: every ID must be well-formed'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retention.memory_sightings (character_id, session_id, verify_id, listed_at)
    SELECT DISTINCT p_character, x, p_verify, p_listed_at FROM unnest(p_session_ids) x
    ON CONFLICT (character_id, session_id) DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END
$$;
REVOKE EXECUTE ON FUNCTION retention.record_memory_sightings(bigint, text, text, timestamptz, text[]) FROM PUBLIC;
