/*
 * event_stats 1.0 -> 1.1, run by ALTER EXTENSION event_stats UPDATE.
 *
 * What changes in SQL is the storage of shard rows.  In 1.0 each shard row
 * was padded (filler, fillfactor 10) to a heap page of its own, and every
 * counter had one row per possible backend; in 1.1 rows exist only where
 * written and are packed densely (no filler, fillfactor 50), with shard 0
 * as each counter's base row (see event_stats--1.1.sql).  This script
 * folds each counter's rows into its shard 0 row, drops the padding and
 * rewrites event_stats.counter_shards.  It does so in place: the table
 * keeps its OID, which running sessions have cached, so that commits
 * waiting for its lock meanwhile carry on afterwards.  Counter
 * definitions, owners and privileges, tracked tables, the id sequence and
 * the clock (in shared memory and its state file) are left as they are.
 *
 * It holds an ACCESS EXCLUSIVE lock on counter_shards from before its
 * first change to its commit: commits that write counters (increments,
 * set(), writes to tracked tables) and reads of counters wait for it, and
 * none fails.
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION event_stats UPDATE TO '1.1'" to load this file. \quit

--------------------------------------------------------------------------
-- Refusals, before the lock.
--
-- The fold below must see every row committed before the lock was
-- granted; a REPEATABLE READ or SERIALIZABLE snapshot is taken when ALTER
-- EXTENSION starts, before that.
--
-- A prepared transaction that holds a lock on counter_shards (one that
-- read the table with SELECT, say) keeps it until COMMIT PREPARED or
-- ROLLBACK PREPARED, which may be never.  Waiting for it would stall every
-- commit that writes a counter, queued behind this update's lock request,
-- for as long; so the update refuses and names it instead.  (One that
-- prepares after this check, while the update waits for the lock, is
-- waited for; lock_timeout bounds that.)  The library itself releases the
-- table's lock once a commit has written its rows, so the increments of a
-- prepared transaction hold no lock on it: they are dealt with below.
--------------------------------------------------------------------------

DO $$
DECLARE
    gids text;
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'ALTER EXTENSION event_stats UPDATE to 1.1 must run in a READ COMMITTED transaction'
            USING ERRCODE = 'active_sql_transaction',
                  DETAIL = 'It folds the shard rows committed before it locked event_stats.counter_shards; a '
                           || pg_catalog.upper(pg_catalog.current_setting('transaction_isolation'))
                           || ' snapshot, taken earlier, may not show them all.',
                  HINT = 'Run it on its own, outside a transaction block, or after BEGIN ISOLATION LEVEL READ COMMITTED.';
    END IF;

    -- A prepared transaction's locks belong to no backend (pid NULL); its
    -- lock on its own xid names it in pg_prepared_xacts.
    SELECT pg_catalog.string_agg(DISTINCT pg_catalog.quote_literal(p.gid), ', ')
      INTO gids
      FROM pg_catalog.pg_locks r
      JOIN pg_catalog.pg_locks x
        ON x.virtualtransaction = r.virtualtransaction
       AND x.locktype = 'transactionid' AND x.pid IS NULL
      JOIN pg_catalog.pg_prepared_xacts p ON p.transaction = x.transactionid
     WHERE r.locktype = 'relation' AND r.pid IS NULL
       AND r.database = (SELECT d.oid FROM pg_catalog.pg_database d
                          WHERE d.datname = pg_catalog.current_database())
       AND r.relation = 'event_stats.counter_shards'::pg_catalog.regclass;
    IF gids IS NOT NULL THEN
        RAISE EXCEPTION 'prepared transactions hold a lock on event_stats.counter_shards: %', gids
            USING ERRCODE = 'object_in_use',
                  DETAIL = 'The update would wait for them, and every commit that writes a counter would wait behind it, until COMMIT PREPARED or ROLLBACK PREPARED.',
                  HINT = 'Finish them with COMMIT PREPARED or ROLLBACK PREPARED, then run ALTER EXTENSION event_stats UPDATE again.';
    END IF;
END
$$;

--------------------------------------------------------------------------
-- The lock, taken when the table is free rather than by queueing for it,
-- for two seconds at most.  A commit writes its counters one after the
-- other and releases the table's lock after each; one that has written a
-- counter's row and asks for the lock again, for its next counter, queues
-- behind a waiting request of this update, while another commit that holds
-- the lock waits for that row.  The deadlock detector breaks such a cycle
-- by letting the first commit go ahead after deadlock_timeout, once per
-- counter it has left: under load, the update and every commit queued
-- behind it waited tens of seconds so.  A request that does not queue
-- forms no such cycle, and the table is free between commits' writes.  On
-- a table that is never free for two seconds the update queues after all
-- (lock_timeout applies).
--------------------------------------------------------------------------

DO $$
BEGIN
    FOR attempt IN 1 .. 2000 LOOP
        BEGIN
            LOCK TABLE event_stats.counter_shards IN ACCESS EXCLUSIVE MODE NOWAIT;
            RETURN;
        EXCEPTION WHEN lock_not_available THEN
            PERFORM pg_catalog.pg_sleep(0.001);
        END;
    END LOOP;
END
$$;

LOCK TABLE event_stats.counter_shards IN ACCESS EXCLUSIVE MODE;

--------------------------------------------------------------------------
-- Fold every counter's rows into its shard 0 row, under the lock.
--
-- A counter's value is the sum of its rows, in 128 bits (value() reports
-- a sum outside bigint as an overflow).  A sum that fits in bigint goes
-- into the counter's shard 0 row and its other rows go, and so do rows of
-- value 0, which add nothing (a counter at 0 has no row, like one never
-- written).  A counter whose sum does not fit keeps its rows: no one row
-- could hold it.  Rows of counters without a definition are folded the
-- same way; nothing that counts is dropped.
--
-- The library of 1.0 made every row of a counter with the counter, but
-- the library of 1.1 creates rows only when it writes them, in 1.0
-- databases too, so a counter may have no shard 0 row.  Its sum then goes
-- into its lowest row, which serves as well (a counter that one backend
-- alone wrote has its one row elsewhere than shard 0 too): inserting a
-- shard 0 row here could meet an insertion of that row in progress, which
-- this transaction cannot see, and would have to wait for it.
--
-- Counters with a change in progress keep their rows.  The lock keeps new
-- writers out, but a commit releases the table's lock as soon as it has
-- written its rows, before it is committed, a prepared transaction wrote
-- its increments at PREPARE, and drop_counter() deleted the rows at once:
-- their changes can be in progress under the lock, and the fold must
-- neither wait for them (a commit that writes a second counter waits for
-- this lock: a deadlock; a prepared one may never end) nor fold around them (an UPDATE or DELETE that meets a row
-- changed by a transaction that commits meanwhile acts on the new version:
-- a DELETE would drop an increment the sum did not include).  So first the
-- transactions running now are listed; after that, since no new one can
-- write the table, a row one of them updated or deleted is one whose xmax
-- is among them, and one of them running set(), drop or compaction holds
-- that counter's lock (see src/counter_store.c).  Such counters are left
-- as they are, their rows for compaction to fold later.  A row one of
-- them is inserting is invisible here and left alone; it counts once its
-- transaction commits, as before.  Any other counter's rows cannot change
-- until this transaction ends.
--
-- Refused, before anything is changed: a table that is not 1.0's (its
-- columns were altered by hand), and filler holding anything but blanks
-- (only the extension writes the table, and always an empty filler):
-- dropping the column would lose it.  Checked after the fold: each counter
-- folded has one row, written by this transaction and holding its sum (or
-- none, for a sum of 0), and no other row but those that transactions
-- running before the lock may have created since.
--------------------------------------------------------------------------

DO $$
DECLARE
    me xid := pg_catalog.pg_current_xact_id()::xid;
    layout text;
    running xid[];
    locked integer[];
    busy integer[];
    filled bigint;
    folded_ids integer[];
    expected text;
    written text;
    stray bigint;
BEGIN
    SELECT pg_catalog.string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod),
                                 ', ' ORDER BY a.attnum)
      INTO layout
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = 'event_stats.counter_shards'::pg_catalog.regclass
       AND a.attnum > 0 AND NOT a.attisdropped;
    IF layout IS DISTINCT FROM 'counter_id integer, shard integer, value bigint, filler character(380)' THEN
        RAISE EXCEPTION 'table event_stats.counter_shards does not have the columns of event_stats 1.0'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Its columns are: ' || layout || '.',
                  HINT = 'Give it back the columns counter_id integer, shard integer, value bigint, filler char(380), or dump the counters and recreate the extension.';
    END IF;

    -- Transactions running now, prepared ones included, but this one; and
    -- the counters whose lock one of them holds.  Read before the scans
    -- below take their snapshots.
    SELECT coalesce(pg_catalog.array_agg(l.transactionid), '{}')
      INTO running
      FROM pg_catalog.pg_locks l
     WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
       AND l.pid IS DISTINCT FROM pg_catalog.pg_backend_pid();
    SELECT coalesce(pg_catalog.array_agg(DISTINCT l.objid::integer), '{}')
      INTO locked
      FROM pg_catalog.pg_locks l
     WHERE l.locktype = 'object'
       AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                          WHERE d.datname = pg_catalog.current_database())
       AND l.classid = 'event_stats.counter_shards'::pg_catalog.regclass
       AND l.granted
       AND l.pid IS DISTINCT FROM pg_catalog.pg_backend_pid();

    SELECT coalesce(pg_catalog.array_agg(DISTINCT s.counter_id)
                        FILTER (WHERE s.xmax = ANY (running)), '{}') || locked,
           pg_catalog.count(*) FILTER (WHERE s.filler <> '')
      INTO busy, filled
      FROM event_stats.counter_shards s;
    IF filled > 0 THEN
        RAISE EXCEPTION 'column filler of event_stats.counter_shards holds data'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Rows with data there: ' || filled || '. The update drops that column; event_stats itself only ever writes blanks there.',
                  HINT = 'Save what the rows hold and set filler to '''' in them, then run ALTER EXTENSION event_stats UPDATE again.';
    END IF;

    WITH totals AS (
        SELECT s.counter_id, pg_catalog.sum(s.value) AS total,
               pg_catalog.min(s.shard) AS base
          FROM event_stats.counter_shards s
         WHERE s.counter_id <> ALL (busy)
         GROUP BY s.counter_id
    ), folded AS (
        SELECT t.counter_id, t.total::bigint AS total, t.base
          FROM totals t
         WHERE t.total BETWEEN -9223372036854775808 AND 9223372036854775807
    ), others AS (
        DELETE FROM event_stats.counter_shards s
         USING folded f
         WHERE s.counter_id = f.counter_id AND (s.shard <> f.base OR f.total = 0)
    ), kept AS (
        UPDATE event_stats.counter_shards s
           SET value = f.total
          FROM folded f
         WHERE s.counter_id = f.counter_id AND s.shard = f.base AND f.total <> 0
    )
    SELECT coalesce(pg_catalog.array_agg(f.counter_id), '{}'),
           pg_catalog.string_agg(f.counter_id || ':' || f.total, ',' ORDER BY f.counter_id)
               FILTER (WHERE f.total <> 0)
      INTO folded_ids, expected
      FROM folded f;

    -- the rows of 0 of counters out of bigint range
    DELETE FROM event_stats.counter_shards s
     WHERE s.value = 0 AND s.counter_id <> ALL (busy);

    SELECT pg_catalog.string_agg(s.counter_id || ':' || s.value, ',' ORDER BY s.counter_id)
      INTO written
      FROM event_stats.counter_shards s
     WHERE s.xmin = me;
    SELECT pg_catalog.count(*)
      INTO stray
      FROM event_stats.counter_shards s
     WHERE s.counter_id = ANY (folded_ids) AND s.xmin <> me AND s.xmin <> ALL (running);
    IF written IS DISTINCT FROM expected OR stray > 0 THEN
        RAISE EXCEPTION 'folding the shard rows of event_stats.counter_shards went wrong'
            USING ERRCODE = 'internal_error',
                  DETAIL = 'Sums expected: ' || coalesce(expected, '(none)')
                           || '; rows written: ' || coalesce(written, '(none)')
                           || '; rows left over: ' || stray || '.';
    END IF;
END
$$;

--------------------------------------------------------------------------
-- The 1.1 layout: no filler, fillfactor 50.  Dropping the column only
-- hides it; the rewrite below removes its bytes from every row version it
-- copies and packs them at the new fillfactor.  The versions the fold
-- replaced are among them (older snapshots may read them), without their
-- padding; VACUUM removes them.
--
-- The rewrite is a CLUSTER, not a rewriting ALTER TABLE (such as ALTER
-- COLUMN value TYPE bigint USING value + 0), because CLUSTER copies every
-- row version some transaction may still see or commit, with its own xmin
-- and xmax: the versions the fold replaced, and those of the changes in
-- progress left alone above (it warns "concurrent insert in progress" or
-- "concurrent delete in progress" about these; they count once their
-- transaction commits, as before).  A rewriting ALTER TABLE copies only
-- the rows this transaction sees, as new rows of its own: it would drop
-- those changes in progress, and a transaction whose snapshot predates
-- this update, reading counters only after it (it held no lock on the
-- table, so the update did not wait for it), would see no row at all,
-- every counter at 0.  CLUSTER marks the index as the table's clustering
-- index; SET WITHOUT CLUSTER takes that back, as 1.1 has no such mark.
--------------------------------------------------------------------------

ALTER TABLE event_stats.counter_shards
    DROP COLUMN filler,
    SET (fillfactor = 50);
CLUSTER event_stats.counter_shards USING counter_shards_pkey;
ALTER TABLE event_stats.counter_shards SET WITHOUT CLUSTER;

--------------------------------------------------------------------------
-- The library this server runs must read the new layout.  A server keeps
-- the library it loaded at start: installing 1.1 without a restart leaves
-- it running the library of 1.0, which refuses a counter_shards without
-- its filler, so that every commit that writes a counter would fail.
-- Asked for counter 0, which never exists, a library that reads 1.1
-- answers that there is no such counter; that of 1.0 raises its layout
-- error, and the update is undone.  (A server that does not preload the
-- library runs none that could misread the tables; it loads the installed
-- one at its next start.)
--------------------------------------------------------------------------

DO $$
DECLARE
    msg text;
BEGIN
    PERFORM event_stats.value(0::event_stats.counter);
EXCEPTION
    WHEN undefined_object THEN
        NULL;
    WHEN object_not_in_prerequisite_state THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        IF msg LIKE 'table "event_stats.counter_shards" does not have the layout event_stats expects%' THEN
            RAISE EXCEPTION 'the event_stats library this server has loaded cannot use the tables of 1.1'
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'A server keeps the library it loaded at start. This one says: ' || msg,
                      HINT = 'Restart the server, so that it loads the library of 1.1 installed since (it serves 1.0 databases as well), then run ALTER EXTENSION event_stats UPDATE again.';
        END IF;
END
$$;

--------------------------------------------------------------------------
-- Comments that changed in 1.1
--------------------------------------------------------------------------

COMMENT ON TABLE event_stats.counter_shards IS
    'Shard values of sharded counters; a counter is the sum of its rows, which exist only for the shards written. Do not write to it directly.';

COMMENT ON FUNCTION event_stats.create_counter(text, integer) IS
    'Creates a sharded counter with at most shards shard rows (default: one per backend that can exist, MaxBackends), each created by the first commit that writes it; errors: 42710 name taken, 42602 / 42622 empty or over 63 bytes, 22023 shards out of range, 22004 NULL';

-- Compaction has no SQL interface yet (see event_stats--1.1.sql); one
-- added to 1.1 is declared here too.
