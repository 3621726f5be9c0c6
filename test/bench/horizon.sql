-- test/bench/horizon.sql -- helpers for test/bench_horizon.sh: a poller
-- calling event_stats.hlc_horizon() as fast as one session can.  Needs the
-- extension (and test/bench/calls.sql for the timing).

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
