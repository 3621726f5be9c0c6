# Copyright: event_stats authors.  TAP test of event_stats.
#
# 022_space_after_churn.pl -- the state tables shrink back to what their
# live rows need after counters come and go.
#
# Churn: 10,000 counters are created; 64 pgbench clients increment random
# ones among them (each backend creates its own shard row of every counter
# it writes, so the shard table grows to many rows per counter); then
# 9,000 of them are dropped.  Once the compaction worker has folded every
# surviving counter into its base row, and a plain VACUUM has run, each
# state table (heap) must be within 2x of the size the same live rows take
# when loaded afresh into a table of the same definition, and every value
# must still be exact (each committed transaction also inserted one ledger
# row per increment).  Index sizes are reported: a plain VACUUM makes index
# pages reusable but does not give them back to the file system.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $counters = 10_000;
my $kept = 1_000;
my $clients = 64;

my $node = event_stats_node(
	'churn',
	max_connections => 100,
	'event_stats.compaction_naptime' => 1,
	autovacuum => 'off');
create_events_schema($node, 'postgres');
$node->safe_psql(
	'postgres', qq{
	CREATE TABLE ledger (n int NOT NULL, delta int NOT NULL);
	SELECT count(event_stats.create_counter('c' || g))
	  FROM generate_series(1, $counters) g;});

my $run = start_pgbench(
	$node, q{
\set n random(1, } . $counters . q{)
\set d random(1, 5)
BEGIN;
SELECT event_stats.increment(('c' || :n)::event_stats.counter, :d);
INSERT INTO ledger VALUES (:n, :d);
COMMIT;
},
	clients => $clients,
	transactions => 400);
finish_pgbench($run);
check_pgbench_clean($run, 'churn');

my $peak = $node->safe_psql('postgres',
	'SELECT count(*) FROM event_stats.counter_shards');
cmp_ok($peak, '>', 2 * $kept, "the churn wrote many shard rows ($peak)");

drop_counters_in_batches($node, 'postgres', 'c', $kept + 1, $counters);

# The worker folds rows not written for a naptime into base rows on the
# first pages, and moves base rows left far out down: wait until every row
# is a base row and none lies beyond twice the pages the same rows take
# loaded afresh.  (Counters the churn never hit have no row.)
my $settled = 0;
for (my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	!$settled && time < $deadline; sleep 1)
{
	$settled = $node->safe_psql(
		'postgres', q{
	CREATE TEMP TABLE fresh (LIKE event_stats.counter_shards) WITH (fillfactor = 50);
	INSERT INTO fresh SELECT * FROM event_stats.counter_shards;
	SELECT bool_and(shard = 0)
	       AND max((ctid::text::point)[0]) < 2 * pg_relation_size('fresh') / 8192
	  FROM event_stats.counter_shards}) eq 't';
}
ok($settled, 'compaction folded every counter into a base row on the first pages');

note 'before VACUUM: ' . $node->safe_psql('postgres', q{
	SELECT format('%s pages, live rows on pages %s .. %s, shard 0 rows %s',
	              pg_relation_size('event_stats.counter_shards') / 8192,
	              min((ctid::text::point)[0]), max((ctid::text::point)[0]),
	              count(*) FILTER (WHERE shard = 0))
	  FROM event_stats.counter_shards});
$node->safe_psql('postgres',
	'VACUUM event_stats.counter_shards, event_stats.counter_definitions');

is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) FROM event_stats.counters c
	  FULL JOIN (SELECT 'c' || n AS name, sum(delta) AS total
	               FROM ledger GROUP BY n) l USING (name)
	 WHERE c.value IS DISTINCT FROM coalesce(l.total, 0)
	   AND (c.name IS NOT NULL OR substr(l.name, 2)::int <= } . $kept . q{)}),
	'0',
	'every kept counter equals its ledger');

# the same live rows loaded afresh, into tables of the same definition
for my $table ('counter_shards', 'counter_definitions')
{
	my $options = $node->safe_psql('postgres',
		qq{SELECT coalesce(array_to_string(reloptions, ', '), '')
		     FROM pg_class WHERE oid = 'event_stats.$table'::regclass});
	$options = "WITH ($options)" if $options ne '';
	my ($live, $fresh, $index, $fresh_index) = split /\|/,
	  $node->safe_psql(
		'postgres', qq{
	CREATE TEMP TABLE fresh (LIKE event_stats.$table INCLUDING INDEXES)
	  $options;
	INSERT INTO fresh SELECT * FROM event_stats.$table;
	SELECT pg_relation_size('event_stats.$table'), pg_relation_size('fresh'),
	       pg_indexes_size('event_stats.$table'), pg_indexes_size('fresh');});
	note "$table: heap $live bytes (fresh copy $fresh), indexes $index (fresh copy $fresh_index)";
	cmp_ok($live, '<=', 2 * $fresh,
		"$table: heap within 2x of its live rows loaded afresh ($live vs $fresh bytes)");
}

$node->stop;
done_testing();
