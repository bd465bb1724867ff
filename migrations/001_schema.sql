-- The retention schema: policies, holds, the default session source, runs and deletions.
-- The schema "retention" itself is created by the migrator before this file runs.

-- Policies: one optional default (character_id IS NULL) and at most one row per character.
CREATE TABLE retention.policies (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    character_id text NULL CHECK (character_id IS NULL OR btrim(character_id) <> ''),
    -- Positive, with no negative part (PostgreSQL compares '1 mon -29 days' as 1 day, but on the
    -- calendar it can reach past the cut-off), and at most 200 years.
    max_age      interval NOT NULL CHECK (
                     max_age > interval '0' AND max_age <= interval '200 years'
                     AND extract(year FROM max_age) * 12 + extract(month FROM max_age) >= 0
                     AND extract(day FROM max_age) >= 0
                     AND extract(hour FROM max_age) * 3600 + extract(minute FROM max_age) * 60
                         + extract(second FROM max_age) >= 0),
    enabled      boolean NOT NULL DEFAULT true,
    note         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX policies_one_default ON retention.policies ((true)) WHERE character_id IS NULL;
CREATE UNIQUE INDEX policies_one_per_character ON retention.policies (character_id) WHERE character_id IS NOT NULL;

CREATE FUNCTION retention.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER policies_touch BEFORE UPDATE ON retention.policies
    FOR EACH ROW EXECUTE FUNCTION retention.touch_updated_at();

-- Holds: an active hold (released_at IS NULL) beats every policy. session_id NULL holds the whole
-- character. Holds are released, never deleted, so their history stays.
CREATE TABLE retention.holds (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    character_id   text NOT NULL CHECK (btrim(character_id) <> ''),
    session_id     text NULL CHECK (session_id IS NULL OR btrim(session_id) <> ''),
    reason         text NOT NULL CHECK (btrim(reason) <> ''),
    created_by     text NOT NULL DEFAULT current_user,
    created_at     timestamptz NOT NULL DEFAULT now(),
    released_at    timestamptz NULL,
    released_by    text NULL,
    release_reason text NULL,
    CHECK (released_at IS NULL OR released_at >= created_at)
);
CREATE INDEX holds_active ON retention.holds (character_id, session_id) WHERE released_at IS NULL;

-- A hold may be released once; nothing else about it changes, and it is never deleted.
CREATE FUNCTION retention.holds_keep_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'retention.holds rows are never deleted: release the hold instead (UPDATE ... SET released_at = now())';
    END IF;
    IF OLD.released_at IS NOT NULL THEN
        RAISE EXCEPTION 'hold % is already released; place a new hold instead', OLD.id;
    END IF;
    IF NEW.character_id IS DISTINCT FROM OLD.character_id
       OR NEW.session_id IS DISTINCT FROM OLD.session_id
       OR NEW.reason IS DISTINCT FROM OLD.reason
       OR NEW.created_by IS DISTINCT FROM OLD.created_by
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'hold % can only be released, not edited', OLD.id;
    END IF;
    IF NEW.released_at IS NOT NULL AND NEW.released_by IS NULL THEN
        NEW.released_by := current_user;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER holds_keep_history BEFORE UPDATE OR DELETE ON retention.holds
    FOR EACH ROW EXECUTE FUNCTION retention.holds_keep_history();

-- The default source of session records.
CREATE TABLE retention.sessions (
    character_id   text NOT NULL,
    session_id     text NOT NULL,
    last_active_at timestamptz NOT NULL,
    PRIMARY KEY (character_id, session_id)
);
-- The selection walks sessions oldest first.
CREATE INDEX sessions_last_active ON retention.sessions (last_active_at, character_id, session_id);

-- One row per real run (dry-runs write nothing).
CREATE TABLE retention.runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status         text NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'interrupted')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz NULL,
    cutoff         timestamptz NOT NULL,
    source         text NOT NULL,
    shard_index    integer NOT NULL DEFAULT 0,
    shard_count    integer NOT NULL DEFAULT 1 CHECK (shard_count >= 1 AND shard_index >= 0 AND shard_index < shard_count),
    selected       bigint NOT NULL DEFAULT 0,
    deleted        bigint NOT NULL DEFAULT 0,
    failed         bigint NOT NULL DEFAULT 0,
    skipped        bigint NOT NULL DEFAULT 0,
    skipped_by_reason jsonb NOT NULL DEFAULT '{}',
    budget_reached boolean NOT NULL DEFAULT false,
    settings       jsonb NOT NULL DEFAULT '{}',
    host           text NOT NULL DEFAULT '',
    pid            integer NULL,
    version        text NOT NULL DEFAULT '',
    error          text NULL,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX runs_running ON retention.runs (shard_index, shard_count) WHERE status = 'running';

-- One row per session per run that tried it.
CREATE TABLE retention.deletions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id              bigint NOT NULL REFERENCES retention.runs (id),
    character_id        text NOT NULL,
    session_id          text NOT NULL,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'deleted', 'failed')),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    http_status         integer NULL,
    error               text NULL,
    last_active_at      timestamptz NOT NULL,
    policy_id           bigint NULL,
    policy_character_id text NULL,
    max_age             interval NOT NULL,
    requested_at        timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz NULL,
    UNIQUE (run_id, character_id, session_id),
    CHECK ((status = 'pending') = (completed_at IS NULL))
);
-- A session is deleted once, ever.
CREATE UNIQUE INDEX deletions_one_deleted ON retention.deletions (character_id, session_id) WHERE status = 'deleted';
CREATE INDEX deletions_by_session ON retention.deletions (character_id, session_id);
-- No index on pending rows by run: every claim of a run would insert the same key, and the
-- bench measured that hot spot at a third of the database's time per session. A run's leftover
-- pending rows are found through the (run_id, ...) unique index instead, once per run.

COMMENT ON TABLE retention.policies IS 'Retention policies: character_id NULL is the default; an own row wins; enabled=false means never delete.';
COMMENT ON TABLE retention.holds IS 'Holds beat every policy while released_at IS NULL; session_id NULL holds the whole character.';
COMMENT ON TABLE retention.runs IS 'One row per real retention run.';
COMMENT ON TABLE retention.deletions IS 'One row per session per run that tried to delete it; status deleted only after the API confirmed.';
