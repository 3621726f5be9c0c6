# Copyright: event_stats authors.  TAP test of event_stats.
#
# 013_hlc_change_feed.pl -- the closed timestamp under stress: a poller
# following the protocol (event_stats.changes_since(), each poll's horizon
# the next poll's since) misses no committed row, delivers none twice and
# delivers them in order, while writers commit late, roll back and go
# through two-phase commit finished by another session; a naive poller
# (last_modified > the largest value seen) run at the same time misses rows.
#
# Table records (id bigserial, writer, kind, tx = the writing transaction,
# last_modified timestamptz DEFAULT event_stats.unique_timestamp(), v
# event_stats.hlc DEFAULT event_stats.hlc_now()): each row takes both clock
# values when it is inserted.
# Writers, pgbench, 16 clients for $seconds s.  Each transaction inserts
# 1..3 rows, waits 0..20 ms (idle in transaction), inserts one more row,
# waits 0..60 ms, then ends one of five ways (pgbench script weights):
#   commit        COMMIT                                             (5)
#   rollback      ROLLBACK                                           (2)
#   2pc_commit    PREPARE TRANSACTION, wait 0..40 ms, COMMIT PREPARED (1)
#   2pc_rollback  PREPARE TRANSACTION, wait 0..40 ms, ROLLBACK PREPARED (1)
#   2pc_other     PREPARE TRANSACTION and leave it (its gid noted in table
#                 ready): a finisher (one more pgbench client) takes the
#                 oldest such prepared transaction every 0..20 ms and
#                 finishes it with COMMIT PREPARED (3 in 4) or ROLLBACK
#                 PREPARED                                           (2)
# So rows routinely take their timestamps early and become visible late,
# after rows with later timestamps are visible (the case that loses rows
# for a naive poller).
# Pollers, each one psql session calling a procedure that polls as fast as
# it can, one poll per transaction (READ COMMITTED, committed after each
# poll; the pollers take no clock value), storing every delivered row
# (feed, poll number, position in the poll, id, last_modified, v) in
# delivered and every poll (since, horizon, rows) in polls:
#   ts     changes_since(NULL::records, since) on last_modified (timestamptz
#          from unique_timestamp(): the Kinto case)
#   hlc    changes_since(NULL::records, since, 'v') on v (event_stats.hlc)
#   naive  SELECT ... WHERE last_modified > max_seen ORDER BY last_modified
# After the writers and the finisher end, every prepared transaction left
# is finished, the pollers are told to stop, and each polls one last time
# (a poll started after every writer ended).
# Checked for each protocol feed (ts, hlc):
#   - the delivered rows are exactly the committed rows of records: no id
#     missing, none extra (ids, last_modified and v all equal);
#   - no id delivered twice;
#   - in order: within each poll positions are 1..n and the column strictly
#     increases with the position; across polls every row of a later poll
#     is greater than every row of an earlier one;
#   - the polls chain: each poll's since is the previous poll's horizon,
#     horizons never decrease, all rows of a poll carry the same horizon,
#     every row lies in (since, horizon];
#   - the poller really ran: at least 100 polls, at least 50 of them
#     delivering rows.
# Checked for the workload: pgbench ended cleanly and ran every script;
# rows of committed, 2pc_commit and 2pc_other transactions are there, none
# of rollback or 2pc_rollback; the finisher both committed and rolled back
# prepared transactions of other sessions; no prepared transaction left.
# The naive poller, side by side (diag: polls, rows, missed, twice, and the
# protocol feeds' largest horizon lag): it delivers no row twice and no row
# that is not committed, but it misses rows: checked to miss at least one
# (on a 2-core machine it misses about three rows in four, some 30,000 in
# 60 s, of every kind that commits).  The same figures count the naive
# feed's missing rows, so the completeness checks can fail; and with
# hlc_horizon() replaced by the clock's last value (holds ignored), the
# protocol feeds miss most rows and the test fails.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $seconds = 60;
my $writers = 16;

my $node = event_stats_node('hlc_change_feed', max_prepared_transactions => 100);

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION event_stats;

CREATE TABLE records (
    id bigserial PRIMARY KEY,
    writer int NOT NULL,
    kind text NOT NULL,
    tx xid8 NOT NULL DEFAULT pg_current_xact_id(),
    last_modified timestamptz NOT NULL DEFAULT event_stats.unique_timestamp(),
    v event_stats.hlc NOT NULL DEFAULT event_stats.hlc_now());
CREATE INDEX records_last_modified ON records (last_modified);
CREATE INDEX records_v ON records (v);
CREATE SEQUENCE gids;

CREATE UNLOGGED TABLE delivered (feed text NOT NULL, poll int NOT NULL,
                                 ord bigint NOT NULL, id bigint NOT NULL,
                                 ts timestamptz NOT NULL, v event_stats.hlc NOT NULL);
CREATE UNLOGGED TABLE polls (feed text NOT NULL, poll int NOT NULL,
                             since event_stats.hlc, horizon event_stats.hlc,
                             horizon_min event_stats.hlc,
                             max_seen timestamptz, rows bigint NOT NULL,
                             at timestamptz NOT NULL,
                             PRIMARY KEY (feed, poll));
CREATE UNLOGGED TABLE control (stop boolean NOT NULL);
-- the 2pc_other transactions whose PREPARE TRANSACTION has returned
CREATE UNLOGGED TABLE ready (n bigserial PRIMARY KEY, gid text NOT NULL);
INSERT INTO control VALUES (false);

-- Polls feed 'ts', 'hlc' or 'naive' as fast as it can, one poll per
-- transaction, until control.stop, read before each poll, is true: the
-- poll that follows is the last.
CREATE PROCEDURE poll_feed(feed text) LANGUAGE plpgsql AS $$
DECLARE
    since event_stats.hlc;          -- NULL: from the beginning
    max_seen timestamptz;           -- the naive poller's
    poll int := 0;
    stopping boolean;
    h event_stats.hlc;
    hmin event_stats.hlc;
    m timestamptz;
    n bigint;
BEGIN
    LOOP
        SELECT stop INTO stopping FROM control;
        poll := poll + 1;
        IF feed = 'naive' THEN
            WITH r AS (SELECT id, last_modified, v FROM records
                        WHERE last_modified > coalesce(max_seen, '-infinity')
                        ORDER BY last_modified),
                 ins AS (INSERT INTO delivered
                         SELECT feed, poll, row_number() OVER (), id, last_modified, v
                           FROM r
                         RETURNING ts)
            SELECT max(ts), count(*) INTO m, n FROM ins;
            INSERT INTO polls VALUES (feed, poll, NULL, NULL, NULL, max_seen, n,
                                      clock_timestamp());
            max_seen := greatest(max_seen, m);
        ELSE
            WITH c AS (SELECT * FROM event_stats.changes_since(
                                       NULL::records, since,
                                       CASE feed WHEN 'ts' THEN 'last_modified' ELSE 'v' END)
                                     WITH ORDINALITY AS c(horizon, change, ord)),
                 ins AS (INSERT INTO delivered
                         SELECT feed, poll, ord, (change).id, (change).last_modified, (change).v
                           FROM c WHERE (change).id IS NOT NULL
                         RETURNING 1)
            SELECT event_stats.max(horizon), event_stats.min(horizon),
                   (SELECT count(*) FROM ins)
              INTO h, hmin, n FROM c;
            INSERT INTO polls VALUES (feed, poll, since, h, hmin, NULL, n,
                                      clock_timestamp());
            since := h;
        END IF;
        COMMIT;
        EXIT WHEN stopping;
    END LOOP;
END
$$;
});

# --- the load ------------------------------------------------------------------

my @kinds = qw(commit rollback 2pc_commit 2pc_rollback 2pc_other);
my %weight = (
	commit => 5,
	rollback => 2,
	'2pc_commit' => 1,
	'2pc_rollback' => 1,
	'2pc_other' => 2);
my %ending = (
	commit => "COMMIT;\n",
	rollback => "ROLLBACK;\n",
	'2pc_commit' => "SELECT nextval('gids') AS g \\gset\n"
	  . "PREPARE TRANSACTION 'w:g';\n"
	  . "\\sleep :s3 ms\n"
	  . "COMMIT PREPARED 'w:g';\n",
	'2pc_rollback' => "SELECT nextval('gids') AS g \\gset\n"
	  . "PREPARE TRANSACTION 'w:g';\n"
	  . "\\sleep :s3 ms\n"
	  . "ROLLBACK PREPARED 'w:g';\n",
	'2pc_other' => "SELECT nextval('gids') AS g \\gset\n"
	  . "PREPARE TRANSACTION 'o:g';\n"
	  . "INSERT INTO ready(gid) VALUES ('o:g');\n");
my @scripts = map {
	(
		"\\set k random(1, 3)\n"
		  . "\\set s1 random(0, 20)\n"
		  . "\\set s2 random(0, 60)\n"
		  . "\\set s3 random(0, 40)\n"
		  . "BEGIN;\n"
		  . "INSERT INTO records(writer, kind) SELECT :client_id, '$_' FROM generate_series(1, :k);\n"
		  . "\\sleep :s1 ms\n"
		  . "INSERT INTO records(writer, kind) VALUES (:client_id, '$_');\n"
		  . "\\sleep :s2 ms\n"
		  . $ending{$_} => $weight{$_})
} @kinds;

# The finisher of the 2pc_other transactions: the oldest one in ready,
# committed (c > 0, 3 in 4) or rolled back.  (Not the oldest of
# pg_prepared_xacts: a transaction is listed there before its PREPARE
# TRANSACTION has returned, and finishing it then fails with "prepared
# transaction ... is busy".)
my $finisher = q{\set c random(0, 3)
\set d random(0, 20)
\sleep :d ms
WITH d AS (DELETE FROM ready
            WHERE n = (SELECT min(n) FROM ready)
           RETURNING gid)
SELECT (count(*) > 0)::int AS have, coalesce(min(gid), '') AS gid FROM d \gset
\if :have
\if :c
COMMIT PREPARED ':gid';
\else
ROLLBACK PREPARED ':gid';
\endif
\endif
};

my %pollers = map {
	$_ => start_command(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-h', $node->host, '-p', $node->port, '-d', 'postgres',
			'-c', "CALL poll_feed('$_')"
		])
} qw(ts hlc naive);

my $load = start_pgbench($node, \@scripts, clients => $writers, seconds => $seconds);
my $fin = start_pgbench($node, $finisher, clients => 1, seconds => $seconds);
finish_pgbench($load);
finish_pgbench($fin);

# Prepared transactions left (a 2pc_other one the finisher did not reach):
# committed.
my @left = split /\n/,
  $node->safe_psql('postgres', q{SELECT gid FROM pg_prepared_xacts ORDER BY gid});
$node->safe_psql('postgres', "COMMIT PREPARED '$_'") for @left;
note 'prepared transactions left after the load, committed: ' . scalar(@left);

$node->safe_psql('postgres', 'UPDATE control SET stop = true');
finish_command($pollers{$_}) for qw(ts hlc naive);

# --- the load ran as described ---------------------------------------------------------

is($load->{status}, 0, 'writers: pgbench exit status 0');
unlike($load->{out} . $load->{err}, qr/aborted|error/i, 'writers: no client aborted, no error');
is($fin->{status}, 0, 'finisher: pgbench exit status 0');
unlike($fin->{out} . $fin->{err}, qr/aborted|error/i, 'finisher: no error');
my %ran;
while ($load->{out} =~ /^SQL script (\d+): \S+\n(?: - .*\n)*? - (\d+) transactions/mg)
{
	$ran{ $kinds[ $1 - 1 ] } = $2;
}
is(scalar(grep { ($ran{$_} // 0) > 0 } @kinds),
	scalar(@kinds), 'writers: every kind of transaction ran ('
	  . join(', ', map { "$_ " . ($ran{$_} // 0) } @kinds) . ')');

my %committed_tx = split /[|\n]/, $node->safe_psql(
	'postgres', q{
SELECT k, (SELECT count(DISTINCT tx) FROM records r WHERE r.kind = k)
  FROM unnest(ARRAY['commit', 'rollback', '2pc_commit', '2pc_rollback', '2pc_other']) k});
is( join(',', map { $committed_tx{$_} > 0 ? 1 : 0 } @kinds),
	'1,0,1,0,1',
	'rows of commit, 2pc_commit and 2pc_other transactions only ('
	  . join(', ', map { "$_ $committed_tx{$_}" } @kinds) . ')');
cmp_ok($committed_tx{'2pc_other'}, '<', $ran{'2pc_other'} // 0,
	'the finisher rolled back some prepared transactions of other sessions');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
	0, 'no prepared transaction left');
is($node->safe_psql('postgres', 'SELECT stop FROM control'), 't', 'pollers stopped');

my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM records');
my $tx = $node->safe_psql('postgres', 'SELECT count(DISTINCT tx) FROM records');

# --- the protocol feeds -------------------------------------------------------

# Summary figures of feed $feed: rows delivered, distinct ids, committed
# rows missing, delivered rows not in records (or with other values),
# polls, polls with rows, and for a protocol feed max_lag: how far (ms) a
# poll's horizon was at most behind the end of the poll, once rows were
# delivered (before any clock value, the horizon is the epoch).
sub feed_figures
{
	my ($feed) = @_;
	my %f;
	@f{qw(delivered distinct missing extra polls polls_with_rows max_lag)} =
	  split /\|/, $node->safe_psql(
		'postgres', qq{
SET search_path = public, event_stats;
SELECT (SELECT count(*) FROM delivered WHERE feed = '$feed'),
       (SELECT count(DISTINCT id) FROM delivered WHERE feed = '$feed'),
       (SELECT count(*) FROM (SELECT id, last_modified, v FROM records
                              EXCEPT SELECT id, ts, v FROM delivered WHERE feed = '$feed') x),
       (SELECT count(*) FROM (SELECT id, ts, v FROM delivered WHERE feed = '$feed'
                              EXCEPT SELECT id, last_modified, v FROM records) x),
       (SELECT count(*) FROM polls WHERE feed = '$feed'),
       (SELECT count(*) FROM polls WHERE feed = '$feed' AND rows > 0),
       (SELECT coalesce(round(extract(epoch FROM max(at - hlc_physical(horizon))) * 1000), 0)
          FROM polls
         WHERE feed = '$feed'
           AND poll > (SELECT min(poll) FROM polls WHERE feed = '$feed' AND rows > 0))});
	return \%f;
}

my %fig;
for my $feed (qw(ts hlc))
{
	my $col = $feed eq 'ts' ? 'ts' : 'v';
	# the bounds of a poll, in the type of the column
	my ($lo, $hi) =
	  $feed eq 'ts'
	  ? ('hlc_closed_timestamp(coalesce(p.since, 0::bigint::hlc))',
		'hlc_closed_timestamp(p.horizon)')
	  : ('coalesce(p.since, 0::bigint::hlc)', 'p.horizon');
	my $f = $fig{$feed} = feed_figures($feed);
	my $what = "protocol poller on " . ($feed eq 'ts' ? 'last_modified (timestamptz)' : 'v (hlc)');

	is($f->{missing}, 0, "$what: no committed row missing ($rows rows of $tx transactions)");
	is($f->{extra}, 0, "$what: no row delivered that is not in the table");
	is($f->{delivered} - $f->{distinct}, 0, "$what: no row delivered twice");
	is($f->{delivered}, $rows, "$what: delivered exactly the $rows committed rows");
	is( $node->safe_psql(
			'postgres', qq{
SET search_path = public, event_stats;
SELECT count(*) FROM (
  SELECT ord, row_number() OVER w AS rn, $col, lag($col) OVER w AS prev
    FROM delivered WHERE feed = '$feed'
  WINDOW w AS (PARTITION BY poll ORDER BY ord)) x
 WHERE ord <> rn OR $col <= prev}),
		0,
		"$what: within each poll, rows in strictly increasing order");
	is( $node->safe_psql(
			'postgres', qq{
SET search_path = public, event_stats;
SELECT count(*) FROM (
  SELECT lo, lag(hi) OVER (ORDER BY poll) AS prev_hi
    FROM (SELECT poll, min($col) lo, max($col) hi FROM delivered
           WHERE feed = '$feed' GROUP BY poll) p) x
 WHERE lo <= prev_hi}),
		0,
		"$what: across polls, every row of a later poll is greater than every row of an earlier one"
	);
	is( $node->safe_psql(
			'postgres', qq{
SET search_path = public, event_stats;
SELECT count(*) FROM (
  SELECT poll, since, horizon, horizon_min,
         lag(horizon) OVER (ORDER BY poll) AS prev_horizon,
         row_number() OVER (ORDER BY poll) AS rn
    FROM polls WHERE feed = '$feed') x
 WHERE poll <> rn OR horizon IS NULL OR horizon <> horizon_min
    OR (poll = 1 AND since IS NOT NULL)
    OR (poll > 1 AND since IS DISTINCT FROM prev_horizon)
    OR horizon < since}),
		0,
		"$what: the polls chain (since = previous horizon, horizons never decrease, one horizon per poll)"
	);
	is( $node->safe_psql(
			'postgres', qq{
SET search_path = public, event_stats;
SELECT count(*) FROM delivered d JOIN polls p USING (feed, poll)
 WHERE d.feed = '$feed' AND NOT (d.$col > $lo AND d.$col <= $hi)}),
		0,
		"$what: every row lies in its poll's (since, horizon]");
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) FROM delivered d JOIN polls p USING (feed, poll)
 WHERE d.feed = '$feed' GROUP BY p.poll, p.rows HAVING count(*) <> p.rows}),
		'',
		"$what: each poll's row count as recorded");
	cmp_ok($f->{polls}, '>=', 100, "$what: polled at least 100 times ($f->{polls})");
	cmp_ok($f->{polls_with_rows}, '>=', 50,
		"$what: at least 50 polls delivered rows ($f->{polls_with_rows})");
}

# --- the naive poller, side by side ----------------------------------------------

my $naive = $fig{naive} = feed_figures('naive');
my $missed_by_kind = $node->safe_psql(
	'postgres', q{
SELECT coalesce(string_agg(kind || ' ' || n, ', ' ORDER BY kind), 'none')
  FROM (SELECT kind, count(*) n FROM records
         WHERE id NOT IN (SELECT id FROM delivered WHERE feed = 'naive')
         GROUP BY kind) x});
diag(sprintf(
		"change feeds over %d s, %d writers: %d committed rows (%d transactions)\n"
		  . "  %-44s %8s %8s %8s %8s %9s\n"
		  . join('',
			map {
				my $f = $fig{ $_->[0] };
				sprintf("  %-44s %8d %8d %8d %8d %9s\n",
					$_->[1], $f->{polls}, $f->{delivered}, $f->{missing},
					$f->{delivered} - $f->{distinct},
					$_->[0] eq 'naive' ? '-' : $f->{max_lag})
			} (
				[ ts => 'protocol, changes_since on last_modified' ],
				[ hlc => 'protocol, changes_since on v (hlc)' ],
				[ naive => 'naive, last_modified > max seen' ]))
		  . "  naive poller's missed rows by kind: %s",
		$seconds, $writers, $rows, $tx,
		'poller', 'polls', 'rows', 'missed', 'twice', 'lag ms',
		$missed_by_kind));
is($naive->{extra}, 0, 'naive poller: delivered no row that is not committed');
is($naive->{delivered} - $naive->{distinct}, 0, 'naive poller: no row delivered twice');
cmp_ok($naive->{missing}, '>', 0,
	"naive poller: misses committed rows ($naive->{missing} of $rows), "
	  . 'which the same check finds none of for the protocol pollers');

$node->stop;
done_testing();
