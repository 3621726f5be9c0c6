# Copyright: event_stats authors.  TAP test of event_stats.
#
# 005_tracking_load.pl -- a tracked table's counter equals its count(*)
# under a concurrent load, in every snapshot, from track()'s commit on.
#
# The tables of EventStatsTest's tracking_tables_sql, all three tracked:
#   events   a plain table (unique column ukey for ON CONFLICT), counter
#            public.events (track()'s default name);
#   tags     a plain table, foreign key to events ON DELETE CASCADE, filled
#            through a data-modifying CTE, emptied by cascades: tags_rows;
#   pevents  a partitioned table with three leaves on two levels:
#            pevents_rows.
# All hold rows before they are tracked, and the load starts before track()
# and goes on through it:
#   - 32 pgbench clients running tracking_scripts (REPEATABLE READ: one-row
#     and multi-row INSERT, DELETE of a few of the client's rows, rolled-back
#     savepoints, UPDATE moving rows between partitions, MERGE; READ
#     COMMITTED: ON CONFLICT DO UPDATE and ON CONFLICT DO NOTHING on keys
#     contended by every client, where only rows actually inserted count,
#     also when a speculative insertion loses to a concurrent one).  No
#     script can fail for PostgreSQL's own reasons;
#   - two psql sessions running real COPY ... FROM STDIN into events and
#     pevents, in REPEATABLE READ transactions, every fifth rolled back;
#   - one session whose DO block commits one transaction per iteration
#     (inserts, a subtransaction with inserts and deletes that it rolls
#     back, deletes), writing before track() and after.
# Checked: pgbench processed every transaction and none failed; every
# session ended cleanly; every writer committed rows before and after
# track(); value() = count(*) in single-statement snapshots polled during
# the load, in a REPEATABLE READ snapshot opened mid-run (read twice,
# identical), and at the end; COPY rows exact; no rolled-back row survived.
# The looping session also compares value() with count(*) inside its own
# writing transactions (own rows included).
# Then, under a second load: untrack(pevents), track(pevents) again;
# ATTACH, DETACH, TRUNCATE and DROP of a partition holding rows, TRUNCATE
# of a partition the load writes, each followed by a check; and
# untrack(events) + track(events) in one transaction.  The new counters
# must be exact and no writer may fail.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $clients = 32;

my $node = event_stats_node('tracking_load', max_connections => 80);

$node->safe_psql('postgres',
	"CREATE EXTENSION event_stats;\n" . tracking_tables_sql() . tracking_prefill_sql()
	  . "CREATE TABLE stop_flag (stop boolean);\n");

my %counter = tracking_counters();

# --- the load ---------------------------------------------------------------

my $scripts = tracking_scripts();

# COPY FROM STDIN sessions: 30 transactions of 150 + 60 rows, every fifth
# rolled back, 0.1 s apart.  Returns the script and the rows it commits
# into each table.
sub copy_script
{
	my ($client) = @_;
	my ($sql, $events, $pevents) = ('', 0, 0);
	for my $round (1 .. 30)
	{
		my $commit = $round % 5 ? 'COMMIT' : 'ROLLBACK';
		$sql .= "BEGIN ISOLATION LEVEL REPEATABLE READ;\n"
		  . "COPY events(client, k, payload) FROM STDIN;\n"
		  . join('', map { "$client\t" . (($round + $_) % 100) . "\tcopy\n" } 1 .. 150)
		  . "\\.\n"
		  . "COPY pevents(client, k, payload) FROM STDIN;\n"
		  . join('', map { "$client\t" . (($round * 7 + $_) % 100) . "\tcopy\n" } 1 .. 60)
		  . "\\.\n"
		  . "$commit;\nDO \$\$ BEGIN PERFORM pg_sleep(0.1); END \$\$;\n";
		if ($commit eq 'COMMIT')
		{
			$events += 150;
			$pevents += 60;
		}
	}
	return ($sql, $events, $pevents);
}

# The session that writes before and through track(): one transaction per
# iteration until stop_flag has a row.
my $loop_sql = q{
SET default_transaction_isolation = 'repeatable read';
DO $$
DECLARE
  i int := 0;
  tracked boolean;
  n bigint;
  v bigint;
  pn bigint;
  pv bigint;
  checks int := 0;
  mismatches int := 0;
  first_mismatch text;
BEGIN
  WHILE NOT EXISTS (SELECT 1 FROM stop_flag) LOOP
    i := i + 1;
    tracked := (SELECT count(*) = 2 FROM event_stats.counters
                 WHERE name IN ('public.events', 'pevents_rows'));
    INSERT INTO events(client, k, payload) VALUES (1001, i % 100, 'loop');
    INSERT INTO pevents(client, k, payload) VALUES (1001, i % 100, 'loop');
    BEGIN
      INSERT INTO events(client, k, payload)
        SELECT 1001, g, 'rolled back' FROM generate_series(0, 9) g;
      DELETE FROM pevents WHERE client = 1001;
      RAISE EXCEPTION 'roll back';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
    IF i % 4 = 0 THEN
      DELETE FROM events
       WHERE id = (SELECT max(id) FROM events WHERE client = 1001);
      DELETE FROM pevents
       WHERE id = (SELECT max(id) FROM pevents WHERE client = 1001);
    END IF;
    -- value() in the writing transaction's own snapshot, own rows included
    IF tracked THEN
      SELECT count(*), event_stats.value('public.events'::text::event_stats.counter)
        INTO n, v FROM events;
      SELECT count(*), event_stats.value('pevents_rows'::text::event_stats.counter)
        INTO pn, pv FROM pevents;
      checks := checks + 1;
      IF n <> v OR pn <> pv THEN
        mismatches := mismatches + 1;
        first_mismatch := coalesce(first_mismatch,
          format('iteration %s: events count(*) %s, value %s; pevents count(*) %s, value %s',
                 i, n, v, pn, pv));
      END IF;
    END IF;
    COMMIT;
    PERFORM pg_sleep(0.005);
  END LOOP;
  RAISE NOTICE 'loop transactions: %', i;
  RAISE NOTICE 'own-snapshot checks: %, mismatches: % (%)', checks, mismatches,
    coalesce(first_mismatch, 'none');
END $$;
};

my $base = events_id($node);
my $loop = start_psql_script($node, 'postgres', $loop_sql);
my (@copies, @copy_rows);
for my $i (0, 1)
{
	my ($sql, $e, $p) = copy_script(2000 + $i);
	push @copies, start_psql_script($node, 'postgres', $sql);
	push @copy_rows, [ $e, $p ];
}
my $load = start_pgbench($node, $scripts,
	clients => $clients,
	transactions => 1000);

# --- track() in the middle of it -------------------------------------------

wait_for_events_id($node, $base + 3000);
my $untracked_rows = $node->safe_psql('postgres', 'SELECT count(*) FROM events');
# (ids up to here were taken by transactions that hold a lock track() waits
# for: they committed before track())
my $before_track = events_id($node);
is( $node->safe_psql('postgres', q{SELECT event_stats.track('events')}),
	'public.events', 'track(events) under load: counter public.events');
is( $node->safe_psql('postgres',
		q{SELECT event_stats.track('pevents', 'pevents_rows')}),
	'pevents_rows', 'track(pevents) under load: counter pevents_rows');
is( $node->safe_psql('postgres',
		q{SELECT event_stats.track('tags', 'tags_rows')}),
	'tags_rows', 'track(tags) under load: counter tags_rows');
my $after_track = events_id($node);
note "events had $untracked_rows rows shortly before track(); ids after track: > $after_track";

# Which writers had committed rows before track(), read at once: the load
# goes on deleting its own rows, and by its end may have deleted every early
# row of a writer.
my @writers = (
	[ 'pgbench clients', 'client BETWEEN 0 AND 31' ],
	[ 'the looping session', 'client = 1001' ],
	[ 'COPY session 0', 'client = 2000' ],
	[ 'COPY session 1', 'client = 2001' ]);
my %wrote_before;
for my $w (@writers)
{
	my ($what, $cond) = @$w;
	$wrote_before{$what} = $node->safe_psql(
		'postgres', qq{
SELECT (count(*) > 0)::text
  FROM (SELECT id FROM events WHERE $cond AND id <= $before_track
        UNION ALL SELECT id FROM pevents WHERE $cond AND id <= $before_track) x});
}

is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(name || ':' || tracks, ',' ORDER BY name)
		    FROM event_stats.counters}),
	'pevents_rows:pevents,public.events:events,tags_rows:tags',
	'the counters view shows the three tracked tables');

# A REPEATABLE READ snapshot opened now, read again later.
my $rr_session = $node->background_psql('postgres');
$rr_session->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $rr_sql = 'SELECT concat_ws(\' \', '
  . join(', ',
	map { "(SELECT count(*) FROM $_), event_stats.value('$counter{$_}')" }
	  sort keys %counter)
  . ')';
my $rr_first = $rr_session->query_safe($rr_sql);
my %rr_rows;

# Single-statement snapshots polled while the load runs (for 3 s at most):
# the three tables in one statement, one psql a poll, and a short pause.
# (One psql per table and a 100 ms pause made polls so slow that a fast
# run's load ended after two of them, failing the check below by chance.)
my ($polls, @mismatches) = (0);
my $poll_start = time;
while (time - $poll_start < 3)
{
	my @rv = split / /, $node->safe_psql('postgres', $rr_sql);
	for my $t (sort keys %counter)
	{
		my ($rows, $value) = splice(@rv, 0, 2);
		push @mismatches, "$t: count(*) $rows, value $value" if $rows != $value;
	}
	$polls++;
	$load->{h}->pump_nb;
	last unless $load->{h}->pumpable;
	usleep(10_000);
}
my $rr_second = $rr_session->query_safe($rr_sql);
$rr_session->query_safe('COMMIT');
$rr_session->quit;

is(join('; ', @mismatches), '',
	"value() = count(*) of the three tables in all $polls snapshots polled during the load");
cmp_ok($polls, '>=', 3, "polled at least 3 times during the load ($polls)");
my @rr = split / /, $rr_first;
for my $t (sort keys %counter)
{
	my ($rows, $value) = splice(@rr, 0, 2);
	is($value, $rows,
		"REPEATABLE READ snapshot mid-run: value($counter{$t}) = $value, count(*) of $t = $rows");
	$rr_rows{$t} = $rows;
}
is($rr_second, $rr_first,
	'the same REPEATABLE READ snapshot read later gives the same six numbers');
my $moved_on = $node->safe_psql('postgres', 'SELECT count(*) FROM events');
isnt($moved_on, $rr_rows{events},
	"the load changed events meanwhile ($rr_rows{events} -> $moved_on rows)");

# --- the end of the load -------------------------------------------------------

finish_pgbench($load);
check_pgbench_clean($load, 'pgbench across track()');
unlike($load->{out} . $load->{err}, qr/aborted/i, 'no pgbench client aborted');
unlike($load->{err}, qr/error/i, 'no error on pgbench stderr');

for my $i (0, 1)
{
	finish_command($copies[$i]);
	is($copies[$i]{status}, 0, "COPY session $i ended with status 0");
	is($copies[$i]{err}, '', "COPY session $i: nothing on stderr");
}
$node->safe_psql('postgres', 'INSERT INTO stop_flag VALUES (true)');
finish_command($loop);
is($loop->{status}, 0, 'the looping session ended with status 0');
my ($loop_xacts) = $loop->{err} =~ /loop transactions: (\d+)/;
cmp_ok($loop_xacts // 0, '>', 0,
	'the looping session committed ' . ($loop_xacts // 0) . ' transactions');
my ($own_checks, $own_mismatches, $own_first) =
  $loop->{err} =~ /own-snapshot checks: (\d+), mismatches: (\d+) \((.*)\)/;
cmp_ok($own_checks // 0, '>', 0,
	'the looping session compared value() and count(*) in its writing transactions '
	  . ($own_checks // 0) . ' times');
is($own_mismatches, 0,
	"value() = count(*) of events and of pevents inside the looping session's writing transactions, own rows included (first mismatch: $own_first)"
);

# Every writer wrote before and after track().
for my $w (@writers)
{
	my ($what, $cond) = @$w;
	is( $wrote_before{$what} . ' before, ' . $node->safe_psql(
			'postgres', qq{
SELECT (count(*) > 0)::text
  FROM (SELECT id FROM events WHERE $cond AND id > $after_track
        UNION ALL SELECT id FROM pevents WHERE $cond AND id > $after_track) x})
		  . ' after',
		'true before, true after',
		"$what committed rows before and after track()");
}

for my $i (0, 1)
{
	my $c = 2000 + $i;
	is( $node->safe_psql(
			'postgres',
			"SELECT (SELECT count(*) FROM events WHERE client = $c) || ' '"
			  . " || (SELECT count(*) FROM pevents WHERE client = $c)"),
		"$copy_rows[$i][0] $copy_rows[$i][1]",
		"COPY session $i: exactly its committed rows, $copy_rows[$i][0] and $copy_rows[$i][1]");
}
is( $node->safe_psql(
		'postgres',
		q{SELECT (SELECT count(*) FROM events WHERE payload = 'rolled back')
		       + (SELECT count(*) FROM pevents WHERE payload = 'rolled back')}),
	0, 'no rolled-back row survived');
my $conflict_rows = $node->safe_psql('postgres',
	q{SELECT count(*) || ' ' || count(DISTINCT ukey) || ' ' || coalesce(max(ukey), 0)
	    FROM events WHERE ukey IS NOT NULL});
my @cr = split / /, $conflict_rows;
ok($cr[0] == $cr[1] && $cr[0] > 0 && $cr[2] <= 1100,
	"ON CONFLICT: $cr[0] rows with distinct keys of 1..200 and 1001..1100");
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM tags t WHERE NOT EXISTS
		    (SELECT FROM events e WHERE e.id = t.event_id)}),
	0, 'every tags row still has its events row');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pevents WHERE k < 0 OR k > 99}),
	0, 'moved rows stayed in range');

my %final;
for my $t (sort keys %counter)
{
	$final{$t} = check_tracked_exact($node, 'postgres', 'after the load', $t, $counter{$t});
}
# and leaf by leaf, the partitioned table's count
is( $node->safe_psql(
		'postgres',
		q{SELECT (SELECT count(*) FROM pevents_lo) + (SELECT count(*) FROM pevents_hi_0)
		       + (SELECT count(*) FROM pevents_hi_1)}),
	$final{pevents}, "pevents' three leaves hold its $final{pevents} rows");

# --- untrack and track again under load ---------------------------------------

# The counter that tracks $table now, from the view.
sub counter_of
{
	my ($table) = @_;
	return $node->safe_psql('postgres',
		"SELECT name FROM event_stats.counters WHERE tracks = '$table'::regclass");
}

$node->safe_psql(
	'postgres', q{
CREATE TABLE pevents_x (LIKE pevents INCLUDING DEFAULTS);
INSERT INTO pevents_x(client, k, payload)
  SELECT -5, 100 + g, 'x' FROM generate_series(0, 49) g;
});
$base = events_id($node);
$load = start_pgbench($node, $scripts, clients => $clients, transactions => 1000);
wait_for_events_id($node, $base + 2000);
$node->safe_psql('postgres', q{SELECT event_stats.untrack('pevents')});
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM event_stats.counters WHERE name = 'pevents_rows'}),
	0, 'untrack(pevents) under load dropped its counter');
wait_for_events_id($node, events_id($node) + 2000);
is( $node->safe_psql('postgres',
		q{SELECT event_stats.track('pevents', 'pevents_again')}),
	'pevents_again', 'track(pevents) again under load');

# Partition changes under load, each followed by value() = count(*).
for my $step (
	[ 'ATTACH of pevents_x (50 rows)',
		'ALTER TABLE pevents ATTACH PARTITION pevents_x FOR VALUES FROM (100) TO (200)' ],
	[ 'DETACH of pevents_x', 'ALTER TABLE pevents DETACH PARTITION pevents_x' ],
	[ 'ATTACH of pevents_x again',
		'ALTER TABLE pevents ATTACH PARTITION pevents_x FOR VALUES FROM (100) TO (200)' ],
	[ 'TRUNCATE of pevents_x, then 20 rows into it through pevents',
		q{BEGIN; TRUNCATE pevents_x;
		  INSERT INTO pevents(client, k, payload)
		    SELECT -5, 100 + g, 'x' FROM generate_series(1, 20) g; COMMIT;} ],
	[ 'DROP of the partition pevents_x', 'DROP TABLE pevents_x' ],
	[ 'TRUNCATE of pevents_lo, written by the load', 'TRUNCATE pevents_lo' ])
{
	my ($what, $sql) = @$step;
	wait_for_events_id($node, events_id($node) + 1000);
	$node->safe_psql('postgres', $sql);
	check_tracked_exact($node, 'postgres', "under load, after $what", 'pevents',
		'pevents_again');
}
wait_for_events_id($node, events_id($node) + 1000);

# untrack() and track() in one transaction: a new counter from the same
# commit on, with no writer left out or failing.
my ($ret, $out, $err) = $node->psql(
	'postgres', q{
BEGIN;
SELECT event_stats.untrack('events');
SELECT event_stats.track('events', 'events_again');
COMMIT;
});
is($ret, 0, 'untrack(events) and track(events) in one transaction under load succeed');
is($err, '', 'untrack() + track() in one transaction: no error')
  or diag($err);
my $retrack_point = events_id($node);
finish_pgbench($load);
check_pgbench_clean($load, 'pgbench across untrack() and track()');
unlike($load->{err}, qr/error/i, 'no error on pgbench stderr')
  or diag($load->{err});
ok($node->safe_psql('postgres', "SELECT count(*) > 0 FROM events WHERE id > $retrack_point"),
	'the second load went on after the last track()');
is(counter_of('pevents'), 'pevents_again', 'pevents is tracked by pevents_again');
is(counter_of('events'), 'events_again', 'events is tracked by events_again');
for my $t (qw(events pevents tags))
{
	check_tracked_exact($node, 'postgres', 'after untrack() and track() again',
		$t, counter_of($t));
}
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(name || ':' || coalesce(tracks::text, '-'), ',' ORDER BY name)
		    FROM event_stats.counters}),
	'events_again:events,pevents_again:pevents,tags_rows:tags',
	'only the two new counters and tags_rows are left');

$node->stop;
done_testing();
