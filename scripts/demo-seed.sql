-- Demo data for scripts/demo.sh, loaded into a freshly migrated database.
--
-- Six characters, 5,000 sessions active at some point in the last 90 days:
--   char-atlas    default policy (30 days)
--   char-breeze   default policy (30 days)
--   char-comet    its own policy: 7 days
--   char-dune     its own policy, disabled: never deleted
--   char-ember    under a hold ('legal hold #1234'): never deleted while it stands
--   char-fjord    default policy, one expired session under its own hold
-- and one end user of the app, player-42, with five recent sessions with three characters (the
-- source's optional end_user_id): Convai drew long-term memory from them.
-- The spread is pseudo-random but fixed (hashtext of the row number), relative to now(), so
-- every run of the demo sees the same shares: most sessions expired, some recent, some protected.

BEGIN;

INSERT INTO retention.policies (character_id, max_age, enabled, note) VALUES
    (NULL,          interval '30 days', true,  'default: 30 days'),
    ('char-comet',  interval '7 days',  true,  'short-lived test character'),
    ('char-dune',   interval '1 day',   false, 'disabled: this character keeps everything');

INSERT INTO retention.sessions (character_id, session_id, last_active_at)
SELECT (ARRAY['char-atlas', 'char-breeze', 'char-comet', 'char-dune', 'char-ember', 'char-fjord'])
           [1 + abs(hashtext('character:' || i)) % 6],
       'session-' || lpad(i::text, 5, '0'),
       now() - (abs(hashtext('age:' || i)) % (90 * 24 * 60)) * interval '1 minute'
FROM generate_series(1, 5000) AS i;

-- player-42's sessions, active in the last day: no policy deletes them yet.
INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id)
SELECT c, 'session-p42-' || i, now() - i * interval '3 hours', 'player-42'
FROM unnest(ARRAY['char-atlas', 'char-atlas', 'char-breeze', 'char-comet', 'char-comet']) WITH ORDINALITY AS x(c, i);

INSERT INTO retention.holds (character_id, reason, created_by)
VALUES ('char-ember', 'legal hold #1234', 'demo');

-- The oldest session of char-fjord, which its policy would otherwise delete.
INSERT INTO retention.holds (character_id, session_id, reason, created_by)
SELECT character_id, session_id, 'customer asked to keep this conversation', 'demo'
FROM retention.sessions
WHERE character_id = 'char-fjord'
ORDER BY last_active_at
LIMIT 1;

COMMIT;
