-- test/bench/horizon.sql -- helpers for test/bench_horizon.sh: what one
-- event_stats.hlc_horizon() call costs, and a poller calling it as fast as
-- one session can.  Needs the extension.

-- Milliseconds taken by one statement calling expr n times, timed
-- server-side (see test/bench_hlc.sh (a) for why this shape).
CREATE FUNCTION bench_calls(expr text, n integer) RETURNS float8
    LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    t1 timestamptz;
    c bigint;
BEGIN
    t0 := clock_timestamp();
    EXECUTE format('SELECT count(%s) FROM (SELECT generate_series(1, %s) AS i) g', expr, n) INTO c;
    t1 := clock_timestamp();
    IF c <> n THEN
        RAISE EXCEPTION 'bench_calls(%): % rows, expected %', expr, c, n;
    END IF;
    RETURN 1000 * extract(epoch FROM t1 - t0);
END $$;

-- The poller: evaluates expr back to back, 10,000 calls per statement (so
-- the statement overhead is negligible), for the given number of seconds;
-- returns "calls<TAB>seconds actually taken".
CREATE FUNCTION bench_poll(expr text, seconds float8) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    deadline timestamptz := t0 + seconds * interval '1 second';
    q text := format('SELECT count(%s) FROM (SELECT generate_series(1, 10000) AS i) g', expr);
    n bigint := 0;
    c bigint;
BEGIN
    WHILE clock_timestamp() < deadline LOOP
        EXECUTE q INTO c;
        n := n + c;
    END LOOP;
    RETURN n || E'\t' || extract(epoch FROM clock_timestamp() - t0);
END $$;

-- (c) the write load: one row per transaction, stamped with hlc_now()
CREATE TABLE bench_writes (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    last_modified event_stats.hlc NOT NULL DEFAULT event_stats.hlc_now(),
    payload       text NOT NULL
) WITH (autovacuum_enabled = off);
