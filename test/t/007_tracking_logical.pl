# Copyright: event_stats authors.  TAP test of event_stats.
#
# 007_tracking_logical.pl -- tracked tables on a logical replication
# subscriber, written by the apply and table-sync workers, stay equal to
# count(*).
#
# A publisher (wal_level = logical) and a subscriber, both preloading
# event_stats, both with the tables of EventStatsTest's tracking_tables_sql
# (events, tags with a cascading foreign key to events, the partitioned
# pevents with three leaves on two levels) and a plain table items.  The
# publication has all of them; the subscription streams large transactions
# (streaming = on, logical_decoding_work_mem = 64kB on the publisher) and
# replicates prepared transactions (two_phase = on).
#
#   - events, tags and pevents are tracked on the subscriber before the
#     subscription exists: the table-sync workers' initial COPY must count;
#   - a pgbench load on the publisher (tracking_scripts: inserts, deletes,
#     savepoints, partition-moving updates, MERGE, ON CONFLICT; plus
#     upserts and deletes of items) is applied on the subscriber;
#   - items, synced untracked, is tracked on the subscriber while the apply
#     worker is writing it;
#   - mid-load, the publisher runs TRUNCATE events CASCADE between inserts
#     in one transaction, and TRUNCATE tags: the apply worker truncates
#     plain tracked tables;
#   - a large transaction (streamed, with a rolled-back savepoint) and a
#     prepared transaction (prepared on the subscriber by the apply worker,
#     then committed) on the publisher.
# After each catch-up, on the subscriber value() = count(*) for every
# tracked table, and count(*) equals the publisher's (which tracks the same
# tables and must be exact too); the subscriber's log has no error.
#
# Finally the documented refusal: a TRUNCATE of one partition, replicated
# to a subscriber where it is a leaf of a tracked partitioned table with
# other leaves, makes the apply worker fail with "cannot count the rows
# removed by truncating table" and count nothing; after untrack() on the
# subscriber the apply worker goes on, and track() again is exact.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $clients = 16;

my $pub = event_stats_node(
	'publisher',
	max_connections => 80,
	wal_level => 'logical',
	max_wal_senders => 10,
	max_replication_slots => 10,
	max_prepared_transactions => 10,
	logical_decoding_work_mem => '64kB');
my $sub = event_stats_node(
	'subscriber',
	max_connections => 80,
	max_prepared_transactions => 10,
	wal_retrieve_retry_interval => '200ms');

my $schema = "CREATE EXTENSION event_stats;\n"
  . tracking_tables_sql()
  . "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL);\n";
$pub->safe_psql('postgres',
	$schema . tracking_prefill_sql() . q{
INSERT INTO items SELECT g, 0 FROM generate_series(1, 500) g;
SELECT event_stats.track('events');
SELECT event_stats.track('tags', 'tags_rows');
SELECT event_stats.track('pevents', 'pevents_rows');
SELECT event_stats.track('items', 'items_rows');
CREATE PUBLICATION pub FOR TABLE events, tags, pevents, items;
});
$sub->safe_psql('postgres', $schema . q{
SELECT event_stats.track('events');
SELECT event_stats.track('tags', 'tags_rows');
SELECT event_stats.track('pevents', 'pevents_rows');
});

my %counter = tracking_counters();

# On the subscriber, after catch-up: every tracked table exact, with the
# publisher's row count; the publisher exact too.  Returns the counts.
sub check_subscriber
{
	my ($what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$pub->wait_for_catchup('sub');
	my %rows;
	for my $t (sort keys %counter)
	{
		my $p = check_tracked_exact($pub, 'postgres', "$what, publisher", $t,
			$counter{$t});
		$rows{$t} = check_tracked_exact($sub, 'postgres', "$what, subscriber",
			$t, $counter{$t});
		is($rows{$t}, $p, "$what: $t has $p rows on both");
	}
	return \%rows;
}

my $log_offset = -s $sub->logfile;

# --- initial sync into tracked tables ---------------------------------------

my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION sub CONNECTION '$connstr' PUBLICATION pub
	   WITH (streaming = on, two_phase = on)");
$sub->wait_for_subscription_sync($pub, 'sub');
my $synced = check_subscriber('after the initial sync');
is_deeply($synced, { events => 1000, tags => 333, pevents => 1285 },
	'the initial sync copied 1000, 333 and 1285 rows, and the counters have them');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM items'),
	500, 'items synced, untracked on the subscriber: 500 rows');

# --- a load on the publisher ----------------------------------------------------

my $items_scripts = [
	q{\set i random(1, 2000)
INSERT INTO items VALUES (:i, 0) ON CONFLICT (id) DO UPDATE SET v = items.v + 1;
} => 3,
	q{\set i random(1, 2000)
DELETE FROM items WHERE id BETWEEN :i AND :i + 2;
} => 1
];
my $base = events_id($pub);
my $load = start_pgbench($pub, [ @{ tracking_scripts() }, @$items_scripts ],
	clients => $clients,
	transactions => 800);

# TRUNCATE of plain tracked tables, applied by the apply worker.
wait_for_events_id($pub, $base + 5001);
$pub->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO events(client, k, payload)
  SELECT -3, g, 'before truncate' FROM generate_series(1, 3) g;
TRUNCATE events CASCADE;
INSERT INTO events(client, k, payload)
  SELECT -3, g % 100, 'after truncate' FROM generate_series(1, 50) g;
INSERT INTO tags(event_id, client)
  SELECT id, -3 FROM events WHERE client = -3 AND k < 10;
COMMIT;
});
wait_for_events_id($pub, $base + 10001);
$pub->safe_psql('postgres', 'TRUNCATE tags');
my $tags_truncated = events_id($pub);

# items is tracked on the subscriber while the apply worker writes it.
$sub->poll_query_until('postgres', 'SELECT count(*) > 700 FROM items')
  or die 'items did not grow on the subscriber';
is( $sub->safe_psql('postgres',
		q{SELECT event_stats.track('items', 'items_rows')}),
	'items_rows', 'track(items) on the subscriber under apply');
my $items_at_track = $sub->safe_psql('postgres', 'SELECT count(*) FROM items');
$counter{items} = 'items_rows';

finish_pgbench($load);
check_pgbench_clean($load, 'the publisher\'s load');
my $after_load = check_subscriber('after the load');
isnt($sub->safe_psql('postgres', 'SELECT count(*) FROM items'),
	$items_at_track, 'the apply worker changed items after track()');
is( $sub->safe_psql('postgres',
		q{SELECT count(*) FROM events WHERE payload = 'before truncate'}),
	0, 'the subscriber applied the TRUNCATE');
cmp_ok($sub->safe_psql('postgres', q{SELECT count(*) FROM events WHERE client >= 0}),
	'>', 0, 'and the load\'s events rows after it');
cmp_ok($sub->safe_psql('postgres', 'SELECT count(*) FROM tags'),
	'>', 0, 'and the load\'s tags rows after the TRUNCATE of tags');
cmp_ok(events_id($pub),
	'>', $tags_truncated + 1000, 'the load went on after the TRUNCATE of tags');

# --- a large streamed transaction, and a prepared one ---------------------

$pub->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO events(client, k, payload)
  SELECT -4, g % 100, 'large' FROM generate_series(1, 5000) g;
SAVEPOINT s;
INSERT INTO pevents(client, k, payload)
  SELECT -4, g % 100, 'rolled back' FROM generate_series(1, 3000) g;
DELETE FROM events WHERE client = -4 AND k < 50;
ROLLBACK TO SAVEPOINT s;
INSERT INTO pevents(client, k, payload)
  SELECT -4, g % 100, 'large' FROM generate_series(1, 4000) g;
DELETE FROM pevents WHERE client = -4 AND k >= 90;
COMMIT;
});
my $large = check_subscriber('after a large streamed transaction');
is($large->{events} - $after_load->{events}, 5000,
	'the large transaction added 5000 events rows on the subscriber');
is($large->{pevents} - $after_load->{pevents}, 3600,
	'and 4000 - 400 pevents rows');
ok( $pub->poll_query_until(
		'postgres',
		q{SELECT stream_txns > 0 FROM pg_stat_replication_slots WHERE slot_name = 'sub'}),
	'the publisher streamed the large transaction before its commit');

$pub->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO events(client, k, payload)
  SELECT -5, g, 'prepared' FROM generate_series(1, 20) g;
DELETE FROM pevents WHERE client = -4 AND k < 10;
INSERT INTO items SELECT g, 0 FROM generate_series(100001, 100009) g;
PREPARE TRANSACTION 'p1';
});
$pub->wait_for_catchup('sub');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
	1, 'the subscriber prepared the publisher\'s prepared transaction');
my $prepared = check_subscriber('with a prepared transaction on both');
is_deeply($prepared, $large, 'a prepared transaction changes no count yet');
$pub->safe_psql('postgres', q{COMMIT PREPARED 'p1'});
my $committed = check_subscriber('after COMMIT PREPARED');
is($committed->{events} - $large->{events}, 20,
	'COMMIT PREPARED added 20 events rows on the subscriber');
is($committed->{pevents} - $large->{pevents}, -400,
	'and deleted 400 pevents rows');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
	0, 'no prepared transaction left on the subscriber');

my @errors = grep { /ERROR|FATAL|PANIC/ }
  split /\n/, slurp_file($sub->logfile, $log_offset);
is(join("\n", @errors), '', 'no error in the subscriber\'s log');

# --- TRUNCATE of a partition of a tracked partitioned table --------------

$log_offset = -s $sub->logfile;
my $lo = $pub->safe_psql('postgres', 'SELECT count(*) FROM pevents_lo');
cmp_ok($lo, '>', 0, "pevents_lo has $lo rows");
$pub->safe_psql('postgres', 'TRUNCATE pevents_lo');
$sub->wait_for_log(
	qr/ERROR:  cannot count the rows removed by truncating table "pevents_lo"/,
	$log_offset);
pass('the apply worker refuses the TRUNCATE of pevents_lo, a leaf of tracked pevents');
check_tracked_exact($sub, 'postgres', 'after the refused TRUNCATE', 'pevents',
	'pevents_rows');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM pevents_lo'),
	$lo, "pevents_lo still has its $lo rows on the subscriber");
$sub->safe_psql('postgres', q{SELECT event_stats.untrack('pevents')});
delete $counter{pevents};
$pub->wait_for_catchup('sub');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM pevents_lo'),
	0, 'after untrack(pevents) the apply worker truncated pevents_lo');
is( $sub->safe_psql('postgres',
		q{SELECT event_stats.track('pevents', 'pevents_again')}),
	'pevents_again', 'track(pevents) again on the subscriber');
$pub->safe_psql('postgres', q{SELECT event_stats.untrack('pevents');
SELECT event_stats.track('pevents', 'pevents_again');
INSERT INTO pevents(client, k, payload)
  SELECT -6, g % 100, 'last' FROM generate_series(1, 77) g;
});
$counter{pevents} = 'pevents_again';
check_subscriber('after tracking pevents again');

$sub->stop;
$pub->stop;
done_testing();
