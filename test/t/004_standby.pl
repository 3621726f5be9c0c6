# Copyright: event_stats authors.  TAP test of event_stats.
#
# 004_standby.pl -- counters replicate to a streaming hot standby.
#
# The counter state is ordinary WAL-logged heap data, so once the standby
# has replayed the primary's WAL its value() and counters view must equal
# the primary's exactly, after single increments, set(), a dropped and a
# re-created counter, and a 32-client pgbench burst.  On the standby,
# value() and the view work; increment(), set(), create_counter() and
# drop_counter() fail as in any read-only transaction (SQLSTATE 25006).
# A standby session that has already resolved a counter name must see a
# drop and re-creation replayed from the primary (the definition caches are
# invalidated on the standby too).
#
# Then the primary fails (stopped in immediate mode) and the standby is
# promoted: compaction, off on the primary so that the shard rows of the
# burst are still there, starts on the promoted server once recovery is
# over, folds every counter into one row, and the values stay exact.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $clients = 32;

my $primary = event_stats_node(
	'primary',
	init => { allows_streaming => 1 },
	max_connections => 80,
	'event_stats.compaction' => 'off');

create_events_schema($primary, 'postgres');
$primary->safe_psql(
	'postgres', q{
SELECT event_stats.create_counter('events_total');
SELECT event_stats.create_counter('c4', 4);
SELECT event_stats.increment('events_total', 0);
});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
# max_connections must be at least the primary's on a hot standby; the
# library is preloaded here too
# (its postgresql.conf, copied from the primary's, turns compaction off)
event_stats_conf($standby, max_connections => 80,
	'event_stats.compaction' => 'on',
	'event_stats.compaction_naptime' => 1);
$standby->start;

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'standby is in recovery');

# count(*) of events, value() of events_total and of c4, in one snapshot
sub events_and_values
{
	my ($n) = @_;
	return $n->safe_psql(
		'postgres', q{
SELECT format('%s %s %s', count(*), event_stats.value('events_total'),
              event_stats.value('c4')) FROM events});
}

sub same_on_both
{
	my ($what) = @_;
	$primary->wait_for_catchup($standby);
	my $p = counters_view($primary, 'postgres');
	is(counters_view($standby, 'postgres'),
		$p, "$what: counters view on the standby equals the primary's");
	is(events_and_values($standby), events_and_values($primary),
		"$what: count(*) and value() on the standby equal the primary's");
	return $p;
}

same_on_both('empty counters');

# Single increments, a set(), a rolled-back increment.
$primary->safe_psql(
	'postgres', q{
INSERT INTO events(payload) VALUES ('one');
SELECT event_stats.increment('events_total');
SELECT event_stats.increment('c4', 1);
BEGIN;
SELECT event_stats.increment('events_total', 1000);
ROLLBACK;
SELECT event_stats.create_counter('c_set', 3);
SELECT event_stats.set('c_set', 424242);
SELECT event_stats.increment('c_set', -2);
});
my $view = same_on_both('single increments');
like($view, qr/^c_set\|\d+\|424240\|3$/m, 'c_set holds 424240 on both');
like($view, qr/^events_total\|\d+\|1\|\d+$/m, 'events_total holds 1 on both');

# A 32-client pgbench burst.
check_pgbench_clean(
	run_pgbench(
		$primary, commit_script('REPEATABLE READ', 'events_total'),
		clients => $clients,
		transactions => 200),
	'pgbench burst on the primary');

$view = same_on_both('after the pgbench burst');
like($view, qr/^events_total\|\d+\|6401\|\d+$/m, 'events_total is 6401 on both');
like($view, qr/^c4\|\d+\|1\|4$/m, 'c4 is 1, with 4 shards, on both');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM events'),
	6401, 'the standby has 6401 events');

# A standby session resolves 'c_set' now; the primary then drops it and
# creates a new counter of that name.  After replay the same standby
# session must resolve the name to the new counter.
my $session = $standby->background_psql('postgres');
my $old_id = $session->query_safe(q{SELECT 'c_set'::event_stats.counter::integer});
is( $session->query_safe(q{SELECT event_stats.value('c_set')}),
	'424240', 'standby session reads c_set');
$primary->safe_psql(
	'postgres', q{
SELECT event_stats.drop_counter('c_set');
SELECT event_stats.create_counter('c_set', 1);
SELECT event_stats.increment('c_set', 17);
});
$primary->wait_for_catchup($standby);
my $new_id = $primary->safe_psql('postgres',
	q{SELECT 'c_set'::event_stats.counter::integer});
isnt($new_id, $old_id, 'the re-created counter has a new id');
is($session->query_safe(q{SELECT 'c_set'::event_stats.counter::integer}),
	$new_id, 'the standby session resolves the name to the new counter');
is($session->query_safe(q{SELECT event_stats.value('c_set')}),
	'17', 'and reads its value');
$session->quit;
same_on_both('after drop and re-create');

# Read-only: every change is refused with SQLSTATE 25006, value() works.
for my $call (
	q{SELECT event_stats.increment('events_total')},
	q{SELECT event_stats.increment('events_total', 5)},
	q{SELECT event_stats.set('events_total', 0)},
	q{SELECT event_stats.create_counter('on_standby')},
	q{SELECT event_stats.drop_counter('c4')})
{
	my ($ret, $stdout, $stderr) = $standby->psql(
		'postgres', "\\set VERBOSITY verbose\n$call",
		on_error_stop => 1);
	isnt($ret, 0, "standby refuses: $call");
	like(
		$stderr,
		qr/ERROR:  25006: cannot execute .* in a read-only transaction/,
		"standby: $call fails with a read-only transaction error (25006)");
}

# An increment in a standby transaction leaves nothing behind: the
# transaction goes on (after a savepoint rollback) and value() is unchanged.
is( $standby->safe_psql(
		'postgres', q{
BEGIN;
SAVEPOINT a;
DO $$ BEGIN PERFORM event_stats.increment('events_total');
      EXCEPTION WHEN read_only_sql_transaction THEN NULL; END $$;
SELECT event_stats.value('events_total');
COMMIT;
}),
	'6401',
	'value() works on the standby, in the transaction of a refused increment too');

# The standby is still in step after all that.
$primary->safe_psql('postgres',
	q{INSERT INTO events(payload) VALUES ('last'); SELECT event_stats.increment('events_total');});
$view = same_on_both('after a last increment');
like($view, qr/^events_total\|\d+\|6402\|\d+$/m, 'events_total is 6402 on both');

# Failover: the primary dies, the standby is promoted.
my $rows_before = $standby->safe_psql('postgres',
	q{SELECT count(*) FROM event_stats.counter_shards
	   WHERE counter_id = 'events_total'::event_stats.counter::int});
cmp_ok($rows_before, '>', 1,
	"events_total has $rows_before shard rows before the failover");
$primary->stop('immediate');
$standby->promote;
ok( $standby->poll_query_until(
		'postgres', q{
	SELECT count(*) = count(DISTINCT counter_id) FROM event_stats.counter_shards}),
	'the promoted server compacts: one shard row per counter');
is( $standby->safe_psql(
		'postgres', q{
	SELECT format('%s %s', count(*), event_stats.value('events_total')) FROM events}),
	'6402 6402',
	'after promotion and compaction, events_total still equals count(*)');
$standby->safe_psql('postgres',
	q{INSERT INTO events(payload) VALUES ('promoted'); SELECT event_stats.increment('events_total');});
is( $standby->safe_psql(
		'postgres', q{
	SELECT format('%s %s', count(*), event_stats.value('events_total')) FROM events}),
	'6403 6403',
	'the promoted server takes increments');

$standby->stop;
done_testing();
