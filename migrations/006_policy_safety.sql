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
    IF NEW.max_age <= interval '0' THEN
        RAISE EXCEPTION 'max_age % is not positive: a policy keeps sessions for at least one hour', quote_literal(NEW.max_age::text)
            USING ERRCODE = 'check_violation', TABLE = 'policies', COLUMN = 'max_age',
                  CONSTRAINT = 'policies_max_age_at_least_one_hour';
    END IF;
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

-- 004's signature goes: it shipped with this migration, so no binary calls it.
DROP FUNCTION retention.finish_run(bigint, text, text, bigint, bigint, bigint, bigint, jsonb, boolean, text, bigint, bytea, text);

-- Policy history: every insert, update and delete of a policy, whoever makes it (retention policy
-- apply, or plain SQL), written by a trigger with the old and the new values, who, when and why.
-- Append-only, as the log is. A row's id is the policy's version from changed_at on: the
-- version in force at an instant is the policy's latest row at or before it.
--   changed_by  current_user of the change
--   actor       the person, when the writer says (retention policy apply --actor, or
--               SET LOCAL retention.actor = '...' before plain SQL)
--   reason      SET LOCAL retention.reason (retention policy apply --reason), else the note
--   changed_at  now(): the start of the changing transaction, the same for all its changes
CREATE TABLE retention.policy_history (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    policy_id            bigint NOT NULL,
    op                   text NOT NULL CHECK (op IN ('baseline', 'insert', 'update', 'delete')),
    old_character_id     text NULL,
    old_max_age          interval NULL,
    old_enabled          boolean NULL,
    old_note             text NULL,
    new_character_id     text NULL,
    new_max_age          interval NULL,
    new_enabled          boolean NULL,
    new_note             text NULL,
    changed_by           text NOT NULL DEFAULT current_user,
    actor                text NULL,
    reason               text NULL,
    changed_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((op IN ('insert', 'baseline')) = (old_max_age IS NULL)),
    CHECK ((op = 'delete') = (new_max_age IS NULL))
);
CREATE INDEX policy_history_by_policy ON retention.policy_history (policy_id, changed_at);
CREATE TRIGGER policy_history_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.policy_history
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- The policies in force when the history began.
INSERT INTO retention.policy_history (policy_id, op, new_character_id, new_max_age, new_enabled, new_note, reason)
SELECT id, 'baseline', character_id, max_age, enabled, note, 'in force when the policy history began (migration 006)'
FROM retention.policies ORDER BY id;

CREATE FUNCTION retention.policies_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor  text := nullif(btrim(current_setting('retention.actor', true)), '');
    reason text := nullif(btrim(current_setting('retention.reason', true)), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO retention.policy_history (policy_id, op, new_character_id, new_max_age, new_enabled, new_note, actor, reason)
        VALUES (NEW.id, 'insert', NEW.character_id, NEW.max_age, NEW.enabled, NEW.note, actor, coalesce(reason, nullif(NEW.note, '')));
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO retention.policy_history (policy_id, op, old_character_id, old_max_age, old_enabled, old_note,
                                              new_character_id, new_max_age, new_enabled, new_note, actor, reason)
        VALUES (NEW.id, 'update', OLD.character_id, OLD.max_age, OLD.enabled, OLD.note,
                NEW.character_id, NEW.max_age, NEW.enabled, NEW.note, actor, coalesce(reason, nullif(NEW.note, '')));
    ELSE
        INSERT INTO retention.policy_history (policy_id, op, old_character_id, old_max_age, old_enabled, old_note, actor, reason)
        VALUES (OLD.id, 'delete', OLD.character_id, OLD.max_age, OLD.enabled, OLD.note, actor, coalesce(reason, nullif(OLD.note, '')));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER policies_history_insert_delete AFTER INSERT OR DELETE ON retention.policies
    FOR EACH ROW EXECUTE FUNCTION retention.policies_history();
-- An update that changes nothing a run reads (only updated_at) is not a new version.
CREATE TRIGGER policies_history_update AFTER UPDATE ON retention.policies
    FOR EACH ROW WHEN ((OLD.id, OLD.character_id, OLD.max_age, OLD.enabled, OLD.note)
                       IS DISTINCT FROM (NEW.id, NEW.character_id, NEW.max_age, NEW.enabled, NEW.note))
    EXECUTE FUNCTION retention.policies_history();
-- TRUNCATE would leave no trace: refuse it (DELETE leaves one row per policy).
CREATE TRIGGER policies_no_truncate BEFORE TRUNCATE ON retention.policies
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- policies_as_of(t) is the policies in force at t, each with its version (a policy_history id).
CREATE FUNCTION retention.policies_as_of(t timestamptz)
RETURNS TABLE (policy_id bigint, version bigint, character_id text, max_age interval, enabled boolean, note text,
               changed_at timestamptz, changed_by text, actor text, reason text)
LANGUAGE sql STABLE AS $$
    SELECT h.policy_id, h.id, h.new_character_id, h.new_max_age, h.new_enabled, h.new_note,
           h.changed_at, h.changed_by, h.actor, h.reason
    FROM (SELECT DISTINCT ON (x.policy_id) x.*
          FROM retention.policy_history x
          WHERE x.changed_at <= t
          ORDER BY x.policy_id, x.changed_at DESC, x.id DESC) h
    WHERE h.op <> 'delete'
    ORDER BY h.new_character_id NULLS FIRST, h.policy_id
$$;

COMMENT ON TABLE retention.policy_history IS 'Every change of retention.policies (insert, update, delete), by trigger; append-only. id is the policy version.';
