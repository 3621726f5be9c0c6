# Copyright: event_stats authors.  TAP test of event_stats.
#
# 003_dump_restore.pl -- pg_dump / pg_restore bring counters back exactly.
#
# The counter state lives in extension configuration tables (and the id
# sequence is marked for dumping too), so a dump must carry definitions,
# shard values and the id sequence:
#   - a dump of a quiet database, restored into a new database on the same
#     server and into a database on a second server (with fewer
#     max_connections, hence a smaller default shard count), must show the
#     counters view (name, id, value, shards) exactly as it was;
#   - a dump taken while pgbench is incrementing must be consistent: in the
#     restored database each counter equals count(*) of the restored events,
#     since the dump reads everything in one snapshot;
#   - restored counters keep counting (pgbench on the restored database
#     stays exact), and create_counter() in the restored database gets a
#     fresh id: the one the source would give next, above every id ever
#     used, including that of a dropped counter.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

# Compaction off on both servers: the restore must give back exactly the
# shard rows the source had when it was dumped, and folding on either side
# would change them between the dump and the comparison.
my $node = event_stats_node(
	'dump_src',
	max_connections => 80,
	'event_stats.compaction' => 'off');
# (with the server's default shared_buffers)
my $node2 = event_stats_node(
	'dump_dst',
	max_connections => 40,
	shared_buffers => undef,
	'event_stats.compaction' => 'off');

$node->safe_psql('postgres', 'CREATE DATABASE src');
create_events_schema($node, 'src');
$node->safe_psql(
	'src', q{
SELECT event_stats.create_counter('c_default');
SELECT event_stats.create_counter('c4', shards => 4);
SELECT event_stats.create_counter('c_gone');
SELECT event_stats.create_counter('c_set', 2);
SELECT event_stats.create_counter('c_negative', 1);
});
my $gone_id = $node->safe_psql('src',
	q{SELECT 'c_gone'::event_stats.counter::integer});
$node->safe_psql('src', q{SELECT event_stats.drop_counter('c_gone')});

# Increments from 4 concurrent pgbench clients: one events row and one unit
# on c_default and c4 per transaction.
my $load_script = commit_script('REPEATABLE READ', qw(c_default c4));

check_pgbench_clean(
	run_pgbench(
		$node, $load_script,
		db => 'src',
		clients => 4,
		transactions => 400),
	'source load');

# A few more sessions, with other deltas, set() and negative increments.
$node->safe_psql(
	'src', q{
SELECT event_stats.set('c_set', 1000000);
BEGIN;
SELECT event_stats.increment('c_set', 5);
SELECT event_stats.increment('c_negative', -7);
COMMIT;
BEGIN;
SELECT event_stats.increment('c_set', 1000);
ROLLBACK;
});
$node->safe_psql('src', q{SELECT event_stats.increment('c_negative', -35)});

my $events = $node->safe_psql('src', 'SELECT count(*) FROM events');
is($events, 1600, 'source: 1600 events');

my $source_view = counters_view($node, 'src');
my ($id_default, $id_4, $id_set, $id_neg) = split /\n/,
  $node->safe_psql(
	'src', q{
SELECT 'c_default'::event_stats.counter::integer;
SELECT 'c4'::event_stats.counter::integer;
SELECT 'c_set'::event_stats.counter::integer;
SELECT 'c_negative'::event_stats.counter::integer;
});
my $default_shards = $node->safe_psql('src',
	q{SELECT shards FROM event_stats.counters WHERE name = 'c_default'});
is( $source_view,
	join("\n",
		"c4|$id_4|1600|4",
		"c_default|$id_default|1600|$default_shards",
		"c_negative|$id_neg|-42|1",
		"c_set|$id_set|1000005|2"),
	'source counters view holds the expected values');
cmp_ok($default_shards, '>=', 80, 'source: default shard count covers max_connections');

# Shard rows exist only where written: each counter has between one row and
# its shard count.  The restore must give back exactly these rows.
my $shard_rows_sql = q{
SELECT string_agg(format('%s:%s:%s', d.name, s.shard, s.value), ','
                  ORDER BY d.name, s.shard)
  FROM event_stats.counter_definitions d
  JOIN event_stats.counter_shards s ON s.counter_id = d.id};
my $source_shards = $node->safe_psql('src', $shard_rows_sql);
is( $node->safe_psql(
		'src',
		q{SELECT bool_and(n BETWEEN 1 AND shards) AND count(*) = 4
		    FROM (SELECT d.shards, count(*) AS n
		            FROM event_stats.counter_definitions d
		            JOIN event_stats.counter_shards s ON s.counter_id = d.id
		           GROUP BY d.id) x}),
	't',
	'source: every counter has rows for the shards written, at most its shard count');

# --- dump of the quiet database ------------------------------------------

my $tmp = PostgreSQL::Test::Utils::tempdir;

sub run_ok
{
	my ($cmd, $what) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run($cmd, '>', \$out, '2>', \$err);
	my $status = $? >> 8;
	is($status, 0, "$what: exit status 0");
	is($err, '', "$what: nothing on stderr");
	return $out;
}

run_ok(
	[
		'pg_dump', '-Fc', '-f', "$tmp/quiet.dump",
		'-h', $node->host, '-p', $node->port, 'src'
	],
	'pg_dump -Fc of the quiet database');

# What the dump carries for the extension: the rows of both tables and the
# sequence position.
my $listing = run_ok([ 'pg_restore', '-l', "$tmp/quiet.dump" ],
	'pg_restore -l');
like($listing, qr/TABLE DATA event_stats counter_definitions/,
	'dump has the rows of counter_definitions');
like($listing, qr/TABLE DATA event_stats counter_shards/,
	'dump has the rows of counter_shards');
like($listing, qr/SEQUENCE SET event_stats counter_definitions_id_seq/,
	'dump has the position of the id sequence');

sub restore_into
{
	my ($n, $db, $dump, $what) = @_;
	$n->safe_psql('postgres', "CREATE DATABASE $db");
	run_ok(
		[
			'pg_restore', '--exit-on-error', '-d', $db,
			'-h', $n->host, '-p', $n->port, $dump
		],
		"pg_restore into $what");
	return;
}

restore_into($node, 'restored', "$tmp/quiet.dump", 'a new database');
restore_into($node2, 'restored', "$tmp/quiet.dump", 'a second server');

for my $target ([ $node, 'same server' ], [ $node2, 'second server' ])
{
	my ($n, $what) = @$target;

	is(counters_view($n, 'restored'),
		$source_view, "$what: counters view (names, ids, values, shards) restored exactly");
	is($n->safe_psql('restored', 'SELECT count(*) FROM events'),
		$events, "$what: events restored");
	is( $n->safe_psql(
			'restored', q{
SELECT 'c_default'::event_stats.counter::integer || ',' ||
       'c4'::event_stats.counter::integer}),
		"$id_default,$id_4",
		"$what: names resolve to the same handles");
	is($n->safe_psql('restored', $shard_rows_sql),
		$source_shards,
		"$what: every shard row restored, none extra");
	is( $n->safe_psql(
			'restored',
			q{SELECT count(*) FROM event_stats.counter_shards
			   WHERE counter_id NOT IN (SELECT id FROM event_stats.counter_definitions)}),
		0,
		"$what: no shard row of the dropped counter");

	# Restored counters keep counting, exactly, under concurrent load.
	check_pgbench_clean(
		run_pgbench(
			$n, $load_script,
			db => 'restored',
			clients => 4,
			transactions => 100),
		"$what: load on the restored database");
	$n->safe_psql(
		'restored', q{
SELECT event_stats.increment('c_set', 10);
SELECT event_stats.increment('c_negative', -8);
});
	is( $n->safe_psql(
			'restored', q{
SELECT format('%s %s %s %s %s', count(*), event_stats.value('c_default'),
              event_stats.value('c4'), event_stats.value('c_set'),
              event_stats.value('c_negative')) FROM events}),
		'2000 2000 2000 1000015 -50',
		"$what: restored counters count on exactly");

	# A new counter gets the next id of the restored sequence: the one the
	# source would hand out, above every id ever used (the dropped one too).
	my $new_id = $n->safe_psql('restored',
		q{SELECT event_stats.create_counter('c_new')::integer});
	is($new_id, $gone_id + 3,
		"$what: create_counter gets the next id of the restored sequence");
	is( $n->safe_psql(
			'restored',
			q{SELECT count(*) FROM event_stats.counter_definitions WHERE id = }
			  . $new_id),
		1,
		"$what: the new id collides with no other counter");
	$n->safe_psql('restored', q{SELECT event_stats.increment('c_new', 3)});
	is( $n->safe_psql(
			'restored', q{
SELECT format('%s %s', event_stats.value('c_new'), event_stats.value('c_default'))}),
		'3 2000',
		"$what: the new counter counts on its own");
}

# The source, asked for a new counter now, hands out the same id.
is( $node->safe_psql('src',
		q{SELECT event_stats.create_counter('c_new')::integer}),
	$gone_id + 3,
	'the source hands out that same id next');
$node->safe_psql('src', q{SELECT event_stats.drop_counter('c_new')});

# --- dump taken while pgbench increments -----------------------------------

my $bg = start_pgbench(
	$node, $load_script,
	db => 'src',
	clients => 8,
	seconds => 60);
$node->poll_query_until('src', 'SELECT count(*) >= 2600 FROM events')
  or die 'load did not start';
run_ok(
	[
		'pg_dump', '-Fc', '-f', "$tmp/busy.dump",
		'-h', $node->host, '-p', $node->port, 'src'
	],
	'pg_dump -Fc during the load');
my $after_dump = $node->safe_psql('src', 'SELECT count(*) FROM events');
finish_pgbench($bg, kill => 1);
$node->poll_query_until(
	'src', q{
SELECT count(*) = 0 FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()})
  or die 'pgbench backends did not go away';

# The source itself counted the load exactly (if not, a mismatch in the
# restored database below is the counting's fault, not the dump's).
# count(*) of events, value() of c_default and of c4, in one snapshot
sub events_and_values
{
	my ($db) = @_;
	return split / /,
	  $node->safe_psql(
		$db, q{
SELECT format('%s %s %s', count(*), event_stats.value('c_default'), event_stats.value('c4'))
  FROM events});
}

my ($s_events, $s_default, $s_4) = events_and_values('src');
is($s_default, $s_events, 'source after the busy load: value(c_default) = count(*) of events');
is($s_4, $s_events, 'source after the busy load: value(c4) = count(*) of events');

restore_into($node, 'restored_busy', "$tmp/busy.dump", 'a new database, busy dump');
my ($b_events, $b_default, $b_4) = events_and_values('restored_busy');
cmp_ok($b_events, '>=', 2600, 'busy dump: taken after the load had started');
cmp_ok($b_events, '<=', $after_dump, 'busy dump: not after it stopped');
is($b_default, $b_events, 'busy dump: value(c_default) = count(*) of restored events');
is($b_4, $b_events, 'busy dump: value(c4) = count(*) of restored events');

$node->stop;
$node2->stop;
done_testing();
