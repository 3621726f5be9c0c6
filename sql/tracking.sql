--
-- Tracked tables: event_stats.track() / untrack().  After every way a row
-- can arrive or leave, the counter's value is compared with count(*) in
-- the same snapshot (one statement), inside the writing transaction and
-- after it; then every error path, each followed by a check that nothing
-- changed.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS event_stats;
RESET client_min_messages;

-- Runs a statement; reports SQLSTATE and message instead of failing.
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- For each table: the counter tracking it (found through the counters
-- view), its value and count(*), all read by one statement, so in one
-- snapshot.  A table that is not tracked shows an empty counter.  (Not in
-- pg_temp, so that transactions that call it can still be prepared.)
CREATE FUNCTION chk(VARIADIC tbls regclass[])
RETURNS TABLE (tbl regclass, counter event_stats.counter, value bigint,
               count bigint, same boolean)
LANGUAGE plpgsql AS $$
DECLARE
    q text;
BEGIN
    SELECT string_agg(format(
        'SELECT %1$s, %2$L::regclass, c.counter,
                CASE WHEN c.counter IS NOT NULL THEN event_stats.value(c.counter) END,
                (SELECT count(*) FROM %2$s)
           FROM (SELECT 1) one
           LEFT JOIN event_stats.counters c ON c.tracks = %2$L::regclass',
        x.ord, x.r), ' UNION ALL ')
      INTO q
      FROM unnest(tbls) WITH ORDINALITY AS x(r, ord);
    RETURN QUERY EXECUTE
        'SELECT r, c, v, n, v = n FROM (' || q || ') s(ord, r, c, v, n) ORDER BY ord';
END $$;

-- Every tracking counter and the table it tracks (the counters view).
CREATE VIEW tracking AS
    SELECT name, counter, tracks FROM event_stats.counters WHERE tracks IS NOT NULL;

--
-- track() on a table that already has rows
--
CREATE TABLE items (id int PRIMARY KEY, v text);
INSERT INTO items SELECT g, 'old' FROM generate_series(1, 5) g;
SELECT event_stats.track('items');
SELECT * FROM tracking ORDER BY name;
SELECT * FROM chk('items');
SELECT event_stats.value('public.items') = (SELECT count(*) FROM items) AS same,
       event_stats.value('public.items') AS value;

--
-- INSERT
--
INSERT INTO items VALUES (6, 'single');
SELECT * FROM chk('items');
INSERT INTO items VALUES (7, 'multi'), (8, 'multi'), (9, 'multi');
SELECT * FROM chk('items');
INSERT INTO items SELECT g, 'select' FROM generate_series(10, 19) g;
SELECT * FROM chk('items');
-- a failing statement counts nothing
SELECT pg_temp.err($$INSERT INTO items VALUES (20, 'x'), (1, 'duplicate')$$);
SELECT * FROM chk('items');

-- a transaction sees its own row changes in the counter, as in count(*)
BEGIN;
INSERT INTO items VALUES (20, 'own');
SELECT * FROM chk('items');
DELETE FROM items WHERE id IN (1, 2, 3);
SELECT * FROM chk('items');
COMMIT;
SELECT * FROM chk('items');

-- a rolled-back transaction counts nothing
BEGIN;
INSERT INTO items SELECT g, 'rolled back' FROM generate_series(100, 109) g;
DELETE FROM items WHERE id < 10;
ROLLBACK;
SELECT * FROM chk('items');

--
-- INSERT ... ON CONFLICT: only rows actually inserted count
--
INSERT INTO items VALUES (4, 'dup'), (21, 'new'), (5, 'dup'), (22, 'new'), (23, 'new')
    ON CONFLICT DO NOTHING RETURNING id;
SELECT * FROM chk('items');
INSERT INTO items VALUES (21, 'dup'), (22, 'dup') ON CONFLICT (id) DO NOTHING RETURNING id;
SELECT * FROM chk('items');
INSERT INTO items VALUES (23, 'upd'), (24, 'new'), (4, 'upd'), (25, 'new')
    ON CONFLICT (id) DO UPDATE SET v = excluded.v
    RETURNING id, v, xmax = 0 AS inserted;
SELECT * FROM chk('items');
-- DO UPDATE ... WHERE that skips the update: still no new row
INSERT INTO items VALUES (24, 'skip'), (26, 'new')
    ON CONFLICT (id) DO UPDATE SET v = excluded.v WHERE items.v <> 'new'
    RETURNING id, v;
SELECT * FROM chk('items');
BEGIN;
INSERT INTO items VALUES (26, 'dup'), (27, 'new') ON CONFLICT DO NOTHING RETURNING id;
SELECT * FROM chk('items');
COMMIT;
SELECT * FROM chk('items');

--
-- COPY FROM
--
COPY items (id, v) FROM STDIN;
30	copy
31	copy
32	copy
33	copy
\.
SELECT * FROM chk('items');
COPY items (id, v) FROM STDIN WHERE id % 2 = 0;
34	copy where
35	copy where
36	copy where
\.
SELECT * FROM chk('items');
-- a COPY that fails half way counts nothing
COPY items (id, v) FROM STDIN;
37	copy
30	duplicate
\.
SELECT * FROM chk('items');
BEGIN;
COPY items (id, v) FROM STDIN;
37	copy in transaction
38	copy in transaction
\.
SELECT * FROM chk('items');
COMMIT;
SELECT * FROM chk('items');

--
-- DELETE, UPDATE
--
DELETE FROM items WHERE id BETWEEN 30 AND 33;
SELECT * FROM chk('items');
DELETE FROM items WHERE id = -1;
SELECT * FROM chk('items');
UPDATE items SET v = 'updated' WHERE id < 10;
SELECT * FROM chk('items');
UPDATE items SET id = id + 1000 WHERE id BETWEEN 20 AND 22;
SELECT * FROM chk('items');
BEGIN;
UPDATE items SET v = v || '!';
UPDATE items SET v = v || '!';
SELECT * FROM chk('items');
COMMIT;
SELECT * FROM chk('items');

--
-- MERGE: insert, update and delete arms in one statement
--
SELECT count(*) FILTER (WHERE id IN (4, 5)) AS matched_rows FROM items;
MERGE INTO items t
USING (VALUES (4, 'merge update'), (5, 'merge delete'), (50, 'merge insert'),
              (51, 'merge insert')) AS s(id, v)
   ON t.id = s.id
 WHEN MATCHED AND s.v = 'merge delete' THEN DELETE
 WHEN MATCHED THEN UPDATE SET v = s.v
 WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v);
SELECT id, v FROM items WHERE id IN (4, 5, 50, 51) ORDER BY id;
SELECT * FROM chk('items');
-- MERGE that only deletes
MERGE INTO items t USING (SELECT generate_series(50, 51) AS id) s ON t.id = s.id
 WHEN MATCHED THEN DELETE;
SELECT * FROM chk('items');

--
-- Rows written by a function, by another table's trigger, by
-- data-modifying CTEs, and by a deferred constraint trigger at commit
--
CREATE FUNCTION add_items(first int, n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO items SELECT g, 'function' FROM generate_series(first, first + n - 1) g;
    DELETE FROM items WHERE id = first;
    RETURN n - 1;
END $$;
SELECT add_items(60, 5);
SELECT * FROM chk('items');

CREATE TABLE orders (id int);
CREATE FUNCTION orders_to_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO items VALUES (NEW.id, 'trigger');
        RETURN NEW;
    END IF;
    DELETE FROM items WHERE id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER orders_items AFTER INSERT OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_to_items();
INSERT INTO orders SELECT generate_series(70, 74);
SELECT * FROM chk('items');
DELETE FROM orders WHERE id < 72;
SELECT * FROM chk('items');

WITH moved AS (DELETE FROM items WHERE id BETWEEN 70 AND 74 RETURNING id, v)
INSERT INTO items SELECT id + 10, v FROM moved WHERE id < 73;
SELECT * FROM chk('items');
WITH a AS (INSERT INTO items VALUES (90, 'cte') RETURNING id),
     b AS (INSERT INTO items VALUES (91, 'cte') RETURNING id)
SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b) AS inserted;
SELECT * FROM chk('items');

-- a BEFORE trigger that skips rows: only rows actually inserted count
CREATE FUNCTION skip_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.v = 'skip' THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER skip_items BEFORE INSERT ON items
    FOR EACH ROW EXECUTE FUNCTION skip_items();
INSERT INTO items VALUES (92, 'skip'), (93, 'kept'), (94, 'skip') RETURNING id;
SELECT * FROM chk('items');
DROP TRIGGER skip_items ON items;

-- a procedure that commits and rolls back in the middle
CREATE PROCEDURE add_items_in_steps() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO items VALUES (180, 'procedure committed');
    COMMIT;
    INSERT INTO items VALUES (181, 'procedure rolled back');
    ROLLBACK;
    INSERT INTO items VALUES (182, 'procedure committed at the end');
    DELETE FROM items WHERE id = 180;
END $$;
CALL add_items_in_steps();
SELECT id FROM items WHERE id BETWEEN 180 AND 189 ORDER BY id;
SELECT * FROM chk('items');

CREATE TABLE late_source (id int);
CREATE FUNCTION late_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO items VALUES (NEW.id, 'deferred trigger');
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER late_items AFTER INSERT ON late_source
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION late_items();
BEGIN;
INSERT INTO late_source VALUES (95), (96);
SELECT * FROM chk('items');
COMMIT;
SELECT * FROM chk('items');

--
-- Savepoints: rolled-back ones count nothing, released ones count
--
BEGIN;
INSERT INTO items VALUES (200, 'sp');
SAVEPOINT a;
INSERT INTO items SELECT g, 'sp a' FROM generate_series(201, 210) g;
SAVEPOINT b;
DELETE FROM items WHERE id < 100;
SELECT * FROM chk('items');
ROLLBACK TO SAVEPOINT b;
SELECT * FROM chk('items');
INSERT INTO items VALUES (211, 'sp b');
RELEASE SAVEPOINT a;
SAVEPOINT c;
INSERT INTO items VALUES (212, 'sp c');
SAVEPOINT d;
INSERT INTO items VALUES (213, 'sp d');
RELEASE SAVEPOINT d;
ROLLBACK TO SAVEPOINT c;
SELECT * FROM chk('items');
COMMIT;
SELECT * FROM chk('items');

-- a plpgsql block that caught an error: its rows vanish
DO $$
BEGIN
    INSERT INTO items VALUES (220, 'kept');
    BEGIN
        INSERT INTO items VALUES (221, 'lost'), (222, 'lost');
        DELETE FROM items WHERE id = 220;
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
END $$;
SELECT * FROM chk('items');

--
-- Two-phase commit
--
BEGIN;
INSERT INTO items SELECT g, '2pc' FROM generate_series(300, 304) g;
DELETE FROM items WHERE id = 200;
SELECT * FROM chk('items');
PREPARE TRANSACTION 'es_track_commit';
SELECT * FROM chk('items');
COMMIT PREPARED 'es_track_commit';
SELECT * FROM chk('items');

BEGIN;
INSERT INTO items SELECT g, '2pc' FROM generate_series(310, 314) g;
DELETE FROM items WHERE id = 201;
PREPARE TRANSACTION 'es_track_rollback';
SELECT * FROM chk('items');
ROLLBACK PREPARED 'es_track_rollback';
SELECT * FROM chk('items');

-- a prepared TRUNCATE with inserts after it
BEGIN;
TRUNCATE items;
INSERT INTO items SELECT g, '2pc after truncate' FROM generate_series(1, 3) g;
PREPARE TRANSACTION 'es_track_truncate';
COMMIT PREPARED 'es_track_truncate';
SELECT * FROM chk('items');
INSERT INTO items SELECT g, 'refill' FROM generate_series(4, 20) g;
SELECT * FROM chk('items');

--
-- TRUNCATE
--
CREATE TABLE tr (a int);
INSERT INTO tr SELECT generate_series(1, 10);
SELECT event_stats.track('tr');
TRUNCATE tr;
SELECT * FROM chk('tr');
INSERT INTO tr SELECT generate_series(1, 10);
SELECT * FROM chk('tr');
-- TRUNCATE, then INSERT, in one transaction; and INSERT before it too
BEGIN;
INSERT INTO tr VALUES (11), (12);
TRUNCATE tr;
SELECT * FROM chk('tr');
INSERT INTO tr VALUES (1), (2), (3);
SELECT * FROM chk('tr');
COMMIT;
SELECT * FROM chk('tr');
-- two TRUNCATEs in one transaction
BEGIN;
TRUNCATE tr;
INSERT INTO tr SELECT generate_series(1, 7);
TRUNCATE tr;
INSERT INTO tr SELECT generate_series(1, 4);
COMMIT;
SELECT * FROM chk('tr');
-- TRUNCATE in a savepoint that is rolled back
BEGIN;
INSERT INTO tr VALUES (5), (6);
SAVEPOINT s;
TRUNCATE tr;
INSERT INTO tr VALUES (1);
SELECT * FROM chk('tr');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM chk('tr');
INSERT INTO tr VALUES (7);
COMMIT;
SELECT * FROM chk('tr');
-- ... rolled back, then truncated again
BEGIN;
SAVEPOINT s;
TRUNCATE tr;
ROLLBACK TO SAVEPOINT s;
INSERT INTO tr VALUES (8);
TRUNCATE tr;
INSERT INTO tr VALUES (1), (2);
COMMIT;
SELECT * FROM chk('tr');
-- ... in a released savepoint
BEGIN;
INSERT INTO tr VALUES (3);
SAVEPOINT s;
TRUNCATE tr;
INSERT INTO tr VALUES (1), (2), (3), (4), (5);
RELEASE SAVEPOINT s;
INSERT INTO tr VALUES (6);
COMMIT;
SELECT * FROM chk('tr');
-- a rolled-back TRUNCATE
BEGIN;
TRUNCATE tr;
ROLLBACK;
SELECT * FROM chk('tr');
-- TRUNCATE in a plpgsql block that caught an error
DO $$
BEGIN
    INSERT INTO tr VALUES (7);
    BEGIN
        TRUNCATE tr;
        INSERT INTO tr VALUES (1);
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
END $$;
SELECT * FROM chk('tr');
-- TRUNCATE, then COPY FREEZE into the emptied table
BEGIN;
TRUNCATE tr;
COPY tr FROM STDIN (FREEZE);
1
2
3
\.
COMMIT;
SELECT * FROM chk('tr');
BEGIN;
TRUNCATE tr;
INSERT INTO tr VALUES (1);
PREPARE TRANSACTION 'es_track_truncate_rollback';
ROLLBACK PREPARED 'es_track_truncate_rollback';
SELECT * FROM chk('tr');

--
-- Foreign keys: cascading deletes, TRUNCATE ... CASCADE
--
CREATE TABLE fk_parent (id int PRIMARY KEY);
CREATE TABLE fk_child (id int PRIMARY KEY,
                       parent int REFERENCES fk_parent ON DELETE CASCADE);
CREATE TABLE fk_grandchild (id int, child int REFERENCES fk_child ON DELETE CASCADE);
INSERT INTO fk_parent SELECT generate_series(1, 4);
INSERT INTO fk_child SELECT g, g % 4 + 1 FROM generate_series(1, 12) g;
INSERT INTO fk_grandchild SELECT g, g % 12 + 1 FROM generate_series(1, 24) g;
SELECT event_stats.track('fk_child');
SELECT event_stats.track('fk_grandchild');
DELETE FROM fk_parent WHERE id = 1;
SELECT * FROM chk('fk_child', 'fk_grandchild');
BEGIN;
DELETE FROM fk_parent WHERE id = 2;
SELECT * FROM chk('fk_child', 'fk_grandchild');
COMMIT;
SELECT * FROM chk('fk_child', 'fk_grandchild');
-- fk_parent is not tracked; TRUNCATE ... CASCADE empties the tracked ones
TRUNCATE fk_parent CASCADE;
SELECT * FROM chk('fk_child', 'fk_grandchild');
INSERT INTO fk_parent SELECT generate_series(1, 4);
INSERT INTO fk_child SELECT g, g % 4 + 1 FROM generate_series(1, 12) g;
INSERT INTO fk_grandchild SELECT g, g % 12 + 1 FROM generate_series(1, 24) g;
SELECT * FROM chk('fk_child', 'fk_grandchild');
BEGIN;
INSERT INTO fk_grandchild VALUES (100, 1);
TRUNCATE fk_child CASCADE;
INSERT INTO fk_child VALUES (1, 1);
INSERT INTO fk_grandchild VALUES (101, 1);
COMMIT;
SELECT * FROM chk('fk_child', 'fk_grandchild');
-- without CASCADE, TRUNCATE is refused and nothing changes
SELECT pg_temp.err('TRUNCATE fk_child');
SELECT * FROM chk('fk_child', 'fk_grandchild');

--
-- track() in a transaction that already changed the table, and more
-- changes after it
--
CREATE TABLE late (a int);
INSERT INTO late SELECT generate_series(1, 5);
BEGIN;
INSERT INTO late VALUES (6), (7);
DELETE FROM late WHERE a = 1;
SELECT event_stats.track('late');
INSERT INTO late VALUES (8);
COMMIT;
SELECT * FROM chk('late');
-- ... and with a TRUNCATE before track()
CREATE TABLE late2 (a int);
INSERT INTO late2 SELECT generate_series(1, 5);
BEGIN;
TRUNCATE late2;
INSERT INTO late2 VALUES (1), (2);
SELECT event_stats.track('late2');
INSERT INTO late2 VALUES (3);
COMMIT;
SELECT * FROM chk('late2');

CREATE TABLE brief (a int);
INSERT INTO brief VALUES (1), (2);
-- a rolled-back track() leaves nothing
BEGIN;
SELECT event_stats.track('brief', 'brief_rolled_back');
INSERT INTO brief VALUES (3);
ROLLBACK;
SELECT * FROM chk('brief');
SELECT count(*) AS brief_rolled_back FROM event_stats.counters WHERE name = 'brief_rolled_back';
-- track then untrack in one transaction: nothing remains
BEGIN;
SELECT event_stats.track('brief');
INSERT INTO brief VALUES (3);
SELECT event_stats.untrack('brief');
INSERT INTO brief VALUES (4);
COMMIT;
SELECT * FROM chk('brief');
SELECT count(*) AS counters_named_brief FROM event_stats.counters WHERE name = 'public.brief';
-- untrack, rolled back: still tracked and exact
BEGIN;
SELECT event_stats.untrack('late');
INSERT INTO late VALUES (9);
ROLLBACK;
INSERT INTO late VALUES (10);
SELECT * FROM chk('late');
-- untrack and track again in one transaction: a new counter, exact
BEGIN;
INSERT INTO late VALUES (11);
SELECT event_stats.untrack('late');
INSERT INTO late VALUES (12);
SELECT event_stats.track('late', 'late_again');
INSERT INTO late VALUES (13);
COMMIT;
SELECT * FROM chk('late');
SELECT count(*) AS counters_named_public_late FROM event_stats.counters WHERE name = 'public.late';
-- untrack drops the counter
SELECT event_stats.untrack('late');
SELECT * FROM chk('late');
SELECT count(*) AS late_again FROM event_stats.counters WHERE name = 'late_again';

--
-- Partitioned tables: tracking the parent counts every partition
--
CREATE TABLE m (k int, v text) PARTITION BY RANGE (k);
CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (100);
CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (100) TO (200);
INSERT INTO m SELECT g, 'before' FROM generate_series(0, 199, 10) g;
SELECT event_stats.track('m');
SELECT * FROM chk('m');
-- through the parent and directly into a partition
INSERT INTO m VALUES (1, 'parent'), (101, 'parent');
SELECT * FROM chk('m');
INSERT INTO m1 VALUES (2, 'direct');
INSERT INTO m2 SELECT g, 'direct' FROM generate_series(102, 105) g;
SELECT * FROM chk('m');
COPY m (k, v) FROM STDIN;
3	copy
103	copy
\.
SELECT * FROM chk('m');
-- cross-partition UPDATE moves rows: no change
UPDATE m SET k = k + 100 WHERE k < 5;
SELECT (SELECT count(*) FROM m1) AS m1, (SELECT count(*) FROM m2) AS m2;
SELECT * FROM chk('m');
DELETE FROM m2 WHERE k > 150;
SELECT * FROM chk('m');
MERGE INTO m USING (VALUES (1), (110), (111)) AS s(k) ON m.k = s.k
 WHEN MATCHED THEN UPDATE SET k = m.k - 100
 WHEN NOT MATCHED THEN INSERT VALUES (s.k, 'merge');
SELECT * FROM chk('m');
-- ATTACH of a table that already has rows
CREATE TABLE m3 (k int, v text);
INSERT INTO m3 SELECT g, 'attached' FROM generate_series(200, 204) g;
ALTER TABLE m ATTACH PARTITION m3 FOR VALUES FROM (200) TO (300);
SELECT * FROM chk('m');
INSERT INTO m VALUES (205, 'parent'), (206, 'parent');
SELECT * FROM chk('m');
-- ATTACH in a transaction that wrote the table before and after it
CREATE TABLE m4 (k int, v text);
INSERT INTO m4 VALUES (300, 'committed');
BEGIN;
INSERT INTO m4 VALUES (301, 'own before attach');
DELETE FROM m4 WHERE k = 300;
ALTER TABLE m ATTACH PARTITION m4 FOR VALUES FROM (300) TO (400);
INSERT INTO m4 VALUES (302, 'own after attach');
INSERT INTO m VALUES (303, 'own after attach');
SELECT * FROM chk('m');
COMMIT;
SELECT * FROM chk('m');
-- a rolled-back ATTACH
CREATE TABLE m5 (k int, v text);
INSERT INTO m5 VALUES (400, 'never attached');
BEGIN;
ALTER TABLE m ATTACH PARTITION m5 FOR VALUES FROM (400) TO (500);
INSERT INTO m VALUES (401, 'rolled back');
ROLLBACK;
SELECT * FROM chk('m');
-- DETACH: the partition's rows no longer count, nor do later ones
ALTER TABLE m DETACH PARTITION m3;
SELECT * FROM chk('m');
INSERT INTO m3 VALUES (207, 'detached');
SELECT * FROM chk('m');
-- DETACH in a transaction that wrote the partition first
BEGIN;
INSERT INTO m4 VALUES (304, 'own before detach');
ALTER TABLE m DETACH PARTITION m4;
INSERT INTO m4 VALUES (305, 'own after detach');
SELECT * FROM chk('m');
COMMIT;
SELECT * FROM chk('m');
-- DETACH and ATTACH back in one transaction
BEGIN;
ALTER TABLE m ATTACH PARTITION m4 FOR VALUES FROM (300) TO (400);
ALTER TABLE m DETACH PARTITION m1;
INSERT INTO m1 VALUES (50, 'detached');
ALTER TABLE m ATTACH PARTITION m1 FOR VALUES FROM (0) TO (100);
INSERT INTO m1 VALUES (51, 'attached again');
COMMIT;
SELECT * FROM chk('m');
-- CREATE TABLE ... PARTITION OF, then rows into it
CREATE TABLE m6 PARTITION OF m FOR VALUES FROM (500) TO (600);
INSERT INTO m VALUES (500, 'new partition'), (501, 'new partition');
INSERT INTO m6 VALUES (502, 'new partition');
SELECT * FROM chk('m');
BEGIN;
CREATE TABLE m7 PARTITION OF m FOR VALUES FROM (600) TO (700);
INSERT INTO m VALUES (600, 'new partition in transaction');
SELECT * FROM chk('m');
COMMIT;
SELECT * FROM chk('m');
-- DROP of a partition with rows
DROP TABLE m6;
SELECT * FROM chk('m');
BEGIN;
INSERT INTO m7 VALUES (601, 'dropped with its partition');
DROP TABLE m7;
SELECT * FROM chk('m');
COMMIT;
SELECT * FROM chk('m');
BEGIN;
DROP TABLE m4;
ROLLBACK;
SELECT * FROM chk('m');
-- partition changes undone by a rolled-back savepoint, with writes around them
BEGIN;
INSERT INTO m4 VALUES (306, 'kept');
SAVEPOINT s;
DROP TABLE m4;
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s;
ALTER TABLE m ATTACH PARTITION m5 FOR VALUES FROM (400) TO (500);
INSERT INTO m5 VALUES (402, 'attached, rolled back');
ROLLBACK TO SAVEPOINT s;
INSERT INTO m5 VALUES (403, 'not attached');
SAVEPOINT s;
ALTER TABLE m DETACH PARTITION m4;
ROLLBACK TO SAVEPOINT s;
INSERT INTO m4 VALUES (307, 'kept');
SAVEPOINT s;
TRUNCATE m2;
RELEASE SAVEPOINT s;
INSERT INTO m2 VALUES (150, 'after truncate in released savepoint');
COMMIT;
SELECT * FROM chk('m');
-- TRUNCATE of one partition, then of the parent
TRUNCATE m2;
SELECT * FROM chk('m');
BEGIN;
INSERT INTO m VALUES (120, 'after truncate'), (5, 'other partition');
TRUNCATE m1;
INSERT INTO m1 VALUES (6, 'after truncate');
SELECT * FROM chk('m');
COMMIT;
SELECT * FROM chk('m');
TRUNCATE m;
SELECT * FROM chk('m');
INSERT INTO m SELECT g, 'refill' FROM generate_series(0, 399, 7) g WHERE g < 200 OR g >= 300;
SELECT * FROM chk('m');
-- DETACH PARTITION CONCURRENTLY is refused; nothing changes
SELECT pg_temp.err('ALTER TABLE m DETACH PARTITION m1 CONCURRENTLY');
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'm'::regclass;
SELECT * FROM chk('m');

-- a partition tracked on its own, and through its parent, at once
SELECT event_stats.track('m1');
SELECT * FROM chk('m', 'm1');
INSERT INTO m VALUES (8, 'both'), (130, 'parent only');
INSERT INTO m1 VALUES (9, 'both');
UPDATE m SET k = 131 WHERE k = 8;
SELECT * FROM chk('m', 'm1');
TRUNCATE m1;
SELECT * FROM chk('m', 'm1');
INSERT INTO m1 SELECT generate_series(10, 14);
ALTER TABLE m DETACH PARTITION m1;
SELECT * FROM chk('m', 'm1');
INSERT INTO m1 VALUES (15);
ALTER TABLE m ATTACH PARTITION m1 FOR VALUES FROM (0) TO (100);
SELECT * FROM chk('m', 'm1');
-- a table tracked on its own, then attached under a tracked parent
CREATE TABLE m8 (k int, v text);
INSERT INTO m8 SELECT g, 'own counter' FROM generate_series(800, 809) g;
SELECT event_stats.track('m8');
ALTER TABLE m ATTACH PARTITION m8 FOR VALUES FROM (800) TO (900);
INSERT INTO m VALUES (810, 'both');
SELECT * FROM chk('m', 'm8');
-- DROP of the parent drops both trackings
DROP TABLE m;
SELECT name, tracks FROM tracking WHERE name IN ('public.m', 'public.m1', 'public.m8');

-- a sub-partitioned tree, tracked at the root and at a middle level
CREATE TABLE s (k int, r text) PARTITION BY LIST (r);
CREATE TABLE s_a PARTITION OF s FOR VALUES IN ('a') PARTITION BY RANGE (k);
CREATE TABLE s_a1 PARTITION OF s_a FOR VALUES FROM (0) TO (10);
CREATE TABLE s_a2 PARTITION OF s_a FOR VALUES FROM (10) TO (20);
CREATE TABLE s_b PARTITION OF s FOR VALUES IN ('b');
INSERT INTO s SELECT g, CASE WHEN g % 3 = 0 THEN 'b' ELSE 'a' END FROM generate_series(0, 19) g;
SELECT event_stats.track('s');
SELECT event_stats.track('s_a');
SELECT * FROM chk('s', 's_a');
INSERT INTO s VALUES (1, 'a'), (1, 'b');
INSERT INTO s_a VALUES (11, 'a');
INSERT INTO s_a2 VALUES (12, 'a');
INSERT INTO s_b VALUES (13, 'b');
SELECT * FROM chk('s', 's_a');
-- cross-partition UPDATE between the subtrees
UPDATE s SET r = 'b' WHERE k < 3 AND r = 'a';
UPDATE s SET k = k + 10 WHERE k < 5 AND r = 'a';
SELECT * FROM chk('s', 's_a');
-- a sub-partition created, filled, truncated, dropped
CREATE TABLE s_a3 PARTITION OF s_a FOR VALUES FROM (20) TO (30);
INSERT INTO s VALUES (20, 'a'), (21, 'a');
SELECT * FROM chk('s', 's_a');
TRUNCATE s_a2;
SELECT * FROM chk('s', 's_a');
DROP TABLE s_a3;
SELECT * FROM chk('s', 's_a');
-- a leaf of the middle level detached and attached back
ALTER TABLE s_a DETACH PARTITION s_a1;
SELECT * FROM chk('s', 's_a');
ALTER TABLE s_a ATTACH PARTITION s_a1 FOR VALUES FROM (0) TO (10);
SELECT * FROM chk('s', 's_a');
-- the middle level detached and attached back
ALTER TABLE s DETACH PARTITION s_a;
SELECT * FROM chk('s', 's_a');
INSERT INTO s_a VALUES (5, 'a');
ALTER TABLE s ATTACH PARTITION s_a FOR VALUES IN ('a');
SELECT * FROM chk('s', 's_a');
-- a subtree with rows attached deep in the tree
CREATE TABLE s_c (k int, r text) PARTITION BY RANGE (k);
CREATE TABLE s_c1 PARTITION OF s_c FOR VALUES FROM (0) TO (100);
INSERT INTO s_c SELECT g, 'c' FROM generate_series(1, 6) g;
ALTER TABLE s ATTACH PARTITION s_c FOR VALUES IN ('c');
SELECT * FROM chk('s', 's_a', 's_c');
-- under the untracked s_c, which is under the tracked s
CREATE TABLE s_c2 (k int, r text);
INSERT INTO s_c2 VALUES (100, 'c'), (101, 'c');
ALTER TABLE s_c ATTACH PARTITION s_c2 FOR VALUES FROM (100) TO (200);
CREATE TABLE s_c3 PARTITION OF s_c FOR VALUES FROM (200) TO (300);
INSERT INTO s VALUES (200, 'c');
SELECT * FROM chk('s', 's_a', 's_c');
DROP TABLE s_c3;
ALTER TABLE s_c DETACH PARTITION s_c2;
SELECT * FROM chk('s', 's_a', 's_c');
TRUNCATE s;
SELECT * FROM chk('s', 's_a', 's_c');
INSERT INTO s SELECT g, r FROM generate_series(0, 9) g, (VALUES ('a'), ('b'), ('c')) v(r);
SELECT * FROM chk('s', 's_a', 's_c');
-- partition changes in prepared transactions
BEGIN;
INSERT INTO s VALUES (1, 'c'), (2, 'c');
ALTER TABLE s DETACH PARTITION s_b;
TRUNCATE s_a1;
INSERT INTO s VALUES (3, 'a');
PREPARE TRANSACTION 'es_track_tree';
COMMIT PREPARED 'es_track_tree';
SELECT * FROM chk('s', 's_a', 's_b');
ALTER TABLE s ATTACH PARTITION s_b FOR VALUES IN ('b');
SELECT * FROM chk('s', 's_a', 's_b');
BEGIN;
TRUNCATE s_c;
ALTER TABLE s DETACH PARTITION s_b;
INSERT INTO s VALUES (4, 'a');
PREPARE TRANSACTION 'es_track_tree_rollback';
ROLLBACK PREPARED 'es_track_tree_rollback';
SELECT * FROM chk('s', 's_a', 's_b');

--
-- Legacy inheritance: count(*) on the parent includes the children
--
CREATE TABLE ih (a int);
CREATE TABLE ih_c1 () INHERITS (ih);
INSERT INTO ih VALUES (1), (2);
INSERT INTO ih_c1 VALUES (3), (4), (5);
SELECT event_stats.track('ih');
SELECT * FROM chk('ih');
INSERT INTO ih_c1 VALUES (6);
DELETE FROM ih WHERE a IN (1, 3);
SELECT * FROM chk('ih');
CREATE TABLE ih_c2 (a int);
INSERT INTO ih_c2 VALUES (10), (11), (12), (13);
ALTER TABLE ih_c2 INHERIT ih;
SELECT * FROM chk('ih');
CREATE TABLE ih_g (a int);
INSERT INTO ih_g VALUES (20), (21);
ALTER TABLE ih_g INHERIT ih_c1;
SELECT * FROM chk('ih');
INSERT INTO ih_g VALUES (22);
SELECT * FROM chk('ih');
ALTER TABLE ih_c2 NO INHERIT ih;
SELECT * FROM chk('ih');
BEGIN;
INSERT INTO ih_g VALUES (23);
ALTER TABLE ih_g NO INHERIT ih_c1;
INSERT INTO ih_g VALUES (24);
SELECT * FROM chk('ih');
COMMIT;
SELECT * FROM chk('ih');
-- a child of two tracked parents
CREATE TABLE ih2 (a int);
INSERT INTO ih2 VALUES (40);
SELECT event_stats.track('ih2');
CREATE TABLE ih_multi () INHERITS (ih, ih2);
INSERT INTO ih_multi VALUES (41), (42);
SELECT * FROM chk('ih', 'ih2');
ALTER TABLE ih_multi NO INHERIT ih2;
SELECT * FROM chk('ih', 'ih2');
ALTER TABLE ih_multi INHERIT ih2;
DELETE FROM ih2 WHERE a = 41;
SELECT * FROM chk('ih', 'ih2');
DROP TABLE ih_multi;
SELECT * FROM chk('ih', 'ih2');
CREATE TABLE ih_c3 () INHERITS (ih);
INSERT INTO ih_c3 VALUES (30), (31);
SELECT * FROM chk('ih');
TRUNCATE ONLY ih;
SELECT * FROM chk('ih');
INSERT INTO ih VALUES (1);
TRUNCATE ih_c1;
SELECT * FROM chk('ih');
DROP TABLE ih_c3;
SELECT * FROM chk('ih');
TRUNCATE ih;
SELECT * FROM chk('ih');

--
-- Table rewrites do not change the count
--
INSERT INTO tr SELECT generate_series(1, 20);
DELETE FROM tr WHERE a % 3 = 0;
ALTER TABLE tr ALTER COLUMN a TYPE bigint;
SELECT * FROM chk('tr');
VACUUM FULL tr;
SELECT * FROM chk('tr');
CREATE INDEX tr_a ON tr (a);
CLUSTER tr USING tr_a;
SELECT * FROM chk('tr');
ALTER TABLE tr ADD COLUMN b float8 DEFAULT random();
SELECT * FROM chk('tr');

--
-- Renames keep the tracking (and the counter's name)
--
ALTER TABLE tr RENAME TO tr_renamed;
SELECT * FROM chk('tr_renamed');
INSERT INTO tr_renamed (a) VALUES (100);
SELECT * FROM chk('tr_renamed');
CREATE SCHEMA track_other;
ALTER TABLE tr_renamed SET SCHEMA track_other;
DELETE FROM track_other.tr_renamed WHERE a = 100;
SELECT * FROM chk('track_other.tr_renamed');

--
-- DROP TABLE of a tracked table removes the counter and the tracking
--
SELECT counter::integer AS tr_counter FROM event_stats.counters
 WHERE tracks = 'track_other.tr_renamed'::regclass \gset
SELECT (SELECT count(*) FROM event_stats.tracked_tables WHERE counter_id = :tr_counter) AS tracked_rows,
       (SELECT count(*) FROM event_stats.counter_definitions WHERE id = :tr_counter) AS definitions,
       (SELECT count(*) > 0 FROM event_stats.counter_shards WHERE counter_id = :tr_counter) AS has_shards;
BEGIN;
DROP TABLE track_other.tr_renamed;
ROLLBACK;
SELECT * FROM chk('track_other.tr_renamed');
DROP TABLE track_other.tr_renamed;
SELECT (SELECT count(*) FROM event_stats.tracked_tables WHERE counter_id = :tr_counter) AS tracked_rows,
       (SELECT count(*) FROM event_stats.counter_definitions WHERE id = :tr_counter) AS definitions,
       (SELECT count(*) > 0 FROM event_stats.counter_shards WHERE counter_id = :tr_counter) AS has_shards;
SELECT count(*) AS counter_public_tr FROM event_stats.counters WHERE name = 'public.tr';
SELECT count(*) AS dangling_tracked_rows FROM event_stats.tracked_tables t
 WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t.relid)
    OR NOT EXISTS (SELECT FROM event_stats.counter_definitions d WHERE d.id = t.counter_id);
-- DROP SCHEMA ... CASCADE too
CREATE TABLE track_other.gone (a int);
SELECT event_stats.track('track_other.gone');
INSERT INTO track_other.gone VALUES (1);
DROP SCHEMA track_other CASCADE;
SELECT count(*) AS counter_gone FROM event_stats.counters WHERE name = 'track_other.gone';
-- dropping the extension in a transaction that is rolled back
BEGIN;
SET LOCAL client_min_messages = warning;
DROP EXTENSION event_stats CASCADE;
INSERT INTO items VALUES (999, 'no extension');
ROLLBACK;
SELECT * FROM chk('items');

--
-- The counters view
--
SELECT * FROM tracking ORDER BY name;

--
-- Errors, each followed by a check that nothing changed
--
CREATE TEMP TABLE snapshot_before AS
    SELECT name, counter::integer AS id, tracks::oid AS tracks FROM event_stats.counters;
CREATE FUNCTION pg_temp.changed() RETURNS TABLE (change text, name text) LANGUAGE sql AS $$
    SELECT 'added', name FROM (SELECT name, counter::integer AS id, tracks::oid AS tracks
                                 FROM event_stats.counters
                               EXCEPT SELECT * FROM snapshot_before) a
    UNION ALL
    SELECT 'removed', name FROM (SELECT * FROM snapshot_before
                               EXCEPT SELECT name, counter::integer, tracks::oid
                                 FROM event_stats.counters) r
    ORDER BY 1, 2
$$;

SELECT pg_temp.err($$SELECT event_stats.track(NULL)$$);
SELECT pg_temp.err($$SELECT event_stats.track(NULL, 'x')$$);
SELECT pg_temp.err($$SELECT event_stats.untrack(NULL)$$);
SELECT pg_temp.err($$SELECT event_stats.track('no_such_table')$$);
CREATE VIEW items_view AS SELECT * FROM items;
CREATE SEQUENCE items_seq;
CREATE MATERIALIZED VIEW items_mv AS SELECT * FROM items;
CREATE TYPE items_type AS (a int);
CREATE FOREIGN DATA WRAPPER track_dummy;
CREATE SERVER track_dummy_server FOREIGN DATA WRAPPER track_dummy;
CREATE FOREIGN TABLE items_foreign (id int) SERVER track_dummy_server;
CREATE TEMP TABLE items_temp (id int);
SELECT pg_temp.err($$SELECT event_stats.track('items_view')$$);
SELECT pg_temp.err($$SELECT event_stats.track('items_seq')$$);
SELECT pg_temp.err($$SELECT event_stats.track('items_mv')$$);
SELECT pg_temp.err($$SELECT event_stats.track('items_type')$$);
SELECT pg_temp.err($$SELECT event_stats.track('items_pkey')$$);
SELECT pg_temp.err($$SELECT event_stats.track('items_foreign')$$);
SELECT pg_temp.err($$SELECT event_stats.track('items_temp')$$);
SELECT pg_temp.err($$SELECT event_stats.track('event_stats.counter_shards')$$);
SELECT pg_temp.err($$SELECT event_stats.track('event_stats.tracked_tables')$$);
SELECT pg_temp.err($$SELECT event_stats.track('pg_class')$$);
SELECT pg_temp.err($$SELECT event_stats.track('pg_catalog.pg_database')$$);
SELECT * FROM pg_temp.changed();
-- a foreign table in the tree: refused when tracking, attaching, creating
CREATE TABLE fp (k int) PARTITION BY RANGE (k);
CREATE TABLE fp1 PARTITION OF fp FOR VALUES FROM (0) TO (10);
CREATE FOREIGN TABLE fp2 PARTITION OF fp FOR VALUES FROM (10) TO (20) SERVER track_dummy_server;
SELECT pg_temp.err($$SELECT event_stats.track('fp')$$);
SELECT * FROM pg_temp.changed();
ALTER TABLE fp DETACH PARTITION fp2;
SELECT event_stats.track('fp');
SELECT pg_temp.err($$ALTER TABLE fp ATTACH PARTITION fp2 FOR VALUES FROM (10) TO (20)$$);
SELECT pg_temp.err($$CREATE FOREIGN TABLE fp3 PARTITION OF fp FOR VALUES FROM (20) TO (30) SERVER track_dummy_server$$);
SELECT pg_temp.err($$CREATE FOREIGN TABLE ih_foreign_child () INHERITS (ih_c1) SERVER track_dummy_server$$);
CREATE FOREIGN TABLE ih_foreign (a int) SERVER track_dummy_server;
SELECT pg_temp.err($$ALTER TABLE ih_foreign INHERIT ih$$);
SELECT inhparent::regclass AS parent, inhrelid::regclass AS child FROM pg_inherits
 WHERE inhparent IN ('fp'::regclass, 'ih'::regclass, 'ih_c1'::regclass)
 ORDER BY inhparent::regclass::text, inhrelid::regclass::text;
SELECT * FROM chk('fp', 'ih');
SELECT event_stats.untrack('fp');
SELECT * FROM pg_temp.changed();

-- tracked twice; untrack of a table that is not tracked
SELECT pg_temp.err($$SELECT event_stats.track('items')$$);
SELECT pg_temp.err($$SELECT event_stats.track('items', 'items_again')$$);
SELECT pg_temp.err($$SELECT event_stats.untrack('brief')$$);
SELECT pg_temp.err($$SELECT event_stats.untrack('items_view')$$);
SELECT * FROM pg_temp.changed();
-- counter names: taken, empty, too long (also the default name)
SELECT event_stats.create_counter('regress_taken', 1);
SELECT pg_temp.err($$SELECT event_stats.track('brief', 'regress_taken')$$);
SELECT pg_temp.err($$SELECT event_stats.track('brief', 'public.items')$$);
SELECT pg_temp.err($$SELECT event_stats.track('brief', '')$$);
SELECT pg_temp.err($$SELECT event_stats.track('brief', repeat('x', 64))$$);
CREATE TABLE public.brief_with_a_name_long_enough_that_schema_dot_table_is_too_long (a int);
SELECT pg_temp.err($$SELECT event_stats.track('brief_with_a_name_long_enough_that_schema_dot_table_is_too_long')$$);
SELECT * FROM pg_temp.changed();
SELECT event_stats.track('brief', repeat('y', 63))::text = repeat('y', 63) AS longest_name;
SELECT event_stats.untrack('brief');
SELECT event_stats.drop_counter('regress_taken');
SELECT * FROM pg_temp.changed();

-- a tracking counter cannot be changed by hand
SELECT pg_temp.err($$SELECT event_stats.increment('public.items')$$);
SELECT pg_temp.err($$SELECT event_stats.increment('public.items', -1)$$);
SELECT pg_temp.err($$SELECT event_stats.set('public.items', 0)$$);
SELECT pg_temp.err($$SELECT event_stats.drop_counter('public.items')$$);
SELECT * FROM pg_temp.changed();
SELECT * FROM chk('items');

--
-- Privileges
--
CREATE ROLE regress_es_track_owner;
CREATE ROLE regress_es_track_other;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO regress_es_track_owner, regress_es_track_other;
CREATE TABLE owned (a int);
INSERT INTO owned VALUES (1), (2);
ALTER TABLE owned OWNER TO regress_es_track_owner;
GRANT SELECT ON items TO regress_es_track_owner;
-- track and untrack are not granted to PUBLIC
SET ROLE regress_es_track_owner;
SELECT pg_temp.err($$SELECT event_stats.track('owned')$$);
SELECT pg_temp.err($$SELECT event_stats.untrack('items')$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION event_stats.track(regclass, text), event_stats.untrack(regclass)
    TO regress_es_track_owner, regress_es_track_other;
-- ... and need ownership of the table
SET ROLE regress_es_track_other;
SELECT pg_temp.err($$SELECT event_stats.track('owned')$$);
RESET ROLE;
SET ROLE regress_es_track_owner;
SELECT pg_temp.err($$SELECT event_stats.track('items')$$);
SELECT pg_temp.err($$SELECT event_stats.untrack('items')$$);
SELECT event_stats.track('owned');
INSERT INTO owned VALUES (3);
SELECT * FROM chk('owned', 'items');
RESET ROLE;
SET ROLE regress_es_track_other;
SELECT pg_temp.err($$SELECT event_stats.untrack('owned')$$);
-- reading the count needs SELECT on the table; the view shows NULL
SELECT pg_temp.err($$SELECT event_stats.value('public.owned')$$);
SELECT pg_temp.err($$SELECT event_stats.value('public.items')$$);
SELECT name, value, tracks FROM event_stats.counters
 WHERE name IN ('public.owned', 'public.items') ORDER BY name;
RESET ROLE;
GRANT SELECT ON owned TO regress_es_track_other;
SET ROLE regress_es_track_other;
SELECT name, value, tracks FROM event_stats.counters
 WHERE name IN ('public.owned', 'public.items') ORDER BY name;
SELECT * FROM chk('owned');
RESET ROLE;
SELECT * FROM pg_temp.changed();
SET ROLE regress_es_track_owner;
SELECT event_stats.untrack('owned');
RESET ROLE;
SELECT * FROM pg_temp.changed();

--
-- track_counts = off: writes to tracked tables are refused, nothing changes
--
CREATE TABLE untracked (a int);
SET track_counts = off;
SELECT pg_temp.err($$SELECT event_stats.track('untracked')$$);
SELECT pg_temp.err($$INSERT INTO items VALUES (1000, 'off')$$);
SELECT pg_temp.err($$UPDATE items SET v = 'off'$$);
SELECT pg_temp.err($$DELETE FROM items$$);
SELECT pg_temp.err($$MERGE INTO items USING (VALUES (1001)) s(id) ON items.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)$$);
SELECT pg_temp.err($$COPY items FROM PROGRAM 'echo 1002'$$);
SELECT pg_temp.err($$TRUNCATE items$$);
SELECT pg_temp.err($$TRUNCATE fk_parent CASCADE$$);
SELECT pg_temp.err($$DELETE FROM fk_parent$$);
SELECT pg_temp.err($$SELECT add_items(1010, 3)$$);
SELECT pg_temp.err($$INSERT INTO s VALUES (1, 'a')$$);
SELECT pg_temp.err($$INSERT INTO s_a1 VALUES (1, 'a')$$);
SELECT pg_temp.err($$DELETE FROM ih$$);
SELECT pg_temp.err($$WITH d AS (DELETE FROM items RETURNING 1) SELECT count(*) FROM d$$);
COPY items (id, v) FROM STDIN;
1003	off
\.
-- untracked tables are not affected
INSERT INTO untracked VALUES (1);
SELECT * FROM pg_temp.changed();
-- writes made while track_counts was on are refused at commit
RESET track_counts;
BEGIN;
INSERT INTO items VALUES (1004, 'on');
SET LOCAL track_counts = off;
COMMIT;
SHOW track_counts;
SELECT * FROM chk('items', 'fk_child', 'fk_grandchild', 's', 's_a', 'ih', 'ih2');
SELECT event_stats.track('untracked');
SELECT * FROM chk('untracked');
SELECT event_stats.untrack('untracked');

--
-- Rows that count(*) would see differently than the counter: refused
--
CREATE TABLE perm (a int);
INSERT INTO perm VALUES (1), (2), (3);
SELECT event_stats.track('perm');
SELECT pg_temp.err($$CREATE TEMP TABLE perm_temp_child () INHERITS (perm)$$);
SELECT pg_temp.err($$CREATE UNLOGGED TABLE perm_unlogged_child () INHERITS (perm)$$);
CREATE TEMP TABLE perm_temp (a int);
SELECT pg_temp.err($$ALTER TABLE perm_temp INHERIT perm$$);
SELECT pg_temp.err($$ALTER TABLE perm SET UNLOGGED$$);
CREATE UNLOGGED TABLE unlogged_t (a int);
SELECT pg_temp.err($$SELECT event_stats.track('unlogged_t')$$);
SELECT * FROM chk('perm');
-- an ON SELECT rule turns an empty table into a view, which has no rows of
-- its own: refused while it is tracked, PostgreSQL's refusals first
CREATE TABLE to_view (a int);
SELECT event_stats.track('to_view');
SELECT pg_temp.err($$CREATE RULE "_RETURN" AS ON SELECT TO to_view DO INSTEAD SELECT 1 AS a$$);
SELECT relkind FROM pg_class WHERE oid = 'to_view'::regclass;
SELECT * FROM chk('to_view');
INSERT INTO to_view VALUES (1);
SELECT pg_temp.err($$CREATE RULE "_RETURN" AS ON SELECT TO to_view DO INSTEAD SELECT 1 AS a$$);
DELETE FROM to_view;
SELECT event_stats.untrack('to_view');
CREATE RULE "_RETURN" AS ON SELECT TO to_view DO INSTEAD SELECT 1 AS a;
SELECT relkind FROM pg_class WHERE oid = 'to_view'::regclass;
DROP VIEW to_view;
-- row-level security: the count covers rows the policies hide, so it is refused
CREATE ROLE regress_es_track_rls;
GRANT SELECT ON perm TO regress_es_track_rls;
CREATE POLICY perm_odd ON perm FOR SELECT USING (a % 2 = 1);
ALTER TABLE perm ENABLE ROW LEVEL SECURITY;
SET ROLE regress_es_track_rls;
SELECT count(*) FROM perm;
SELECT pg_temp.err($$SELECT event_stats.value('public.perm')$$);
RESET ROLE;
ALTER TABLE perm DISABLE ROW LEVEL SECURITY;
-- a column privilege is enough for count(*), and for the count
REVOKE SELECT ON perm FROM regress_es_track_rls;
GRANT SELECT (a) ON perm TO regress_es_track_rls;
SET ROLE regress_es_track_rls;
SELECT event_stats.value('public.perm'), (SELECT count(*) FROM perm);
RESET ROLE;
DROP TABLE perm, perm_temp, unlogged_t;
DROP OWNED BY regress_es_track_rls;
DROP ROLE regress_es_track_rls;

--
-- Clean up
--
SET client_min_messages = warning;
DROP TABLE items, orders, late_source, fk_parent, fk_child, fk_grandchild,
    late, late2, brief, s, s_c, s_c2, ih, ih2, ih_c1, ih_c2, ih_g, m3, m5, owned, untracked,
    fp,
    brief_with_a_name_long_enough_that_schema_dot_table_is_too_long CASCADE;
DROP SEQUENCE items_seq;
DROP TYPE items_type;
DROP SERVER track_dummy_server CASCADE;
DROP FOREIGN DATA WRAPPER track_dummy;
DROP FUNCTION add_items(int, int), orders_to_items(), late_items(), skip_items();
DROP PROCEDURE add_items_in_steps();
DROP VIEW tracking;
DROP FUNCTION chk(regclass[]);
RESET client_min_messages;
SELECT count(*) AS tracked_tables FROM event_stats.tracked_tables;
SELECT count(*) AS tracking_counters_left FROM event_stats.counters WHERE tracks IS NOT NULL;
DROP OWNED BY regress_es_track_owner, regress_es_track_other;
DROP ROLE regress_es_track_owner;
DROP ROLE regress_es_track_other;
