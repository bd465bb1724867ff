-- What gets deleted, made safer: a floor of one hour under every policy's max_age, and runs the
-- safety cap aborted (status 'aborted', with the figures that tripped it on the run row).

-- A max_age under one hour is a mistake: '30' is 30 seconds to PostgreSQL, not 30 days, and a
-- run would then delete sessions active a minute ago. Policies already that short stop the
-- migration, naming them, rather than being changed behind the operator's back.
DO $$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(format('policy %s (%s): max_age %L', id,
                             CASE WHEN character_id IS NULL THEN 'the default' ELSE format('character %L', character_id) END, max_age::text), '; ' ORDER BY id)
      INTO bad
      FROM retention.policies
     WHERE max_age < interval '1 hour';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'retention.policies has max_age values under one hour: %', bad
            USING ERRCODE = 'check_violation',
                  HINT = 'a bare number is seconds in PostgreSQL (''30'' is 30 seconds); set what you meant, '
                         'e.g. UPDATE retention.policies SET max_age = ''30 days'' WHERE id = ..., then migrate again';
    END IF;
END
$$;

-- The trigger gives the reason in the message; the CHECK holds the rule when triggers are off.
CREATE FUNCTION retention.policies_max_age_floor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.max_age < interval '1 hour' THEN
        RAISE EXCEPTION 'max_age % is under one hour: a bare number is seconds in PostgreSQL (''30'' is 30 seconds); write the unit, e.g. ''30 days''',
            quote_literal(NEW.max_age::text)
            USING ERRCODE = 'check_violation', TABLE = 'policies', COLUMN = 'max_age',
                  CONSTRAINT = 'policies_max_age_at_least_one_hour';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER policies_max_age_floor BEFORE INSERT OR UPDATE OF max_age ON retention.policies
    FOR EACH ROW EXECUTE FUNCTION retention.policies_max_age_floor();
ALTER TABLE retention.policies
    ADD CONSTRAINT policies_max_age_at_least_one_hour CHECK (max_age >= interval '1 hour');

-- Runs: 'aborted' is a run the safety cap stopped before its first claim. would_send is what
-- its selection would have sent (budget applied), source_sessions the source's rows in its
-- shard when a percent cap was set, abort_limit the lowest limit in sessions. Every run that
-- checked the cap records these, aborted or not.
ALTER TABLE retention.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE retention.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'interrupted', 'aborted'));
ALTER TABLE retention.runs
    ADD COLUMN would_send      bigint NULL CHECK (would_send >= 0),
    ADD COLUMN source_sessions bigint NULL CHECK (source_sessions >= 0),
    ADD COLUMN abort_limit     bigint NULL CHECK (abort_limit >= 0),
    ADD CONSTRAINT runs_aborted_figures CHECK (
        status <> 'aborted' OR (would_send IS NOT NULL AND abort_limit IS NOT NULL AND would_send > abort_limit));

-- finish_run, with the cap's figures. An aborted run has sent nothing: it has no claim.
CREATE FUNCTION retention.finish_run(p_run bigint, p_token text, p_status text, p_selected bigint,
                                     p_deleted bigint, p_failed bigint, p_skipped bigint,
                                     p_skipped_by_reason jsonb, p_budget_reached boolean, p_error text,
                                     p_size bigint, p_root bytea, p_note text,
                                     p_would_send bigint, p_source_sessions bigint, p_abort_limit bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    IF p_status NOT IN ('succeeded', 'partial', 'failed', 'interrupted', 'aborted') THEN
        RAISE EXCEPTION 'finish_run: % is not a final status', p_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_status = 'aborted' AND EXISTS (SELECT 1 FROM retention.claims c WHERE c.run_id = p_run) THEN
        RAISE EXCEPTION 'finish_run: run % claimed sessions, so it cannot be aborted', p_run
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT ((p_size = 0 AND p_root = sha256(''::bytea))
            OR EXISTS (SELECT 1 FROM retention.log_roots l WHERE l.size = p_size AND l.root = p_root)) THEN
        RAISE EXCEPTION 'finish_run: the log never had size % with root %', p_size, encode(p_root, 'hex')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retention.checkpoints (run_id, size, root, note) VALUES (p_run, p_size, p_root, p_note);
    UPDATE retention.runs
    SET status = p_status, finished_at = now(), selected = p_selected, deleted = p_deleted, failed = p_failed,
        skipped = p_skipped, skipped_by_reason = coalesce(p_skipped_by_reason, '{}'),
        budget_reached = p_budget_reached, error = p_error,
        would_send = p_would_send, source_sessions = p_source_sessions, abort_limit = p_abort_limit
    WHERE id = p_run;
END
$$;

-- The 004 signature stays for binaries of before this migration; it records no figures.
CREATE OR REPLACE FUNCTION retention.finish_run(p_run bigint, p_token text, p_status text, p_selected bigint,
                                                p_deleted bigint, p_failed bigint, p_skipped bigint,
                                                p_skipped_by_reason jsonb, p_budget_reached boolean, p_error text,
                                                p_size bigint, p_root bytea, p_note text)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT retention.finish_run(p_run, p_token, p_status, p_selected, p_deleted, p_failed, p_skipped,
                                p_skipped_by_reason, p_budget_reached, p_error, p_size, p_root, p_note,
                                NULL, NULL, NULL)
$$;
