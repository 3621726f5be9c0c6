# Copyright: event_stats authors.
#
# A model-based randomized tester of the change feed (the closed timestamp
# protocol).  Where 013 hammers the feed with pgbench, which cannot be
# replayed, this one drives every session itself, one statement at a time,
# from a schedule drawn from a seed: a failure names the seed and the step,
# and the same seed replays the same schedule.
#
# Table records (id bigint, the writer w, last_modified timestamptz DEFAULT
# event_stats.unique_timestamp(), v event_stats.hlc DEFAULT
# event_stats.hlc_now()), both columns indexed.  Sessions, each a psql
# kept open (PostgreSQL::Test::BackgroundPsql):
#   - 4 writers.  A writer begins a transaction (READ COMMITTED or
#     REPEATABLE READ), then, over several steps of the schedule (other
#     sessions' steps come in between, so it is held open): inserts 1..3
#     rows (ids from a counter of the model), updates one of its rows
#     (SET last_modified = unique_timestamp(), v = hlc_now(): an update
#     takes new values in the transaction that writes them), deletes one,
#     sets a savepoint, rolls back to it or releases it; and ends with
#     COMMIT, ROLLBACK or PREPARE TRANSACTION.  Every write returns the
#     values it took, so the model knows each row version exactly.  A
#     writer touches only its own rows, and none that a prepared
#     transaction holds: no statement ever waits for a lock.
#   - a finisher: COMMIT PREPARED / ROLLBACK PREPARED of a prepared
#     transaction some steps after its PREPARE, by the finisher or by an
#     idle writer, never the one that prepared it;
#   - two pollers, READ COMMITTED, autocommit, following the documented
#     protocol: changes_since(NULL::records, since) on last_modified
#     (timestamptz) and changes_since(..., since, 'v') on v (hlc), each
#     poll's horizon the next poll's since.  Now and then a poller instead
#     runs fault 7 of the issue: BEGIN, a bookkeeping row that takes
#     unique_timestamp(), then changes_since() or hlc_horizon_for_poll(),
#     which must be refused with 25000, and ROLLBACK.
# As every statement has returned before the next one is sent, the model
# knows at each poll which row versions are committed, and which values
# each open or prepared transaction has taken.  Checked at every poll
# (values of the timestamptz feed as the clock value T/4095):
#   - order: one horizon per poll, not below its since; the rows strictly
#     increase and lie in (since, horizon];
#   - committed: each row delivered is the model's committed version of
#     that id at the time of the poll (none of a rolled-back transaction,
#     savepoint or prepared transaction, none not yet committed, none
#     superseded);
#   - twice: no (id, value) pair delivered twice;
#   - missed: the poll delivers exactly the committed versions not yet
#     delivered whose value is in (since, horizon], and after it no
#     committed version at or below the horizon is left undelivered (a
#     late commit behind the feed);
#   - horizon: every value taken by an open or prepared transaction is
#     above the horizon, and every value taken later is above every
#     horizon returned before.
# At the end of each seed every transaction is ended, every prepared one
# finished, and each feed polls once more; then: the table holds exactly
# the model's committed rows, and for each feed the last delivery of each
# id equals the table's row (ids delivered and no longer in the table were
# deleted by committed transactions); no prepared transaction is left.
# Checked over all seeds: the schedule ran every kind of step, and rows
# committed late, behind a value a poll could already see (the rows a
# naive poller loses).
#
# Seeded: ES_FEED_SEEDS (default "1 2 3") and ES_FEED_STEPS steps per seed
# (default 2500); every seed is printed, a failure names the seed, the step
# and the statement (an unexpected SQL error ends the test there).  The
# checks can fail: with a naive poller in place of the protocol (rows with
# last_modified, or v, above the largest value seen, that value taken as
# its horizon), every default seed fails, each feed ending with 215 to 292
# rows never delivered or delivered only in an older version; with the
# horizon replaced by the clock's last value (hlc_status().current, holds
# ignored), 519 to 615.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX qw(strftime);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my @seeds = split ' ', ($ENV{ES_FEED_SEEDS} // '1 2 3');
my $steps = $ENV{ES_FEED_STEPS} // 2500;
my $nwriters = 4;
my $max_pending_prepared = 6;    # below max_prepared_transactions
my @feeds = qw(ts hlc);
my %feed_name = (
	ts => 'the feed on last_modified (timestamptz)',
	hlc => 'the feed on v (hlc)');

my $node = event_stats_node('feed', max_prepared_transactions => 10);
$node->safe_psql('postgres', 'CREATE EXTENSION event_stats');

# What a write returns: the id and the two values it took, as raw clock
# values (a timestamp T of unique_timestamp() as T/4095).
my $returning = 'RETURNING id, event_stats.hlc_from_parts(last_modified, 4095)::bigint, '
  . 'v::bigint';

# --- sessions ----------------------------------------------------------------

sub open_session
{
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	$s->set_query_timer_restart();
	$s->query_safe('\set VERBOSITY verbose');
	return $s;
}

my @writer_sessions = map { open_session() } 1 .. $nwriters;
my $finisher = open_session();
my %poller = map { $_ => open_session() } @feeds;

my ($seed, $step);

# Runs $sql in session $s; returns its output and its stderr (the
# session's stderr is emptied first: BackgroundPsql keeps adding to it).
sub run_sql
{
	my ($s, $sql) = @_;
	$s->{stderr} = '';
	my $out = $s->query($sql);
	return ($out, $s->{stderr});
}

# Runs $sql, which must not fail: an error is no finding of the model but a
# broken schedule, and ends the test.
sub run_ok
{
	my ($s, $sql, $who) = @_;
	my ($out, $err) = run_sql($s, $sql);
	die "seed $seed, step $step: $who: unexpected error (replay: ES_FEED_SEEDS=$seed):\n"
	  . "$err--- its SQL:\n$sql\n"
	  if $err ne '';
	return $out;
}

# --- the model -----------------------------------------------------------------

my (%committed, %owner, %never, %deleted, @writers, @prepared, %feed);
my ($next_id, $gid_no, $max_horizon);
my (%problems, %totals);

sub problem
{
	my ($kind, $msg) = @_;
	push @{ $problems{$kind} }, "seed $seed, step $step: $msg";
	return;
}

sub check { $totals{checks}++; return; }

sub pick { return $_[ int(rand(@_)) ]; }

sub by_number { return sort { $a <=> $b } @_; }

# The value of version $ver (a hash ts, v) in feed $f.
sub feed_value { my ($f, $ver) = @_; return $f eq 'ts' ? $ver->{ts} : $ver->{v}; }

# A raw clock value in the text form of event_stats.hlc.
sub hlc_text
{
	my ($raw) = @_;
	my $us = $raw >> 12;
	return strftime('%Y-%m-%dT%H:%M:%S', gmtime(int($us / 1_000_000)))
	  . sprintf('.%06dZ/%04d', $us % 1_000_000, $raw & 4095);
}

sub version_text
{
	my ($ver) = @_;
	return 'last_modified ' . hlc_text($ver->{ts}) . ', v ' . hlc_text($ver->{v});
}

sub reset_model
{
	%committed = %owner = %never = %deleted = ();
	@writers = map { { s => $writer_sessions[$_], tx => undef } } 0 .. $nwriters - 1;
	@prepared = ();
	%feed = map {
		$_ => {
			s => $poller{$_},
			since => undef,
			polls => 0,
			delivered_pairs => {},
			undelivered => {},
			last => {},
			max_committed => 0,
			max_seen_by_poll => 0,
		  }
	} @feeds;
	$next_id = 0;
	$gid_no = 0;
	$max_horizon = 0;
	%problems = ();
	return;
}

# The rows a write returned, checked against the ids it wrote; each value
# taken must be above every horizon returned before.
sub parse_written
{
	my ($out, $ids, $who) = @_;
	my @rows = map { [ split /\|/ ] } grep { $_ ne '' } split /\n/, $out;
	my @got = map { $_->[0] } @rows;
	die "seed $seed, step $step: $who: wrote ids (@got), expected (@$ids)\n"
	  unless "@got" eq "@$ids";
	my %ver;
	for my $r (@rows)
	{
		$ver{ $r->[0] } = { ts => $r->[1], v => $r->[2] };
		for my $val ($r->[1], $r->[2])
		{
			check();
			problem('horizon',
				"$who: took value " . hlc_text($val) . ", not above the horizon "
				  . hlc_text($max_horizon) . ' returned before')
			  unless $val > $max_horizon;
		}
	}
	return \%ver;
}

# The ids writer $w may update or delete in its transaction: its own
# committed rows that no prepared transaction holds (taken when the
# transaction began, so that a REPEATABLE READ snapshot sees them and
# nobody else changes them), and the rows the transaction wrote and still
# has, less those it deleted.
sub candidates
{
	my ($w) = @_;
	my $tx = $writers[$w]{tx};
	my %c = map { $_ => 1 } @{ $tx->{eligible} };
	for my $id (keys %{ $tx->{writes} })
	{
		if (defined $tx->{writes}{$id}) { $c{$id} = 1; }
		else { delete $c{$id}; }
	}
	return by_number(keys %c);
}

# Ids written by a transaction (or the part of it rolled back) that will
# never commit: those inserted in it, not committed before.
sub forget_writes
{
	my ($writes, $kept) = @_;
	for my $id (keys %$writes)
	{
		next if exists $committed{$id} || $deleted{$id};
		next if $kept && exists $kept->{$id};
		$never{$id} = 1;
	}
	return;
}

# A transaction's writes become committed.
sub apply_commit
{
	my ($w, $writes) = @_;
	for my $id (by_number(keys %$writes))
	{
		my $ver = $writes->{$id};
		if (defined $ver)
		{
			for my $f (@feeds)
			{
				# committed behind a value a poll could already see
				$totals{"late_$f"}++
				  if feed_value($f, $ver) < $feed{$f}{max_seen_by_poll};
				$feed{$f}{max_committed} = feed_value($f, $ver)
				  if feed_value($f, $ver) > $feed{$f}{max_committed};
			}
			$committed{$id} = $ver;
			$owner{$id} = $w;
			$feed{$_}{undelivered}{$id} = 1 for @feeds;
		}
		else
		{
			delete $committed{$id};
			$deleted{$id} = 1;
			delete $feed{$_}{undelivered}{$id} for @feeds;
		}
	}
	return;
}

# --- writers -------------------------------------------------------------------

sub writer_step
{
	my ($w) = @_;
	my $wr = $writers[$w];
	my $s = $wr->{s};
	my $who = "writer $w";
	my $tx = $wr->{tx};

	if (!$tx)
	{
		my $iso = rand() < 0.5 ? 'READ COMMITTED' : 'REPEATABLE READ';
		run_ok($s, "BEGIN ISOLATION LEVEL $iso;", $who);
		my %held = map { map { $_ => 1 } keys %{ $_->{writes} } } @prepared;
		$wr->{tx} = {
			iso => $iso,
			eligible => [ grep { $owner{$_} == $w && !$held{$_} } by_number(keys %committed) ],
			writes => {},
			taken => [],
			savepoints => [],
		};
		$totals{transactions}++;
		return;
	}

	my @cand = candidates($w);
	my $depth = @{ $tx->{savepoints} };
	my $r = rand();
	my $action =
	    $r < 0.32 ? 'insert'
	  : $r < 0.46 ? (@cand ? 'update' : 'insert')
	  : $r < 0.52 ? (@cand ? 'delete' : 'insert')
	  : $r < 0.61 ? ($depth < 3 ? 'savepoint' : 'insert')
	  : $r < 0.69 ? ($depth ? 'rollback_to' : 'insert')
	  : $r < 0.72 ? ($depth ? 'release' : 'insert')
	  :             'end';

	if ($action eq 'insert')
	{
		my @ids = map { ++$next_id } 1 .. 1 + int(rand(3));
		my $sql = 'INSERT INTO records (id, w) VALUES '
		  . join(', ', map { "($_, $w)" } @ids) . " $returning;";
		my $ver = parse_written(run_ok($s, $sql, $who), \@ids, "$who: $sql");
		$tx->{writes}{$_} = $ver->{$_} for @ids;
		push @{ $tx->{taken} }, map { ($_->{ts}, $_->{v}) } values %$ver;
		$totals{inserts}++;
	}
	elsif ($action eq 'update')
	{
		my $id = pick(@cand);
		my $sql = 'UPDATE records SET last_modified = event_stats.unique_timestamp(), '
		  . "v = event_stats.hlc_now() WHERE id = $id $returning;";
		my $ver = parse_written(run_ok($s, $sql, $who), [$id], "$who: $sql");
		$tx->{writes}{$id} = $ver->{$id};
		push @{ $tx->{taken} }, $ver->{$id}{ts}, $ver->{$id}{v};
		$totals{updates}++;
	}
	elsif ($action eq 'delete')
	{
		my $id = pick(@cand);
		my $sql = "DELETE FROM records WHERE id = $id RETURNING id;";
		my $out = run_ok($s, $sql, $who);
		die "seed $seed, step $step: $who: $sql deleted \"$out\"\n" unless $out eq $id;
		$tx->{writes}{$id} = undef;
		$totals{deletes}++;
	}
	elsif ($action eq 'savepoint')
	{
		my $name = 's' . ($depth + 1);
		run_ok($s, "SAVEPOINT $name;", $who);
		push @{ $tx->{savepoints} }, { %{ $tx->{writes} } };
	}
	elsif ($action eq 'rollback_to')
	{
		# the values taken since stay taken: they still hold the horizon
		my $name = "s$depth";
		run_ok($s, "ROLLBACK TO SAVEPOINT $name; RELEASE SAVEPOINT $name;", $who);
		my $saved = pop @{ $tx->{savepoints} };
		forget_writes($tx->{writes}, $saved);
		$tx->{writes} = $saved;
		$totals{rollbacks_to_savepoint}++;
	}
	elsif ($action eq 'release')
	{
		run_ok($s, "RELEASE SAVEPOINT s$depth;", $who);
		pop @{ $tx->{savepoints} };
	}
	else
	{
		my $e = rand();
		if ($e < 0.5 || ($e >= 0.75 && @prepared >= $max_pending_prepared))
		{
			run_ok($s, 'COMMIT;', $who);
			apply_commit($w, $tx->{writes});
			$totals{commits}++;
		}
		elsif ($e < 0.75)
		{
			run_ok($s, 'ROLLBACK;', $who);
			forget_writes($tx->{writes});
			$totals{rollbacks}++;
		}
		else
		{
			my $gid = "feed_${seed}_" . ++$gid_no;
			run_ok($s, "PREPARE TRANSACTION '$gid';", $who);
			push @prepared, { gid => $gid, w => $w, writes => $tx->{writes},
				taken => $tx->{taken} };
			$totals{prepared}++;
		}
		$wr->{tx} = undef;
	}
	return;
}

# COMMIT PREPARED (7 in 10) or ROLLBACK PREPARED of prepared transaction
# number $i, by the finisher or an idle writer other than the one that
# prepared it.
sub finish_prepared
{
	my ($i, $commit) = @_;
	my $p = splice(@prepared, $i, 1);
	my @by = ([ $finisher, 'the finisher' ],
		map { [ $writers[$_]{s}, "writer $_" ] }
		  grep { $_ != $p->{w} && !$writers[$_]{tx} } 0 .. $nwriters - 1);
	my ($s, $who) = @{ pick(@by) };
	$commit //= rand() < 0.7;
	if ($commit)
	{
		run_ok($s, "COMMIT PREPARED '$p->{gid}';", $who);
		apply_commit($p->{w}, $p->{writes});
		$totals{commit_prepared}++;
	}
	else
	{
		run_ok($s, "ROLLBACK PREPARED '$p->{gid}';", $who);
		forget_writes($p->{writes});
		$totals{rollback_prepared}++;
	}
	return;
}

# --- pollers -------------------------------------------------------------------

# One poll of feed $f, following the protocol, checked against the model.
sub poll
{
	my ($f) = @_;
	my $fd = $feed{$f};
	my $since = $fd->{since};
	my $since_raw = $since // 0;
	my $who = "poll " . ($fd->{polls} + 1) . " of $feed_name{$f}";
	my $sql =
	    'SELECT c.horizon::bigint, (c.change).id, '
	  . 'event_stats.hlc_from_parts((c.change).last_modified, 4095)::bigint, '
	  . '(c.change).v::bigint FROM event_stats.changes_since(NULL::records, '
	  . (defined $since ? "${since}::bigint::event_stats.hlc" : 'NULL')
	  . ($f eq 'hlc' ? ", 'v'" : '')
	  . ') WITH ORDINALITY AS c(horizon, change, ord) ORDER BY c.ord;';
	my @rows = map { [ split /\|/, $_, -1 ] } grep { $_ ne '' } split /\n/,
	  run_ok($fd->{s}, $sql, $who);
	$fd->{polls}++;
	$totals{polls}++;

	check();
	if (!@rows)
	{
		problem('order', "$who: returned no row");
		return;
	}
	my $h = $rows[0][0];
	my $range = '(' . (defined $since ? hlc_text($since) : 'NULL') . ', ' . hlc_text($h) . ']';
	my %horizons = map { $_->[0] => 1 } @rows;
	check();
	problem('order', "$who: rows carry different horizons: " . join(', ', sort keys %horizons))
	  if keys %horizons > 1;
	check();
	problem('order', "$who: horizon " . hlc_text($h) . " below its since " . hlc_text($since_raw))
	  if $h < $since_raw;

	my ($prev, %got);
	for my $r (grep { $_->[1] ne '' } @rows)
	{
		my ($id, $ver) = ($r->[1], { ts => $r->[2], v => $r->[3] });
		my $val = feed_value($f, $ver);
		my $what = "$who: row $id (" . version_text($ver) . ')';
		$totals{delivered}++;

		check();
		problem('order', "$what: not in (since, horizon] = $range")
		  unless $val > $since_raw && $val <= $h;
		check();
		problem('order', "$what: not above the row before it (" . hlc_text($prev) . ')')
		  if defined $prev && $val <= $prev;
		$prev = $val;

		check();
		if ($never{$id})
		{
			problem('committed', "$what: written by a transaction that never committed");
		}
		elsif (!exists $committed{$id})
		{
			problem('committed',
				"$what: not a committed row at the time of the poll"
				  . ($deleted{$id} ? ' (deleted)' : ''));
		}
		elsif ($committed{$id}{ts} != $ver->{ts} || $committed{$id}{v} != $ver->{v})
		{
			problem('committed',
				"$what: not the committed version ("
				  . version_text($committed{$id}) . ')');
		}

		check();
		problem('twice', "$what: delivered twice")
		  if $fd->{delivered_pairs}{"$id/$val"}++;
		$got{$id} = 1;
		$fd->{last}{$id} = $ver;
	}

	# exactly the committed versions not yet delivered in (since, h], and
	# none left behind the horizon
	for my $id (by_number(keys %{ $fd->{undelivered} }))
	{
		my $ver = $committed{$id};
		my $val = feed_value($f, $ver);
		my $what = "$who: committed row $id (" . version_text($ver) . ')';
		check();
		if ($got{$id} && $fd->{last}{$id}{ts} == $ver->{ts} && $fd->{last}{$id}{v} == $ver->{v})
		{
			delete $fd->{undelivered}{$id};
		}
		elsif ($val > $since_raw && $val <= $h)
		{
			problem('missed', "$what: in (since, horizon] = $range, not delivered");
			delete $fd->{undelivered}{$id};
		}
		elsif ($val <= $since_raw)
		{
			problem('missed',
				"$what: committed after the feed passed it (since "
				  . hlc_text($since_raw) . '), never delivered');
			delete $fd->{undelivered}{$id};
		}
	}

	# the horizon stays below every value of open and prepared transactions
	for my $t ((map { [ "writer $_\'s open transaction", $writers[$_]{tx} ] }
				grep { $writers[$_]{tx} } 0 .. $nwriters - 1),
		(map { [ "prepared transaction $_->{gid}", $_ ] } @prepared))
	{
		for my $val (@{ $t->[1]{taken} })
		{
			check();
			problem('horizon',
				"$who: horizon " . hlc_text($h) . ' at or above value ' . hlc_text($val)
				  . ", taken by $t->[0]")
			  if $val <= $h;
		}
	}

	$fd->{since} = $h;
	$fd->{max_seen_by_poll} = $fd->{max_committed};
	$max_horizon = $h if $h > $max_horizon;
	return;
}

# Fault 7 of the issue: a poll inside a transaction that took a clock value
# (a bookkeeping row) is refused with 25000; the poller rolls back.
sub poll_holding
{
	my ($f) = @_;
	my $fd = $feed{$f};
	my $call =
	  rand() < 0.5
	  ? 'SELECT count(*) FROM event_stats.changes_since(NULL::records, NULL'
	  . ($f eq 'hlc' ? ", 'v'" : '') . ');'
	  : 'SELECT event_stats.hlc_horizon_for_poll();';
	my $sql = "BEGIN;\nINSERT INTO bookkeeping (feed) VALUES ('$f');\n$call\nROLLBACK;";
	my ($out, $err) = run_sql($fd->{s}, $sql);
	$totals{poll_holding}++;
	check();
	if ($err =~ /ERROR:  25000: / && $out eq '' && $err !~ /ERROR:  (?!25000)/)
	{
		$totals{refused_25000}++;
	}
	else
	{
		problem('fault7',
			"poller of $feed_name{$f} inside a transaction that took a clock value: "
			  . "expected 25000, got output \"$out\", errors \"$err\"\n--- its SQL:\n$sql");
	}
	return;
}

# --- the run ---------------------------------------------------------------------

for my $this_seed (@seeds)
{
	$seed = $this_seed;
	srand($seed);
	note "feed model seed $seed, $steps steps";
	$step = 0;
	$node->safe_psql(
		'postgres', q{
SET client_min_messages = warning;
DROP TABLE IF EXISTS records, bookkeeping;
CREATE TABLE records (
    id bigint PRIMARY KEY,
    w int NOT NULL,
    last_modified timestamptz NOT NULL DEFAULT event_stats.unique_timestamp(),
    v event_stats.hlc NOT NULL DEFAULT event_stats.hlc_now());
CREATE INDEX records_last_modified ON records (last_modified);
CREATE INDEX records_v ON records (v);
CREATE TABLE bookkeeping (
    feed text NOT NULL,
    at timestamptz NOT NULL DEFAULT event_stats.unique_timestamp());
});
	reset_model();
	my $replay = "ES_FEED_SEEDS=$seed ES_FEED_STEPS=$steps";

	for my $this_step (1 .. $steps)
	{
		$step = $this_step;
		my $r = rand();
		if ($r < 0.10) { poll('ts'); }
		elsif ($r < 0.20) { poll('hlc'); }
		elsif ($r < 0.22) { poll_holding(pick(@feeds)); }
		elsif ($r < 0.28 && @prepared) { finish_prepared(int(rand(@prepared))); }
		else { writer_step(int(rand($nwriters))); }
		$totals{steps}++;
	}

	# the end: every transaction ends, every prepared one is finished, and
	# each feed polls once more
	$step = 'end';
	for my $w (0 .. $nwriters - 1)
	{
		my $tx = $writers[$w]{tx} or next;
		if (rand() < 0.5)
		{
			run_ok($writers[$w]{s}, 'COMMIT;', "writer $w");
			apply_commit($w, $tx->{writes});
			$totals{commits}++;
		}
		else
		{
			run_ok($writers[$w]{s}, 'ROLLBACK;', "writer $w");
			forget_writes($tx->{writes});
			$totals{rollbacks}++;
		}
		$writers[$w]{tx} = undef;
	}
	finish_prepared(0) while @prepared;
	poll($_) for @feeds;

	my $model = join("\n",
		map { "$_|$committed{$_}{ts}|$committed{$_}{v}" } by_number(keys %committed));
	my $table = $node->safe_psql('postgres',
		    'SELECT id, event_stats.hlc_from_parts(last_modified, 4095)::bigint, '
		  . 'v::bigint FROM records ORDER BY id');
	is($table, $model,
		"seed $seed: the table holds exactly the model's committed rows ("
		  . scalar(keys %committed) . ')');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
		0, "seed $seed: no prepared transaction left");

	my %table_row = map { my @c = split /\|/; ($c[0] => { ts => $c[1], v => $c[2] }) }
	  split /\n/, $table;
	for my $f (@feeds)
	{
		my @bad;
		my $last = $feed{$f}{last};
		for my $id (by_number(keys %table_row))
		{
			push @bad, "row $id (" . version_text($table_row{$id}) . '): '
			  . (exists $last->{$id}
				? 'last delivered as ' . version_text($last->{$id})
				: 'never delivered')
			  unless exists $last->{$id}
			  && $last->{$id}{ts} == $table_row{$id}{ts}
			  && $last->{$id}{v} == $table_row{$id}{v};
		}
		for my $id (by_number(keys %$last))
		{
			push @bad, "row $id delivered, not in the table, not deleted by a committed transaction"
			  unless exists $table_row{$id} || $deleted{$id};
		}
		$totals{checks} += keys(%table_row) + keys(%$last);
		is(scalar(@bad), 0,
			"seed $seed: $feed_name{$f}: the last delivery of each id equals the table's row"
			  . " (polls $feed{$f}{polls}, ids delivered "
			  . scalar(keys %$last) . ')')
		  or diag(join("\n",
				"seed $seed: " . scalar(@bad) . " ids wrong (replay: $replay), the first ones:",
				grep { defined } @bad[ 0 .. 9 ]));
	}

	for my $kind (
		[ order => 'every poll in order: one horizon, not below its since, rows strictly '
			  . 'increasing in (since, horizon]' ],
		[ committed => 'every row delivered was its committed version at the time of the poll' ],
		[ twice => 'no (id, value) delivered twice' ],
		[ missed => 'every poll delivered exactly the committed rows in (since, horizon], '
			  . 'and none was left behind a horizon' ],
		[ horizon => 'no horizon reached a value of an open or prepared transaction, '
			  . 'no later value at or below a horizon' ],
		[ fault7 => 'every poll inside a transaction holding a clock value refused with 25000' ])
	{
		my ($k, $what) = @$kind;
		my $list = $problems{$k} // [];
		is(scalar(@$list), 0, "seed $seed: $what")
		  or diag(join("\n", scalar(@$list) . " failures (replay: $replay), the first ones:",
				grep { defined } @$list[ 0 .. 9 ]));
	}
}

$_->quit for @writer_sessions, $finisher, values %poller;

my @figures = qw(steps transactions commits rollbacks prepared commit_prepared
  rollback_prepared rollbacks_to_savepoint inserts updates deletes polls delivered
  late_ts late_hlc poll_holding refused_25000 checks);
$totals{$_} //= 0 for @figures;
diag(sprintf(
		"feed model, seeds %s: %d steps, %d transactions (%d COMMIT, %d ROLLBACK, "
		  . "%d PREPARE: %d COMMIT PREPARED and %d ROLLBACK PREPARED by another session; "
		  . "%d ROLLBACK TO SAVEPOINT), %d inserts, %d updates, %d deletes; "
		  . "%d polls delivered %d rows; late commits (committed behind a value a poll "
		  . "could already see): %d on last_modified, %d on v; %d polls inside a "
		  . "transaction holding a value, %d refused with 25000; %d checks",
		"@seeds", @totals{@figures}));
for my $k (
	qw(commits rollbacks commit_prepared rollback_prepared rollbacks_to_savepoint
	updates deletes late_ts late_hlc refused_25000))
{
	cmp_ok($totals{$k}, '>', 0, "the schedule ran: $k ($totals{$k})");
}

$node->stop;
done_testing();
