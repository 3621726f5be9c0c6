--
-- Inputs that used to give internal errors or silent NULLs, and handles
-- kept across a drop: each gets a clear SQLSTATE, or now just works.
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

-- regclass arguments that name no relation: 42P01, not XX000
SELECT pg_temp.err($$SELECT event_stats.track(0::regclass)$$);
SELECT pg_temp.err($$SELECT event_stats.untrack(0::regclass)$$);
CREATE TABLE sh_gone (id int);
SELECT 'sh_gone'::regclass::oid AS gone_oid \gset
DROP TABLE sh_gone;
SELECT regexp_replace(pg_temp.err(format('SELECT event_stats.track(%s::regclass)', :gone_oid)),
                      'OID \d+', 'OID N') AS err;
SELECT regexp_replace(pg_temp.err(format('SELECT event_stats.untrack(%s::regclass)', :gone_oid)),
                      'OID \d+', 'OID N') AS err;

-- a handle of no counter at all
SELECT pg_temp.err($$SELECT event_stats.value(999999::event_stats.counter)$$);
SELECT pg_temp.err($$SELECT event_stats.increment(999999::event_stats.counter)$$);

-- A PL/pgSQL function and a prepared statement that name a counter by a
-- constant follow the name after drop and create, the way a regclass
-- constant follows a table dropped and created again.
SELECT event_stats.create_counter('sh_c', 2);
CREATE FUNCTION sh_bump() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM event_stats.increment('sh_c', 1);
    RETURN event_stats.value('sh_c');
END $$;
PREPARE sh_read AS SELECT event_stats.value('sh_c');
SELECT sh_bump();
SELECT sh_bump();
EXECUTE sh_read;
SELECT event_stats.drop_counter('sh_c');
-- dropped: the replanned name says so
SELECT pg_temp.err($$SELECT sh_bump()$$);
SELECT pg_temp.err($$EXECUTE sh_read$$);
SELECT event_stats.create_counter('sh_c', 3);
SELECT sh_bump();
EXECUTE sh_read;
-- the same through untrack() and track() of a table
CREATE TABLE sh_t (id int);
INSERT INTO sh_t VALUES (1), (2);
SELECT event_stats.track('sh_t');
PREPARE sh_count AS SELECT event_stats.value('public.sh_t');
EXECUTE sh_count;
SELECT event_stats.untrack('sh_t');
INSERT INTO sh_t VALUES (3);
SELECT event_stats.track('sh_t');
EXECUTE sh_count;

-- a handle kept in a table has nothing to replan: a clear error
CREATE TABLE sh_handles (c event_stats.counter);
INSERT INTO sh_handles VALUES ('sh_c');
SELECT event_stats.drop_counter('sh_c');
SELECT regexp_replace(pg_temp.err($$SELECT event_stats.value(c) FROM sh_handles$$),
                      'id \d+', 'id N') AS err;
SELECT c::integer > 0 AS prints_as_id, c::text ~ '^[0-9]+$' AS bare_id FROM sh_handles;

DEALLOCATE sh_read;
DEALLOCATE sh_count;
DROP FUNCTION sh_bump();
DROP TABLE sh_handles;
SELECT event_stats.untrack('sh_t');
DROP TABLE sh_t;
