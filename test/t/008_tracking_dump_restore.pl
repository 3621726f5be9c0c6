# Copyright: event_stats authors.  TAP test of event_stats.
#
# 008_tracking_dump_restore.pl -- tracked tables after pg_dump / pg_restore.
#
# A dump carries tracked_tables (table names) but not the tracking
# counters' state; restoring tracked_tables starts tracking again and counts
# the restored table, and rows restored later are counted by their own
# commits.  pg_restore loads table data in schema/name order (one job) or
# in any order (several jobs), so the source has tracked tables in schemas
# sorting before and after event_stats, a partitioned one, and a dump taken
# while pgbench inserts and deletes.  In every restored database each
# tracking counter must equal count(*), keep its name, and keep counting.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $node = event_stats_node('track_dump');

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
CREATE EXTENSION event_stats;
CREATE SCHEMA aaa;
CREATE SCHEMA zzz;
CREATE TABLE aaa.early (id bigserial PRIMARY KEY, payload text);
CREATE TABLE zzz.late (id bigserial PRIMARY KEY, payload text);
CREATE TABLE public.parts (id bigint NOT NULL, payload text) PARTITION BY RANGE (id);
CREATE TABLE public.parts_1 PARTITION OF public.parts FOR VALUES FROM (0) TO (1000);
CREATE TABLE public.parts_2 PARTITION OF public.parts FOR VALUES FROM (1000) TO (MAXVALUE);
INSERT INTO aaa.early (payload) SELECT 'x' FROM generate_series(1, 500);
INSERT INTO zzz.late (payload) SELECT 'x' FROM generate_series(1, 700);
INSERT INTO public.parts SELECT g, 'x' FROM generate_series(1, 1500) g;
SELECT event_stats.track('aaa.early');
SELECT event_stats.track('zzz.late', 'late_rows');
SELECT event_stats.track('public.parts');
SELECT event_stats.create_counter('manual');
SELECT event_stats.increment('manual', 42);
});

my $tmp = PostgreSQL::Test::Utils::tempdir;

# Inserts and deletes in all three tables while the dump runs; each client
# deletes its own rows (ids congruent to its number), so that the load
# itself has no serialization failures.
my $load = start_pgbench(
	$node, q{
\set k 1 + :client_id + 4 * random(0, 170)
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO aaa.early (payload) VALUES ('load');
INSERT INTO zzz.late (payload) VALUES ('load');
DELETE FROM zzz.late WHERE id = :k;
INSERT INTO public.parts VALUES (:k, 'load');
COMMIT;
},
	db => 'src',
	clients => 4,
	seconds => 6);
sleep 2;

my ($out, $err) = ('', '');
IPC::Run::run(
	[
		'pg_dump', '-Fd', '-f', "$tmp/dump",
		'-h', $node->host, '-p', $node->port, 'src'
	],
	'>', \$out, '2>', \$err);
is($? >> 8, 0, 'pg_dump under load: exit status 0');
is($err, '', 'pg_dump under load: nothing on stderr');
$load = finish_pgbench($load);
is($load->{status}, 0, 'load during the dump: pgbench exit status 0');
like($load->{out}, qr/^number of failed transactions: 0 \(/m,
	'load during the dump: no failed transaction');

my $check_sql = q{
SELECT name, tracks,
       event_stats.value(counter) = CASE tracks::text
         WHEN 'aaa.early' THEN (SELECT count(*) FROM aaa.early)
         WHEN 'zzz.late' THEN (SELECT count(*) FROM zzz.late)
         WHEN 'parts' THEN (SELECT count(*) FROM public.parts)
         ELSE 42 END AS exact
  FROM event_stats.counters ORDER BY name};
my $expected = join("\n",
	'aaa.early|aaa.early|t', 'late_rows|zzz.late|t',
	'manual||t', 'public.parts|parts|t');

is($node->safe_psql('src', $check_sql), $expected, 'source: every counter exact');

foreach my $jobs (1, 3)
{
	my $db = "restored_j$jobs";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	($out, $err) = ('', '');
	IPC::Run::run(
		[
			'pg_restore', '--exit-on-error', '-j', $jobs, '-d', $db,
			'-h', $node->host, '-p', $node->port, "$tmp/dump"
		],
		'>', \$out, '2>', \$err);
	is($? >> 8, 0, "pg_restore -j $jobs: exit status 0");
	is($err, '', "pg_restore -j $jobs: nothing on stderr");

	my $counts = $node->safe_psql($db, q{
SELECT (SELECT count(*) FROM aaa.early), (SELECT count(*) FROM zzz.late),
       (SELECT count(*) FROM public.parts)});
	note "restored with -j $jobs: early|late|parts = $counts";
	is($node->safe_psql($db, $check_sql), $expected,
		"restored with -j $jobs: every tracking counter equals count(*), names kept");

	# the restored tracking keeps counting, partitions and TRUNCATE included
	$node->safe_psql(
		$db, q{
INSERT INTO aaa.early (payload) VALUES ('after');
DELETE FROM zzz.late WHERE id IN (SELECT id FROM zzz.late LIMIT 10);
INSERT INTO public.parts VALUES (5, 'after'), (5000, 'after');
TRUNCATE public.parts_1;
});
	is($node->safe_psql($db, $check_sql), $expected,
		"restored with -j $jobs: still exact after more writes and a TRUNCATE");
}

done_testing();
