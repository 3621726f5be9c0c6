--
-- value() in parallel plans.  value() is PARALLEL RESTRICTED: it runs in the
-- leader, which is in parallel mode while the plan runs, where PostgreSQL
-- refuses to take a new latest snapshot.  The definition and tracking
-- caches of a new session are cold, and fill on first use, inside that
-- parallel mode.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS event_stats;
RESET client_min_messages;
CREATE TABLE pv (id int);
INSERT INTO pv SELECT generate_series(1, 5000);
ANALYZE pv;
SELECT event_stats.track('pv');
SELECT event_stats.create_counter('pv_plain', 2);
SELECT event_stats.increment('pv_plain', 7);

-- a new session: cold caches, then a parallel plan
\c
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT event_stats.value('public.pv'), count(*) FROM pv;
SELECT event_stats.value('public.pv'), count(*) FROM pv;

-- the same with a plain counter, and with value() compared to a count
\c
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT event_stats.value('pv_plain'), count(*) FROM pv;
\c
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT event_stats.value('public.pv') = (SELECT count(*) FROM pv) AS exact;

-- caches emptied in the middle of the session by track() elsewhere
CREATE TABLE pv2 (id int);
SELECT event_stats.track('pv2');
INSERT INTO pv VALUES (0);
SELECT event_stats.value('public.pv'), count(*) FROM pv;
SELECT event_stats.value('public.pv2'), count(*) FROM pv2;
-- inside the writing transaction, which sees its own rows
BEGIN;
DELETE FROM pv WHERE id <= 100;
SELECT event_stats.value('public.pv'), count(*) FROM pv;
ROLLBACK;

RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT event_stats.untrack('pv');
SELECT event_stats.untrack('pv2');
SELECT event_stats.drop_counter('pv_plain');
DROP TABLE pv, pv2;
