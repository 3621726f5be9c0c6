# Copyright: event_stats authors.  TAP test of event_stats.
#
# 021_many_counters.pl -- 100,000 counters created, incremented and read.
#
# A counter costs one definition row until something is written to it, and
# then one shard row per backend that wrote it; counters are meant to be
# kept by the hundred thousand.  This creates 100,000 counters in one
# statement, increments every one of them from four sessions at once (each
# committing all 100,000 in one transaction, so each commit creates 100,000
# shard rows), then again (updates of the rows now there), and checks:
#   - every value is exactly what the sessions added, read through the
#     counters view and through value() alike;
#   - each counter has one shard row per session that wrote it, and a
#     counter nobody wrote has none;
#   - dropping half of them leaves no row of a dropped counter behind, and
#     the others keep their values (a commit creating rows for 100,000
#     counters holds no lock per counter; a drop holds its counter's locks
#     to its end, as DROP TABLE does, so they are dropped in batches);
#   - amcheck finds the state tables and their indexes sound.
# No timing is asserted here; test/bench_storage.sh measures the costs.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $n = 100_000;
my $sessions = 4;

# compaction would fold the rows this test counts: off here, tested in 019
my $node = event_stats_node('many', 'event_stats.compaction' => 'off');
create_events_schema($node, 'postgres', amcheck => 1);

is( $node->safe_psql(
		'postgres', qq{
	SELECT count(event_stats.create_counter('m' || g))
	  FROM generate_series(1, $n) g}),
	$n,
	"$n counters created in one statement");
is( $node->safe_psql('postgres',
		'SELECT count(*) FROM event_stats.counter_shards'),
	'0', 'created counters have no shard rows');

# Session s adds s to every odd counter and 10 * s to every even one; the
# last counter is left alone.  Two rounds: the first creates the rows, the
# second updates them.
my $increment_all = sub {
	my ($s) = @_;
	return qq{
	BEGIN;
	SELECT count(event_stats.increment(('m' || g)::event_stats.counter,
	                                   CASE WHEN g % 2 = 1 THEN $s ELSE 10 * $s END))
	  FROM generate_series(1, $n - 1) g;
	COMMIT;};
};
for my $round (1, 2)
{
	my @running =
	  map { start_psql_script($node, 'postgres', $increment_all->($_)) }
	  1 .. $sessions;
	is(join(',', map { finish_command($_)->{status} } @running),
		join(',', (0) x $sessions),
		"round $round: $sessions sessions committed $n counters each");
}

# per session s: 2 rounds * s (odd) or 2 rounds * 10 * s (even)
my $sum = 0;
$sum += $_ for 1 .. $sessions;
my ($odd, $even) = (2 * $sum, 20 * $sum);

is( $node->safe_psql(
		'postgres', qq{
	SELECT count(*) FILTER (WHERE value IS DISTINCT FROM
	           CASE WHEN substr(name, 2)::int = $n THEN 0
	                WHEN substr(name, 2)::int % 2 = 1 THEN $odd ELSE $even END)
	  FROM event_stats.counters}),
	'0',
	'every value in the counters view is exact');
is( $node->safe_psql(
		'postgres', qq{
	SELECT count(*) FILTER (WHERE event_stats.value(('m' || g)::event_stats.counter)
	           <> CASE WHEN g = $n THEN 0 WHEN g % 2 = 1 THEN $odd ELSE $even END)
	  FROM generate_series(1, $n) g}),
	'0',
	'every value() is exact');
is( $node->safe_psql(
		'postgres', qq{
	SELECT count(*) FILTER (WHERE rows <> CASE WHEN name = 'm$n' THEN 0 ELSE $sessions END)
	  FROM (SELECT d.name, count(s.shard) AS rows
	          FROM event_stats.counter_definitions d
	          LEFT JOIN event_stats.counter_shards s ON s.counter_id = d.id
	         GROUP BY d.name) c}),
	'0',
	"one shard row per writing session, none for the counter nobody wrote");

$node->safe_psql(
	'postgres', qq{
	CREATE TABLE dropped AS
	SELECT ('m' || g)::event_stats.counter::int AS id
	  FROM generate_series(1, $n, 2) g;});
drop_counters_in_batches($node, 'postgres', 'm', 1, $n, 2);
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) FROM event_stats.counter_shards
	 WHERE counter_id IN (SELECT id FROM dropped)}),
	'0',
	'dropped counters leave no shard rows');
is( $node->safe_psql(
		'postgres', qq{
	SELECT count(*), count(*) FILTER (WHERE value IS DISTINCT FROM
	           CASE WHEN name = 'm$n' THEN 0 ELSE $even END)
	  FROM event_stats.counters}),
	($n / 2) . '|0',
	'the counters kept keep their values');

check_amcheck($node, 'postgres', 'after 100,000 counters');

$node->stop;
done_testing();
