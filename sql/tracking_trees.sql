--
-- Tracked trees changed several times in one transaction or one statement,
-- and legacy inheritance with several parents: value() = count(*) after
-- every step, inside the transaction and after commit.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS event_stats;
RESET client_min_messages;
-- value() and count(*) of a table, in one snapshot
CREATE FUNCTION pg_temp.vc(t regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    v bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', t) INTO n;
    SELECT event_stats.value(c.counter) INTO v FROM event_stats.counters c WHERE c.tracks = t;
    RETURN format('%s: value %s, count %s%s', t, v, n, CASE WHEN v = n THEN '' ELSE '  MISMATCH' END);
END $$;

CREATE FUNCTION pg_temp.make_a() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    CREATE TABLE a (id int, k int) PARTITION BY LIST (k);
    CREATE TABLE a1 PARTITION OF a FOR VALUES IN (1);
    CREATE TABLE a2 PARTITION OF a FOR VALUES IN (2);
    CREATE TABLE a3 PARTITION OF a FOR VALUES IN (3);
    INSERT INTO a SELECT g, 1 FROM generate_series(1, 3) g;
    INSERT INTO a SELECT g, 2 FROM generate_series(1, 2) g;
    INSERT INTO a SELECT g, 3 FROM generate_series(1, 7) g;
    PERFORM event_stats.track('a');
END $$;

-- several partitions leave the tree in one statement
SELECT pg_temp.make_a();
DROP TABLE a1, a2, a3;
SELECT pg_temp.vc('a');
SELECT event_stats.untrack('a');
DROP TABLE a;

-- ... or in one transaction, with a TRUNCATE and an INSERT
SELECT pg_temp.make_a();
BEGIN;
ALTER TABLE a DETACH PARTITION a1;
ALTER TABLE a DETACH PARTITION a2;
TRUNCATE a3;
INSERT INTO a VALUES (100, 3);
SELECT pg_temp.vc('a');
COMMIT;
SELECT pg_temp.vc('a');
SELECT event_stats.untrack('a');
DROP TABLE a, a1, a2;

-- ... or detached, and a remaining partition tracked on its own
SELECT pg_temp.make_a();
BEGIN;
ALTER TABLE a DETACH PARTITION a1;
ALTER TABLE a DETACH PARTITION a2;
SELECT event_stats.track('a3');
SELECT pg_temp.vc('a'), pg_temp.vc('a3');
COMMIT;
SELECT pg_temp.vc('a'), pg_temp.vc('a3');
INSERT INTO a VALUES (101, 3);
SELECT pg_temp.vc('a'), pg_temp.vc('a3');
SELECT event_stats.untrack('a3');
SELECT event_stats.untrack('a');
DROP TABLE a, a1, a2;

-- legacy multiple inheritance: r is a's second parent
CREATE TABLE r (id int);
CREATE TABLE x (id int);
CREATE TABLE ia () INHERITS (x, r);
CREATE TABLE ic (id int);
INSERT INTO r VALUES (1);
INSERT INTO ic SELECT generate_series(1, 5);
SELECT event_stats.track('r');
ALTER TABLE ic INHERIT ia;
SELECT pg_temp.vc('r');
INSERT INTO ic VALUES (6);
SELECT pg_temp.vc('r');
ALTER TABLE ic NO INHERIT ia;
SELECT pg_temp.vc('r');
-- an unlogged child through the second parent is refused, as a direct one is
CREATE UNLOGGED TABLE iu () INHERITS (ia);
CREATE UNLOGGED TABLE iu () INHERITS (r);
-- a diamond: d under both ia and a second child of r
CREATE TABLE ib () INHERITS (r);
CREATE TABLE idm (id int);
INSERT INTO idm VALUES (1), (2);
ALTER TABLE idm INHERIT ia;
ALTER TABLE idm INHERIT ib;
SELECT pg_temp.vc('r');
DROP TABLE idm;
SELECT pg_temp.vc('r');
SELECT event_stats.untrack('r');
DROP TABLE ic, ib, ia, x, r;

-- two inheritance subcommands in one ALTER TABLE
CREATE TABLE ta (id int);
CREATE TABLE tb (id int);
CREATE TABLE tc (id int);
INSERT INTO tc VALUES (1), (2), (3);
SELECT event_stats.track('ta');
SELECT event_stats.track('tb');
ALTER TABLE tc INHERIT ta, INHERIT tb;
SELECT pg_temp.vc('ta'), pg_temp.vc('tb');
ALTER TABLE tc NO INHERIT ta, NO INHERIT tb;
SELECT pg_temp.vc('ta'), pg_temp.vc('tb');
INSERT INTO tc VALUES (4), (5), (6);
ALTER TABLE tc INHERIT ta;
ALTER TABLE tc NO INHERIT ta, INHERIT tb;
SELECT pg_temp.vc('ta'), pg_temp.vc('tb');
BEGIN;
ALTER TABLE tc NO INHERIT tb, INHERIT ta;
INSERT INTO tc VALUES (7);
SELECT pg_temp.vc('ta'), pg_temp.vc('tb');
COMMIT;
SELECT pg_temp.vc('ta'), pg_temp.vc('tb');
SELECT event_stats.untrack('ta');
SELECT event_stats.untrack('tb');
DROP TABLE tc, ta, tb;

-- a table that cannot be counted, joining below an untracked table of a
-- tracked tree: the refusal names the tracked table whose count it guards
CREATE TABLE g (id int, k int) PARTITION BY LIST (k);
CREATE TABLE g_mid PARTITION OF g FOR VALUES IN (1, 2) PARTITION BY LIST (k);
CREATE TABLE lg (id int);
CREATE TABLE lg_mid () INHERITS (lg);
SELECT event_stats.track('g');
SELECT event_stats.track('lg');
\set VERBOSITY terse
CREATE UNLOGGED TABLE g_low PARTITION OF g_mid FOR VALUES IN (1);
CREATE TEMP TABLE lg_low () INHERITS (lg_mid);
CREATE UNLOGGED TABLE g_out (id int, k int);
ALTER TABLE g_mid ATTACH PARTITION g_out FOR VALUES IN (2);
CREATE TEMP TABLE lg_out (id int);
ALTER TABLE lg_out INHERIT lg_mid;
-- a tracked table in the middle is the one named
SELECT event_stats.track('lg_mid');
ALTER TABLE lg_out INHERIT lg_mid;
\set VERBOSITY default
SELECT event_stats.untrack('lg_mid');
SELECT event_stats.untrack('lg');
SELECT event_stats.untrack('g');
DROP TABLE g, lg, lg_mid, g_out, lg_out;
