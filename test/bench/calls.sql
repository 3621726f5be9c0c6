-- test/bench/calls.sql -- bench_calls(expr, n): the milliseconds one
-- statement takes to call expr n times, timed server-side, for
-- test/bench_hlc.sh and test/bench_horizon.sh.
--
-- One statement, SELECT count(expr) FROM (SELECT generate_series(1, n) AS i) g,
-- rather than a plpgsql loop, whose per-iteration executor start-up (~1 us)
-- would dwarf calls that cost tens of nanoseconds; generate_series in the
-- target list hands rows over one at a time where in FROM it would first
-- materialise them; clock_timestamp() around it leaves out the client.

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
