# Copyright: event_stats authors.  TAP test of event_stats.
#
# 002_crash_recovery.pl -- counters stay exact through crashes.
#
# Every pgbench transaction inserts one events row and increments the
# counter by one in the same transaction, so after any crash and recovery
# value() must equal count(*) of events exactly: both survive or both vanish.
#
# Three crashes under a 32-client pgbench load:
#   1. SIGKILL of the postmaster and every one of its children at once,
#      with two prepared transactions pending (p1 committed and p2 rolled
#      back after recovery, both with COMMIT/ROLLBACK PREPARED);
#   2. the same again, right after the first recovery;
#   3. SIGKILL of one backend, so that the postmaster itself resets the
#      shared state and runs crash recovery (restart_after_crash = on).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

# the postmaster's children are found in /proc
plan skip_all => 'this test needs Linux /proc' unless -r '/proc/self/stat';

my $clients = 32;

my $node = event_stats_node(
	'crash',
	max_connections => 80,
	max_prepared_transactions => 10,
	restart_after_crash => 'on');

create_events_schema($node, 'postgres', amcheck => 1);
$node->safe_psql('postgres',
	q{SELECT event_stats.create_counter('events_total')});

# pgbench scripts: one events row and one increment, committed; or an
# events row and a random increment, rolled back.
my $script = commit_script('REPEATABLE READ', 'events_total');
my $rollback_script = rollback_script('REPEATABLE READ', 'events_total');

sub events_and_value
{
	my $r = $node->safe_psql('postgres',
		q{SELECT count(*) || ' ' || event_stats.value('events_total') FROM events});
	return split / /, $r;
}

sub check_exact
{
	my ($what) = @_;
	my ($events, $value) = events_and_value();
	is($value, $events, "$what: value() = count(*) of events ($events)");
	is( $node->safe_psql(
			'postgres',
			q{SELECT sum(value) FROM event_stats.counter_shards s
			    JOIN event_stats.counter_definitions d ON d.id = s.counter_id
			   WHERE d.name = 'events_total'}),
		$events,
		"$what: shard rows add up to count(*) of events");
	is( $node->safe_psql(
			'postgres',
			q{SELECT count(*) FROM events WHERE payload = 'rolled back'}),
		0, "$what: no rolled-back row");
	# The extension maintains the shard table's index itself (heap_update,
	# then index entries for non-HOT versions): heap and index must agree
	# after WAL replay.  The parent check waits for a ShareLock, which the
	# row locks of a pending prepared transaction would never let it have.
	my $prepared =
	  $node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts');
	check_amcheck($node, 'postgres', $what,
		also => ['events'],
		parent => $prepared == 0);
	return $events;
}

# Starts a 32-client pgbench that would run for two minutes; it is meant to
# be cut short by a crash.
sub start_load
{
	return start_pgbench(
		$node,
		[ $script => 9, $rollback_script => 1 ],
		clients => $clients,
		seconds => 120);
}

# Waits until the load has committed at least $n more rows than $base.
sub wait_for_rows
{
	my ($base, $n) = @_;
	my $target = $base + $n;
	$node->poll_query_until('postgres',
		"SELECT count(*) >= $target FROM events")
	  or die "load did not reach $target rows";
	return;
}

# SIGKILL of the postmaster and all its children at the same moment, as
# close to a power cut as processes can get (kill_postmaster_and_children).
sub kill_everything
{
	my $kids = kill_postmaster_and_children($node);
	ok($kids >= $clients,
		'postmaster has at least one child per pgbench client when killed');
	return;
}

# Collects the cut-short pgbench: it must have lost its connections, not
# have finished on its own.
sub finish_load
{
	my ($load, $what) = @_;
	finish_pgbench($load);
	isnt($load->{status}, 0, "$what: pgbench was cut short by the crash");
	like(
		$load->{err},
		qr/backend died|server closed the connection|terminating connection|could not receive|connection to server/i,
		"$what: pgbench saw its connections lost");
	return;
}

# --- round 1: kill -9 everything, with prepared transactions pending -----

my ($base) = events_and_value();
my $load = start_load();
wait_for_rows($base, 2000);

$node->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO events(payload) VALUES ('prepared p1');
SELECT event_stats.increment('events_total');
PREPARE TRANSACTION 'p1';
BEGIN;
INSERT INTO events(payload) VALUES ('prepared p2');
SELECT event_stats.increment('events_total');
PREPARE TRANSACTION 'p2';
});
wait_for_rows($base, 4000);

kill_everything();
finish_load($load, 'round 1');
my $log_offset = -s $node->logfile;
$node->start;
ok( $node->log_contains(qr/database system was interrupted/, $log_offset)
	  && $node->log_contains(qr/redo starts at/, $log_offset),
	'round 1: the server ran crash recovery');

is( $node->safe_psql('postgres',
		'SELECT string_agg(gid, \',\' ORDER BY gid) FROM pg_prepared_xacts'),
	'p1,p2', 'round 1: both prepared transactions survived the crash');
my $after1 = check_exact('round 1, after recovery, p1 and p2 still prepared');
cmp_ok($after1, '>=', $base + 4000, 'round 1: the load committed rows before the crash');

# The prepared transactions hold the shard rows they wrote; a full load
# must still go through (to other shards) and stay exact.
check_pgbench_clean(
	run_pgbench($node, $script, clients => $clients, transactions => 50),
	'a load with p1 and p2 prepared');
my $before_2pc = check_exact('after a load with p1 and p2 prepared');
is($before_2pc, $after1 + 1600, 'that load added exactly 1600 rows');

$node->safe_psql('postgres', q{COMMIT PREPARED 'p1'});
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'p2'});
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
	0, 'no prepared transaction left');
my $after_2pc = check_exact('after COMMIT PREPARED p1, ROLLBACK PREPARED p2');
is($after_2pc, $before_2pc + 1, 'COMMIT PREPARED added exactly p1\'s row and increment');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(payload, ',') FROM events WHERE payload LIKE 'prepared%'}),
	'prepared p1',
	'p1\'s row is there, p2\'s is not');

# --- round 2: the same crash again --------------------------------------

($base) = events_and_value();
$load = start_load();
wait_for_rows($base, 4000);
kill_everything();
finish_load($load, 'round 2');
$log_offset = -s $node->logfile;
$node->start;
ok( $node->log_contains(qr/database system was interrupted/, $log_offset)
	  && $node->log_contains(qr/redo starts at/, $log_offset),
	'round 2: the server ran crash recovery');
my $after2 = check_exact('round 2, after recovery');
cmp_ok($after2, '>=', $base + 4000, 'round 2: the load committed rows before the crash');

# --- round 3: one backend killed, the postmaster recovers by itself -----

($base) = events_and_value();
$load = start_load();
wait_for_rows($base, 3000);
my $victim = $node->safe_psql(
	'postgres', q{
SELECT pid FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
   AND datname = 'postgres'
 LIMIT 1});
like($victim, qr/^\d+$/, 'round 3: found a pgbench backend');
kill 'KILL', $victim;
finish_load($load, 'round 3');
# the postmaster restarts on its own; wait until it accepts connections
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'server did not come back after a backend crash';
ok($node->log_contains('terminated by signal 9: Killed'),
	'round 3: the postmaster saw the backend killed');
ok($node->log_contains('all server processes terminated; reinitializing'),
	'round 3: the postmaster reinitialized and ran recovery');
my $after3 = check_exact('round 3, after recovery');
cmp_ok($after3, '>=', $base + 3000, 'round 3: the load committed rows before the crash');

# Counting goes on normally after all that.
$node->safe_psql(
	'postgres', q{
INSERT INTO events(payload) VALUES ('after');
SELECT event_stats.increment('events_total');
});
is(check_exact('after a last increment'), $after3 + 1, 'a last increment counts one');

# And a clean restart changes nothing.
$node->restart;
is(check_exact('after a clean restart'), $after3 + 1, 'a clean restart keeps the value');

$node->stop;
done_testing();
