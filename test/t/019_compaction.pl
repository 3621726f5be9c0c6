# Copyright: event_stats authors.  TAP test of event_stats.
#
# 019_compaction.pl -- the compaction workers fold cold shard rows into
# each counter's shard 0 without ever changing a value.
#
# One server with event_stats.compaction_naptime = 1 s, so that a row not
# written for a second or two is folded.  Every transaction that changes a
# counter also inserts, in the same transaction, one row per counter into
# the table ledger (counter name, delta), so in any snapshot each counter's
# value() must equal the sum of its ledger rows: check_exact reads both in
# one REPEATABLE READ transaction.
#
#   a. pgbench, 20 clients, rate-limited so that each client's rows of the
#      30 "warm" counters go cold between two writes and are folded while
#      the load goes on (and created again by the next write): commits,
#      rollbacks, rolled-back and released savepoints, and two-phase
#      commits ended by COMMIT PREPARED or ROLLBACK PREPARED.  Exact
#      afterwards; compaction deleted rows during the load; once the load
#      stops every counter is folded down to one row; amcheck is clean.
#   b. kill -9 of the postmaster and all its children during such a load,
#      once compaction has folded rows in it, with two prepared transactions
#      holding rows across the crash; after restart, and once the prepared
#      transactions are committed or rolled back: exact, folded down again,
#      amcheck clean.
#   c. two prepared transactions holding increments of a counter across
#      several compaction passes (each seen to fold a canary counter), then
#      COMMIT PREPARED and ROLLBACK PREPARED: exact all along.
#   d. dropped counters leave no shard row: drops racing the passes, a drop
#      held open across passes (committed, and rolled back).
#   e. event_stats.compaction = off (reload) stops folding, the launcher
#      stays; on again, folding resumes.
#   f. a database whose extension still has the 1.0 layout is left alone.
#   g. a database whose worker fails (a lock it cannot get) does not stop
#      compaction in the others.
#   h. with no background worker slot free, the launcher warns once, with
#      a hint about max_worker_processes.
# Also: the settings as pg_settings shows them, SET refused, and the
# workers as pg_stat_activity shows them.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

# the postmaster's children are found in /proc
plan skip_all => 'this test needs Linux /proc' unless -r '/proc/self/stat';

my $clients = 20;
my $warm = 30;    # counters w1 .. w30

my $node = event_stats_node(
	'compaction',
	max_connections => 80,
	max_prepared_transactions => 40,
	restart_after_crash => 'on',
	'event_stats.compaction_naptime' => '1s');

create_events_schema($node, 'postgres', amcheck => 1);
$node->safe_psql(
	'postgres', qq{
CREATE TABLE ledger (id bigserial PRIMARY KEY, counter text NOT NULL,
                     delta bigint NOT NULL);
SELECT event_stats.create_counter('hot');
SELECT event_stats.create_counter('four', 4);
SELECT event_stats.create_counter('single', 1);
SELECT count(event_stats.create_counter('w' || g)) FROM generate_series(1, $warm) g;
});

# --- helpers ------------------------------------------------------------------

# SQL that increments counter $c by $d and records it in the ledger, in one
# statement.
sub inc
{
	my ($c, $d) = @_;
	return "INSERT INTO ledger(counter, delta) "
	  . "SELECT '$c', $d FROM event_stats.increment('$c', $d);\n";
}

# One test: in one snapshot, every plain counter's value() equals the sum of
# its ledger rows.  Returns the number of ledger rows.
sub check_exact
{
	my ($what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $r = $node->safe_psql(
		'postgres', q{
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) || ' ' || count(*) FILTER (WHERE v IS DISTINCT FROM t) || ' '
       || coalesce(string_agg(format('%s:%s<>%s', name, v, t), ',')
                     FILTER (WHERE v IS DISTINCT FROM t), '-')
       || ' ' || (SELECT count(*) FROM ledger)
  FROM (SELECT c.name, event_stats.value(c.counter) AS v,
               coalesce((SELECT sum(delta) FROM ledger l WHERE l.counter = c.name), 0) AS t
          FROM event_stats.counters c WHERE c.tracks IS NULL) x;
COMMIT;
});
	my ($counters, $wrong, $list, $rows) = split / /, $r;
	is("$wrong $list", '0 -',
		"$what: value() of each of $counters counters = the sum of its ledger rows ($rows rows)"
	);
	return $rows;
}

# Shard rows: (all of them, the most any one counter has).
sub shard_rows
{
	return split / /,
	  $node->safe_psql(
		'postgres', q{
SELECT coalesce(sum(n), 0) || ' ' || coalesce(max(n), 0)
  FROM (SELECT count(*) AS n FROM event_stats.counter_shards GROUP BY counter_id) x});
}

# Rows deleted from the shard table so far, as the statistics say: only
# compaction and drop_counter() delete shard rows.  (A worker's counts reach
# the shared statistics when it exits, at the end of each pass.)
sub shard_rows_deleted
{
	return $node->safe_psql(
		'postgres', q{
SELECT n_tup_del FROM pg_stat_user_tables
 WHERE relid = 'event_stats.counter_shards'::regclass});
}

# Waits until no counter has more than one shard row (counter name $only:
# that one alone) and returns the shard rows left.
sub wait_folded
{
	my ($what, $only) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $filter =
	  defined $only
	  ? "WHERE counter_id = '$only'::event_stats.counter::integer"
	  : '';
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT coalesce(max(n), 0) <= 1
  FROM (SELECT count(*) AS n FROM event_stats.counter_shards $filter
         GROUP BY counter_id) x}),
		"$what: compaction folded "
		  . (defined $only ? "counter $only" : 'every counter')
		  . ' down to one shard row');
	return (shard_rows())[0];
}

# Rows of counter $c.
sub rows_of
{
	my ($c) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM event_stats.counter_shards
 WHERE counter_id = '$c'::event_stats.counter::integer});
}

# pgbench, $n clients, each incrementing every counter of @c once (so the
# counters get rows in as many shards as the clients have backend slots).
sub write_from_clients
{
	my ($n, @c) = @_;
	check_pgbench_clean(
		run_pgbench(
			$node, "BEGIN;\n" . join('', map { inc($_, 1) } @c) . "COMMIT;\n",
			clients => $n,
			transactions => 1),
		"$n clients write " . join(',', @c));
	return;
}

# The pgbench scripts of the loads, weights 5:1:2:1:1.  :k and :j pick warm
# counters, :d a delta; gid names are unique per client and transaction.
my $rr = 'BEGIN ISOLATION LEVEL REPEATABLE READ;';
my @scripts = (
	# commit
	"\\set k random(1, $warm)\n\\set d random(1, 9)\n$rr\n"
	  . inc('hot', 1)
	  . inc('w:k', ':d')
	  . inc('four', 1)
	  . "COMMIT;\n" => 5,
	# rollback
	"\\set k random(1, $warm)\n\\set d random(1, 9)\nBEGIN;\n"
	  . inc('hot', 1)
	  . inc('w:k', ':d')
	  . inc('single', 1)
	  . "ROLLBACK;\n" => 1,
	# savepoints: one rolled back, one released
	"\\set k random(1, $warm)\n\\set j random(1, $warm)\n\\set d random(1, 9)\n$rr\n"
	  . inc('hot', 1)
	  . "SAVEPOINT s;\n"
	  . inc('w:k', ':d')
	  . inc('single', 1)
	  . "ROLLBACK TO SAVEPOINT s;\n"
	  . inc('w:j', 1)
	  . "SAVEPOINT r;\n"
	  . inc('four', 2)
	  . "RELEASE SAVEPOINT r;\nCOMMIT;\n" => 2,
	# two-phase commit, committed
	"\\set k random(1, $warm)\n\\set d random(1, 9)\n\\set g random(1, 2000000000)\nBEGIN;\n"
	  . inc('hot', 1)
	  . inc('w:k', ':d')
	  . inc('single', 1)
	  . "PREPARE TRANSACTION 'c-:client_id-:g';\n"
	  . "COMMIT PREPARED 'c-:client_id-:g';\n" => 1,
	# two-phase commit, rolled back
	"\\set k random(1, $warm)\n\\set d random(1, 9)\n\\set g random(1, 2000000000)\nBEGIN;\n"
	  . inc('hot', 1)
	  . inc('w:k', ':d')
	  . "PREPARE TRANSACTION 'r-:client_id-:g';\n"
	  . "ROLLBACK PREPARED 'r-:client_id-:g';\n" => 1);

# --- the settings and the launcher -------------------------------------------

is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(format('%s=%s|%s|%s|%s|%s', name, setting, unit, context,
                         min_val, max_val), ',' ORDER BY name)
  FROM pg_settings WHERE name LIKE 'event_stats.compaction%'}),
	'event_stats.compaction=on||sighup||,'
	  . 'event_stats.compaction_naptime=1|s|sighup|1|86400',
	'settings: compaction on, naptime 1 s (1 s .. 1 day), both sighup');
my ($ret, $out, $err) = $node->psql('postgres',
	'SET event_stats.compaction_naptime = 5', extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/55P02/, 'SET of the naptime in a session is refused (55P02)');
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'event_stats compaction launcher'
   AND application_name = 'event_stats compaction' AND datname IS NULL}),
	'the launcher runs, connected to no database');

# --- a. a load with compaction running ----------------------------------------

my $del_before = shard_rows_deleted();
my $load = start_pgbench(
	$node, \@scripts,
	clients => $clients,
	transactions => 200,
	args => [ '-R', 300 ]);

# Catch the per-database worker at work: it lives for milliseconds a pass.
is( $node->safe_psql(
		'postgres', q{
CREATE FUNCTION pg_temp.catch_worker() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	FOR i IN 1 .. 20000 LOOP
		PERFORM pg_stat_clear_snapshot();
		SELECT format('%s|%s|%s', backend_type, application_name, datname) INTO r
		  FROM pg_stat_activity
		 WHERE backend_type = 'event_stats compaction' AND datname = 'postgres';
		IF r IS NOT NULL THEN
			RETURN r;
		END IF;
		PERFORM pg_sleep(0.003);
	END LOOP;
	RETURN 'not seen';
END $$;
SELECT pg_temp.catch_worker();}),
	'event_stats compaction|event_stats compaction|postgres',
	'pg_stat_activity shows the worker of database postgres as "event_stats compaction"');

check_pgbench_clean(finish_pgbench($load), 'a. load with compaction');
my $del_load = shard_rows_deleted() - $del_before;
cmp_ok($del_load, '>', 0,
	"a. compaction folded rows while the load ran ($del_load shard rows deleted)");
my ($rows_end) = shard_rows();
check_exact('a. right after the load');
my $rows_folded = wait_folded('a. after the load');
cmp_ok($rows_folded, '<', $rows_end,
	"a. shard rows dropped after the load: $rows_end -> $rows_folded");
my $ledger_a = check_exact('a. folded');
check_amcheck($node, 'postgres', 'a. folded', also => ['ledger'], parent => 1);

# --- b. kill -9 during load and compaction ------------------------------------

$del_before = shard_rows_deleted();
$load = start_pgbench(
	$node, \@scripts,
	clients => $clients,
	seconds => 120,
	args => [ '-R', 300 ]);
$node->poll_query_until('postgres',
	"SELECT count(*) >= $ledger_a + 1500 FROM ledger")
  or die 'the load did not get going';
ok( $node->poll_query_until(
		'postgres', qq{
SELECT n_tup_del > $del_before FROM pg_stat_user_tables
 WHERE relid = 'event_stats.counter_shards'::regclass}),
	'b. compaction folded rows during the load');
# two prepared transactions that hold shard rows across the crash
$node->safe_psql('postgres',
	"BEGIN;\n" . inc('hot', 7) . inc('w1', 7) . "PREPARE TRANSACTION 'crash_commit';");
$node->safe_psql('postgres',
	"BEGIN;\n" . inc('hot', 70) . inc('w2', 70) . "PREPARE TRANSACTION 'crash_rollback';");
my $killed = kill_postmaster_and_children($node);
ok($killed >= $clients, "b. kill -9 of the postmaster and its $killed children");
finish_pgbench($load);
isnt($load->{status}, 0, 'b. pgbench was cut short by the crash');
my $log_offset = -s $node->logfile;
$node->start;
ok( $node->log_contains(qr/database system was interrupted/, $log_offset)
	  && $node->log_contains(qr/redo starts at/, $log_offset),
	'b. the server ran crash recovery');

# The prepared transactions: crash_commit and crash_rollback, and those of
# pgbench that the crash caught between PREPARE and COMMIT / ROLLBACK
# PREPARED, which end as their scripts meant (c-...: commit, r-...: rollback).
my @gids = split /\n/,
  $node->safe_psql('postgres', 'SELECT gid FROM pg_prepared_xacts ORDER BY gid');
is(scalar(grep { /^crash_/ } @gids), 2, 'b. crash_commit and crash_rollback survived the crash');
note 'b. prepared transactions after the crash: ' . join(' ', @gids);
check_exact('b. after recovery, with ' . scalar(@gids) . ' transactions still prepared');
for my $gid (@gids)
{
	$node->safe_psql('postgres',
		($gid =~ /^(c-|crash_commit)/ ? 'COMMIT' : 'ROLLBACK') . " PREPARED '$gid'");
}
my $ledger_b = check_exact('b. after the prepared transactions ended');
cmp_ok($ledger_b, '>=', $ledger_a + 1500, 'b. the load committed before the crash');
wait_folded('b. after recovery');
check_exact('b. folded');
check_amcheck($node, 'postgres', 'b. folded', also => ['ledger'], parent => 1);

# --- c. prepared transactions holding increments across passes ----------------

$node->safe_psql('postgres',
	q{SELECT event_stats.create_counter('held'), event_stats.create_counter('canary')});
write_from_clients(8, 'held', 'canary');
$node->safe_psql('postgres',
	"BEGIN;\n" . inc('held', 1000) . "PREPARE TRANSACTION 'held_commit';");
$node->safe_psql('postgres',
	"BEGIN;\n" . inc('held', 100000) . "PREPARE TRANSACTION 'held_rollback';");
my $held = $node->safe_psql('postgres', q{SELECT event_stats.value('held')});
is($held, 8, 'c. value(held) = 8: the prepared increments do not count yet');
# Each round: the canary's rows are written from 8 sessions, then folded
# by a pass, which also met held's rows, two of them being written by the
# prepared transactions.
for my $round (1 .. 3)
{
	write_from_clients(8, 'canary') if $round > 1;
	wait_folded("c. pass $round with held prepared", 'canary');
	check_exact("c. pass $round with held prepared");
}
is($node->safe_psql('postgres', q{SELECT event_stats.value('held')}),
	8, 'c. value(held) is still 8 after three passes');
$node->safe_psql('postgres', q{COMMIT PREPARED 'held_commit'});
is($node->safe_psql('postgres', q{SELECT event_stats.value('held')}),
	1008, 'c. COMMIT PREPARED: value(held) = 1008');
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'held_rollback'});
is($node->safe_psql('postgres', q{SELECT event_stats.value('held')}),
	1008, 'c. ROLLBACK PREPARED: value(held) still 1008');
check_exact('c. after the prepared transactions ended');
wait_folded('c. after the prepared transactions ended', 'held');
check_exact('c. held folded');

# --- d. dropped counters leave no rows ----------------------------------------

$node->safe_psql('postgres',
	q{SELECT count(event_stats.create_counter('d' || g)) FROM generate_series(1, 10) g});
my $dropped_ids = $node->safe_psql(
	'postgres', q{
SELECT string_agg(counter::integer::text, ',') FROM event_stats.counters
 WHERE name ~ '^d[0-9]+$'});
write_from_clients(8, map { "d$_" } 1 .. 10);
# one drop every 0.3 s, while passes fold the others' rows
for my $i (1 .. 8)
{
	$node->safe_psql('postgres', "SELECT event_stats.drop_counter('d$i')");
	usleep(300_000);
}
# d9 dropped by a transaction held open across passes, d10 likewise but
# rolled back
my $s9 = $node->background_psql('postgres');
$s9->query_safe('BEGIN');
$s9->query_safe(q{SELECT event_stats.drop_counter('d9')});
my $s10 = $node->background_psql('postgres');
$s10->query_safe('BEGIN');
$s10->query_safe(q{SELECT event_stats.drop_counter('d10')});
sleep 3;
$s9->query_safe('COMMIT');
$s10->query_safe('ROLLBACK');
$s9->quit;
$s10->quit;
sleep 2;
is( $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM event_stats.counter_shards
 WHERE counter_id IN ($dropped_ids)
   AND counter_id <> 'd10'::event_stats.counter::integer}),
	0, 'd. the nine dropped counters have no shard row left');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM event_stats.counter_shards
 WHERE counter_id NOT IN (SELECT id FROM event_stats.counter_definitions)}),
	0, 'd. no shard row of any counter that does not exist');
is($node->safe_psql('postgres', q{SELECT event_stats.value('d10')}),
	8, 'd. d10, whose drop was rolled back, still counts 8');
wait_folded('d. d10', 'd10');
check_exact('d. after the drops');

# --- e. compaction = off ----------------------------------------------------

$node->safe_psql('postgres', 'ALTER SYSTEM SET event_stats.compaction = off');
$node->reload;
# a worker started before the reload finishes its pass
sleep 2;
$node->poll_query_until(
	'postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'event_stats compaction'})
  or die 'a compaction worker is still running';
$node->safe_psql('postgres', q{SELECT event_stats.create_counter('off')});
write_from_clients(8, 'off');
my $off_rows = rows_of('off');
cmp_ok($off_rows, '>', 1, "e. counter off has $off_rows shard rows");
my $del_off = shard_rows_deleted();
sleep 5;
is(rows_of('off'), $off_rows, 'e. five naptimes later with compaction off, still as many');
is(shard_rows_deleted(), $del_off, 'e. and no shard row was deleted meanwhile');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'event_stats compaction launcher'}),
	1, 'e. the launcher stays, idle');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET event_stats.compaction');
$node->reload;
wait_folded('e. compaction on again', 'off');
check_exact('e. after compaction on again');

# --- f. the 1.0 layout is left alone ---------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE old_layout');
$node->safe_psql('old_layout',
	q{CREATE EXTENSION event_stats VERSION '1.0'; SELECT event_stats.create_counter('c');});
check_pgbench_clean(
	run_pgbench(
		$node, "SELECT event_stats.increment('c');\n",
		clients => 8,
		transactions => 1,
		db => 'old_layout'),
	'f. 8 clients write counter c of database old_layout');
my $old_rows = $node->safe_psql('old_layout',
	'SELECT count(*) FROM event_stats.counter_shards');
cmp_ok($old_rows, '>', 1, "f. counter c has $old_rows shard rows");
sleep 4;
is($node->safe_psql('old_layout', 'SELECT count(*) FROM event_stats.counter_shards'),
	$old_rows, 'f. four naptimes later, with the 1.0 layout, still as many');
is($node->safe_psql('old_layout', q{SELECT event_stats.value('c')}),
	8, 'f. value(c) = 8');

# --- g. a database whose worker fails does not stop the others -------------

# In database locked, the shard table is locked by a transaction: its
# worker gives up there after its lock_timeout (1 s) at every pass, and the
# launcher goes on with the other databases.
$node->safe_psql('postgres', 'CREATE DATABASE locked');
$node->safe_psql('locked', 'CREATE EXTENSION event_stats');
my $locker = $node->background_psql('locked');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE event_stats.counter_shards IN ACCESS EXCLUSIVE MODE');
$log_offset = -s $node->logfile;
my $lock_timeout = qr/ERROR:  canceling statement due to lock timeout\n[^\n]*CONTEXT:  event_stats compaction of database "locked"/;
$node->wait_for_log($lock_timeout, $log_offset);
pass('g. the worker of database locked fails on its lock timeout');
$node->safe_psql('postgres', q{SELECT event_stats.create_counter('elsewhere')});
write_from_clients(8, 'elsewhere');
cmp_ok(rows_of('elsewhere'), '>', 1, 'g. counter elsewhere has more than one shard row');
$log_offset = -s $node->logfile;
wait_folded('g. with the worker of database locked failing', 'elsewhere');
ok($node->log_contains($lock_timeout, $log_offset), 'g. and it failed again meanwhile');
$locker->query_safe('COMMIT');
$locker->quit;
check_exact('g. after the lock');

# --- h. no free background worker slot ------------------------------------

# Two slots: the launcher's and the logical replication launcher's.
$node->append_conf('postgresql.conf', "max_worker_processes = 2\n");
$log_offset = -s $node->logfile;
$node->restart;
$node->wait_for_log(qr/event_stats compaction found no free background worker slot/,
	$log_offset);
sleep 3;
my @warnings =
  grep { /WARNING:  event_stats compaction found no free background worker slot/ }
  split /\n/, slurp_file($node->logfile, $log_offset);
is(scalar(@warnings), 1, 'h. no free worker slot: one warning in three naptimes');
ok( $node->log_contains(
		qr/HINT:  You might need to increase "max_worker_processes": event_stats needs two slots for compaction\./,
		$log_offset),
	'h. with a hint about max_worker_processes');
check_exact('h. without a worker slot');

$node->stop;
done_testing();
