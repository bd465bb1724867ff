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

-- policies_as_of(t) gives each policy's memory_max_age too. Its result changes, so it is dropped
-- and made again (no view or function depends on it). The grants it had are given again, so
-- that a database where sql/roles.sql ran (EXECUTE revoked from PUBLIC, granted to
-- retention_auditor) keeps exactly them until roles.sql runs again; one where it did not keeps
-- the default, EXECUTE for PUBLIC.
SELECT set_config('retention.m017_policies_as_of_acl', coalesce(p.proacl::text, ''), true)
FROM pg_catalog.pg_proc p WHERE p.oid = 'retention.policies_as_of(timestamptz)'::regprocedure;

DROP FUNCTION retention.policies_as_of(timestamptz);

-- policies_as_of(t) is the policies in force at t, each with its version (a policy_history id).
-- memory_max_age: NULL when the policy kept memory as long as Convai did, or when the version
-- was recorded before migration 017, which is when the history began to record it (a policy
-- that set one then has a baseline row of 017).
CREATE FUNCTION retention.policies_as_of(t timestamptz)
RETURNS TABLE (policy_id bigint, version bigint, character_id text, max_age interval, enabled boolean, note text,
               changed_at timestamptz, changed_by text, actor text, reason text, memory_max_age interval)
LANGUAGE sql STABLE AS $$
    SELECT h.policy_id, h.id, h.new_character_id, h.new_max_age, h.new_enabled, h.new_note,
           h.changed_at, h.changed_by, h.actor, h.reason, h.new_memory_max_age
    FROM (SELECT DISTINCT ON (x.policy_id) x.*
          FROM retention.policy_history x
          WHERE x.changed_at <= t
          ORDER BY x.policy_id, x.changed_at DESC, x.id DESC) h
    WHERE h.op <> 'delete'
    ORDER BY h.new_character_id NULLS FIRST, h.policy_id
$$;

DO $$
DECLARE
    acl   text := current_setting('retention.m017_policies_as_of_acl');
    fn    regprocedure := 'retention.policies_as_of(timestamptz)'::regprocedure;
    owner oid := (SELECT p.proowner FROM pg_catalog.pg_proc p WHERE p.oid = fn);
    g     record;
BEGIN
    IF acl = '' THEN
        RETURN; -- the default ACL, which the new function has too
    END IF;
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    FOR g IN SELECT a.grantee, a.is_grantable FROM pg_catalog.aclexplode(acl::aclitem[]) a
             WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> owner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s%s', fn,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END,
                       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;

-- (end of part A)

-- ---------------------------------------------------------------------------------------------
-- Part B: the memory flag from a run's own lists (settle, erasure requests).
-- ---------------------------------------------------------------------------------------------

-- (end of part B)

-- ---------------------------------------------------------------------------------------------
-- Part C: memory erasures and memory deletions as leaves of the log.
-- ---------------------------------------------------------------------------------------------

-- (end of part C)
