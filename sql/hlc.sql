--
-- The hybrid logical clock: the event_stats.hlc type (text and binary I/O,
-- every bad-input path, casts, parts, operators, btree and hash indexes,
-- min/max) and the clock (hlc_now, unique_timestamp, hlc_observe,
-- hlc_status, event_stats.hlc_max_drift, parallel workers).
--
-- Volatile values are never printed: the clock checks print booleans
-- computed from them.  Observations ahead of the wall clock move this
-- server's clock for everyone, so they stay within a minute.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS event_stats;
CREATE EXTENSION IF NOT EXISTS amcheck;
DROP ROLE IF EXISTS regress_es_hlc_user;
RESET client_min_messages;
SET search_path = public, event_stats;

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

-- Masks clock values and millisecond counts in a volatile error message.
CREATE FUNCTION pg_temp.mask(msg text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(
        regexp_replace(msg, '\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z/\d{4}', '<hlc>', 'g'),
        'It is \d+ ms ahead', 'It is <n> ms ahead')
$$;

--------------------------------------------------------------------------
-- Text I/O
--------------------------------------------------------------------------

-- round trips; the raw value shows the layout (µs << 12 | logical)
SELECT t AS text_form, t::hlc::text = t AS round_trip,
       CASE WHEN t::hlc <= 9223372036854775807::hlc THEN t::hlc::bigint END AS raw
  FROM (VALUES ('1970-01-01T00:00:00.000000Z/0000'),
               ('1970-01-01T00:00:00.000000Z/0001'),
               ('1970-01-01T00:00:00.000000Z/4095'),
               ('1970-01-01T00:00:00.000001Z/0000'),
               ('1999-12-31T23:59:59.999999Z/0042'),
               ('2000-02-29T12:34:56.789012Z/0007'),
               ('2024-02-29T23:59:59.999999Z/4095'),
               ('2026-11-22T06:40:12.123456Z/0001'),
               ('2041-05-10T11:56:53.685247Z/4095'),
               ('2041-05-10T11:56:53.685248Z/0000'),
               ('2100-03-01T00:00:00.000000Z/1000'),
               ('2112-09-17T23:53:47.370495Z/4095')) v(t);

-- the largest value is 2^52 - 1 µs after the epoch with logical 4095,
-- all 64 bits set; the text says so
SELECT hlc_from_parts('1970-01-01 00:00:00+00'::timestamptz
                      + (((1::bigint << 52) - 1) || ' microseconds')::interval,
                      4095) AS computed_max;
SELECT hlc_send('2112-09-17T23:53:47.370495Z/4095') AS max_bits,
       hlc_physical('2112-09-17T23:53:47.370495Z/4095')
         = '1970-01-01 00:00:00+00'::timestamptz
           + (((1::bigint << 52) - 1) || ' microseconds')::interval AS max_physical_is_2_52_minus_1,
       hlc_logical('2112-09-17T23:53:47.370495Z/4095') AS max_logical;
-- one microsecond more does not fit
SELECT pg_temp.err($$SELECT hlc_from_parts('2112-09-17 23:53:47.370496+00')$$);
SELECT pg_temp.err($$SELECT '2112-09-17T23:53:47.370496Z/0000'::event_stats.hlc$$);

-- the text is UTC whatever the session's time zone
SET TimeZone = 'Pacific/Chatham';
SELECT '2024-02-29T23:59:59.999999Z/4095'::hlc::text AS text_in_chatham,
       hlc_physical('2024-02-29T23:59:59.999999Z/4095')
         = '2024-02-29 23:59:59.999999+00'::timestamptz AS physical_is_utc,
       hlc_from_parts('2024-03-01 12:59:59.999999+13:00', 4095)::text AS from_local_time;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- Text sorts like the values.  14,000 pseudo-random values: spread over the
-- whole range (half of them with the top bit set), crowded into ten
-- microseconds (order by the logical counter), and crowded around the
-- turn of 2000 (every field carries at once).
CREATE TABLE hlc_random AS
SELECT i, hlc_from_parts('1970-01-01 00:00:00+00'::timestamptz
                         + ((hashint8extended(i, 1) & ((1::bigint << 52) - 1))
                            || ' microseconds')::interval,
                         (hashint8extended(i, 2) & 4095)::int) AS v
  FROM generate_series(1::bigint, 10000) i
UNION ALL
SELECT i, hlc_from_parts('1970-01-01 00:00:00+00'::timestamptz
                         + ((hashint8extended(i % 10, 3) & ((1::bigint << 52) - 1))
                            || ' microseconds')::interval,
                         (hashint8extended(i, 4) & 4095)::int)
  FROM generate_series(10001::bigint, 12000) i
UNION ALL
SELECT i, hlc_from_parts('2000-01-01 00:00:00+00'::timestamptz
                         + ((hashint8extended(i, 5) % 1000000) || ' microseconds')::interval,
                         (hashint8extended(i, 6) & 4095)::int)
  FROM generate_series(12001::bigint, 14000) i;
INSERT INTO hlc_random VALUES
    (14001, '1970-01-01T00:00:00.000000Z/0000'),
    (14002, '2112-09-17T23:53:47.370495Z/4095'),
    (14003, '2041-05-10T11:56:53.685247Z/4095'),
    (14004, '2041-05-10T11:56:53.685248Z/0000');
SELECT count(*) AS values_,
       count(*) FILTER (WHERE v > '2041-05-10T11:56:53.685247Z/4095') > 5000 AS many_with_top_bit,
       count(*) FILTER (WHERE v < '2000-01-01T00:00:00.000000Z/0000'
                          AND v > '1999-12-31T23:59:59.000000Z/0000') > 500 AS many_before_2000,
       count(*) FILTER (WHERE v >= '2000-01-01T00:00:00.000000Z/0000'
                          AND v < '2000-01-01T00:00:01.000000Z/0000') > 500 AS many_after_2000,
       count(DISTINCT hlc_physical(v)) < count(*) - 1500 AS many_sharing_a_microsecond,
       bool_and(v::text::hlc = v) AS all_round_trip,
       bool_and(v::text ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z/\d{4}$') AS all_fixed_width
  FROM hlc_random;
-- the same order by value, by text (byte order, the default collation and
-- an ICU one) and by the parts, compared position by position
WITH by_value AS (SELECT v, row_number() OVER (ORDER BY v) AS n FROM hlc_random),
     by_c AS (SELECT v, row_number() OVER (ORDER BY v::text COLLATE "C") AS n FROM hlc_random),
     by_default AS (SELECT v, row_number() OVER (ORDER BY v::text) AS n FROM hlc_random),
     by_icu AS (SELECT v, row_number() OVER (ORDER BY v::text COLLATE "und-x-icu") AS n FROM hlc_random),
     by_parts AS (SELECT v, row_number() OVER (ORDER BY hlc_physical(v), hlc_logical(v)) AS n
                    FROM hlc_random)
SELECT count(*) AS positions,
       count(*) FILTER (WHERE a.v = c.v) AS same_as_text_c,
       count(*) FILTER (WHERE a.v = d.v) AS same_as_text_default_collation,
       count(*) FILTER (WHERE a.v = u.v) AS same_as_text_icu,
       count(*) FILTER (WHERE a.v = p.v) AS same_as_parts
  FROM by_value a JOIN by_c c USING (n) JOIN by_default d USING (n)
       JOIN by_icu u USING (n) JOIN by_parts p USING (n);

-- every bad-input path: 22P02 with a detail saying what is wrong
SELECT t AS input, pg_temp.err(format('SELECT %L::event_stats.hlc', t)) AS error
  FROM (VALUES (''),
               ('2026-11-22T06:40:12.123456Z/001'),
               ('2026-11-22T06:40:12.123456Z/00001'),
               ('2026-11-22T06:40:12.123456Z'),
               (' 2026-11-22T06:40:12.123456Z/0001'),
               ('2026-11-22T06:40:12.123456Z/0001 '),
               (' 026-11-22T06:40:12.123456Z/0001'),
               ('2026-11-22T06:40:12.123456Z/000 '),
               ('2026/11/22T06:40:12.123456Z/0001'),
               ('2026-11-22 06:40:12.123456Z/0001'),
               ('2026-11-22T06-40-12.123456Z/0001'),
               ('2026-11-22T06:40:12,123456Z/0001'),
               ('2026-11-22T06:40:12.123456Z-0001'),
               ('2026-11-22T06:40:12.123456+/0001'),
               ('2026-11-22t06:40:12.123456Z/0001'),
               ('2026-11-22T06:40:12.123456z/0001'),
               ('2026-11-22T06:40:1a.123456Z/0001'),
               ('+026-11-22T06:40:12.123456Z/0001'),
               ('2026-11-22T06:40:12.123456Z/-001'),
               ('2026-11-22T06:40:12.123456Z/+001'),
               ('2026-11-22T06:40:12.12345xZ/0001'),
               ('２026-11-22T06:40:12.123456Z/0001'),
               ('2026-13-22T06:40:12.123456Z/0001'),
               ('2026-00-22T06:40:12.123456Z/0001'),
               ('2026-11-00T06:40:12.123456Z/0001'),
               ('2026-11-31T06:40:12.123456Z/0001'),
               ('2026-12-32T06:40:12.123456Z/0001'),
               ('2024-02-30T06:40:12.123456Z/0001'),
               ('2023-02-29T06:40:12.123456Z/0001'),
               ('2100-02-29T06:40:12.123456Z/0001'),
               ('2026-11-22T24:00:00.000000Z/0000'),
               ('2026-11-22T23:60:00.000000Z/0000'),
               ('2016-12-31T23:59:60.000000Z/0000'),
               ('2026-11-22T06:40:12.123456Z/4096'),
               ('2026-11-22T06:40:12.123456Z/9999')) v(t);
-- a valid form outside 1970-01-01 .. 2112-09-17T23:53:47.370495: 22008
SELECT t AS input, pg_temp.err(format('SELECT %L::event_stats.hlc', t)) AS error
  FROM (VALUES ('1969-12-31T23:59:59.999999Z/4095'),
               ('0000-01-01T00:00:00.000000Z/0000'),
               ('2112-09-17T23:53:47.370496Z/0000'),
               ('2112-09-18T00:00:00.000000Z/0000'),
               ('2113-01-01T00:00:00.000000Z/0000'),
               ('9999-12-31T23:59:59.999999Z/4095')) v(t);
-- as the client sees it
SELECT '2026-02-29T00:00:00.000000Z/0000'::hlc;
SELECT 'now'::text::hlc;
SELECT NULL::hlc IS NULL AS null_in_null_out;

--------------------------------------------------------------------------
-- Binary I/O: the raw value, 8 bytes big-endian
--------------------------------------------------------------------------

SELECT t AS value, hlc_send(t::hlc) AS sent
  FROM (VALUES ('1970-01-01T00:00:00.000000Z/0000'),
               ('1970-01-01T00:00:00.000000Z/0001'),
               ('1970-01-01T00:00:00.000001Z/0000'),
               ('2041-05-10T11:56:53.685247Z/4095'),
               ('2041-05-10T11:56:53.685248Z/0000'),
               ('2112-09-17T23:53:47.370495Z/4095')) v(t);
SELECT count(*) AS values_below_2041,
       count(*) FILTER (WHERE hlc_send(v) = int8send(v::bigint)) AS sent_as_int8send
  FROM hlc_random WHERE v <= 9223372036854775807::hlc;
-- through binary COPY and back (hlc_send, then hlc_recv); the file keeps
-- the 8 bytes as they are
\getenv abs_builddir PG_ABS_BUILDDIR
\set hlc_bin_file :abs_builddir '/results/hlc.bin'
COPY (SELECT '2041-05-10T11:56:53.685248Z/0000'::hlc) TO :'hlc_bin_file' (FORMAT binary);
SELECT substr(pg_read_binary_file(:'hlc_bin_file'), 20, 14) AS tuple_bytes;
COPY hlc_random TO :'hlc_bin_file' (FORMAT binary);
CREATE TABLE hlc_copied (LIKE hlc_random);
COPY hlc_copied FROM :'hlc_bin_file' (FORMAT binary);
SELECT (SELECT count(*) FROM hlc_copied) AS copied,
       (SELECT count(*) FROM (SELECT * FROM hlc_random EXCEPT ALL SELECT * FROM hlc_copied) d)
     + (SELECT count(*) FROM (SELECT * FROM hlc_copied EXCEPT ALL SELECT * FROM hlc_random) d)
       AS differences;
-- hlc_recv of crafted fields: 8 bytes make a value, any other length is refused
CREATE TABLE hlc_raw_bytes (b bytea);
CREATE TABLE hlc_received (v hlc);
INSERT INTO hlc_raw_bytes VALUES ('\x8000000000000001'), ('\xffffffffffffffff');
COPY hlc_raw_bytes TO :'hlc_bin_file' (FORMAT binary);
COPY hlc_received FROM :'hlc_bin_file' (FORMAT binary);
SELECT v FROM hlc_received ORDER BY v;
TRUNCATE hlc_raw_bytes;
INSERT INTO hlc_raw_bytes VALUES ('\x00000001');
COPY hlc_raw_bytes TO :'hlc_bin_file' (FORMAT binary);
SELECT pg_temp.err(format('COPY public.hlc_received FROM %L (FORMAT binary)', :'hlc_bin_file'));
TRUNCATE hlc_raw_bytes;
INSERT INTO hlc_raw_bytes VALUES ('\x000000000000000001');
COPY hlc_raw_bytes TO :'hlc_bin_file' (FORMAT binary);
SELECT pg_temp.err(format('COPY public.hlc_received FROM %L (FORMAT binary)', :'hlc_bin_file'));
SELECT count(*) AS received FROM hlc_received;

--------------------------------------------------------------------------
-- Casts and parts
--------------------------------------------------------------------------

SELECT 0::bigint::hlc AS zero,
       9223372036854775807::hlc AS bigint_max,
       9223372036854775807::hlc::bigint = 9223372036854775807 AS bigint_max_round_trip,
       0::bigint::hlc::bigint = 0 AS zero_round_trip,
       4096::bigint::hlc AS one_microsecond;
SELECT count(*) FILTER (WHERE (v::bigint)::hlc = v) AS bigint_round_trips,
       count(*) FILTER (WHERE v::bigint = ((extract(epoch FROM hlc_physical(v)) * 1000000)::bigint << 12)
                                           + hlc_logical(v)) AS raw_is_layout
  FROM hlc_random WHERE v <= 9223372036854775807::hlc;
SELECT pg_temp.err($$SELECT (-1)::bigint::event_stats.hlc$$);
SELECT pg_temp.err($$SELECT (-9223372036854775808)::bigint::event_stats.hlc$$);
SELECT pg_temp.err($$SELECT '2041-05-10T11:56:53.685248Z/0000'::event_stats.hlc::bigint$$);
SELECT pg_temp.err($$SELECT '2041-05-11T00:00:00.000000Z/0000'::event_stats.hlc::bigint$$);
SELECT pg_temp.err($$SELECT '2112-09-17T23:53:47.370495Z/4095'::event_stats.hlc::bigint$$);
-- the casts are explicit only
CREATE TEMP TABLE hlc_cast_target (v hlc, b bigint, t timestamptz);
SELECT pg_temp.err($$INSERT INTO hlc_cast_target (v) VALUES (5::bigint)$$);
SELECT pg_temp.err($$INSERT INTO hlc_cast_target (b) VALUES ('1970-01-01T00:00:00.000000Z/0005'::event_stats.hlc)$$);
SELECT pg_temp.err($$INSERT INTO hlc_cast_target (t) VALUES ('1970-01-01T00:00:00.000000Z/0005'::event_stats.hlc)$$);
-- to timestamptz: the physical part
SELECT '2024-02-29T23:59:59.999999Z/4095'::hlc::timestamptz AS leap_day,
       '2112-09-17T23:53:47.370495Z/4095'::hlc::timestamptz AS max_physical,
       '1970-01-01T00:00:00.000000Z/4095'::hlc::timestamptz AS epoch,
       '2041-05-10T11:56:53.685248Z/0000'::hlc::timestamptz AS top_bit;
SELECT hlc_physical('2000-02-29T12:34:56.789012Z/0007') AS physical,
       hlc_logical('2000-02-29T12:34:56.789012Z/0007') AS logical,
       hlc_logical('2112-09-17T23:53:47.370495Z/4095') AS logical_max;
SELECT hlc_from_parts('2000-02-29 12:34:56.789012+00', 7) AS from_parts,
       hlc_from_parts('2000-02-29 12:34:56.789012+00') AS default_logical,
       hlc_from_parts('1970-01-01 00:00:00+00', 0) AS lowest,
       hlc_from_parts('2112-09-17 23:53:47.370495+00', 4095) AS highest;
SELECT count(*) FILTER (WHERE hlc_from_parts(hlc_physical(v), hlc_logical(v)) = v) AS parts_round_trip,
       count(*) FILTER (WHERE v::timestamptz = hlc_physical(v)) AS cast_is_physical
  FROM hlc_random;
SELECT t AS args, pg_temp.err('SELECT event_stats.hlc_from_parts' || t) AS error
  FROM (VALUES ($$('infinity')$$),
               ($$('-infinity')$$),
               ($$('1969-12-31 23:59:59.999999+00')$$),
               ($$('2113-01-01 00:00:00+00')$$),
               ($$('294276-12-31 23:59:59.999999+00')$$),
               ($$('4713-11-24 00:00:00+00 BC')$$),
               ($$('2000-01-01 00:00:00+00', -1)$$),
               ($$('2000-01-01 00:00:00+00', 4096)$$),
               ($$('2000-01-01 00:00:00+00', 2147483647)$$)) v(t);
SELECT hlc_from_parts(NULL) IS NULL AS null_physical,
       hlc_from_parts('2000-01-01 00:00:00+00', NULL) IS NULL AS null_logical;

--------------------------------------------------------------------------
-- Operators: unsigned order, across the top bit
--------------------------------------------------------------------------

SELECT a, b, a = b AS eq, a <> b AS ne, a < b AS lt, a <= b AS le, a > b AS gt, a >= b AS ge,
       hlc_cmp(a, b) AS cmp
  FROM (VALUES ('2041-05-10T11:56:53.685248Z/0000'::hlc, '2041-05-10T11:56:53.685247Z/4095'::hlc),
               ('2050-01-01T00:00:00.000000Z/0000', '2030-01-01T00:00:00.000000Z/0000'),
               ('2030-01-01T00:00:00.000000Z/0000', '2050-01-01T00:00:00.000000Z/0000'),
               ('2112-09-17T23:53:47.370495Z/4095', '1970-01-01T00:00:00.000000Z/0000'),
               ('2026-11-22T06:40:12.123456Z/0002', '2026-11-22T06:40:12.123456Z/0001'),
               ('2026-11-22T06:40:12.123455Z/4095', '2026-11-22T06:40:12.123456Z/0000'),
               ('2026-11-22T06:40:12.123456Z/0001', '2026-11-22T06:40:12.123456Z/0001'),
               ('2112-09-17T23:53:47.370495Z/4095', '2112-09-17T23:53:47.370495Z/4095')) v(a, b);
-- every operator agrees with the order of the parts, on 14,000 neighbouring pairs
WITH pairs AS (
    SELECT a.v AS a, b.v AS b,
           (hlc_physical(a.v), hlc_logical(a.v)) AS pa, (hlc_physical(b.v), hlc_logical(b.v)) AS pb
      FROM hlc_random a JOIN hlc_random b ON b.i = a.i % 14004 + 1)
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE (a = b) = (pa = pb) AND (a <> b) = (pa <> pb)
                          AND (a < b) = (pa < pb) AND (a <= b) = (pa <= pb)
                          AND (a > b) = (pa > pb) AND (a >= b) = (pa >= pb)
                          AND hlc_cmp(a, b) = CASE WHEN pa < pb THEN -1 WHEN pa > pb THEN 1 ELSE 0 END)
         AS agree
  FROM pairs;
-- operator metadata the planner relies on
SELECT o.oprname, o.oprcom::regoperator AS commutator, o.oprnegate::regoperator AS negator,
       o.oprcanhash AS hashes, o.oprcanmerge AS merges
  FROM pg_operator o
 WHERE o.oprleft = 'hlc'::regtype AND o.oprright = 'hlc'::regtype
 ORDER BY o.oprname;

-- ORDER BY, both ways and USING
CREATE TABLE hlc_fixed (v hlc);
INSERT INTO hlc_fixed VALUES
    ('2041-05-10T11:56:53.685248Z/0000'), ('2026-11-22T06:40:12.123456Z/0002'),
    ('1970-01-01T00:00:00.000000Z/0000'), ('2112-09-17T23:53:47.370495Z/4095'),
    ('2041-05-10T11:56:53.685247Z/4095'), ('2026-11-22T06:40:12.123456Z/0001'),
    ('2026-11-22T06:40:12.123455Z/4095'), ('2099-01-01T00:00:00.000000Z/0000');
SELECT v FROM hlc_fixed ORDER BY v;
SELECT v FROM hlc_fixed ORDER BY v USING >;
SELECT min(v), max(v) FROM hlc_fixed;
SELECT min(v), max(v) FROM hlc_fixed WHERE v < '2041-05-10T11:56:53.685248Z/0000';
SELECT min(v) IS NULL AS min_of_nothing, max(v) IS NULL AS max_of_nothing
  FROM hlc_fixed WHERE false;

--------------------------------------------------------------------------
-- Indexes
--------------------------------------------------------------------------

CREATE INDEX hlc_random_v ON hlc_random (v);
CREATE INDEX hlc_fixed_v ON hlc_fixed (v);
VACUUM ANALYZE hlc_random;
VACUUM ANALYZE hlc_fixed;
SELECT pg_temp.err($$SELECT bt_index_parent_check('hlc_random_v', true, true)$$) AS btree_consistent;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF)
SELECT v FROM hlc_fixed
 WHERE v > '2026-11-22T06:40:12.123456Z/0001' AND v <= '2041-05-10T11:56:53.685248Z/0000';
SELECT v FROM hlc_fixed
 WHERE v > '2026-11-22T06:40:12.123456Z/0001' AND v <= '2041-05-10T11:56:53.685248Z/0000';
SELECT v FROM hlc_fixed WHERE v >= '2041-05-10T11:56:53.685248Z/0000' ORDER BY v DESC;
SELECT v FROM hlc_fixed WHERE v < '2026-11-22T06:40:12.123456Z/0000' ORDER BY v;
SELECT v FROM hlc_fixed WHERE v = '2112-09-17T23:53:47.370495Z/4095';
-- range counts through the index equal those of a sequential scan and of
-- the parts, also for ranges across the top bit
CREATE TEMP TABLE hlc_ranges (lo hlc, hi hlc);
INSERT INTO hlc_ranges VALUES
    ('1970-01-01T00:00:00.000000Z/0000', '2000-01-01T00:00:00.000000Z/0000'),
    ('1999-12-31T23:59:59.500000Z/0000', '2000-01-01T00:00:00.500000Z/2048'),
    ('2030-01-01T00:00:00.000000Z/0000', '2050-01-01T00:00:00.000000Z/0000'),
    ('2041-05-10T11:56:53.685247Z/4095', '2112-09-17T23:53:47.370495Z/4095');
CREATE TEMP TABLE hlc_range_counts (lo hlc, hi hlc, how text, n bigint);
EXPLAIN (COSTS OFF)
SELECT count(*) FROM hlc_random WHERE v >= '2030-01-01T00:00:00.000000Z/0000'
                                  AND v < '2050-01-01T00:00:00.000000Z/0000';
INSERT INTO hlc_range_counts
SELECT lo, hi, 'index', (SELECT count(*) FROM hlc_random WHERE v >= lo AND v < hi) FROM hlc_ranges;
RESET enable_seqscan;
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
INSERT INTO hlc_range_counts
SELECT lo, hi, 'seqscan', (SELECT count(*) FROM hlc_random WHERE v >= lo AND v < hi) FROM hlc_ranges;
INSERT INTO hlc_range_counts
SELECT lo, hi, 'parts',
       (SELECT count(*) FROM hlc_random
         WHERE (hlc_physical(v), hlc_logical(v)) >= (hlc_physical(lo), hlc_logical(lo))
           AND (hlc_physical(v), hlc_logical(v)) < (hlc_physical(hi), hlc_logical(hi)))
  FROM hlc_ranges;
RESET enable_indexscan;
RESET enable_indexonlyscan;
SELECT lo, hi, count(DISTINCT n) = 1 AS all_agree, min(n) > 0 AS not_empty
  FROM hlc_range_counts GROUP BY lo, hi ORDER BY lo;
-- an index scan returns the values in order
SET enable_seqscan = off;
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT v FROM hlc_random ORDER BY v;
WITH ordered AS (SELECT v, lag(v) OVER () AS prev FROM (SELECT v FROM hlc_random ORDER BY v) s)
SELECT count(*) AS values_, count(*) FILTER (WHERE prev <= v) AS in_order FROM ordered;
RESET enable_sort;
-- min and max from the index
EXPLAIN (COSTS OFF) SELECT min(v), max(v) FROM hlc_random;
SELECT min(v), max(v) FROM hlc_random;
SELECT min(v) = (SELECT v FROM hlc_random ORDER BY hlc_physical(v), hlc_logical(v) LIMIT 1) AS min_ok,
       max(v) = (SELECT v FROM hlc_random ORDER BY hlc_physical(v) DESC, hlc_logical(v) DESC LIMIT 1) AS max_ok
  FROM hlc_random;

-- hash index
CREATE INDEX hlc_random_v_hash ON hlc_random USING hash (v);
CREATE INDEX hlc_fixed_v_hash ON hlc_fixed USING hash (v);
DROP INDEX hlc_fixed_v;
EXPLAIN (COSTS OFF) SELECT v FROM hlc_fixed WHERE v = '2041-05-10T11:56:53.685248Z/0000';
SELECT v FROM hlc_fixed WHERE v = '2041-05-10T11:56:53.685248Z/0000';
SELECT v FROM hlc_fixed WHERE v = '2041-05-10T11:56:53.685248Z/0001';
DROP INDEX hlc_random_v;
EXPLAIN (COSTS OFF) SELECT count(*) FROM hlc_random WHERE v = '2041-05-10T11:56:53.685248Z/0000';
WITH by_text AS (SELECT v::text AS t, count(*) AS n FROM hlc_random GROUP BY v::text)
SELECT count(*) AS probes,
       count(*) FILTER (WHERE (SELECT count(*) FROM hlc_random r WHERE r.v = p.v) = by_text.n)
         AS found_as_often_as_by_text
  FROM (SELECT v FROM hlc_random WHERE i % 20 = 0) p JOIN by_text ON by_text.t = p.v::text;
RESET enable_seqscan;
RESET enable_bitmapscan;

-- hash join and hashed GROUP BY agree with sort-based plans
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM hlc_random a JOIN hlc_copied b ON a.v = b.v;
SELECT count(*) AS hash_joined FROM hlc_random a JOIN hlc_copied b ON a.v = b.v \gset
RESET enable_mergejoin;
RESET enable_nestloop;
SET enable_hashjoin = off;
SELECT count(*) = :hash_joined AS merge_join_agrees FROM hlc_random a JOIN hlc_copied b ON a.v = b.v;
RESET enable_hashjoin;
SELECT sum(n * n) = :hash_joined AS join_counts_pairs
  FROM (SELECT count(*) AS n FROM hlc_random GROUP BY v::text) g;
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT v, count(*) FROM hlc_random GROUP BY v;
SELECT count(*) AS hashed_groups FROM (SELECT v FROM hlc_random GROUP BY v) g \gset
RESET enable_sort;
SET enable_hashagg = off;
SELECT count(*) = :hashed_groups AS sorted_groups_agree,
       count(*) = (SELECT count(DISTINCT v::text) FROM hlc_random) AS groups_are_distinct_texts
  FROM (SELECT v FROM hlc_random GROUP BY v) g;
RESET enable_hashagg;
-- hash partitioning (the extended hash function) finds each row in one partition
CREATE TABLE hlc_parted (v hlc) PARTITION BY HASH (v);
CREATE TABLE hlc_parted_0 PARTITION OF hlc_parted FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE hlc_parted_1 PARTITION OF hlc_parted FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE hlc_parted_2 PARTITION OF hlc_parted FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE hlc_parted_3 PARTITION OF hlc_parted FOR VALUES WITH (MODULUS 4, REMAINDER 3);
INSERT INTO hlc_parted SELECT v FROM hlc_random;
SELECT count(*) AS rows_, count(DISTINCT tableoid) AS partitions_used FROM hlc_parted;
EXPLAIN (COSTS OFF) SELECT * FROM hlc_parted WHERE v = '2041-05-10T11:56:53.685248Z/0000';
SELECT count(*) AS probes,
       count(*) FILTER (WHERE (SELECT count(*) FROM hlc_parted q WHERE q.v = p.v)
                              = (SELECT count(*) FROM hlc_random r WHERE r.v = p.v))
         AS found_by_pruned_scan
  FROM (SELECT v FROM hlc_random WHERE i % 20 = 0) p;

-- a unique index refuses duplicates
CREATE TABLE hlc_unique (v hlc UNIQUE);
INSERT INTO hlc_unique VALUES ('2041-05-10T11:56:53.685248Z/0000'), ('2041-05-10T11:56:53.685247Z/4095');
SELECT pg_temp.err($$INSERT INTO hlc_unique VALUES ('2041-05-10T11:56:53.685248Z/0000')$$);
SELECT pg_temp.err($$INSERT INTO hlc_unique VALUES ('2041-05-10T11:56:53.685247Z/4095')$$);
INSERT INTO hlc_unique VALUES ('2041-05-10T11:56:53.685248Z/0001');
SELECT count(*) AS unique_rows FROM hlc_unique;

--------------------------------------------------------------------------
-- The clock: hlc_now() and unique_timestamp()
--------------------------------------------------------------------------

-- 100,000 calls in one query: strictly increasing, never behind the wall
-- clock read just before each call (clock_timestamp() is evaluated first)
SELECT hlc_now() AS clock_before \gset
CREATE TEMP TABLE hlc_calls AS
SELECT i, clock_timestamp() AS wall_before, hlc_now() AS v
  FROM generate_series(1, 100000) i;
SELECT hlc_now() AS clock_after \gset
WITH s AS (SELECT v, wall_before, lag(v) OVER (ORDER BY i) AS prev FROM hlc_calls)
SELECT count(*) AS calls,
       count(DISTINCT v) AS distinct_values,
       count(*) FILTER (WHERE prev < v) AS greater_than_previous,
       count(*) FILTER (WHERE hlc_physical(v) >= wall_before) AS not_behind_wall_clock,
       min(v) > :'clock_before'::hlc AS after_earlier_call,
       max(v) < :'clock_after'::hlc AS before_later_call
  FROM s;

-- unique_timestamp(): distinct, increasing, not behind the wall clock
CREATE TEMP TABLE hlc_unique_ts AS
SELECT i, clock_timestamp() AS wall_before, unique_timestamp() AS u
  FROM generate_series(1, 10000) i;
WITH s AS (SELECT u, wall_before, lag(u) OVER (ORDER BY i) AS prev FROM hlc_unique_ts)
SELECT count(*) AS calls,
       count(DISTINCT u) AS distinct_values,
       count(*) FILTER (WHERE prev < u) AS greater_than_previous,
       count(*) FILTER (WHERE u >= wall_before) AS not_behind_wall_clock,
       pg_typeof(min(u)) AS type
  FROM s;

-- Mixed calls in one query are ordered with each other: unique_timestamp()
-- T takes the whole microsecond T, so every earlier value is below T/0000
-- and every later one above T/4095; no hlc_now() value lies in T.
CREATE TEMP TABLE hlc_mixed AS
SELECT i,
       CASE WHEN i % 3 <> 0 THEN hlc_now() END AS h,
       CASE WHEN i % 3 = 0 THEN unique_timestamp() END AS u
  FROM generate_series(1, 30000) i;
WITH s AS (
    SELECT i, h, u,
           coalesce(h, hlc_from_parts(u, 0)) AS lo,
           coalesce(h, hlc_from_parts(u, 4095)) AS hi
      FROM hlc_mixed),
     w AS (SELECT lo, lag(hi) OVER (ORDER BY i) AS prev_hi FROM s)
SELECT (SELECT count(h) FROM hlc_mixed) AS hlc_now_calls,
       (SELECT count(u) FROM hlc_mixed) AS unique_timestamp_calls,
       (SELECT count(*) FROM w WHERE prev_hi < lo) AS ordered_with_previous,
       (SELECT count(*) FROM hlc_mixed a JOIN hlc_mixed b ON hlc_physical(a.h) = b.u)
         AS hlc_now_in_a_taken_microsecond,
       (SELECT count(DISTINCT u) FROM hlc_mixed) AS distinct_timestamps;

-- hlc_now() taken again is above everything so far
SELECT hlc_now() > (SELECT max(v) FROM hlc_calls) AND
       hlc_now() > hlc_from_parts((SELECT max(u) FROM hlc_mixed), 4095) AS later_statement_greater;

-- the physical part is not behind the wall clock read just before, and not
-- ahead of it by more than hlc_max_drift (the most an observation may move
-- it) plus the 3 s a restart may jump
SELECT clock_timestamp() AS wall_before, hlc_now() AS taken \gset
SELECT hlc_physical(:'taken') >= :'wall_before'::timestamptz AS not_behind,
       hlc_physical(:'taken') < clock_timestamp() + interval '5 minutes 3 seconds' AS not_far_ahead;

--------------------------------------------------------------------------
-- hlc_status()
--------------------------------------------------------------------------

SELECT pg_typeof(current) AS current, pg_typeof(wall_clock) AS wall_clock,
       pg_typeof(drift) AS drift, pg_typeof(max_drift) AS max_drift,
       pg_typeof(drift_waits) AS drift_waits,
       pg_typeof(high_water_mark) AS high_water_mark,
       pg_typeof(backward_steps) AS backward_steps,
       pg_typeof(refused_observations) AS refused_observations
  FROM hlc_status();
SELECT clock_timestamp() AS wall_before, hlc_now() AS taken \gset
SELECT current >= :'taken'::hlc AS current_is_last_value,
       high_water_mark > current AS ceiling_above_current,
       wall_clock >= :'wall_before'::timestamptz AND wall_clock <= clock_timestamp() AS wall_clock_now,
       drift >= interval '0' AS drift_not_negative,
       drift = greatest(hlc_physical(current) - wall_clock, interval '0') AS drift_is_lead,
       max_drift = interval '5 minutes' AS max_drift_is_the_bound,
       drift <= max_drift AS drift_within_bound,
       drift_waits >= 0 AS drift_waits_counted,
       backward_steps >= 0 AS backward_steps_counted,
       refused_observations >= 0 AS refusals_counted
  FROM hlc_status();
SELECT current < hlc_now() AS status_does_not_take_values FROM hlc_status();

--------------------------------------------------------------------------
-- hlc_observe()
--------------------------------------------------------------------------

-- A value ahead with logical 4095 (10 s past the wall clock, or 1 ms past
-- the clock if an earlier run left it further ahead): the clock moves just
-- past it, carrying into the next microsecond, then ticks logically while
-- the wall clock is behind.
SELECT hlc_from_parts(greatest(clock_timestamp() + interval '10 seconds',
                               hlc_physical(hlc_now()) + interval '1 millisecond'),
                      4095) AS ahead \gset
SELECT hlc_observe(:'ahead') AS observed \gset
SELECT hlc_now() AS next1 \gset
SELECT hlc_now() AS next2 \gset
SELECT :'observed'::hlc > :'ahead'::hlc AS greater,
       hlc_physical(:'observed') = hlc_physical(:'ahead') + interval '1 microsecond' AS carried,
       hlc_logical(:'observed') AS logical,
       hlc_physical(:'next1') = hlc_physical(:'observed') AS same_microsecond_1,
       hlc_logical(:'next1') AS logical_1,
       hlc_physical(:'next2') = hlc_physical(:'observed') AS same_microsecond_2,
       hlc_logical(:'next2') AS logical_2;

-- a value in the past: a new value above the last one
SELECT hlc_now() AS last \gset
SELECT hlc_observe('2020-01-01T00:00:00.000000Z/0000') AS observed \gset
SELECT :'observed'::hlc > :'last'::hlc AS above_last,
       :'observed'::hlc > '2020-01-01T00:00:00.000000Z/0000' AS above_observed,
       hlc_now() > :'observed'::hlc AS next_above;

-- a value one minute ahead: accepted, and the clock stays past it
SELECT hlc_from_parts(clock_timestamp() + interval '1 minute') AS ahead \gset
SELECT hlc_observe(:'ahead') > :'ahead'::hlc AS observed_above;
SELECT hlc_now() > :'ahead'::hlc AS now_above,
       unique_timestamp() > hlc_physical(:'ahead') AS unique_timestamp_above;
-- (at most a minute, or the 3 s more a restart may have added to the lead
-- an earlier run left)
SELECT drift > interval '50 seconds' AND drift <= interval '64 seconds' AS drift_about_a_minute,
       high_water_mark > current AS ceiling_above_current
  FROM hlc_status();

-- a value an hour ahead: refused, counted once, the clock not moved
SELECT refused_observations AS refused_before FROM hlc_status() \gset
SELECT hlc_from_parts(clock_timestamp() + interval '1 hour') AS far \gset
SELECT pg_temp.mask(pg_temp.err(format('SELECT event_stats.hlc_observe(%L)', :'far'))) AS error;
SELECT hlc_now() < :'far'::hlc AS clock_not_moved,
       current < :'far'::hlc AS current_not_moved,
       high_water_mark < :'far'::hlc AS ceiling_not_moved,
       refused_observations - :refused_before AS refusals_counted
  FROM hlc_status();
-- the largest value: refused the same way (not "exhausted")
SELECT pg_temp.mask(pg_temp.err($$SELECT event_stats.hlc_observe('2112-09-17T23:53:47.370495Z/4095')$$)) AS error;
SELECT refused_observations - :refused_before AS refusals_counted FROM hlc_status();
SELECT hlc_now() < '2100-01-01T00:00:00.000000Z/0000' AS clock_not_moved;

-- (smaller bounds are set server-wide, in TAP test 014)
-- a null observation is a mistake: refused, not a silent null, and not counted
SELECT pg_temp.err($$SELECT event_stats.hlc_observe(NULL)$$) AS error;
SELECT pg_temp.err($$SELECT event_stats.hlc_observe(NULL::event_stats.hlc)$$) AS error;
SELECT refused_observations - :refused_before AS refusals_counted FROM hlc_status();
SELECT provolatile, proisstrict FROM pg_proc
 WHERE oid = 'event_stats.hlc_observe(event_stats.hlc)'::regprocedure;

--------------------------------------------------------------------------
-- event_stats.hlc_max_drift: bounds, units; server-wide (PGC_SIGHUP), so
-- no session can lift the bound of the clock every session shares
--------------------------------------------------------------------------

SHOW event_stats.hlc_max_drift;
SELECT setting, unit, min_val, max_val, context, vartype
  FROM pg_settings WHERE name = 'event_stats.hlc_max_drift';
SELECT pg_temp.err($$SET event_stats.hlc_max_drift = '1h'$$);
SELECT pg_temp.err($$SET LOCAL event_stats.hlc_max_drift = 0$$);
SELECT pg_temp.err($$SELECT set_config('event_stats.hlc_max_drift', '0', false)$$);
SHOW event_stats.hlc_max_drift;
-- ALTER SYSTEM checks the bounds and units (and is reset at once, never
-- reloaded)
ALTER SYSTEM SET event_stats.hlc_max_drift = -1;
ALTER SYSTEM SET event_stats.hlc_max_drift = '25h';
ALTER SYSTEM SET event_stats.hlc_max_drift = '86400001ms';
ALTER SYSTEM SET event_stats.hlc_max_drift = '5 parsecs';
ALTER SYSTEM SET event_stats.hlc_max_drift = '1d';
ALTER SYSTEM SET event_stats.hlc_max_drift = 0;
ALTER SYSTEM RESET event_stats.hlc_max_drift;
SHOW event_stats.hlc_max_drift;
-- a non-superuser may read it and use the clock, not change the bound
CREATE ROLE regress_es_hlc_user;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO regress_es_hlc_user;
SET ROLE regress_es_hlc_user;
SHOW event_stats.hlc_max_drift;
SELECT pg_temp.err($$SET event_stats.hlc_max_drift = '1min'$$);
SELECT pg_temp.err($$SET event_stats.hlc_max_drift = '10min'$$);
SELECT pg_temp.err($$SELECT set_config('event_stats.hlc_max_drift', '0', false)$$);
ALTER SYSTEM SET event_stats.hlc_max_drift = '1h';
SELECT hlc_now() > '2020-01-01T00:00:00.000000Z/0000' AS can_take_values;
SHOW event_stats.hlc_max_drift;
RESET ROLE;
SELECT pg_temp.err($$ALTER ROLE regress_es_hlc_user SET event_stats.hlc_max_drift = '1min'$$);
SELECT setconfig FROM pg_db_role_setting
 WHERE setrole = 'regress_es_hlc_user'::regrole;
ALTER ROLE regress_es_hlc_user RESET ALL;

--------------------------------------------------------------------------
-- Parallel workers take values from the same clock
--------------------------------------------------------------------------

CREATE TABLE hlc_big AS SELECT i FROM generate_series(1, 100000) i;
VACUUM ANALYZE hlc_big;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF, VERBOSE) SELECT i, hlc_now(), unique_timestamp() FROM hlc_big;
-- Workers Launched, from EXPLAIN ANALYZE of the statement that keeps the values
CREATE FUNCTION pg_temp.workers_launched(stmt text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, FORMAT JSON) ' || stmt INTO plan;
    RETURN jsonb_path_query_first(plan, 'strict $.**."Workers Launched"')::int;
END $$;
SELECT hlc_now() AS clock_before \gset
SELECT pg_temp.workers_launched(
    'CREATE TABLE hlc_par AS SELECT i, hlc_now() AS h, unique_timestamp() AS u FROM hlc_big')
    > 0 AS ran_in_workers;
SELECT hlc_now() AS clock_after \gset
SELECT count(*) AS rows_,
       count(DISTINCT h) AS distinct_hlc_now,
       count(DISTINCT u) AS distinct_unique_timestamp,
       (SELECT count(*) FROM hlc_par a JOIN hlc_par b ON hlc_physical(a.h) = b.u)
         AS hlc_now_in_a_taken_microsecond,
       min(h) > :'clock_before'::hlc AND max(h) < :'clock_after'::hlc AS within_neighbours,
       min(u) > hlc_physical(:'clock_before') AND max(u) < hlc_physical(:'clock_after')
         AS timestamps_within_neighbours
  FROM hlc_par;
-- min/max in parallel: partial aggregates combined
EXPLAIN (COSTS OFF) SELECT min(h), max(h) FROM hlc_par;
SELECT min(h) = (SELECT h FROM hlc_par ORDER BY h LIMIT 1) AS parallel_min,
       max(h) = (SELECT h FROM hlc_par ORDER BY h DESC LIMIT 1) AS parallel_max
  FROM hlc_par;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
-- one call run in a worker
SELECT hlc_now() AS clock_before \gset
SET force_parallel_mode = on;
EXPLAIN (COSTS OFF) SELECT hlc_now();
SELECT hlc_now() AS in_worker \gset
RESET force_parallel_mode;
SELECT :'in_worker'::hlc > :'clock_before'::hlc AND :'in_worker'::hlc < hlc_now() AS worker_value_ordered;

--------------------------------------------------------------------------
-- clean up
--------------------------------------------------------------------------
DROP TABLE hlc_random, hlc_copied, hlc_raw_bytes, hlc_received, hlc_fixed, hlc_parted,
    hlc_unique, hlc_big, hlc_par;
DROP OWNED BY regress_es_hlc_user;
DROP ROLE regress_es_hlc_user;
DROP EXTENSION amcheck;
