# Copyright: event_stats authors.  TAP test of event_stats.
#
# 009_hlc_concurrency.pl -- the hybrid logical clock under concurrency:
# hlc_now() and unique_timestamp() called by many sessions at once never
# give the same value twice, and each session sees its own values strictly
# increase.
#
# Phase 1, 38 psql sessions started together, each one statement:
#   32 sessions  INSERT INTO log SELECT <client>, i, hlc_now()
#                FROM generate_series(1, 100000) i   (3,200,000 calls)
#   2 sessions   the same with unique_timestamp() into ulog (u)
#   2 sessions   the same into ulog, alternating: odd i unique_timestamp()
#                (u), even i hlc_now() (v)
#   2 sessions   control: the same with clock_timestamp() into ctl
# The sessions wait behind an advisory lock held by the test until all 38
# are waiting, then are released at once, so that they really run
# together.  Checked, with raw bigint values (v::bigint, and microseconds of
# u computed by SQL's own extract(epoch)), independently of the type's
# operators and part functions:
#   - every session ended cleanly and wrote all its rows;
#   - no hlc value occurs twice across all sessions, no unique_timestamp
#     value occurs twice;
#   - within each session values strictly increase with the call order i
#     (a generate_series row's target list is evaluated as the row is
#     produced, so i is the call order; were it not, this check would fail,
#     it could not pass wrongly);
#   - in an alternating session, hlc values and unique_timestamp values
#     (as microsecond/0) together strictly increase: the two are ordered
#     with each other;
#   - no hlc_now() value has a physical part equal to any
#     unique_timestamp() value (each of those takes a whole microsecond),
#     although hlc_now() values do fall on the microseconds next to them;
#   - the sessions overlapped: the 32 hlc_now() sessions' value ranges
#     share a common point, at least 10,000 of their values lie within the
#     range of each unique_timestamp() session, and in the global order of
#     the hlc_now() values the client changes from one value to the next
#     many times;
#   - hlc_status(): current >= every value seen, high_water_mark > current.
# Control: two more sessions released with them call clock_timestamp(); the
# same distinctness and per-session checks must find its values repeating
# (so the checks can fail).
# Phase 2, pgbench: 32 clients, transactions inserting (client_id,
# hlc_now()) into log2 or (client_id, unique_timestamp()) into ut2, ids
# from one shared sequence.  pgbench must process every transaction with
# none failed; all values distinct, no physical part equal to a
# unique_timestamp value, and per pgbench client (whose transactions run one
# after the other, so its ids give its call order) hlc and unique_timestamp
# values together strictly increase.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $hlc_sessions = 32;
my $calls = 100_000;
my @ut_sessions = (101, 102);       # unique_timestamp() only
my $ut_calls = 25_000;
my @mixed_sessions = (201, 202);    # alternating
my $mixed_calls = 50_000;
my $all_sessions = $hlc_sessions + @ut_sessions + @mixed_sessions + 2;
my $gate_key = 9009;

my $node = event_stats_node(
	'hlc_concurrency',
	max_connections => 80,
	shared_buffers => '256MB');
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION event_stats;
CREATE UNLOGGED TABLE log (client int NOT NULL, seq int NOT NULL,
                           v event_stats.hlc NOT NULL);
CREATE UNLOGGED TABLE ctl (client int NOT NULL, seq int NOT NULL,
                           t timestamptz NOT NULL);
CREATE UNLOGGED TABLE ulog (client int NOT NULL, seq int NOT NULL,
                            u timestamptz, v event_stats.hlc,
                            CHECK ((u IS NULL) <> (v IS NULL)));
-- microseconds since the Unix epoch of a timestamptz, computed by SQL
-- alone (extract(epoch) is numeric, exact to the microsecond)
CREATE FUNCTION usec(timestamptz) RETURNS bigint IMMUTABLE STRICT
  LANGUAGE sql AS $$SELECT (extract(epoch FROM $1) * 1000000)::bigint$$;
-- a value of either kind as a raw ordering key: hlc as its raw bigint,
-- a unique_timestamp value as microsecond/logical 0
CREATE FUNCTION okey(event_stats.hlc, timestamptz) RETURNS bigint
  IMMUTABLE LANGUAGE sql
  AS $$SELECT coalesce($1::bigint, usec($2) << 12)$$;
});

# --- phase 1: 38 psql sessions released together -----------------------------

# The gate: an exclusive advisory lock held by this session; each client
# first waits for a shared lock on the same key.
my $gate = $node->background_psql('postgres');
$gate->query_safe("SELECT pg_advisory_lock($gate_key)");

sub gated
{
	my ($sql) = @_;
	return "SELECT pg_advisory_lock_shared($gate_key);\n$sql";
}

my @runs;
for my $c (1 .. $hlc_sessions)
{
	push @runs,
	  start_psql_script(
		$node, 'postgres', gated(qq{
INSERT INTO log SELECT $c, i, event_stats.hlc_now()
  FROM generate_series(1, $calls) i;
}));
}
for my $c (@ut_sessions)
{
	push @runs,
	  start_psql_script(
		$node, 'postgres', gated(qq{
INSERT INTO ulog (client, seq, u)
  SELECT $c, i, event_stats.unique_timestamp()
  FROM generate_series(1, $ut_calls) i;
}));
}
for my $c (@mixed_sessions)
{
	push @runs,
	  start_psql_script(
		$node, 'postgres', gated(qq{
INSERT INTO ulog (client, seq, u, v)
  SELECT $c, i,
         CASE WHEN i % 2 = 1 THEN event_stats.unique_timestamp() END,
         CASE WHEN i % 2 = 0 THEN event_stats.hlc_now() END
  FROM generate_series(1, $mixed_calls) i;
}));
}

# Control: two sessions doing the same with clock_timestamp(), which the
# checks below must find repeating.
for my $c (301, 302)
{
	push @runs,
	  start_psql_script(
		$node, 'postgres', gated(qq{
INSERT INTO ctl SELECT $c, i, clock_timestamp()
  FROM generate_series(1, $calls) i;
}));
}

$node->poll_query_until(
	'postgres', qq{
SELECT count(*) = $all_sessions FROM pg_locks
 WHERE locktype = 'advisory' AND objid = $gate_key AND NOT granted})
  or die "the $all_sessions sessions did not all reach the gate";
$gate->query_safe("SELECT pg_advisory_unlock($gate_key)");

my $failed_runs = 0;
for my $run (@runs)
{
	finish_command($run);
	$failed_runs++ if $run->{status} != 0 || $run->{err} ne '';
}
is($failed_runs, 0, "all $all_sessions sessions ended with status 0, nothing on stderr");
$gate->quit;

# Big sorts: give the checks memory.
sub check_sql
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', "SET work_mem = '512MB';\n$sql");
}

is( check_sql(
		qq{
SELECT count(*) FROM (
  SELECT client FROM log GROUP BY client
  HAVING count(*) = $calls AND min(seq) = 1 AND max(seq) = $calls) x}),
	$hlc_sessions,
	"each of the $hlc_sessions hlc_now() sessions wrote its $calls rows");
is( check_sql(
		q{
SELECT string_agg(format('%s:%s:%s:%s', client, n, nu, nv), ',' ORDER BY client)
  FROM (SELECT client, count(*) n, count(u) nu, count(v) nv
          FROM ulog GROUP BY client) x}),
	join(',',
		(map { "$_:$ut_calls:$ut_calls:0" } @ut_sessions),
		(map { "$_:$mixed_calls:" . $mixed_calls / 2 . ':' . $mixed_calls / 2 }
			  @mixed_sessions)),
	'the unique_timestamp() sessions wrote all their rows');

# All hlc values of phase 1, and all unique_timestamp values.
my $all_v = q{(SELECT v FROM log UNION ALL
              SELECT v FROM ulog WHERE v IS NOT NULL)};
my $all_u = q{(SELECT u FROM ulog WHERE u IS NOT NULL)};
my $n_v = $hlc_sessions * $calls + @mixed_sessions * $mixed_calls / 2;
my $n_u = @ut_sessions * $ut_calls + @mixed_sessions * $mixed_calls / 2;

is( check_sql("SELECT count(*) || ' ' || count(DISTINCT v::bigint) FROM $all_v x"),
	"$n_v $n_v", "all $n_v hlc_now() values are distinct (raw bigint)");
is( check_sql("SELECT count(*) || ' ' || count(DISTINCT v) FROM $all_v x"),
	"$n_v $n_v", 'and distinct by the type\'s own btree opclass too');
is(check_sql("SELECT count(*) || ' ' || count(DISTINCT usec(u)) FROM $all_u x"),
	"$n_u $n_u", "all $n_u unique_timestamp() values are distinct microseconds");

# Strictly increasing within each session.  (compared: the number of pairs
# actually compared, so that the check cannot pass on NULLs)
is( check_sql(
		q{
SELECT count(p) || ' compared, ' || count(*) FILTER (WHERE r <= p) || ' not increasing'
  FROM (SELECT v::bigint AS r,
               lag(v::bigint) OVER (PARTITION BY client ORDER BY seq) AS p
          FROM log) x}),
	($hlc_sessions * ($calls - 1)) . ' compared, 0 not increasing',
	'hlc_now() values strictly increase within each session');
is( check_sql(
		q{
SELECT count(p) || ' compared, ' || count(*) FILTER (WHERE r <= p) || ' not increasing'
  FROM (SELECT okey(v, u) AS r,
               lag(okey(v, u)) OVER (PARTITION BY client ORDER BY seq) AS p
          FROM ulog) x}),
	(@ut_sessions * ($ut_calls - 1) + @mixed_sessions * ($mixed_calls - 1))
	  . ' compared, 0 not increasing',
	'unique_timestamp() values, and in the alternating sessions hlc_now() and '
	  . 'unique_timestamp() values together, strictly increase within each session');

# No hlc_now() value falls in a microsecond a unique_timestamp() call took.
is( check_sql(
		qq{
SELECT count(*) FROM $all_v x JOIN $all_u y ON (x.v::bigint >> 12) = usec(y.u)}),
	0,
	'no hlc_now() value has the physical part of a unique_timestamp() value');
is( check_sql(
		qq{
SELECT count(*) FROM $all_v x
 WHERE event_stats.hlc_physical(x.v) IN (SELECT u FROM $all_u y)}),
	0, '(the same through hlc_physical())');
# ... which means something only if the two kinds came close: hlc_now()
# values do lie in the microseconds right after unique_timestamp() values.
my $next_to = check_sql(
	qq{
SELECT count(*) FROM $all_u y
 WHERE EXISTS (SELECT FROM $all_v x WHERE (x.v::bigint >> 12) = usec(y.u) + 1)});
cmp_ok($next_to, '>', 0,
	"hlc_now() values fall in the microsecond after $next_to unique_timestamp() values");

# The sessions overlapped.  The 32 hlc_now() sessions' ranges [first
# value, last value] all share a point: none of them ended before every
# other one had started.
my ($latest_first, $earliest_last) = split /\|/, check_sql(
	q{
SELECT max(lo), min(hi) FROM (
  SELECT min(v::bigint) lo, max(v::bigint) hi FROM log GROUP BY client) x});
cmp_ok($latest_first, '<', $earliest_last,
	"the $hlc_sessions hlc_now() sessions' value ranges all overlap");
# The shorter unique_timestamp() sessions ran while hlc_now() sessions ran:
# many hlc_now() values lie between their first and last values.  Counted
# over the four sessions together: on two cores the scheduler now and then
# runs one 25,000-call session in a burst between the others' time slices
# (seen: 0 and 204 hlc_now() values in one session's range, with 58,000 and
# more in the others'), and a per-session threshold made the test fail by
# chance.  The microsecond-neighbour check above is the sharper proof that
# the two kinds met.
my $overlaps = check_sql(
	q{
SELECT string_agg(client || ':' || n, ',' ORDER BY client)
  FROM (SELECT r.client,
               (SELECT count(*) FROM log WHERE v::bigint > r.lo AND v::bigint < r.hi) n
          FROM (SELECT client, min(okey(v, u)) lo, max(okey(v, u)) hi
                  FROM ulog GROUP BY client) r) x});
my $overlap_sum = 0;
$overlap_sum += (split /:/)[1] for split /,/, $overlaps;
cmp_ok($overlap_sum, '>=', 10_000,
	'the unique_timestamp() sessions ran while hlc_now() sessions ran '
	  . "(hlc_now() values within each one's range: $overlaps)");
# In the global order of the hlc_now() sessions' values, the client changes
# from one value to the next many times (not one session after the other).
my $switches = check_sql(
	q{
SELECT count(*) FROM (
  SELECT client, lag(client) OVER (ORDER BY v::bigint) AS p FROM log) x
 WHERE client <> p});
cmp_ok($switches, '>=', 10 * $hlc_sessions,
	"the hlc_now() sessions' values interleave ($switches client changes in value order)");

# hlc_status() covers every value handed out.
is( check_sql(
		qq{
SELECT s.current::bigint >= (SELECT max(v::bigint) FROM $all_v x)
       AND s.current::bigint >= (SELECT max(usec(u)) << 12 FROM $all_u y)
       AND s.high_water_mark::bigint > s.current::bigint
  FROM event_stats.hlc_status() s}),
	't',
	'hlc_status(): current >= every value seen, high_water_mark above it');

# Control: the same checks do catch repeated values.  clock_timestamp()
# called by two sessions at once (and by one session faster than once a
# microsecond) repeats itself.
my ($ctl_rows, $ctl_distinct) = split / /,
  check_sql("SELECT count(*) || ' ' || count(DISTINCT usec(t)) FROM ctl");
cmp_ok($ctl_distinct, '<', $ctl_rows,
	"control: the distinctness check finds repeats among clock_timestamp() values ($ctl_distinct distinct of $ctl_rows)");
my $ctl_not_increasing = check_sql(
	q{
SELECT count(*) FILTER (WHERE r <= p)
  FROM (SELECT usec(t) AS r, lag(usec(t)) OVER (PARTITION BY client ORDER BY seq) AS p
          FROM ctl) x});
cmp_ok($ctl_not_increasing, '>', 0,
	"control: the per-session check finds clock_timestamp() not strictly increasing ($ctl_not_increasing times)");

# --- phase 2: pgbench -------------------------------------------------------

$node->safe_psql(
	'postgres', q{
CREATE SEQUENCE ids;
CREATE TABLE log2 (id bigint PRIMARY KEY DEFAULT nextval('ids'),
                   client int NOT NULL, v event_stats.hlc NOT NULL);
CREATE TABLE ut2 (id bigint PRIMARY KEY DEFAULT nextval('ids'),
                  client int NOT NULL, u timestamptz NOT NULL);
});
my $pgbench_clients = 32;
my $per_client = 1500;
my $total = $pgbench_clients * $per_client;
my $bench = run_pgbench(
	$node,
	[
		"INSERT INTO log2 (client, v) VALUES (:client_id, event_stats.hlc_now());\n"
		  => 3,
		"INSERT INTO ut2 (client, u) VALUES (:client_id, event_stats.unique_timestamp());\n"
		  => 1
	],
	clients => $pgbench_clients,
	transactions => $per_client);
check_pgbench_clean($bench, 'pgbench hlc_now/unique_timestamp');
unlike($bench->{out} . $bench->{err}, qr/aborted/i, 'pgbench: no client aborted');

my ($rows_v, $rows_u, $distinct_v, $distinct_u, $clients_seen) = split /\|/,
  check_sql(
	q{
SELECT (SELECT count(*) FROM log2), (SELECT count(*) FROM ut2),
       (SELECT count(DISTINCT v::bigint) FROM log2),
       (SELECT count(DISTINCT usec(u)) FROM ut2),
       (SELECT count(DISTINCT client) FROM (SELECT client FROM log2
                                            UNION ALL SELECT client FROM ut2) x)});
is($rows_v + $rows_u, $total, "pgbench: $total rows, one per transaction");
cmp_ok($rows_u, '>', 0, 'pgbench: the unique_timestamp() script ran');
is($distinct_v, $rows_v, "pgbench: all $rows_v hlc_now() values distinct");
is($distinct_u, $rows_u, "pgbench: all $rows_u unique_timestamp() values distinct");
is($clients_seen, $pgbench_clients, "pgbench: all $pgbench_clients clients wrote");
is( check_sql(
		q{SELECT count(*) FROM log2 x JOIN ut2 y ON (x.v::bigint >> 12) = usec(y.u)}),
	0,
	'pgbench: no hlc_now() value has the physical part of a unique_timestamp() value');
is( check_sql(
		q{
SELECT count(p) || ' compared, ' || count(*) FILTER (WHERE r <= p) || ' not increasing'
  FROM (SELECT r, lag(r) OVER (PARTITION BY client ORDER BY id) AS p
          FROM (SELECT id, client, v::bigint AS r FROM log2
                UNION ALL
                SELECT id, client, usec(u) << 12 FROM ut2) a) x}),
	($total - $pgbench_clients) . ' compared, 0 not increasing',
	'pgbench: per client, hlc_now() and unique_timestamp() values together strictly increase');

$node->stop;
done_testing();
