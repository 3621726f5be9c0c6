# Copyright: event_stats authors.  TAP test of event_stats.
#
# 006_tracking_crash.pl -- tracked tables' counters stay equal to count(*)
# through crashes.
#
# A tracked table's counter is written by the same transaction that writes
# the rows (at PRE_COMMIT), so after any crash and recovery value() must
# equal count(*) exactly for every tracked table: the rows and their count
# both survive or both vanish.
#
# Tables: events, tags and pevents of EventStatsTest's tracking_tables_sql
# (plain, plain with a cascading foreign key, partitioned with three leaves
# on two levels), tracked before the load, and t3, t4, two plain tables.
#
# Round 1: a 32-client pgbench load (tracking_scripts: inserts, deletes,
# savepoints, partition-moving updates, MERGE, ON CONFLICT) is running when
# the postmaster and all its children are killed with SIGKILL at once.
# Four prepared transactions are pending across the crash:
#   p1  inserts into and deletes from events (cascading to tags) and
#       pevents                                      -> COMMIT PREPARED
#   p2  the same kind of changes                     -> ROLLBACK PREPARED
#   p3  track(t3) and then inserts and deletes in t3 -> COMMIT PREPARED
#   p4  TRUNCATE of the tracked t4, then inserts     -> COMMIT PREPARED
# After recovery (p1..p4 still prepared) every tracked table must be exact,
# a new load must run cleanly next to the prepared transactions and stay
# exact; after COMMIT / ROLLBACK PREPARED every table must be exact again,
# and p1..p4 must have changed the counts by exactly their rows.
#
# Round 2: under a new load, TRUNCATE events CASCADE and ATTACH PARTITION of
# a table holding rows to pevents, then SIGKILL of one backend, so that the
# postmaster itself resets and recovers; every tracked table exact again,
# and once more after a clean restart.

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
	'tracking_crash',
	max_connections => 80,
	max_prepared_transactions => 10,
	restart_after_crash => 'on');

$node->safe_psql(
	'postgres',
	"CREATE EXTENSION event_stats;\nCREATE EXTENSION amcheck;\n"
	  . tracking_tables_sql()
	  . tracking_prefill_sql() . q{
CREATE TABLE t3 (id int PRIMARY KEY);
INSERT INTO t3 SELECT generate_series(1, 100);
CREATE TABLE t4 (id int);
INSERT INTO t4 SELECT generate_series(1, 200);
SELECT event_stats.track('events');
SELECT event_stats.track('tags', 'tags_rows');
SELECT event_stats.track('pevents', 'pevents_rows');
SELECT event_stats.track('t4', 't4_rows');
});

my %counter = tracking_counters();

# Every table of %counter (and of %$more) exact, in one test each; returns
# the row counts by table.
sub check_all_exact
{
	my ($what, $more) = @_;
	my %all = (%counter, %{ $more // {} });
	my %rows;
	$rows{$_} = check_tracked_exact($node, 'postgres', $what, $_, $all{$_})
	  for sort keys %all;
	return \%rows;
}

# A pgbench load that would run for two minutes, to be cut short.
sub start_load
{
	return start_pgbench($node, tracking_scripts(),
		clients => $clients,
		seconds => 120);
}

# Collects the cut-short pgbench: it must have lost its connections.
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

my $start = check_all_exact('before the load', { t4 => 't4_rows' });

# --- round 1: kill -9 everything, with prepared transactions pending --------

# The server log up to a crash: no writer may have failed before it.
sub check_no_error_before_crash
{
	my ($what, $offset) = @_;
	my @errors = grep { /ERROR|FATAL|PANIC/ }
	  split /\n/, slurp_file($node->logfile, $offset);
	is(join("\n", @errors), '', "$what: no error in the server log before the crash");
	return;
}

my $base = events_id($node);
my $log_offset = -s $node->logfile;
my $load = start_load();
wait_for_events_id($node, $base + 3000);

# What p1 and p2 will delete: rows of client -1, which the load never touches.
my %p1_del = (
	events => $node->safe_psql('postgres',
		'SELECT count(*) FROM events WHERE client = -1 AND k < 10'),
	tags => $node->safe_psql('postgres',
		'SELECT count(*) FROM tags t JOIN events e ON e.id = t.event_id
		  WHERE e.client = -1 AND e.k < 10'),
	pevents => $node->safe_psql('postgres',
		'SELECT count(*) FROM pevents WHERE client = -1 AND k BETWEEN 10 AND 14'));
cmp_ok($p1_del{$_}, '>', 0, "p1 will delete $p1_del{$_} rows of $_") for sort keys %p1_del;

$node->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO events(client, k, payload)
  SELECT -3, g, 'p1' FROM generate_series(1, 5) g;
DELETE FROM events WHERE client = -1 AND k < 10;
INSERT INTO pevents(client, k, payload)
  SELECT -3, g * 13, 'p1' FROM generate_series(1, 7) g;
DELETE FROM pevents WHERE client = -1 AND k BETWEEN 10 AND 14;
PREPARE TRANSACTION 'p1';
BEGIN;
INSERT INTO events(client, k, payload)
  SELECT -4, g, 'p2' FROM generate_series(1, 11) g;
DELETE FROM events WHERE client = -1 AND k BETWEEN 20 AND 29;
DELETE FROM pevents WHERE client = -1 AND k BETWEEN 20 AND 24;
PREPARE TRANSACTION 'p2';
BEGIN;
SELECT event_stats.track('t3', 't3_rows');
INSERT INTO t3 SELECT generate_series(101, 110);
DELETE FROM t3 WHERE id <= 5;
PREPARE TRANSACTION 'p3';
BEGIN;
TRUNCATE t4;
INSERT INTO t4 SELECT generate_series(1, 17);
PREPARE TRANSACTION 'p4';
});
wait_for_events_id($node, events_id($node) + 3000);

my $killed = kill_postmaster_and_children($node);
cmp_ok($killed, '>=', $clients,
	"round 1: killed the postmaster and its $killed children under load");
finish_load($load, 'round 1');
check_no_error_before_crash('round 1', $log_offset);
$log_offset = -s $node->logfile;
$node->start;
ok( $node->log_contains(qr/database system was interrupted/, $log_offset)
	  && $node->log_contains(qr/redo starts at/, $log_offset),
	'round 1: the server ran crash recovery');

is( $node->safe_psql('postgres',
		q{SELECT string_agg(gid, ',' ORDER BY gid) FROM pg_prepared_xacts}),
	'p1,p2,p3,p4', 'round 1: the four prepared transactions survived the crash');
my $after1 = check_all_exact('round 1, after recovery, p1..p4 prepared');
cmp_ok($after1->{events}, '>', $start->{events},
	"round 1: events grew under the load ($start->{events} -> $after1->{events})");
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM event_stats.counters WHERE name = 't3_rows'}),
	0, 'the counter of prepared p3\'s track() does not exist yet');
is( $node->safe_psql('postgres', q{SELECT event_stats.value('t4_rows')}),
	200, 'p4\'s TRUNCATE is not counted yet: t4_rows is still 200');
check_amcheck($node, 'postgres', 'round 1, after recovery',
	also => [qw(events pevents_lo tags)]);

# A load next to the prepared transactions, which hold shard rows of the
# counters and row locks.
check_pgbench_clean(
	run_pgbench($node, tracking_scripts(), clients => $clients, transactions => 100),
	'a load after recovery, with p1..p4 prepared');
my $before_2pc = check_all_exact('after a load with p1..p4 prepared');

$node->safe_psql(
	'postgres', q{
COMMIT PREPARED 'p1';
ROLLBACK PREPARED 'p2';
COMMIT PREPARED 'p3';
COMMIT PREPARED 'p4';
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
	0, 'no prepared transaction left');
my $after_2pc = check_all_exact('after COMMIT PREPARED p1, p3, p4, ROLLBACK PREPARED p2',
	{ t3 => 't3_rows', t4 => 't4_rows' });
is( $after_2pc->{events} - $before_2pc->{events},
	5 - $p1_del{events},
	"p1 changed events by exactly 5 - $p1_del{events}");
is( $after_2pc->{tags} - $before_2pc->{tags},
	-$p1_del{tags},
	"p1 changed tags by exactly -$p1_del{tags} (cascade)");
is( $after_2pc->{pevents} - $before_2pc->{pevents},
	7 - $p1_del{pevents},
	"p1 changed pevents by exactly 7 - $p1_del{pevents}");
is($after_2pc->{t3}, 105, 't3: 100 rows at track(), +10 -5 by p3 = 105');
is($after_2pc->{t4}, 17, 't4: truncated and 17 rows inserted by p4 = 17');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM events WHERE payload = 'p2'}),
	0, 'p2\'s rows are gone');
check_amcheck($node, 'postgres', 'after the prepared transactions ended',
	also => [qw(events pevents_lo tags)],
	parent => 1);

%counter = (%counter, t3 => 't3_rows', t4 => 't4_rows');

# --- round 2: TRUNCATE and ATTACH under load, then one backend killed ------

$node->safe_psql(
	'postgres', q{
CREATE TABLE pevents_x (LIKE pevents INCLUDING DEFAULTS);
INSERT INTO pevents_x(client, k, payload)
  SELECT -5, 100 + g, 'attached' FROM generate_series(0, 49) g;
});
$base = events_id($node);
$log_offset = -s $node->logfile;
$load = start_load();
wait_for_events_id($node, $base + 2000);
$node->safe_psql('postgres', 'TRUNCATE events CASCADE');
wait_for_events_id($node, events_id($node) + 1000);
$node->safe_psql('postgres',
	'ALTER TABLE pevents ATTACH PARTITION pevents_x FOR VALUES FROM (100) TO (200)');
$node->safe_psql('postgres', 'INSERT INTO t3 SELECT generate_series(201, 230)');
wait_for_events_id($node, events_id($node) + 2000);

my $victim = $node->safe_psql(
	'postgres', q{
SELECT pid FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
   AND datname = 'postgres'
 LIMIT 1});
like($victim, qr/^\d+$/, 'round 2: found a pgbench backend');
check_no_error_before_crash('round 2, TRUNCATE and ATTACH under load', $log_offset);
$log_offset = -s $node->logfile;
kill 'KILL', $victim;
finish_load($load, 'round 2');
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'server did not come back after a backend crash';
ok($node->log_contains('all server processes terminated; reinitializing', $log_offset),
	'round 2: the postmaster reinitialized and ran recovery');
my $after2 = check_all_exact('round 2, after recovery');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pevents WHERE payload = 'attached'}),
	50, 'round 2: the attached partition\'s 50 rows are there');
is($after2->{t3}, 135, 't3: 105 + 30 = 135');
is( $node->safe_psql('postgres', q{SELECT count(*) FROM events WHERE client = -1}),
	0, 'round 2: TRUNCATE emptied the rows of client -1');
check_amcheck($node, 'postgres', 'round 2, after recovery',
	also => [qw(events pevents_lo tags)],
	parent => 1);

# Counting goes on after all that, and a clean restart changes nothing.
check_pgbench_clean(
	run_pgbench($node, tracking_scripts(), clients => $clients, transactions => 50),
	'a load after round 2');
my $last = check_all_exact('after a load after round 2');
$node->restart;
my $restarted = check_all_exact('after a clean restart');
is_deeply($restarted, $last, 'a clean restart keeps every count');

$node->stop;
done_testing();
