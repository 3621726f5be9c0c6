--
-- Privileges.  Counters have owners and privileges the way sequences do:
-- the creator owns a counter; SELECT allows value(), UPDATE allows
-- increment() and set(); dropping, granting, revoking and giving away are
-- for the owner.  Nobody but the owner has any privilege by default.
-- Creating counters needs EXECUTE on create_counter(), which PUBLIC lacks;
-- nobody writes the state tables directly.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS event_stats;
RESET client_min_messages;
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT event_stats.create_counter('priv', 4);

CREATE ROLE regress_es_user;
CREATE ROLE regress_es_owner;
CREATE ROLE regress_es_other;
CREATE ROLE regress_es_group;
GRANT regress_es_group TO regress_es_user;
GRANT EXECUTE ON FUNCTION pg_temp.err(text)
    TO regress_es_user, regress_es_owner, regress_es_other;
GRANT EXECUTE ON FUNCTION event_stats.create_counter(text, integer) TO regress_es_owner;

-- a counter made by the superuser: nobody else may touch it
SET ROLE regress_es_user;
SELECT pg_temp.err($$SELECT event_stats.increment('priv', 3)$$);
SELECT pg_temp.err($$SELECT event_stats.value('priv')$$);
SELECT pg_temp.err($$SELECT event_stats.set('priv', 0)$$);
SELECT pg_temp.err($$SELECT event_stats.drop_counter('priv')$$);
SELECT pg_temp.err($$SELECT event_stats.grant_counter('priv', 'update', 'regress_es_user')$$);
SELECT pg_temp.err($$SELECT event_stats.alter_counter_owner('priv', 'regress_es_user')$$);
-- listed, with its value hidden
SELECT name, value, owner, acl FROM event_stats.counters WHERE name = 'priv';
SELECT pg_temp.err($$SELECT event_stats.create_counter('mine')$$);
-- the state tables are closed
SELECT pg_temp.err($$UPDATE event_stats.counter_shards SET value = 1000$$);
SELECT pg_temp.err($$INSERT INTO event_stats.counter_shards VALUES (1, 99, 5)$$);
SELECT pg_temp.err($$DELETE FROM event_stats.counter_definitions$$);
SELECT pg_temp.err($$UPDATE event_stats.counter_definitions SET owner = 'regress_es_user'$$);
SELECT pg_temp.err($$SELECT * FROM event_stats.counter_shards$$);
SELECT pg_temp.err($$SELECT nextval('event_stats.counter_definitions_id_seq')$$);
-- nor can anything be put into the extension's schema
SELECT pg_temp.err($$CREATE FUNCTION event_stats.increment(event_stats.counter, integer) RETURNS void LANGUAGE sql AS ''$$);
RESET ROLE;

-- an owner other than the superuser: the README's examples work for it
SET ROLE regress_es_owner;
SELECT event_stats.create_counter('owned', 2);
SELECT event_stats.increment('owned', 5);
SELECT event_stats.value('owned');
SELECT event_stats.set('owned', 10);
SELECT event_stats.value('owned');
SELECT name, value, owner, acl FROM event_stats.counters WHERE name = 'owned';
RESET ROLE;

-- grants, one privilege at a time, to a role and through a group
SET ROLE regress_es_owner;
SELECT event_stats.grant_counter('owned', 'SELECT', 'regress_es_user');
RESET ROLE;
SET ROLE regress_es_user;
SELECT event_stats.value('owned');
SELECT pg_temp.err($$SELECT event_stats.increment('owned')$$);
RESET ROLE;
SET ROLE regress_es_owner;
SELECT event_stats.grant_counter('owned', 'update', 'regress_es_group');
RESET ROLE;
SET ROLE regress_es_user;
SELECT event_stats.increment('owned', 7);
SELECT event_stats.set('owned', 100);
SELECT event_stats.value('owned');
-- UPDATE does not make it the owner
SELECT pg_temp.err($$SELECT event_stats.drop_counter('owned')$$);
SELECT pg_temp.err($$SELECT event_stats.grant_counter('owned', 'update', 'regress_es_other')$$);
RESET ROLE;
SET ROLE regress_es_other;
SELECT pg_temp.err($$SELECT event_stats.value('owned')$$);
SELECT name, value FROM event_stats.counters WHERE name = 'owned';
RESET ROLE;
-- PUBLIC, and ALL
SET ROLE regress_es_owner;
SELECT event_stats.grant_counter('owned', 'all', 'public');
SELECT acl FROM event_stats.counters WHERE name = 'owned';
RESET ROLE;
SET ROLE regress_es_other;
SELECT event_stats.increment('owned', 1);
SELECT event_stats.value('owned');
RESET ROLE;
-- revoking takes it away again, also from a role that is checked anew at
-- every call of the same transaction
SET ROLE regress_es_owner;
SELECT event_stats.revoke_counter('owned', 'ALL PRIVILEGES', 'public');
SELECT event_stats.revoke_counter('owned', 'update', 'regress_es_group');
SELECT acl FROM event_stats.counters WHERE name = 'owned';
RESET ROLE;
BEGIN;
SET LOCAL ROLE regress_es_owner;
SELECT event_stats.increment('owned', 1);
SET LOCAL ROLE regress_es_user;
SELECT pg_temp.err($$SELECT event_stats.increment('owned', 1000)$$);
COMMIT;
SELECT event_stats.value('owned');

-- bad privilege lists and grantees change nothing
SET ROLE regress_es_owner;
SELECT pg_temp.err($$SELECT event_stats.grant_counter('owned', 'delete', 'regress_es_user')$$);
SELECT pg_temp.err($$SELECT event_stats.grant_counter('owned', '', 'regress_es_user')$$);
SELECT pg_temp.err($$SELECT event_stats.grant_counter('owned', 'select,', 'regress_es_user')$$);
SELECT pg_temp.err($$SELECT event_stats.grant_counter('owned', 'select', 'no_such_role')$$);
SELECT pg_temp.err($$SELECT event_stats.grant_counter('owned', NULL, 'regress_es_user')$$);
SELECT pg_temp.err($$SELECT event_stats.grant_counter(NULL, 'select', 'regress_es_user')$$);
SELECT pg_temp.err($$SELECT event_stats.alter_counter_owner('owned', NULL)$$);
SELECT pg_temp.err($$SELECT event_stats.alter_counter_owner('owned', 0)$$);
SELECT acl FROM event_stats.counters WHERE name = 'owned';
-- giving it away needs membership in the new owner
SELECT pg_temp.err($$SELECT event_stats.alter_counter_owner('owned', 'regress_es_other')$$);
RESET ROLE;
GRANT regress_es_other TO regress_es_owner;
SET ROLE regress_es_owner;
SELECT event_stats.alter_counter_owner('owned', 'regress_es_other');
SELECT owner, acl FROM event_stats.counters WHERE name = 'owned';
RESET ROLE;
-- the new owner drops it
SET ROLE regress_es_other;
SELECT event_stats.drop_counter('owned');
RESET ROLE;

-- the superuser may do anything
SELECT event_stats.create_counter('su_made', 1);
SELECT event_stats.alter_counter_owner('su_made', 'regress_es_user');
SELECT event_stats.increment('su_made', 2);
SELECT event_stats.value('su_made');
SELECT event_stats.drop_counter('su_made');

-- one counter that cannot be summed, or may not be read, never hides the
-- others in the view: its value is NULL, where value() raises an error
SELECT event_stats.create_counter('ovf_a', 1);
SELECT event_stats.create_counter('ovf_b', 1);
SELECT event_stats.increment('ovf_a', 9223372036854775807);
SELECT event_stats.increment('ovf_b', 1);
BEGIN;
SELECT event_stats.increment('ovf_a', 1);
SELECT event_stats.value('ovf_a');	-- 22003 inside the transaction
ROLLBACK;
BEGIN;
SELECT name, value FROM event_stats.counters WHERE name LIKE 'ovf_%' ORDER BY name;
SELECT event_stats.increment('ovf_a', 1);
SELECT name, value FROM event_stats.counters WHERE name LIKE 'ovf_%' ORDER BY name;
SELECT pg_temp.err($$SELECT event_stats.value('ovf_a')$$);
ROLLBACK;
SELECT event_stats.drop_counter('ovf_a');
SELECT event_stats.drop_counter('ovf_b');

-- tracked counters follow their table: column privileges suffice, as for
-- value(); row-level security hides the count in the view too
CREATE TABLE priv_t (id int, secret text);
INSERT INTO priv_t VALUES (1, 'a'), (2, 'b');
SELECT event_stats.track('priv_t');
GRANT SELECT (id) ON priv_t TO regress_es_user;
SET ROLE regress_es_user;
SELECT event_stats.value('public.priv_t');
SELECT name, value FROM event_stats.counters WHERE tracks = 'priv_t'::regclass;
RESET ROLE;
SET ROLE regress_es_other;
SELECT pg_temp.err($$SELECT event_stats.value('public.priv_t')$$);
SELECT name, value FROM event_stats.counters WHERE tracks = 'priv_t'::regclass;
RESET ROLE;
ALTER TABLE priv_t ENABLE ROW LEVEL SECURITY;
CREATE POLICY priv_t_mine ON priv_t USING (id = 1);
GRANT SELECT ON priv_t TO regress_es_other;
SET ROLE regress_es_other;
SELECT pg_temp.err($$SELECT event_stats.value('public.priv_t')$$);
SELECT name, value FROM event_stats.counters WHERE tracks = 'priv_t'::regclass;
RESET ROLE;
-- nobody grants or changes a tracking counter by hand
SELECT pg_temp.err($$SELECT event_stats.grant_counter('public.priv_t', 'update', 'public')$$);
SELECT pg_temp.err($$SELECT event_stats.alter_counter_owner('public.priv_t', 'regress_es_user')$$);
SELECT event_stats.untrack('priv_t');
DROP TABLE priv_t;

SELECT event_stats.value('priv');
SELECT event_stats.drop_counter('priv');
DROP OWNED BY regress_es_user, regress_es_owner, regress_es_other;
DROP ROLE regress_es_user;
DROP ROLE regress_es_owner;
DROP ROLE regress_es_other;
DROP ROLE regress_es_group;
