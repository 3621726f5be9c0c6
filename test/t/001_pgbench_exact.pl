# Copyright: event_stats authors.  TAP test of event_stats.
#
# 001_pgbench_exact.pl -- exactness of sharded counters under a concurrent
# pgbench load, at REPEATABLE READ, SERIALIZABLE and READ COMMITTED.
#
# 32 pgbench clients run three scripts mixed together (weights 6:2:2):
#   commit    one events row + increment by one, COMMIT
#   rollback  one events row + increment by a random delta, ROLLBACK
#   savepoint one events row + increment by one kept; a savepoint with
#             another row and an increment by a random delta, rolled back;
#             a released savepoint with a row and an increment by one;
#             COMMIT
# Every committed events row goes with exactly one unit on each counter, so
# in every phase each counter must grow by exactly as much as count(*) of
# events, which must itself grow by what pgbench's per-transaction log
# predicts (commit: 1 row, rollback: 0, savepoint: 2).  pgbench must report
# every transaction processed, none failed (a serialization failure or a
# deadlock would be counted as failed) and no client aborted.
#
# Every transaction increments three counters:
#   events_total  default shard count (one per possible backend): each
#                 backend writes its own shard row, nobody else's;
#   events_4      4 shards for 32 clients: commits find shards busy and
#                 move on to the next, or wait when all are busy;
#   events_1      1 shard: every commit writes the same row, one after the
#                 other (the README: "a commit whose every shard is busy
#                 waits for its own preferred row (it never fails)").

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $clients = 32;
my @counters = qw(events_1 events_4 events_total);

# Compaction off: the checks below count shard rows (one per shard written,
# at least one per client), which folding cold rows into shard 0 would
# change between two phases; test/t/019_compaction.pl runs this kind of load
# with compaction on.
my $node = event_stats_node(
	'pgbench_exact',
	max_connections => 80,
	'event_stats.compaction' => 'off');

create_events_schema($node, 'postgres', amcheck => 1);
$node->safe_psql(
	'postgres', q{
SELECT event_stats.create_counter('events_total');
SELECT event_stats.create_counter('events_4', 4);
SELECT event_stats.create_counter('events_1', 1);
});

# The default shard count is one per possible backend (MaxBackends), so at
# least the 80 connections.
my $default_shards = $node->safe_psql('postgres',
	q{SELECT shards FROM event_stats.counters WHERE name = 'events_total'});
cmp_ok($default_shards, '>=', 80, 'default shard count covers max_connections');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(name || ':' || shards || ':' || value, ',' ORDER BY name)
		    FROM event_stats.counters}),
	"events_1:1:0,events_4:4:0,events_total:$default_shards:0",
	'counters start at zero');

# count(*) of events and the value of every counter, in one snapshot
sub snapshot_values
{
	my $sql = 'SELECT concat_ws(\' \', count(*), '
	  . join(', ', map { "event_stats.value('$_')" } @counters)
	  . ') FROM events';
	my @v = split / /, $node->safe_psql('postgres', $sql);
	my %r = (events => shift @v);
	@r{@counters} = @v;
	return \%r;
}

# Runs pgbench with the three scripts at one isolation level.  Returns the
# finished run (see EventStatsTest's finish_pgbench) and the transactions
# per script and in all, read from pgbench's per-transaction logs.
my $phase_no = 0;

sub run_phase
{
	my ($level, $per_client) = @_;
	$phase_no++;

	my $one = increment_calls('', @counters);
	my $random = increment_calls(', :d', @counters);
	my $savepoint = qq{\\set d random(1, 1000)
BEGIN ISOLATION LEVEL $level;
INSERT INTO events(payload) VALUES ('x');
${one}SAVEPOINT s1;
INSERT INTO events(payload) VALUES ('rolled back to savepoint');
${random}ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
INSERT INTO events(payload) VALUES ('released savepoint');
${one}RELEASE SAVEPOINT s2;
COMMIT;
};

	# -l writes one line per transaction to a log file per thread:
	# "client_id transaction_no time script_no time_epoch time_us".
	# Script numbers in it: 0 commit, 1 rollback, 2 savepoint.
	my $log_prefix = $node->basedir . "/phase${phase_no}_log";
	my $run = run_pgbench(
		$node,
		[
			commit_script($level, @counters) => 6,
			rollback_script($level, @counters) => 2,
			$savepoint => 2
		],
		clients => $clients,
		transactions => $per_client,
		args => [ '-l', "--log-prefix=$log_prefix" ]);

	# Transactions per script, from the per-thread logs.  (pgbench's own
	# per-script summary is not used: with -j > 1 its threads add to those
	# shared totals without a lock, and it was seen to lose a transaction.)
	my @per_script = (0, 0, 0);
	my $logged = 0;
	for my $log (glob("$log_prefix.*"))
	{
		for my $line (split /\n/, slurp_file($log))
		{
			my @f = split / /, $line;
			die "unexpected pgbench log line \"$line\""
			  unless @f >= 6 && $f[3] =~ /^[012]$/;
			$per_script[ $f[3] ]++;
			$logged++;
		}
	}
	return ($run, \@per_script, $logged);
}

sub check_phase
{
	my ($level, $per_client) = @_;
	my $total = $clients * $per_client;
	my $before = snapshot_values();
	my ($run, $per_script, $logged) = run_phase($level, $per_client);
	my $after = snapshot_values();

	check_pgbench_clean($run, $level);
	unlike($run->{out} . $run->{err}, qr/aborted/i, "$level: no client aborted");
	unlike($run->{err}, qr/error/i, "$level: no error on stderr");
	is($logged, $total, "$level: pgbench logged all $total transactions");
	my %n;
	@n{qw(commit rollback savepoint)} = @$per_script;
	cmp_ok($n{$_}, '>', 0, "$level: script $_ ran")
	  for qw(commit rollback savepoint);

	my $rows = $after->{events} - $before->{events};
	is($rows, $n{commit} + 2 * $n{savepoint},
		"$level: new events rows = committed rows per pgbench's log");
	for my $c (@counters)
	{
		is($after->{$c} - $before->{$c},
			$rows, "$level: $c grew by exactly the $rows new events rows");
	}
	return;
}

check_phase('REPEATABLE READ', 1200);
check_phase('SERIALIZABLE', 300);
check_phase('READ COMMITTED', 300);

# The totals, through value(), the view and the shard rows themselves.
my $final = snapshot_values();
my $events = $final->{events};
is($final->{$_}, $events, "$_ = count(*) of events ($events)") for @counters;
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(name || '=' || value, ',' ORDER BY name)
		    FROM event_stats.counters}),
	"events_1=$events,events_4=$events,events_total=$events",
	'counters view agrees');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM events
		   WHERE payload NOT IN ('x', 'released savepoint')}),
	0,
	'no rolled-back row survived');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(format('%s:%s:%s', name,
		                           CASE WHEN n = shards THEN 'all'
		                                WHEN n < shards THEN 'some'
		                                ELSE 'too many' END,
		                           total), ',' ORDER BY name)
		    FROM (SELECT d.name, d.shards, count(*) AS n, sum(s.value) AS total
		            FROM event_stats.counter_definitions d
		            JOIN event_stats.counter_shards s ON s.counter_id = d.id
		           GROUP BY d.name, d.shards) x}),
	"events_1:all:$events,events_4:all:$events,events_total:some:$events",
	'shard rows sum to count(*) of events, rows only for the shards written');

# With the default shard count each backend prefers its own shard: the 32
# clients' increments were spread over at least 32 rows.
cmp_ok(
	$node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM event_stats.counter_shards s
		    JOIN event_stats.counter_definitions d ON d.id = s.counter_id
		   WHERE d.name = 'events_total' AND s.value <> 0}),
	'>=', $clients,
	'increments landed in one shard per client');

# The extension maintains the shard table's index itself (heap_update, then
# index entries for versions that are not heap-only): amcheck must find
# every heap tuple indexed and the heap sound.
check_amcheck($node, 'postgres', 'after the three phases', parent => 1);

# Control: the same kind of load with a one-row counter (what event_stats
# replaces) does produce serialization failures at REPEATABLE READ, and the
# failed-transaction check above would have seen them.
$node->safe_psql('postgres',
	'CREATE TABLE one_row (total bigint NOT NULL); INSERT INTO one_row VALUES (0);');
my $control = run_pgbench(
	$node, q{BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO events(payload) VALUES ('control');
UPDATE one_row SET total = total + 1;
COMMIT;
},
	clients => $clients,
	transactions => 20);
like($control->{out}, qr/^number of failed transactions: [1-9]\d* \(/m,
	'control: a one-row counter at REPEATABLE READ makes pgbench report failed transactions');

$node->stop;
done_testing();
