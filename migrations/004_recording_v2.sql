-- Recording v2: one claim row per chunk before its request, insert-only outcomes after the
-- answer, and a Merkle transparency log (RFC 6962, as Go's checksum database keeps it) with one
-- leaf per recorded claim, appended in batches. The job's role writes only through the
-- functions below, which run as the schema owner and check that the caller is the run that is
-- running, holds its lock and knows its credentials; every time is the server's clock.
--
-- retention.deletions keeps its name, columns and meaning for readers: it becomes a view over
-- the v1 rows (now retention.deletions_v1, still sealed by the v1 chain) and the v2 claims and
-- outcomes. docs/COMPLIANCE.md describes the encodings.

-- The v1 rows, their seals and their guards stay as they are, under a new name. Nothing writes
-- new v1 rows: the job role loses its grants on the table (sql/roles.sql).
ALTER TABLE retention.deletions RENAME TO deletions_v1;
DROP VIEW retention.daily_deletions;
DROP VIEW retention.deletion_outcomes;

CREATE OR REPLACE FUNCTION retention.seal_outcomes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids      bigint[];
    contents bytea[];
    prevs    bytea[];
    hashes   bytea[];
    head_seq bigint;
    h        bytea;
    n        integer;
BEGIN
    SELECT array_agg(nw.id ORDER BY nw.id),
           array_agg(retention.seal_content(nw::retention.deletions_v1) ORDER BY nw.id)
      INTO ids, contents
      FROM sealed_new nw
      JOIN sealed_old od ON od.id = nw.id
     WHERE od.status = 'pending' AND nw.status <> 'pending';
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    n := cardinality(ids);
    SELECT seq, hash INTO head_seq, h FROM retention.seal_head WHERE one FOR UPDATE;
    prevs := array_fill(NULL::bytea, ARRAY[n]);
    hashes := prevs;
    FOR i IN 1 .. n LOOP
        prevs[i] := h;
        h := sha256(h || contents[i]);
        hashes[i] := h;
    END LOOP;
    INSERT INTO retention.seals (seq, deletion_id, prev_hash, hash)
    SELECT head_seq + u.ord, u.id, u.prev, u.hash
      FROM unnest(ids, prevs, hashes) WITH ORDINALITY AS u(id, prev, hash, ord);
    UPDATE retention.seal_head SET seq = head_seq + n, hash = h WHERE one;
    RETURN NULL;
END
$$;

-- A run's credentials: a random token handed to the run by start_run, kept here as its SHA-256,
-- and the server process holding the run's lock. Only the schema owner reads this table.
CREATE TABLE retention.run_keys (
    run_id     bigint PRIMARY KEY REFERENCES retention.runs (id),
    token_hash bytea NOT NULL CHECK (octet_length(token_hash) = 32),
    lock_pid   integer NOT NULL,
    lock_key   integer NOT NULL
);

-- One claim per chunk: the sessions a run is about to send for one character, written before
-- the request. The position of a session in session_ids (from 1) is its ord.
CREATE TABLE retention.claims (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id              bigint NOT NULL REFERENCES retention.runs (id),
    character_id        text NOT NULL,
    policy_id           bigint NULL,
    policy_character_id text NULL,
    max_age             interval NOT NULL,
    session_ids         text[] NOT NULL,
    last_active_at      timestamptz[] NOT NULL,
    requested_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (cardinality(session_ids) BETWEEN 1 AND 10000),
    CHECK (cardinality(last_active_at) = cardinality(session_ids))
);
CREATE INDEX claims_by_run ON retention.claims (run_id);

-- The deletion IDs of v2 rows are claim id * 16384 + ord (a claim holds at most 10,000
-- sessions). Claim ids start past the v1 rows, so the two never meet.
DO $$
DECLARE
    start bigint := coalesce((SELECT max(id) FROM retention.deletions_v1), 0) / 16384 + 1;
BEGIN
    EXECUTE format('ALTER TABLE retention.claims ALTER COLUMN id RESTART WITH %s', start);
END
$$;

-- One outcome per claimed session, written once after the answer, never changed.
CREATE TABLE retention.outcomes (
    claim_id     bigint NOT NULL REFERENCES retention.claims (id),
    ord          integer NOT NULL CHECK (ord >= 1),
    character_id text NOT NULL,
    session_id   text NOT NULL,
    status       text NOT NULL CHECK (status IN ('deleted', 'failed')),
    attempts     integer NOT NULL CHECK (attempts >= 0),
    http_status  integer NULL,
    error        text NULL,
    completed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (claim_id, ord)
);
-- A session is deleted once, ever (with deletions_one_deleted on the v1 rows).
CREATE UNIQUE INDEX outcomes_one_deleted ON retention.outcomes (character_id, session_id) WHERE status = 'deleted';
CREATE INDEX outcomes_by_session ON retention.outcomes (character_id, session_id);

-- Claims recorded and not yet in the log, with their leaf's record hash, computed from the rows
-- when they were written (by record or close_claims, outside the log's lock). seal() empties it.
CREATE TABLE retention.unsealed (
    claim_id bigint PRIMARY KEY REFERENCES retention.claims (id),
    leaf     bytea NOT NULL CHECK (octet_length(leaf) = 32)
);

-- The log. log_leaves gives each recorded claim its leaf index (in the order seal() met them)
-- and its record hash, SHA-256(0x00 || claim_content). log_hashes holds the tree's stored
-- hashes, indexed as golang.org/x/mod/sumdb/tlog.StoredHashIndex numbers them. log_roots holds
-- the tree size and root after every seal; log_head the latest.
CREATE TABLE retention.log_leaves (
    idx      bigint PRIMARY KEY CHECK (idx >= 0),
    claim_id bigint NOT NULL UNIQUE REFERENCES retention.claims (id),
    hash     bytea NOT NULL CHECK (octet_length(hash) = 32),
    sealed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE retention.log_hashes (
    id   bigint PRIMARY KEY CHECK (id >= 0),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32)
);
CREATE TABLE retention.log_roots (
    size      bigint PRIMARY KEY CHECK (size >= 1),
    root      bytea NOT NULL CHECK (octet_length(root) = 32),
    sealed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE retention.log_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    size bigint NOT NULL CHECK (size >= 0),
    root bytea NOT NULL CHECK (octet_length(root) = 32)
);
-- The root of the empty tree is SHA-256 of nothing, as in RFC 6962.
INSERT INTO retention.log_head (size, root) VALUES (0, sha256(''::bytea));

-- Checkpoints: a tree size and root as a run saw them when it finished, with the signed note
-- (golang.org/x/mod/sumdb/note) it also wrote outside the database, if it had a key.
CREATE TABLE retention.checkpoints (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     bigint NULL REFERENCES retention.runs (id),
    size       bigint NOT NULL CHECK (size >= 0),
    root       bytea NOT NULL CHECK (octet_length(root) = 32),
    note       text NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Everything of the log is append-only.
CREATE TRIGGER claims_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.claims
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();
CREATE TRIGGER outcomes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.outcomes
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();
CREATE TRIGGER log_leaves_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.log_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();
CREATE TRIGGER log_hashes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.log_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();
CREATE TRIGGER log_roots_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.log_roots
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();
CREATE TRIGGER log_head_kept BEFORE DELETE OR TRUNCATE ON retention.log_head
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();
CREATE TRIGGER run_keys_kept BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.run_keys
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- claim_content is the canonical encoding of one recorded claim: the bytes of its leaf. Fields
-- are encoded as in seal_field (netstrings, "-," for NULL), concatenated:
--   "retention.claim/v2", claim id, run_id, character_id, policy_id, policy_character_id,
--   max_age months, max_age days, max_age microseconds, requested_at, number of sessions,
-- then for each session in ord order:
--   ord, session_id, last_active_at, status, attempts, http_status, error, completed_at
-- The Go function audit.ClaimContent computes the same bytes from the rows.
CREATE FUNCTION retention.claim_content(p_claim bigint) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to(
        retention.seal_field('retention.claim/v2') ||
        retention.seal_field(c.id::text) ||
        retention.seal_field(c.run_id::text) ||
        retention.seal_field(c.character_id) ||
        retention.seal_field(c.policy_id::text) ||
        retention.seal_field(c.policy_character_id) ||
        retention.seal_field((extract(year FROM c.max_age) * 12 + extract(month FROM c.max_age))::bigint::text) ||
        retention.seal_field(extract(day FROM c.max_age)::bigint::text) ||
        retention.seal_field((extract(hour FROM c.max_age) * 3600000000
                              + extract(minute FROM c.max_age) * 60000000
                              + extract(microseconds FROM c.max_age))::bigint::text) ||
        retention.seal_field(retention.seal_time(c.requested_at)) ||
        retention.seal_field(cardinality(c.session_ids)::text) ||
        coalesce((
            SELECT string_agg(
                       retention.seal_field(o.ord::text) ||
                       retention.seal_field(o.session_id) ||
                       retention.seal_field(retention.seal_time(c.last_active_at[o.ord])) ||
                       retention.seal_field(o.status) ||
                       retention.seal_field(o.attempts::text) ||
                       retention.seal_field(o.http_status::text) ||
                       retention.seal_field(o.error) ||
                       retention.seal_field(retention.seal_time(o.completed_at)),
                       '' ORDER BY o.ord)
            FROM retention.outcomes o WHERE o.claim_id = c.id), ''),
        'UTF8')
    FROM retention.claims c WHERE c.id = p_claim
$$;

-- tlog_index is golang.org/x/mod/sumdb/tlog.StoredHashIndex: where the n'th hash of a level is
-- stored.
CREATE FUNCTION retention.tlog_index(level integer, n bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    i bigint := 0;
BEGIN
    FOR l IN 1 .. level LOOP
        n := 2 * n + 1;
    END LOOP;
    WHILE n > 0 LOOP
        i := i + n;
        n := n >> 1;
    END LOOP;
    RETURN i + level;
END
$$;

-- tlog_root is tlog.TreeHash: the root of the tree of the first n leaves, from stored hashes.
CREATE FUNCTION retention.tlog_root(n bigint) RETURNS bytea
LANGUAGE plpgsql STABLE STRICT AS $$
DECLARE
    lo    bigint := 0;
    k     bigint;
    lvl   integer;
    parts bytea[] := '{}';
    h     bytea;
BEGIN
    IF n = 0 THEN
        RETURN sha256(''::bytea);
    END IF;
    WHILE lo < n LOOP
        lvl := 0;
        WHILE (1::bigint << (lvl + 1)) < n - lo + 1 LOOP
            lvl := lvl + 1;
        END LOOP;
        k := 1::bigint << lvl;
        SELECT hash INTO h FROM retention.log_hashes WHERE id = retention.tlog_index(lvl, lo >> lvl);
        IF h IS NULL THEN
            RAISE EXCEPTION 'log hash % is missing', retention.tlog_index(lvl, lo >> lvl);
        END IF;
        parts := array_append(parts, h);
        lo := lo + k;
    END LOOP;
    h := parts[cardinality(parts)];
    FOR i IN REVERSE cardinality(parts) - 1 .. 1 LOOP
        h := sha256('\x01'::bytea || parts[i] || h);
    END LOOP;
    RETURN h;
END
$$;

-- seal appends recorded, unsealed claims to the log, one leaf each (at most 256, for at most
-- about 200 ms), and returns the tree size and root; callers repeat it until the size stops
-- growing, so no one transaction holds the log head for long. The leaf hashes were computed
-- when the claims were recorded; seal only builds the tree. Anyone may call it: it only does what the rows already say. It locks the log
-- head, so seals run one at a time; records never wait for it.
CREATE FUNCTION retention.seal(OUT size bigint, OUT root bytea)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n     bigint;
    leaf  bytea;
    h     bytea;
    base  bigint;
    lvl   integer;
    q     record;
    added boolean := false;
BEGIN
    SELECT l.size INTO n FROM retention.log_head l WHERE one FOR UPDATE;
    FOR q IN SELECT u.claim_id, u.leaf FROM retention.unsealed u ORDER BY u.claim_id LIMIT 256 LOOP
        leaf := q.leaf;
        base := retention.tlog_index(0, n);
        INSERT INTO retention.log_hashes (id, hash) VALUES (base, leaf);
        h := leaf;
        lvl := 0;
        WHILE ((n + 1) >> lvl) & 1 = 0 LOOP
            h := sha256('\x01'::bytea
                        || (SELECT x.hash FROM retention.log_hashes x WHERE x.id = retention.tlog_index(lvl, (n >> lvl) - 1))
                        || h);
            INSERT INTO retention.log_hashes (id, hash) VALUES (base + lvl + 1, h);
            lvl := lvl + 1;
        END LOOP;
        INSERT INTO retention.log_leaves (idx, claim_id, hash) VALUES (n, q.claim_id, leaf);
        DELETE FROM retention.unsealed WHERE claim_id = q.claim_id;
        n := n + 1;
        added := true;
        -- A bounded transaction whatever the load: what is left waits for the next call.
        EXIT WHEN clock_timestamp() - statement_timestamp() > interval '200 milliseconds';
    END LOOP;
    IF added THEN
        root := retention.tlog_root(n);
        UPDATE retention.log_head SET size = n, root = seal.root WHERE one;
        INSERT INTO retention.log_roots (size, root) VALUES (n, seal.root);
    ELSE
        SELECT l.root INTO root FROM retention.log_head l WHERE one;
    END IF;
    size := n;
END
$$;

-- authorize raises unless p_token is the credential of run p_run and the run is running; with
-- p_lock also unless the run's lock is still held by the connection that took it (SQLSTATE
-- RL001: the job stops; another run may hold the lock now).
CREATE FUNCTION retention.authorize(p_run bigint, p_token text, p_lock boolean) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k      retention.run_keys;
    status text;
BEGIN
    SELECT * INTO k FROM retention.run_keys WHERE run_id = p_run;
    IF NOT FOUND OR k.token_hash <> sha256(convert_to(coalesce(p_token, ''), 'UTF8')) THEN
        RAISE EXCEPTION 'run %: these are not the run''s credentials', p_run
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'only the process that started a run can write its records';
    END IF;
    SELECT r.status INTO status FROM retention.runs r WHERE r.id = p_run;
    IF status <> 'running' THEN
        RAISE EXCEPTION 'run % is % and finished: its records are closed', p_run, status
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF p_lock AND NOT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND classid = 1380275269::bigint::oid AND objid = k.lock_key::bigint::oid
          AND objsubid = 2 AND granted AND pid = k.lock_pid
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) THEN
        RAISE EXCEPTION 'run %: its lock is no longer held by its connection; another run may hold it now', p_run
            USING ERRCODE = 'RL001';
    END IF;
END
$$;

-- close_claims gives every claimed session of runs that has no outcome a failed outcome with
-- reason, and queues those claims for the log. It returns how many sessions it closed.
CREATE FUNCTION retention.close_claims(runs bigint[], reason text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    open   bigint[];
    closed bigint;
BEGIN
    SELECT coalesce(array_agg(c.id ORDER BY c.id), '{}') INTO open
    FROM retention.claims c
    WHERE c.run_id = ANY (runs)
      AND NOT EXISTS (SELECT 1 FROM retention.outcomes o WHERE o.claim_id = c.id AND o.ord = 1);
    INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, error)
    SELECT c.id, e.ord, c.character_id, e.session_id, 'failed', 0, reason
    FROM retention.claims c
    CROSS JOIN LATERAL unnest(c.session_ids) WITH ORDINALITY AS e(session_id, ord)
    WHERE c.id = ANY (open)
    -- The dead run may not be quite dead: a run that lost its lock can still be recording an
    -- answer. Whichever commits first stands; the other writes nothing.
    ON CONFLICT (claim_id, ord) DO NOTHING;
    GET DIAGNOSTICS closed = ROW_COUNT;
    INSERT INTO retention.unsealed (claim_id, leaf)
    SELECT id, sha256('\x00'::bytea || retention.claim_content(id)) FROM unnest(open) AS id
    ON CONFLICT (claim_id) DO NOTHING;
    RETURN closed;
END
$$;

-- start_run must be called on the connection that holds the shard's run lock. It marks the
-- runs found dead as interrupted (a run still marked running is dead when nobody holds its
-- shard's lock, or when the lock is the caller's), closes their claims without an outcome,
-- inserts the new run with the server's now() as its cut-off and returns the run's token.
CREATE FUNCTION retention.start_run(p_shard_index integer, p_shard_count integer, p_source text,
                                    p_settings jsonb, p_host text, p_pid integer, p_version text,
                                    OUT run_id bigint, OUT cutoff timestamptz, OUT token text,
                                    OUT recovered bigint[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    my_key       integer := (p_shard_count << 16) | p_shard_index;
    held         integer[];
    running      bigint[];
    running_keys integer[];
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND classid = 1380275269::bigint::oid AND objid = my_key::bigint::oid
          AND objsubid = 2 AND granted AND pid = pg_backend_pid()
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) THEN
        RAISE EXCEPTION 'start_run: this connection does not hold the run lock of shard % of %', p_shard_index, p_shard_count
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    -- The running runs first, then the locks: a run takes its lock before its row exists, so
    -- every run row seen here has its lock in the list read after it, unless the run is dead.
    SELECT coalesce(array_agg(r.id ORDER BY r.id), '{}'), coalesce(array_agg((r.shard_count << 16) | r.shard_index ORDER BY r.id), '{}')
      INTO running, running_keys
      FROM (SELECT id, shard_index, shard_count FROM retention.runs WHERE status = 'running' FOR UPDATE) r;
    SELECT coalesce(array_agg(objid::bigint::integer), '{}') INTO held FROM pg_locks
    WHERE locktype = 'advisory' AND classid = 1380275269::bigint::oid AND objsubid = 2 AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database());
    SELECT coalesce(array_agg(u.id ORDER BY u.id), '{}') INTO recovered
      FROM unnest(running, running_keys) AS u(id, k)
     WHERE NOT u.k = ANY (held) OR u.k = my_key;
    IF cardinality(recovered) > 0 THEN
        UPDATE retention.deletions_v1
        SET status = 'failed', completed_at = now(),
            error = 'the run ended before an answer was recorded; the session will be sent again'
        WHERE deletions_v1.run_id = ANY (recovered) AND status = 'pending';
        PERFORM retention.close_claims(recovered, 'the run ended before an answer was recorded; the session will be sent again');
        UPDATE retention.runs r
        SET status = 'interrupted', finished_at = now(),
            deleted = (SELECT count(*) FROM retention.deletions_v1 d WHERE d.run_id = r.id AND d.status = 'deleted')
                    + (SELECT count(*) FROM retention.claims c JOIN retention.outcomes o ON o.claim_id = c.id
                       WHERE c.run_id = r.id AND o.status = 'deleted'),
            failed  = (SELECT count(*) FROM retention.deletions_v1 d WHERE d.run_id = r.id AND d.status = 'failed')
                    + (SELECT count(*) FROM retention.claims c JOIN retention.outcomes o ON o.claim_id = c.id
                       WHERE c.run_id = r.id AND o.status = 'failed'),
            error = coalesce(r.error, 'the process ended without finishing the run')
        WHERE r.id = ANY (recovered);
    END IF;

    token := encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, 'UTF8')), 'hex');
    INSERT INTO retention.runs (cutoff, source, shard_index, shard_count, settings, host, pid, version)
    VALUES (now(), p_source, p_shard_index, p_shard_count, coalesce(p_settings, '{}'), coalesce(p_host, ''), p_pid, coalesce(p_version, ''))
    RETURNING id, runs.cutoff INTO run_id, cutoff;
    INSERT INTO retention.run_keys (run_id, token_hash, lock_pid, lock_key)
    VALUES (run_id, sha256(convert_to(token, 'UTF8')), pg_backend_pid(), my_key);
END
$$;

-- claim writes the intent to send p_ids for one character and returns the claim and the IDs
-- written, in order: those an active hold protects, or already recorded deleted, are left out.
-- It needs the run's credentials and its lock. A claim of nothing writes nothing (claim_id 0).
CREATE FUNCTION retention.claim(p_run bigint, p_token text, p_character text, p_policy_id bigint,
                                p_policy_character text, p_max_age interval, p_ids text[],
                                p_last_active timestamptz[],
                                OUT claim_id bigint, OUT session_ids text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ats timestamptz[];
BEGIN
    PERFORM retention.authorize(p_run, p_token, true);
    IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_last_active) THEN
        RAISE EXCEPTION 'claim: % session IDs but % last-active times', cardinality(p_ids), cardinality(p_last_active)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(p_ids) x) <> cardinality(p_ids) THEN
        RAISE EXCEPTION 'claim: a session ID appears twice' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(u.session_id ORDER BY u.ord), array_agg(u.last_active_at ORDER BY u.ord)
      INTO session_ids, ats
      FROM unnest(p_ids, p_last_active) WITH ORDINALITY AS u(session_id, last_active_at, ord)
     WHERE NOT EXISTS (
               SELECT 1 FROM retention.holds h
               WHERE h.released_at IS NULL AND h.character_id = p_character
                 AND (h.session_id IS NULL OR h.session_id = u.session_id))
       AND NOT EXISTS (
               SELECT 1 FROM retention.outcomes o
               WHERE o.character_id = p_character AND o.session_id = u.session_id AND o.status = 'deleted')
       AND NOT EXISTS (
               SELECT 1 FROM retention.deletions_v1 d
               WHERE d.character_id = p_character AND d.session_id = u.session_id AND d.status = 'deleted');
    IF session_ids IS NULL THEN
        claim_id := 0;
        session_ids := '{}';
        RETURN;
    END IF;
    INSERT INTO retention.claims (run_id, character_id, policy_id, policy_character_id, max_age, session_ids, last_active_at)
    VALUES (p_run, p_character, p_policy_id, p_policy_character, p_max_age, session_ids, ats)
    RETURNING id INTO claim_id;
END
$$;

-- record writes the outcomes of one claim of the run, one per claimed session in the claim's
-- order, at the server's clock, and queues the claim for the log. A claim already recorded is
-- left as it is (a write retried after its commit was lost) and 0 is returned; otherwise the
-- number of outcomes. With the built-in source, the source rows of sessions confirmed deleted
-- are removed (the outcome keeps the evidence), so later runs only read new work.
CREATE FUNCTION retention.record(p_run bigint, p_token text, p_claim bigint, p_status text[],
                                 p_attempts integer[], p_http_status integer[], p_error text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c        retention.claims;
    n        integer;
    inserted integer;
    src      text;
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    SELECT * INTO c FROM retention.claims WHERE id = p_claim AND run_id = p_run;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'record: claim % is not a claim of run %', p_claim, p_run USING ERRCODE = 'invalid_parameter_value';
    END IF;
    n := cardinality(c.session_ids);
    IF cardinality(p_status) IS DISTINCT FROM n OR cardinality(p_attempts) IS DISTINCT FROM n
       OR cardinality(p_http_status) IS DISTINCT FROM n OR cardinality(p_error) IS DISTINCT FROM n THEN
        RAISE EXCEPTION 'record: claim % has % sessions; every outcome array must have as many', p_claim, n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM retention.outcomes o WHERE o.claim_id = p_claim AND o.ord = 1) THEN
        RETURN 0;
    END IF;
    INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, http_status, error)
    SELECT p_claim, u.ord, c.character_id, c.session_ids[u.ord], u.status, u.attempts,
           nullif(u.http_status, 0), nullif(u.error, '')
    FROM unnest(p_status, p_attempts, p_http_status, p_error) WITH ORDINALITY AS u(status, attempts, http_status, error, ord)
    -- A run that found this one dead may have closed the claim a moment ago: its failed
    -- outcomes stand (the sessions are sent again), and this answer is not recorded.
    ON CONFLICT (claim_id, ord) DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF inserted = 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO retention.unsealed (claim_id, leaf) VALUES (p_claim, sha256('\x00'::bytea || retention.claim_content(p_claim)))
    ON CONFLICT (claim_id) DO NOTHING;
    SELECT r.source INTO src FROM retention.runs r WHERE r.id = p_run;
    IF src = 'retention.sessions' THEN
        DELETE FROM retention.sessions s
        USING unnest(c.session_ids, c.last_active_at, p_status) AS u(session_id, last_active_at, status)
        WHERE u.status = 'deleted' AND s.character_id = c.character_id AND s.session_id = u.session_id
          AND s.last_active_at = u.last_active_at;
    END IF;
    RETURN n;
END
$$;

-- close_run closes the run's claims without an outcome (its answers were lost): they become
-- failed, and the sessions are sent again by a later run. It returns how many it closed.
CREATE FUNCTION retention.close_run(p_run bigint, p_token text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    RETURN retention.close_claims(ARRAY[p_run], 'no outcome could be recorded; the session will be sent again');
END
$$;

-- finish_run writes the run's final row at the server's clock and its checkpoint: a tree size
-- and root the log really had (a row of log_roots, or the empty tree) and the signed note, if
-- any. A finished run never changes again (runs_finished_is_final).
CREATE FUNCTION retention.finish_run(p_run bigint, p_token text, p_status text, p_selected bigint,
                                     p_deleted bigint, p_failed bigint, p_skipped bigint,
                                     p_skipped_by_reason jsonb, p_budget_reached boolean, p_error text,
                                     p_size bigint, p_root bytea, p_note text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM retention.authorize(p_run, p_token, false);
    IF p_status NOT IN ('succeeded', 'partial', 'failed', 'interrupted') THEN
        RAISE EXCEPTION 'finish_run: % is not a final status', p_status USING ERRCODE = 'invalid_parameter_value';
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
        budget_reached = p_budget_reached, error = p_error
    WHERE id = p_run;
END
$$;

-- retention.deletions for readers: the v1 rows, the v2 outcomes with their claims, and the
-- claimed sessions of running runs that have no outcome yet (pending). id of a v2 row is
-- claim id * 16384 + ord.
CREATE VIEW retention.deletions AS
    SELECT d.id, d.run_id, d.character_id, d.session_id, d.status, d.attempts, d.http_status, d.error,
           d.last_active_at, d.policy_id, d.policy_character_id, d.max_age, d.requested_at, d.completed_at
    FROM retention.deletions_v1 d
    UNION ALL
    SELECT c.id * 16384 + o.ord, c.run_id, o.character_id, o.session_id, o.status, o.attempts, o.http_status, o.error,
           c.last_active_at[o.ord], c.policy_id, c.policy_character_id, c.max_age, c.requested_at, o.completed_at
    FROM retention.outcomes o
    JOIN retention.claims c ON c.id = o.claim_id
    UNION ALL
    SELECT c.id * 16384 + e.ord, c.run_id, c.character_id, e.session_id, 'pending', 0, NULL::integer, NULL::text,
           e.last_active_at, c.policy_id, c.policy_character_id, c.max_age, c.requested_at, NULL::timestamptz
    FROM retention.runs r
    JOIN retention.claims c ON c.run_id = r.id
    CROSS JOIN LATERAL unnest(c.session_ids, c.last_active_at) WITH ORDINALITY AS e(session_id, last_active_at, ord)
    WHERE r.status = 'running'
      AND NOT EXISTS (SELECT 1 FROM retention.outcomes o WHERE o.claim_id = c.id AND o.ord = e.ord);

-- deletion_outcomes, as before: each row with its expiry, its lag and its seal. A v1 row's seal
-- is its link in the hash chain (seal_seq, seal_hash); a v2 row's is its claim's leaf in the
-- log (seal_seq is the leaf index plus one, seal_hash the leaf's record hash). Seals name v1
-- rows only, and a v1 id divided by 16384 is below every claim id, so neither join mixes them.
CREATE VIEW retention.deletion_outcomes AS
    SELECT d.id AS deletion_id, d.run_id, d.character_id, d.session_id, d.status, d.attempts,
           d.http_status, d.error, d.last_active_at, d.policy_id, d.policy_character_id, d.max_age,
           ((d.last_active_at AT TIME ZONE 'UTC') + d.max_age) AT TIME ZONE 'UTC' AS expired_at,
           d.requested_at, d.completed_at,
           CASE WHEN d.status = 'deleted' THEN
               extract(epoch FROM d.completed_at
                   - (((d.last_active_at AT TIME ZONE 'UTC') + d.max_age) AT TIME ZONE 'UTC'))::double precision
           END AS lag_seconds,
           coalesce(s.seq, l.idx + 1) AS seal_seq, encode(coalesce(s.hash, l.hash), 'hex') AS seal_hash,
           coalesce(s.sealed_at, l.sealed_at) AS sealed_at
    FROM retention.deletions d
    LEFT JOIN retention.seals s ON s.deletion_id = d.id
    LEFT JOIN retention.log_leaves l ON l.claim_id = d.id / 16384;

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

COMMENT ON TABLE retention.deletions_v1 IS 'Deletion outcomes written before recording v2, sealed by the v1 hash chain (retention.seals).';
COMMENT ON TABLE retention.claims IS 'One row per chunk a run was about to send, written before the request.';
COMMENT ON TABLE retention.outcomes IS 'One row per claimed session, written once after the answer; status deleted only after the API confirmed.';
COMMENT ON TABLE retention.log_leaves IS 'The Merkle log: one leaf per recorded claim, hash = SHA-256(0x00 || retention.claim_content(claim)).';
COMMENT ON TABLE retention.checkpoints IS 'Tree size and root at the end of each run, with the signed note written outside the database.';
COMMENT ON VIEW retention.deletions IS 'One row per session per run that tried to delete it; status deleted only after the API confirmed.';
COMMENT ON VIEW retention.deletion_outcomes IS 'Every deletion attempt with its expiry, its lag to confirmed deletion and its seal.';
COMMENT ON VIEW retention.daily_deletions IS 'Final outcomes per UTC day of completion and character, with lag percentiles (percentile_disc).';

-- Functions are executable by PUBLIC unless revoked. These two run as the owner and check
-- nothing: only the other functions call them.
REVOKE EXECUTE ON FUNCTION retention.close_claims(bigint[], text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION retention.authorize(bigint, text, boolean) FROM PUBLIC;
