--
-- Run against a server that does NOT have event_stats in
-- shared_preload_libraries: the extension installs, every function refuses
-- with a hint naming the setting, and nothing crashes.
--
SHOW shared_preload_libraries;
CREATE EXTENSION event_stats;
SELECT event_stats.create_counter('x');
SELECT 'x'::event_stats.counter;
SELECT event_stats.increment(1::event_stats.counter);
SELECT event_stats.value(1::event_stats.counter);
SELECT event_stats.set(1::event_stats.counter, 1);
SELECT event_stats.drop_counter(1::event_stats.counter);
SELECT event_stats.grant_counter(1::event_stats.counter, 'select', 'public');
SELECT event_stats.value_if_readable(1::event_stats.counter);
SELECT * FROM event_stats.counters;
-- the hlc type is plain data and works; the clock lives in shared memory
-- and refuses
SELECT '2026-11-22T06:40:12.123456Z/0001'::event_stats.hlc::bigint;
SELECT event_stats.hlc_now();
SELECT event_stats.hlc_observe('2026-11-22T06:40:12.123456Z/0001');
SELECT event_stats.unique_timestamp();
SELECT * FROM event_stats.hlc_status();
SELECT event_stats.hlc_horizon();
-- the session is still healthy
SELECT 1 AS still_alive;
DROP EXTENSION event_stats;
