--
-- The closed timestamp (issue 5): hlc_horizon(), who holds it back (an
-- open transaction of this session, one that rolled a savepoint back, a
-- prepared transaction until whoever finishes it), changes_since() on an
-- event_stats.hlc column and on a timestamptz column filled by
-- unique_timestamp() (order, exact (since, horizon] bounds, the empty
-- poll, since NULL), hlc_closed_timestamp(), every error path of
-- changes_since(), and the new hlc_status() columns.
--
-- pg_regress has one session, so the holders here are this session's own
-- transactions and prepared transactions; the race with other sessions is
-- test/isolation/specs/hlc_horizon_late_commit.spec.  Nothing else takes
-- clock values while this runs, so with no transaction open the horizon
-- is the clock's last value.  Clock values are never printed: the checks
-- print booleans computed from values kept in psql variables.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS event_stats;
DROP TABLE IF EXISTS hz_h, hz_t, hz_named, hz_wrong, hz_part, hz_poll;
DROP TYPE IF EXISTS hz_comp;
DROP SCHEMA IF EXISTS "hz Odd" CASCADE;
RESET client_min_messages;
SET search_path = public, event_stats;
SET TimeZone = 'UTC';

-- Runs a statement; reports SQLSTATE, message and detail instead of failing.
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM
        || CASE WHEN detail <> '' THEN ' (' || detail || ')' ELSE '' END;
END $$;

-- Who holds the horizon back, without printing a pid or an xid.
CREATE FUNCTION pg_temp.holder() RETURNS text LANGUAGE sql AS $$
    SELECT CASE
        WHEN s.horizon_holder_xid IS NOT NULL AND s.horizon_holder_pid IS NOT NULL
            THEN 'both pid and xid'
        WHEN s.horizon_holder_xid IS NOT NULL
            THEN coalesce((SELECT 'prepared ' || p.gid FROM pg_prepared_xacts p
                            WHERE p.transaction = s.horizon_holder_xid), 'unknown xid')
        WHEN s.horizon_holder_pid = pg_backend_pid() THEN 'this session'
        WHEN s.horizon_holder_pid IS NOT NULL THEN 'another session'
        ELSE 'nobody' END
      FROM event_stats.hlc_status() s
$$;

--------------------------------------------------------------------------
-- hlc_horizon() basics
--------------------------------------------------------------------------

SELECT hlc_horizon() AS h0 \gset
SELECT hlc_now() AS v0 \gset
SELECT hlc_horizon() AS h1 \gset
-- below a value taken just after it; at or above the values of committed
-- transactions; never moves back
SELECT :'h0'::hlc < :'v0'::hlc AS below_later_value,
       :'h1'::hlc >= :'v0'::hlc AS covers_committed,
       :'h1'::hlc >= :'h0'::hlc AS monotonic;
-- with nothing open it is the clock's last value
SELECT s.horizon = s.current AS at_clock, s.horizon_lag = interval '0' AS no_lag,
       pg_temp.holder() AS holder
  FROM hlc_status() s;
-- a value taken in an autocommitted statement holds nothing afterwards
SELECT hlc_now() IS NOT NULL AS took, unique_timestamp() IS NOT NULL AS took_ts;
SELECT pg_temp.holder() AS holder;

--------------------------------------------------------------------------
-- This session's open transaction holds the horizon below its first value
--------------------------------------------------------------------------

-- until COMMIT
BEGIN;
SELECT hlc_horizon() AS before \gset
SELECT pg_temp.holder() AS holder_before_any_value;
SELECT hlc_now() AS v1 \gset
SELECT hlc_now() AS v2 \gset
SELECT hlc_horizon() < :'v1'::hlc AS below_first,
       hlc_horizon()::bigint = :'v1'::hlc::bigint - 1 AS just_below_first,
       hlc_horizon() >= :'before'::hlc AS not_back,
       pg_temp.holder() AS holder;
SELECT s.horizon_holder_pid = pg_backend_pid() AS holder_pid_is_me,
       s.horizon_holder_xid IS NULL AS no_xid,
       s.horizon_lag >= interval '0' AS lag_not_negative,
       s.horizon < s.current AS behind_clock
  FROM hlc_status() s;
COMMIT;
SELECT hlc_horizon() >= :'v2'::hlc AS released, pg_temp.holder() AS holder;

-- until ROLLBACK
BEGIN;
SELECT hlc_now() AS v1 \gset
SELECT hlc_horizon() < :'v1'::hlc AS held, pg_temp.holder() AS holder;
ROLLBACK;
SELECT hlc_horizon() >= :'v1'::hlc AS released, pg_temp.holder() AS holder;

-- until the ROLLBACK after an error
BEGIN;
SELECT hlc_now() AS v1 \gset
SELECT 1 / 0;
ROLLBACK;
SELECT hlc_horizon() >= :'v1'::hlc AS released, pg_temp.holder() AS holder;

-- a value taken in a savepoint that was rolled back still holds until the
-- top-level transaction ends; a later value does not raise the hold
BEGIN;
SAVEPOINT a;
SELECT hlc_now() AS v1 \gset
ROLLBACK TO SAVEPOINT a;
SELECT hlc_horizon() < :'v1'::hlc AS held_after_rollback_to, pg_temp.holder() AS holder;
RELEASE SAVEPOINT a;
SELECT hlc_now() AS v2 \gset
SELECT hlc_horizon() < :'v1'::hlc AS still_below_first;
-- the same with a plpgsql exception block
DO $$
BEGIN
    PERFORM event_stats.hlc_now();
    RAISE EXCEPTION 'undo';
EXCEPTION WHEN raise_exception THEN
    NULL;
END $$;
SELECT hlc_horizon() < :'v1'::hlc AS still_below_first, pg_temp.holder() AS holder;
COMMIT;
SELECT hlc_horizon() >= :'v2'::hlc AS released, pg_temp.holder() AS holder;

-- unique_timestamp() and hlc_observe() hold too
BEGIN;
SELECT unique_timestamp() AS t1 \gset
SELECT hlc_closed_timestamp(hlc_horizon()) < :'t1'::timestamptz AS held_ts,
       hlc_horizon() < hlc_from_parts(:'t1'::timestamptz, 4095) AS held_as_hlc,
       pg_temp.holder() AS holder;
COMMIT;
SELECT hlc_closed_timestamp(hlc_horizon()) >= :'t1'::timestamptz AS released;
BEGIN;
SELECT hlc_observe(:'v0'::hlc) AS v1 \gset
SELECT hlc_horizon() < :'v1'::hlc AS held, pg_temp.holder() AS holder;
COMMIT;
SELECT hlc_horizon() >= :'v1'::hlc AS released, pg_temp.holder() AS holder;

-- a transaction that takes no value holds nothing
BEGIN;
SELECT hlc_horizon() IS NOT NULL AS computed, pg_temp.holder() AS holder;
COMMIT;

--------------------------------------------------------------------------
-- A prepared transaction holds the horizon until COMMIT / ROLLBACK PREPARED
--------------------------------------------------------------------------

BEGIN;
SELECT hlc_now() AS p1 \gset
PREPARE TRANSACTION 'hz_regress_p1';
-- held by the prepared transaction, not by this session any more; this
-- session's own values are not held after their transactions end
SELECT hlc_horizon() < :'p1'::hlc AS held, hlc_horizon()::bigint = :'p1'::hlc::bigint - 1 AS just_below,
       pg_temp.holder() AS holder;
SELECT s.horizon_holder_xid = p.transaction AS holder_xid_is_prepared,
       s.horizon_holder_pid IS NULL AS no_pid
  FROM hlc_status() s, pg_prepared_xacts p WHERE p.gid = 'hz_regress_p1';
SELECT hlc_now() AS v1 \gset
SELECT hlc_horizon() < :'p1'::hlc AS still_held;
COMMIT PREPARED 'hz_regress_p1';
SELECT hlc_horizon() >= :'v1'::hlc AS released, pg_temp.holder() AS holder;

-- ROLLBACK PREPARED; the value came from a rolled back savepoint, and the
-- transaction wrote nothing (its xid is assigned at PREPARE)
BEGIN;
SAVEPOINT a;
SELECT hlc_now() AS p1 \gset
ROLLBACK TO SAVEPOINT a;
PREPARE TRANSACTION 'hz_regress_p2';
SELECT hlc_horizon() < :'p1'::hlc AS held, pg_temp.holder() AS holder;
ROLLBACK PREPARED 'hz_regress_p2';
SELECT hlc_horizon() >= :'p1'::hlc AS released, pg_temp.holder() AS holder;

-- two prepared transactions: the older value holds; once it is finished
-- the younger one does; a prepared transaction without values holds nothing
CREATE TABLE hz_h (id int PRIMARY KEY, last_modified hlc NOT NULL);
BEGIN;
SELECT hlc_now() AS p1 \gset
PREPARE TRANSACTION 'hz_regress_p3';
BEGIN;
SELECT hlc_now() AS p2 \gset
PREPARE TRANSACTION 'hz_regress_p4';
BEGIN;
INSERT INTO hz_h VALUES (-1, 0::bigint::hlc);
PREPARE TRANSACTION 'hz_regress_p5';
SELECT hlc_horizon() < :'p1'::hlc AS below_older, pg_temp.holder() AS holder;
COMMIT PREPARED 'hz_regress_p3';
SELECT hlc_horizon() >= :'p1'::hlc AS passed_older, hlc_horizon() < :'p2'::hlc AS below_younger,
       pg_temp.holder() AS holder;
ROLLBACK PREPARED 'hz_regress_p4';
SELECT hlc_horizon() >= :'p2'::hlc AS released, pg_temp.holder() AS holder;
ROLLBACK PREPARED 'hz_regress_p5';
SELECT count(*) AS prepared_left FROM pg_prepared_xacts WHERE gid LIKE 'hz_regress%';

--------------------------------------------------------------------------
-- hlc_closed_timestamp(): the newest unique_timestamp() value at or below
-- an hlc.  unique_timestamp() T is the clock value T/4095.
--------------------------------------------------------------------------

SELECT t AS hlc, hlc_closed_timestamp(t::hlc) AS closed
  FROM (VALUES ('2026-11-22T06:40:12.123456Z/4095'),
               ('2026-11-22T06:40:12.123456Z/4094'),
               ('2026-11-22T06:40:12.123456Z/0001'),
               ('2026-11-22T06:40:12.123456Z/0000'),
               ('2026-11-22T06:40:12.123457Z/0000'),
               ('1970-01-01T00:00:00.000000Z/0000'),
               ('1970-01-01T00:00:00.000000Z/4095')) v(t);
SELECT hlc_closed_timestamp(NULL) IS NULL AS strict;

--------------------------------------------------------------------------
-- changes_since() on an event_stats.hlc column
--------------------------------------------------------------------------

-- past values, inserted out of order; the horizon is above them all
INSERT INTO hz_h VALUES
    (3, '2024-05-01T00:00:00.000002Z/0000'),
    (1, '2024-05-01T00:00:00.000001Z/0000'),
    (4, '2024-05-01T00:00:00.000002Z/0001'),
    (2, '2024-05-01T00:00:00.000001Z/4095'),
    (5, '2024-05-01T00:00:00.000003Z/0000');
-- a value above the horizon is not delivered yet
INSERT INTO hz_h VALUES (99, hlc_from_parts(now() + interval '1 day'));
-- the newest value handed out: nothing is taken after it, so the horizon
-- equals it and the row is delivered (the upper bound is inclusive)
INSERT INTO hz_h VALUES (6, hlc_now()) RETURNING last_modified AS v6 \gset

-- since NULL: from the beginning, in clock order, each row with the horizon
SELECT (change).id, (change).last_modified::text, horizon = :'v6'::hlc AS horizon_is_v6
  FROM changes_since(NULL::hz_h, NULL) WHERE (change).id < 6;
SELECT (change).id, horizon = :'v6'::hlc AS horizon_is_v6,
       (change).last_modified = horizon AS row_at_horizon
  FROM changes_since(NULL::hz_h, NULL) WHERE (change).id >= 6;
SELECT count(*) AS rows, count(DISTINCT horizon) AS horizons,
       array_agg((change).id) AS ids_in_order
  FROM changes_since(NULL::hz_h, NULL);

-- a row whose value equals since is excluded
SELECT array_agg((change).id) AS ids
  FROM changes_since(NULL::hz_h, '2024-05-01T00:00:00.000002Z/0000');
SELECT array_agg((change).id) AS ids
  FROM changes_since(NULL::hz_h, '2024-05-01T00:00:00.000001Z/4094');
-- the column by name; the default is last_modified
SELECT array_agg((change).id) AS ids
  FROM changes_since(NULL::hz_h, '2024-05-01T00:00:00.000002Z/0001', 'last_modified');

-- the next poll from the horizon: one row, with a NULL change, and the
-- same horizon (nothing was taken in between)
SELECT horizon = :'v6'::hlc AS horizon_is_v6, change IS NULL AS no_change
  FROM changes_since(NULL::hz_h, :'v6'::hlc);
-- an empty table as well
CREATE TABLE hz_named ("Changed At" hlc, note text);
SELECT count(*) AS rows, bool_and(change IS NULL) AS no_change, bool_and(horizon IS NOT NULL) AS has_horizon
  FROM changes_since(NULL::hz_named, NULL, 'Changed At');
-- a column with an odd name, in a table with an odd name in another schema
CREATE SCHEMA "hz Odd";
CREATE TABLE "hz Odd"."T ""x""" (id int, "Changed At" hlc);
INSERT INTO "hz Odd"."T ""x""" VALUES (2, '2024-05-01T00:00:00.000002Z/0000'),
                                     (1, '2024-05-01T00:00:00.000001Z/0000');
SELECT (change).id FROM changes_since(NULL::"hz Odd"."T ""x""", NULL, 'Changed At');

-- a partitioned table: the rows of every partition, in order
CREATE TABLE hz_part (id int, last_modified hlc) PARTITION BY RANGE (id);
CREATE TABLE hz_part_1 PARTITION OF hz_part FOR VALUES FROM (0) TO (10);
CREATE TABLE hz_part_2 PARTITION OF hz_part FOR VALUES FROM (10) TO (20);
INSERT INTO hz_part VALUES (1, '2024-05-01T00:00:00.000003Z/0000'), (11, '2024-05-01T00:00:00.000001Z/0000'),
                           (2, '2024-05-01T00:00:00.000002Z/0000');
SELECT array_agg((change).id) AS ids FROM changes_since(NULL::hz_part, NULL);

-- a poll inside a transaction that took a value would be held by it for
-- as long as it lasts (no row after its own ever delivered, silently): it
-- is refused; the row commits as usual
BEGIN;
INSERT INTO hz_h VALUES (7, hlc_now()) RETURNING last_modified AS v7 \gset
SELECT pg_temp.err($$SELECT count(*) FROM changes_since(NULL::hz_h, '2024-05-01T00:00:00.000003Z/0000')$$)
       ~ '^25000' AS refused;
COMMIT;
SELECT (change).id FROM changes_since(NULL::hz_h, '2024-05-01T00:00:00.000003Z/0000');

-- the horizon of a poll is hlc_horizon() at that moment
SELECT hlc_horizon() AS hh \gset
SELECT bool_and(horizon = :'hh'::hlc) AS same_horizon FROM changes_since(NULL::hz_h, NULL);

--------------------------------------------------------------------------
-- changes_since() on a timestamptz column filled by unique_timestamp()
--------------------------------------------------------------------------

CREATE TABLE hz_t (id int PRIMARY KEY, last_modified timestamptz NOT NULL);
INSERT INTO hz_t VALUES (1, unique_timestamp());
INSERT INTO hz_t VALUES (2, unique_timestamp()) RETURNING last_modified AS t2 \gset
INSERT INTO hz_t VALUES (3, unique_timestamp());
INSERT INTO hz_t VALUES (99, now() + interval '1 day');
-- the newest value: the horizon is T/4095, whose closed timestamp is T
INSERT INTO hz_t VALUES (4, unique_timestamp()) RETURNING last_modified AS t4 \gset

SELECT (change).id, horizon = hlc_from_parts(:'t4'::timestamptz, 4095) AS horizon_is_t4,
       hlc_closed_timestamp(horizon) = (change).last_modified AS row_at_horizon
  FROM changes_since(NULL::hz_t, NULL);
-- since T2/4095 excludes T2; since T2/0000 (closed timestamp T2 - 1 µs)
-- includes it
SELECT array_agg((change).id) AS ids
  FROM changes_since(NULL::hz_t, hlc_from_parts(:'t2'::timestamptz, 4095));
SELECT array_agg((change).id) AS ids
  FROM changes_since(NULL::hz_t, hlc_from_parts(:'t2'::timestamptz, 0));
SELECT array_agg((change).id) AS ids
  FROM changes_since(NULL::hz_t, hlc_from_parts(:'t2'::timestamptz, 4094));
-- the next poll from the horizon is empty
SELECT count(*) AS rows, bool_and(change IS NULL) AS no_change,
       bool_and(horizon = hlc_from_parts(:'t4'::timestamptz, 4095)) AS same_horizon
  FROM changes_since(NULL::hz_t, hlc_from_parts(:'t4'::timestamptz, 4095));
-- hlc_now() values and unique_timestamp() values share the clock: an
-- hlc_now() taken after T4 is above T4/4095 and moves the horizon past it
SELECT hlc_now() > hlc_from_parts(:'t4'::timestamptz, 4095) AS after_t4;
SELECT count(*) AS rows, bool_and(change IS NULL) AS no_change,
       bool_and(horizon > hlc_from_parts(:'t4'::timestamptz, 4095)) AS horizon_moved
  FROM changes_since(NULL::hz_t, hlc_from_parts(:'t4'::timestamptz, 4095));

--------------------------------------------------------------------------
-- Errors
--------------------------------------------------------------------------

-- only READ COMMITTED: a transaction snapshot can predate the horizon
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_h, NULL)$$);
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_t, NULL)$$);
ROLLBACK;
SET default_transaction_isolation = 'repeatable read';
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_h, NULL)$$);
RESET default_transaction_isolation;
-- the error carries a hint
\set SHOW_CONTEXT never
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM changes_since(NULL::hz_h, NULL);
ROLLBACK;
\set SHOW_CONTEXT errors
-- READ COMMITTED inside a transaction block is fine
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT count(*) AS rows FROM changes_since(NULL::hz_t, NULL);
COMMIT;

-- rows_of must be a row of a table
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::int, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::event_stats.hlc, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(42, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::record, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL, NULL)$$);
-- a composite type that is not a table: the same SQLSTATE
CREATE TYPE hz_comp AS (id int, last_modified hlc);
SELECT left(pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_comp, NULL)$$), 5) AS sqlstate;

-- the column must exist (not dropped, not a system column)
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_h, NULL, 'nope')$$);
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_h, NULL, 'xmin')$$);
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_named, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_h, NULL, NULL)$$);
CREATE TABLE hz_wrong (id int, last_modified int, stamp timestamp, d date, gone hlc);
ALTER TABLE hz_wrong DROP COLUMN gone;
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_wrong, NULL, 'gone')$$);

-- and be an event_stats.hlc or a timestamptz
\set SHOW_CONTEXT never
SELECT * FROM changes_since(NULL::hz_wrong, NULL);
\set SHOW_CONTEXT errors
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_wrong, NULL, 'stamp')$$);
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_wrong, NULL, 'd')$$);
SELECT pg_temp.err($$SELECT * FROM event_stats.changes_since(NULL::hz_wrong, NULL, 'id')$$);

--------------------------------------------------------------------------
-- hlc_status(): the new columns
--------------------------------------------------------------------------

SELECT name, type
  FROM (SELECT unnest(p.proargnames) AS name,
               unnest(p.proallargtypes)::regtype AS type,
               unnest(p.proargmodes) AS mode
          FROM pg_proc p
         WHERE p.oid = 'event_stats.hlc_status()'::regprocedure) a
 WHERE name LIKE 'horizon%';
SELECT pg_typeof(s.horizon) AS horizon, pg_typeof(s.horizon_lag) AS horizon_lag,
       pg_typeof(s.horizon_holder_pid) AS holder_pid, pg_typeof(s.horizon_holder_xid) AS holder_xid
  FROM hlc_status() s;
-- nothing open: at the clock, no lag, no holder
SELECT s.horizon <= s.current AS at_or_below_clock, s.horizon_lag >= interval '0' AS lag_not_negative,
       s.horizon_lag = hlc_physical(s.current) - hlc_physical(s.horizon) AS lag_is_difference,
       s.horizon_holder_pid IS NULL AS no_pid, s.horizon_holder_xid IS NULL AS no_xid
  FROM hlc_status() s;
-- held: behind the clock, lag is the difference of the physical parts
BEGIN;
SELECT hlc_now() IS NOT NULL AS took;
SELECT hlc_now() IS NOT NULL AS took;
SELECT s.horizon < s.current AS below_clock, s.horizon_lag >= interval '0' AS lag_not_negative,
       s.horizon_lag = hlc_physical(s.current) - hlc_physical(s.horizon) AS lag_is_difference,
       s.horizon_holder_pid = pg_backend_pid() AS holder_is_me
  FROM hlc_status() s;
COMMIT;

-- a value a parallel worker took for this transaction stays held after the
-- leader takes one itself (the leader never raises the worker's hold)
BEGIN;
SET LOCAL force_parallel_mode = on;
SELECT hlc_now() AS worker_value \gset
SELECT hlc_horizon() < :'worker_value'::hlc AS held_after_worker;
SET LOCAL force_parallel_mode = off;
SELECT hlc_now() IS NOT NULL AS leader_took;
SELECT hlc_horizon() < :'worker_value'::hlc AS still_held_after_leader;
COMMIT;
SELECT hlc_horizon() >= :'worker_value'::hlc AS released;

-- A poller that holds the horizon itself is refused, not starved: in the
-- transaction that wrote a row whose default took a clock value, every
-- poll would come back empty (and every other poller would stall with it).
CREATE TABLE hz_poll (id int, last_modified timestamptz DEFAULT unique_timestamp());
INSERT INTO hz_poll (id) VALUES (1);
BEGIN;
INSERT INTO hz_poll (id) VALUES (2);
SELECT pg_temp.err($$SELECT count(*) FROM changes_since(NULL::hz_poll, NULL)$$) ~
       '^25000: cannot poll for changes in a transaction that holds the closed timestamp back' AS refused;
SELECT pg_temp.err($$SELECT hlc_horizon_for_poll()$$) ~ '^25000' AS refused_too;
-- hlc_horizon() itself still answers there: it shows the transaction's hold
SELECT hlc_horizon() IS NOT NULL AS answers, pg_temp.holder() AS holder;
ROLLBACK;
-- so is a poller whose transaction took a value itself, even after a
-- savepoint that took it was rolled back (the hold stays, see above)
BEGIN;
SAVEPOINT s;
SELECT hlc_now() IS NOT NULL AS took;
ROLLBACK TO SAVEPOINT s;
SELECT pg_temp.err($$SELECT count(*) FROM changes_since(NULL::hz_poll, NULL)$$) ~ '^25000' AS refused;
ROLLBACK;
-- a transaction that takes no clock value polls, and sees the row
BEGIN;
SELECT count(change) FROM changes_since(NULL::hz_poll, NULL);
COMMIT;

DROP TABLE hz_h, hz_t, hz_named, hz_wrong, hz_part, hz_poll;
DROP TYPE hz_comp;
SET client_min_messages = warning;
DROP SCHEMA "hz Odd" CASCADE;
RESET client_min_messages;
