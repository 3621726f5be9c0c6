--
-- Privileges: creating, dropping and setting counters is for the extension
-- owner and roles it grants; increment and value are open to every role;
-- nobody else can write the state tables directly.
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
CREATE ROLE regress_es_admin;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO regress_es_user, regress_es_admin;
GRANT EXECUTE ON FUNCTION event_stats.create_counter(text, integer),
    event_stats.drop_counter(event_stats.counter),
    event_stats.set(event_stats.counter, bigint) TO regress_es_admin;

SET ROLE regress_es_user;
SELECT event_stats.increment('priv', 3);
SELECT event_stats.value('priv');
SELECT name, value FROM event_stats.counters WHERE name = 'priv';
SELECT pg_temp.err($$SELECT event_stats.create_counter('mine')$$);
SELECT pg_temp.err($$SELECT event_stats.set('priv', 0)$$);
SELECT pg_temp.err($$SELECT event_stats.drop_counter('priv')$$);
SELECT pg_temp.err($$UPDATE event_stats.counter_shards SET value = 1000$$);
SELECT pg_temp.err($$INSERT INTO event_stats.counter_shards VALUES (1, 99, 5)$$);
SELECT pg_temp.err($$DELETE FROM event_stats.counter_definitions$$);
SELECT pg_temp.err($$SELECT * FROM event_stats.counter_shards$$);
SELECT pg_temp.err($$SELECT nextval('event_stats.counter_definitions_id_seq')$$);
RESET ROLE;

SET ROLE regress_es_admin;
SELECT event_stats.create_counter('admin_made', 2);
SELECT event_stats.set('priv', 100);
SELECT event_stats.value('priv');
SELECT event_stats.drop_counter('admin_made');
RESET ROLE;

-- revoking increment from PUBLIC takes it away from ordinary roles
REVOKE EXECUTE ON FUNCTION event_stats.increment(event_stats.counter, bigint) FROM PUBLIC;
SET ROLE regress_es_user;
SELECT pg_temp.err($$SELECT event_stats.increment('priv')$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION event_stats.increment(event_stats.counter, bigint) TO PUBLIC;

SELECT event_stats.value('priv');
SELECT event_stats.drop_counter('priv');
DROP OWNED BY regress_es_user, regress_es_admin;
DROP ROLE regress_es_user;
DROP ROLE regress_es_admin;
