--
-- Transactional behaviour: commit, rollback, savepoints, 2PC, reading
-- one's own increments, set() and drop_counter() inside transactions.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS event_stats;
RESET client_min_messages;
SELECT event_stats.create_counter('tx');
SELECT event_stats.create_counter('tx_two', 2);

-- a transaction reads its own increments; a rollback leaves nothing
BEGIN;
SELECT event_stats.increment('tx', 10);
SELECT event_stats.value('tx');
SELECT event_stats.increment('tx', 5);
SELECT event_stats.value('tx');
ROLLBACK;
SELECT event_stats.value('tx');

BEGIN;
SELECT event_stats.increment('tx', 10);
COMMIT;
SELECT event_stats.value('tx');

-- savepoints: rolled-back increments vanish, released ones stay
BEGIN;
SELECT event_stats.increment('tx', 1);
SAVEPOINT a;
SELECT event_stats.increment('tx', 100);
SELECT event_stats.value('tx');
ROLLBACK TO SAVEPOINT a;
SELECT event_stats.value('tx');
SAVEPOINT b;
SELECT event_stats.increment('tx', 20);
SAVEPOINT c;
SELECT event_stats.increment('tx', 300);
RELEASE SAVEPOINT c;
SELECT event_stats.value('tx');
SAVEPOINT d;
SELECT event_stats.increment('tx', 4000);
ROLLBACK TO SAVEPOINT b;
SELECT event_stats.value('tx');
SELECT event_stats.increment('tx', 2);
RELEASE SAVEPOINT b;
COMMIT;
SELECT event_stats.value('tx');

-- a savepoint that only touches a counter first used inside it
BEGIN;
SAVEPOINT s;
SELECT event_stats.increment('tx_two', 7);
RELEASE SAVEPOINT s;
SAVEPOINT t;
SELECT event_stats.increment('tx_two', 1000);
ROLLBACK TO SAVEPOINT t;
COMMIT;
SELECT event_stats.value('tx_two');

-- an error inside a plpgsql block rolls back the block's increments only
DO $$
BEGIN
    PERFORM event_stats.increment('tx_two', 1);
    BEGIN
        PERFORM event_stats.increment('tx_two', 50);
        PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN
        NULL;
    END;
END $$;
SELECT event_stats.value('tx_two');

-- set(): absolute at commit; later increments of the same transaction add
BEGIN;
SELECT event_stats.increment('tx', 3);
SELECT event_stats.set('tx', 1000);
SELECT event_stats.value('tx');
SELECT event_stats.increment('tx', 1);
SELECT event_stats.value('tx');
COMMIT;
SELECT event_stats.value('tx');

BEGIN;
SELECT event_stats.set('tx', 0);
SAVEPOINT s;
SELECT event_stats.set('tx', 77);
ROLLBACK TO SAVEPOINT s;
SELECT event_stats.value('tx');
SELECT event_stats.increment('tx', 2);
COMMIT;
SELECT event_stats.value('tx');

BEGIN;
SELECT event_stats.set('tx', 555);
ROLLBACK;
SELECT event_stats.value('tx');

-- two-phase commit
BEGIN;
SELECT event_stats.increment('tx', 40);
PREPARE TRANSACTION 'es_p1';
SELECT event_stats.value('tx');
-- the session goes on incrementing while its prepared transaction holds a shard
SELECT event_stats.increment('tx', 1);
SELECT event_stats.value('tx');
COMMIT PREPARED 'es_p1';
SELECT event_stats.value('tx');

BEGIN;
SELECT event_stats.increment('tx', 500);
PREPARE TRANSACTION 'es_p2';
SELECT event_stats.increment('tx', 1);
ROLLBACK PREPARED 'es_p2';
SELECT event_stats.value('tx');

-- two prepared transactions at once on a two-shard counter
BEGIN;
SELECT event_stats.increment('tx_two', 10);
PREPARE TRANSACTION 'es_p3';
BEGIN;
SELECT event_stats.increment('tx_two', 20);
PREPARE TRANSACTION 'es_p4';
SELECT event_stats.value('tx_two');
COMMIT PREPARED 'es_p4';
ROLLBACK PREPARED 'es_p3';
SELECT event_stats.value('tx_two');

-- set() in a prepared transaction
BEGIN;
SELECT event_stats.set('tx_two', 3);
PREPARE TRANSACTION 'es_p5';
SELECT event_stats.value('tx_two');
COMMIT PREPARED 'es_p5';
SELECT event_stats.value('tx_two');

-- create and use in one transaction; rolled back, it never existed
BEGIN;
SELECT event_stats.create_counter('tx_new', 3);
SELECT event_stats.increment('tx_new', 9);
SELECT event_stats.value('tx_new');
ROLLBACK;
SELECT count(*) FROM event_stats.counters WHERE name = 'tx_new';
BEGIN;
SELECT event_stats.create_counter('tx_new', 3);
SELECT event_stats.increment('tx_new', 9);
COMMIT;
SELECT event_stats.value('tx_new');

-- a rolled-back drop brings the counter back with its value and
-- keeps the transaction's earlier increments
BEGIN;
SELECT event_stats.increment('tx_new', 1);
SAVEPOINT s;
SELECT event_stats.drop_counter('tx_new');
ROLLBACK TO SAVEPOINT s;
SELECT event_stats.value('tx_new');
COMMIT;
SELECT event_stats.value('tx_new');

-- increments before a drop in the same transaction go with the counter
BEGIN;
SELECT event_stats.increment('tx_new', 1);
SELECT event_stats.drop_counter('tx_new');
COMMIT;
SELECT count(*) AS rows_left FROM event_stats.counter_shards s
  LEFT JOIN event_stats.counter_definitions d ON d.id = s.counter_id
 WHERE d.id IS NULL;

-- a failed commit (here a deferred constraint) discards the increments
CREATE TABLE tx_check (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED);
BEGIN;
INSERT INTO tx_check VALUES (1), (1);
SELECT event_stats.increment('tx', 1000);
COMMIT;
SELECT event_stats.value('tx');
DROP TABLE tx_check;

-- a database of the same server without the extension is unaffected
CREATE DATABASE regress_es_other;
\c regress_es_other
SELECT count(*) AS has_extension FROM pg_extension WHERE extname = 'event_stats';
CREATE TABLE plain (a int);
BEGIN;
INSERT INTO plain VALUES (1);
SAVEPOINT s;
INSERT INTO plain VALUES (2);
ROLLBACK TO SAVEPOINT s;
COMMIT;
BEGIN;
INSERT INTO plain VALUES (3);
PREPARE TRANSACTION 'es_other';
COMMIT PREPARED 'es_other';
SELECT array_agg(a ORDER BY a) FROM plain;
-- increments pending when the extension is dropped go with it
CREATE EXTENSION event_stats;
SELECT event_stats.create_counter('doomed', 2);
BEGIN;
SELECT event_stats.increment('doomed');
DROP EXTENSION event_stats;
COMMIT;
SELECT count(*) AS has_extension FROM pg_extension WHERE extname = 'event_stats';
-- remembered shard positions do not outlive the table they point into
CREATE EXTENSION event_stats;
SELECT event_stats.create_counter('wide') IS NOT NULL AS created;
SELECT event_stats.create_counter('narrow', 1);
SELECT event_stats.increment('narrow');
DROP EXTENSION event_stats;
CREATE EXTENSION event_stats;
SELECT event_stats.create_counter('first', 1), event_stats.create_counter('second', 1);
SELECT event_stats.increment('second');
SELECT event_stats.value('second');
DROP EXTENSION event_stats;
\c contrib_regression
DROP DATABASE regress_es_other;
SELECT event_stats.value('tx');
