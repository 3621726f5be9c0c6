# Copyright: event_stats authors.  TAP test of event_stats.
#
# 017_logical_all_tables.pl -- the usual migration recipe, a schema-only
# dump restored on the subscriber and a subscription to a publication FOR
# ALL TABLES, which also carries event_stats' own state tables.  Each server
# keeps its own state: the subscriber's tracked table equals its count(*)
# (the publisher's shard rows are not added to it), track() works there
# ("already tracked" before), the publisher's counters and tracking rows do
# not appear on the subscriber, and a replicated TRUNCATE of a state table
# is refused with a clear error.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $pub = event_stats_node('publisher',
	wal_level => 'logical',
	max_wal_senders => 10,
	max_replication_slots => 10);
my $sub = event_stats_node('subscriber', wal_retrieve_retry_interval => '200ms');

$pub->safe_psql('postgres', q{
CREATE EXTENSION event_stats;
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE TABLE u (id int PRIMARY KEY);
INSERT INTO t SELECT g, 'x' FROM generate_series(1, 100) g;
INSERT INTO u SELECT generate_series(1, 10);
SELECT event_stats.track('t');
SELECT event_stats.track('u');
SELECT event_stats.create_counter('pub_only');
SELECT event_stats.increment('pub_only', 42);
CREATE PUBLICATION everything FOR ALL TABLES;
});

# the schema-only dump, restored on the subscriber
my $dump = PostgreSQL::Test::Utils::tempdir() . '/schema.sql';
command_ok(
	[ 'pg_dump', '--schema-only', '-d', $pub->connstr('postgres'), '-f', $dump ],
	'schema-only dump of the publisher');
$sub->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres', '-f', $dump ],
	'restored on the subscriber');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM event_stats.tracked_tables'),
	'0', 'a schema-only dump carries no tracking');
# the subscriber tracks t itself, before the subscription
is($sub->safe_psql('postgres', q{SELECT event_stats.track('t')}),
	'public.t', 'track(t) on the subscriber');

my $log_offset = -s $sub->logfile;
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION everything CONNECTION '$connstr' PUBLICATION everything");
$sub->wait_for_subscription_sync($pub, 'everything');

# then writes on the publisher, including to its counters
$pub->safe_psql('postgres', q{
INSERT INTO t SELECT g, 'y' FROM generate_series(101, 180) g;
DELETE FROM t WHERE id % 6 = 0;
SELECT event_stats.increment('pub_only', 8);
INSERT INTO u SELECT generate_series(11, 15);
});
$pub->wait_for_catchup('everything');

my $exact = q{SELECT event_stats.value('public.t') || ' ' || count(*) FROM t};
my $pub_t = $pub->safe_psql('postgres', $exact);
is($pub_t, '150 150', 'publisher: t tracked, exact');
is($sub->safe_psql('postgres', $exact), '150 150',
	'subscriber: t equals its count(*), nothing of the publisher\'s shards added');
is( $sub->safe_psql(
		'postgres',
		q{SELECT string_agg(name, ',' ORDER BY name) FROM event_stats.counters}),
	'public.t',
	'subscriber: only its own counter, none of the publisher\'s');
is($sub->safe_psql('postgres', q{SELECT event_stats.track('u')}),
	'public.u', 'subscriber: track(u) works (the publisher\'s tracking row was not applied)');
$pub->safe_psql('postgres', 'DELETE FROM u WHERE id <= 3');
$pub->wait_for_catchup('everything');
is($sub->safe_psql('postgres', q{SELECT event_stats.value('public.u') || ' ' || count(*) FROM u}),
	'12 12', 'subscriber: u tracked there, exact after more applied changes');
is($pub->safe_psql('postgres', q{SELECT event_stats.value('pub_only')}),
	'50', 'the publisher\'s own counter is untouched');

# a replicated TRUNCATE of a state table is refused, with the reason
$pub->safe_psql('postgres', 'TRUNCATE event_stats.tracked_tables');
$sub->wait_for_log(qr/cannot apply a replicated TRUNCATE of "event_stats.tracked_tables"/,
	$log_offset);
pass('the subscriber refuses a replicated TRUNCATE of a state table');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM event_stats.tracked_tables'),
	'2', 'its own tracking rows are still there');

my $log = slurp_file($sub->logfile, $log_offset);
unlike($log, qr/terminated by signal|already tracked|XX000/,
	'no crash, no internal error, no "already tracked" on the subscriber');

$sub->safe_psql('postgres', 'DROP SUBSCRIPTION everything');
$sub->stop;
$pub->stop;
done_testing();
