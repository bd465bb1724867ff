-- Seals: every deletion outcome, once final ('deleted' or 'failed'), is hashed together with the
-- previous seal's hash, so the outcomes form a chain that `retention audit verify` can check.
-- Guards reject any change to a final outcome, any deletion of one, and any change to a seal or
-- to a finished run. A superuser (or the owner) can still disable triggers; the chain is what
-- shows that something was changed behind their back. docs/COMPLIANCE.md explains the encoding.

-- One row per sealed outcome. seq numbers the chain from 1 without gaps, in commit order.
CREATE TABLE retention.seals (
    seq         bigint PRIMARY KEY CHECK (seq >= 1),
    deletion_id bigint NOT NULL UNIQUE REFERENCES retention.deletions (id),
    prev_hash   bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash        bytea NOT NULL CHECK (octet_length(hash) = 32),
    sealed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The head of the chain: its one row is locked by every sealing statement, which serialises
-- shards that record at the same time, and names the last seal. seq 0 with 32 zero bytes is the
-- empty chain.
CREATE TABLE retention.seal_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint NOT NULL CHECK (seq >= 0),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32)
);
INSERT INTO retention.seal_head (seq, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- The encoding functions are STABLE (extract and convert_to are), which lets PostgreSQL inline
-- them into the sealing query instead of calling them once per field and row.

-- seal_field encodes one value: NULL as the two bytes "-,", anything else as a netstring: its
-- length in UTF-8 bytes in decimal, ":", the UTF-8 bytes, ",".
CREATE FUNCTION retention.seal_field(v text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v IS NULL THEN '-,'
                ELSE octet_length(convert_to(v, 'UTF8'))::text || ':' || v || ',' END
$$;

-- seal_time encodes an instant as whole microseconds since 1970-01-01 00:00:00 UTC in decimal,
-- or as "infinity" / "-infinity".
CREATE FUNCTION retention.seal_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t IS NULL THEN NULL
                WHEN isfinite(t) THEN (extract(epoch FROM t) * 1000000)::bigint::text
                ELSE t::text END
$$;

-- seal_content is the canonical encoding of one outcome: the bytes hashed after the previous
-- hash. Seventeen fields, each encoded by seal_field, concatenated:
--   "retention.deletions/v1", id, run_id, character_id, session_id, status, attempts,
--   http_status, error, last_active_at, policy_id, policy_character_id,
--   max_age months, max_age days, max_age microseconds, requested_at, completed_at
-- Integers are decimal; instants as in seal_time; max_age is split into the three parts
-- PostgreSQL keeps, so no IntervalStyle or TimeZone setting can change the bytes.
CREATE FUNCTION retention.seal_content(d retention.deletions) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT convert_to(
        retention.seal_field('retention.deletions/v1') ||
        retention.seal_field(d.id::text) ||
        retention.seal_field(d.run_id::text) ||
        retention.seal_field(d.character_id) ||
        retention.seal_field(d.session_id) ||
        retention.seal_field(d.status) ||
        retention.seal_field(d.attempts::text) ||
        retention.seal_field(d.http_status::text) ||
        retention.seal_field(d.error) ||
        retention.seal_field(retention.seal_time(d.last_active_at)) ||
        retention.seal_field(d.policy_id::text) ||
        retention.seal_field(d.policy_character_id) ||
        retention.seal_field((extract(year FROM d.max_age) * 12 + extract(month FROM d.max_age))::bigint::text) ||
        retention.seal_field(extract(day FROM d.max_age)::bigint::text) ||
        retention.seal_field((extract(hour FROM d.max_age) * 3600000000
                              + extract(minute FROM d.max_age) * 60000000
                              + extract(microseconds FROM d.max_age))::bigint::text) ||
        retention.seal_field(retention.seal_time(d.requested_at)) ||
        retention.seal_field(retention.seal_time(d.completed_at)),
        'UTF8')
$$;

-- seal_outcomes runs once per UPDATE statement on retention.deletions. It seals the rows the
-- statement turned from pending to final, in id order: seal n gets hash
-- sha256(hash of seal n-1 || seal_content(row)). It runs as the schema owner, so the job's role
-- needs no privilege on the seals; and it locks the chain head, so concurrent statements seal one
-- after the other and seq follows commit order.
CREATE FUNCTION retention.seal_outcomes() RETURNS trigger
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
           array_agg(retention.seal_content(nw::retention.deletions) ORDER BY nw.id)
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
CREATE TRIGGER deletions_seal AFTER UPDATE ON retention.deletions
    REFERENCING OLD TABLE AS sealed_old NEW TABLE AS sealed_new
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seal_outcomes();

-- The deletions protocol: a row is inserted pending; a pending row may become final, changing
-- only its outcome (status, attempts, http_status, error, completed_at); a final row never
-- changes again; no row is ever deleted.
CREATE FUNCTION retention.deletions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        RAISE EXCEPTION 'retention.deletions rows are inserted pending, not %', NEW.status
            USING ERRCODE = 'restrict_violation';
    ELSIF TG_OP = 'UPDATE' AND OLD.status <> 'pending' THEN
        RAISE EXCEPTION 'deletion % is % and sealed: it can no longer change', OLD.id, OLD.status
            USING ERRCODE = 'restrict_violation',
                  HINT = 'outcomes are final; a new attempt is a new row of a new run';
    ELSIF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'deletion %: only the outcome of a pending row may change (status, attempts, http_status, error, completed_at)', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RAISE EXCEPTION 'retention.deletions rows are never deleted: they are the record of what was done'
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER deletions_insert_pending BEFORE INSERT ON retention.deletions
    FOR EACH ROW WHEN (NEW.status <> 'pending')
    EXECUTE FUNCTION retention.deletions_guard();
-- The WHEN clause is evaluated without calling the function, so the rows the job records
-- (pending rows whose outcome changes) cost nothing here.
CREATE TRIGGER deletions_final_is_final BEFORE UPDATE ON retention.deletions
    FOR EACH ROW WHEN (
        OLD.status <> 'pending'
        OR (NEW.id, NEW.run_id, NEW.character_id, NEW.session_id, NEW.last_active_at, NEW.policy_id,
            NEW.policy_character_id, NEW.max_age::text, NEW.requested_at)
           IS DISTINCT FROM
           (OLD.id, OLD.run_id, OLD.character_id, OLD.session_id, OLD.last_active_at, OLD.policy_id,
            OLD.policy_character_id, OLD.max_age::text, OLD.requested_at))
    EXECUTE FUNCTION retention.deletions_guard();
CREATE TRIGGER deletions_never_deleted BEFORE DELETE OR TRUNCATE ON retention.deletions
    FOR EACH STATEMENT EXECUTE FUNCTION retention.deletions_guard();

-- Seals are written by seal_outcomes only, and never change.
CREATE FUNCTION retention.seals_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER seals_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON retention.seals
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();
CREATE TRIGGER seal_head_kept BEFORE DELETE OR TRUNCATE ON retention.seal_head
    FOR EACH STATEMENT EXECUTE FUNCTION retention.seals_guard();

-- A run row changes while it is running; once finished it is history, and runs are never deleted.
CREATE FUNCTION retention.runs_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'run % is % and finished: it can no longer change', OLD.id, OLD.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RAISE EXCEPTION 'retention.runs rows are never deleted' USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER runs_finished_is_final BEFORE UPDATE ON retention.runs
    FOR EACH ROW WHEN (OLD.status <> 'running')
    EXECUTE FUNCTION retention.runs_guard();
CREATE TRIGGER runs_never_deleted BEFORE DELETE OR TRUNCATE ON retention.runs
    FOR EACH STATEMENT EXECUTE FUNCTION retention.runs_guard();

COMMENT ON TABLE retention.seals IS 'One seal per final deletion outcome: hash = sha256(prev_hash || retention.seal_content(row)); see docs/COMPLIANCE.md.';
COMMENT ON TABLE retention.seal_head IS 'The last seal of the chain (seq 0 and 32 zero bytes when empty); locked by each sealing statement.';
