--
-- The counter API: every function, every error path, the view and the type.
--
CREATE EXTENSION event_stats;

-- Runs a statement; reports SQLSTATE and message instead of failing.
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- create_counter: the default gives every possible backend its own shard
SELECT event_stats.create_counter('hits');
SELECT shards = current_setting('max_connections')::int
              + current_setting('autovacuum_max_workers')::int + 1
              + current_setting('max_worker_processes')::int
              + current_setting('max_wal_senders')::int AS one_shard_per_backend
  FROM event_stats.counters WHERE name = 'hits';
SELECT event_stats.create_counter('small', 4);
SELECT event_stats.create_counter('single', shards => 1);
SELECT event_stats.create_counter('explicit_default', NULL);
SELECT name, shards, value FROM event_stats.counters WHERE shards < 10 ORDER BY name;

-- bad arguments: a clear error, and nothing created
SELECT pg_temp.err($$SELECT event_stats.create_counter('hits')$$);
SELECT pg_temp.err($$SELECT event_stats.create_counter(NULL)$$);
SELECT pg_temp.err($$SELECT event_stats.create_counter('')$$);
SELECT pg_temp.err($$SELECT event_stats.create_counter(repeat('x', 64))$$);
SELECT pg_temp.err($$SELECT event_stats.create_counter(repeat('x', 63))$$);
-- (the upper bound is the server's MaxBackends: masked as N)
SELECT regexp_replace(pg_temp.err($$SELECT event_stats.create_counter('zero', 0)$$), '[0-9]+$', 'N');
SELECT regexp_replace(pg_temp.err($$SELECT event_stats.create_counter('negative', -1)$$), '[0-9]+$', 'N');
SELECT regexp_replace(pg_temp.err($$SELECT event_stats.create_counter('huge', 1000000)$$), '[0-9]+$', 'N');
SELECT count(*) AS counters FROM event_stats.counters;
SELECT count(*) AS shard_rows FROM event_stats.counter_shards
 WHERE counter_id NOT IN (SELECT id FROM event_stats.counter_definitions);

-- the type: text form is the name, resolved when read
SELECT 'hits'::event_stats.counter;
SELECT 'hits'::event_stats.counter::text = 'hits' AS round_trip;
SELECT pg_temp.err($$SELECT 'nosuch'::event_stats.counter$$);
SELECT pg_temp.err($$SELECT ''::event_stats.counter$$);
SELECT pg_temp.err($$SELECT repeat('y', 200)::event_stats.counter$$);
SELECT 'hits'::event_stats.counter OPERATOR(event_stats.=) 'hits'::event_stats.counter AS eq,
       'hits'::event_stats.counter OPERATOR(event_stats.<>) 'small'::event_stats.counter AS ne,
       'hits'::event_stats.counter OPERATOR(event_stats.<) 'small'::event_stats.counter AS lt;
SET search_path = event_stats, public;
SELECT counter, count(*) FROM (VALUES ('small'::counter), ('hits'), ('small')) v(counter)
 GROUP BY counter ORDER BY counter;
SELECT DISTINCT counter FROM (VALUES ('single'::counter), ('single')) v(counter);
RESET search_path;

-- increment and value
SELECT event_stats.increment('hits');
SELECT event_stats.increment('hits', 41);
SELECT event_stats.value('hits');
SELECT event_stats.increment('hits', -2);
SELECT event_stats.value('hits');
SELECT event_stats.increment('hits', 0);
SELECT event_stats.value('hits');
SELECT pg_temp.err($$SELECT event_stats.increment(NULL)$$);
SELECT pg_temp.err($$SELECT event_stats.increment('hits', NULL)$$);
SELECT pg_temp.err($$SELECT event_stats.value(NULL)$$);
SELECT pg_temp.err($$SELECT event_stats.increment(12345::event_stats.counter)$$);
SELECT pg_temp.err($$SELECT event_stats.value(12345::event_stats.counter)$$);
SELECT event_stats.value('hits');

-- many increments in one transaction: one new shard row version at commit
-- (an insert: this backend has not written 'small' yet, so its row is new)
SELECT pg_stat_force_next_flush();
SELECT n_tup_ins + n_tup_upd AS upd_before FROM pg_stat_user_tables
 WHERE relid = 'event_stats.counter_shards'::regclass \gset
SELECT count(event_stats.increment('small')) FROM generate_series(1, 10000);
SELECT pg_stat_force_next_flush();
SELECT n_tup_ins + n_tup_upd - :upd_before AS shard_versions_written FROM pg_stat_user_tables
 WHERE relid = 'event_stats.counter_shards'::regclass;
SELECT event_stats.value('small');

-- overflow is an error, never a wraparound, and changes nothing
SELECT event_stats.increment('single', 9223372036854775807);
SELECT event_stats.value('single');
-- the shard overflows when the increment is written, at commit
SELECT event_stats.increment('single', 1);
SELECT event_stats.value('single');
BEGIN;
SELECT event_stats.increment('single', -1);
SELECT pg_temp.err($$SELECT event_stats.increment('single', -9223372036854775807)$$);
SELECT pg_temp.err($$SELECT event_stats.increment('single', -9223372036854775807)$$);
SELECT event_stats.value('single');
ROLLBACK;
SELECT event_stats.value('single');
BEGIN;
SELECT event_stats.increment('small', 9223372036854775807);
SELECT pg_temp.err($$SELECT event_stats.increment('small', 1)$$);
ROLLBACK;
SELECT event_stats.value('small');

-- set
SELECT event_stats.set('single', 5);
SELECT event_stats.value('single');
SELECT event_stats.set('small', -7);
SELECT event_stats.value('small');
SELECT count(*) FILTER (WHERE value <> 0) AS nonzero_shards, sum(value)
  FROM event_stats.counter_shards
 WHERE counter_id = 'small'::event_stats.counter::int;
SELECT pg_temp.err($$SELECT event_stats.set('small', NULL)$$);
SELECT pg_temp.err($$SELECT event_stats.set(NULL, 1)$$);
SELECT event_stats.value('small');

-- the view
SELECT name, counter, value, shards FROM event_stats.counters
 WHERE shards < 10 ORDER BY counter;

-- drop_counter
SELECT 'explicit_default'::event_stats.counter::int AS dropped_id \gset
SELECT event_stats.drop_counter('explicit_default');
SELECT pg_temp.err($$SELECT 'explicit_default'::event_stats.counter$$);
SELECT (:dropped_id)::event_stats.counter::text = :'dropped_id' AS prints_as_id;
SELECT pg_temp.err(format('SELECT event_stats.drop_counter(%s::event_stats.counter)', :dropped_id));
SELECT pg_temp.err(format('SELECT event_stats.value(%s::event_stats.counter)', :dropped_id));
SELECT pg_temp.err(format('SELECT event_stats.increment(%s::event_stats.counter)', :dropped_id));
SELECT pg_temp.err($$SELECT event_stats.drop_counter(NULL)$$);
SELECT count(*) AS leftover_shards FROM event_stats.counter_shards
 WHERE counter_id = :dropped_id;
-- a dropped name can be used again, with a new id
SELECT event_stats.create_counter('explicit_default', 2)::int > :dropped_id AS new_id;
SELECT event_stats.value('explicit_default');

-- read-only transactions cannot change counters
BEGIN READ ONLY;
SELECT pg_temp.err($$SELECT event_stats.increment('hits')$$);
SELECT pg_temp.err($$SELECT event_stats.set('hits', 1)$$);
SELECT pg_temp.err($$SELECT event_stats.create_counter('ro')$$);
SELECT event_stats.value('hits');
COMMIT;

-- shard rows exist only where written: one row for a counter written by
-- one session; set() leaves only the base row (shard 0), and none for 0
SELECT left(d.name, 20) AS name, count(s.shard) AS shard_rows,
       CASE WHEN d.name IN ('single', 'small')
            THEN bool_and(s.shard = 0) END AS set_leaves_base_row
  FROM event_stats.counter_definitions d
  LEFT JOIN event_stats.counter_shards s ON s.counter_id = d.id
 GROUP BY d.name ORDER BY d.name;
SELECT event_stats.set('single', 0);
SELECT count(*) AS rows_after_set_to_zero FROM event_stats.counter_shards
 WHERE counter_id = 'single'::event_stats.counter::int;
SELECT event_stats.value('single');
