# Copyright: event_stats authors.
#
# A model-based randomized tester of tracked row counts.  The model is
# PostgreSQL itself: after every statement, inside the transaction (which
# sees its own rows) and after it ends, every tracked table's counter must
# equal count(*) of the table in the same snapshot.
#
# Each run draws random transactions over a small universe of tables that
# keep changing shape:
#   - mp, partitioned by list (k), with partitions mp_1 .. mp_4 that are
#     detached, attached, dropped (several in one DROP) and created again,
#     as partitions or as plain tables;
#   - legacy inheritance: parents ip1, ip2, children ic1 .. ic3 moved with
#     INHERIT / NO INHERIT (two subcommands in one ALTER TABLE too), a
#     grandchild ig under two parents (a diamond), children created with
#     several parents;
#   - uq, a plain table with a primary key, for ON CONFLICT;
# with track() / untrack() of any of them, INSERT (multi-row, ON CONFLICT),
# COPY, DELETE, UPDATE moving rows across partitions, MERGE and TRUNCATE
# (with CASCADE), and an ON SELECT rule that would turn an emptied, tracked
# table into a view (checked, then rolled back); in transactions of 1 to 5 statements at READ COMMITTED or
# REPEATABLE READ, some statements inside a savepoint that is rolled back,
# ending in COMMIT, ROLLBACK, or PREPARE TRANSACTION and COMMIT PREPARED /
# ROLLBACK PREPARED.  Statements that PostgreSQL or event_stats refuse are
# rolled back to a savepoint and the transaction goes on.  Some checks run
# with parallel plans forced.
#
# Fails on any mismatch, on an internal error (XX000) and on a crash.
# Seeded: ES_MODEL_SEEDS (default "1 2 3") and ES_MODEL_STEPS transactions
# per seed (default 150); every seed is printed, and a failure names the
# seed, the transaction and its SQL, so it replays.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my @seeds = split ' ', ($ENV{ES_MODEL_SEEDS} // '1 2 3');
my $steps = $ENV{ES_MODEL_STEPS} // 150;

my $node = event_stats_node('model', max_prepared_transactions => 10);
$node->safe_psql('postgres', 'CREATE EXTENSION event_stats');

# The check, in psql: one query per tracked table, at top level (so that
# parallel plans can be forced), printing MISMATCH lines; and a CHECKED
# line counting the tables checked.
my $check = <<'SQL';
SELECT 'CHECKED ' || count(*) FROM event_stats.counters WHERE tracks IS NOT NULL;
SELECT format($f$SELECT 'MISMATCH ' || %L || ': value ' || coalesce(v::text, 'NULL')
                        || ', count(*) ' || n
                   FROM (SELECT event_stats.value(%L::event_stats.counter) v, count(*) n
                           FROM %s) x
                  WHERE v IS DISTINCT FROM n$f$, c.name, c.name, c.tracks)
  FROM event_stats.counters c WHERE c.tracks IS NOT NULL ORDER BY c.name \gexec
SQL

my $parallel_on = "SET LOCAL parallel_setup_cost = 0;\n"
  . "SET LOCAL parallel_tuple_cost = 0;\n"
  . "SET LOCAL min_parallel_table_scan_size = 0;\n";
my $parallel_off = "SET LOCAL parallel_setup_cost = DEFAULT;\n"
  . "SET LOCAL parallel_tuple_cost = DEFAULT;\n"
  . "SET LOCAL min_parallel_table_scan_size = DEFAULT;\n";

my @inh_children = qw(ic1 ic2 ic3);
my @inh_parents = qw(ip1 ip2);
my @trackable = (qw(mp mp_1 mp_2 mp_3 mp_4 uq ig), @inh_parents, @inh_children);
my @writable = (qw(mp mp_1 mp_2 mp_3 mp_4 uq ig), @inh_parents, @inh_children);

sub pick { return $_[ int(rand(@_)) ]; }

sub setup_sql
{
	return <<'SQL';
DROP TABLE IF EXISTS mp, mp_1, mp_2, mp_3, mp_4, uq, ig, ic1, ic2, ic3, ip1, ip2 CASCADE;
CREATE TABLE mp (id int, k int) PARTITION BY LIST (k);
CREATE TABLE mp_1 PARTITION OF mp FOR VALUES IN (1);
CREATE TABLE mp_2 PARTITION OF mp FOR VALUES IN (2);
CREATE TABLE mp_3 PARTITION OF mp FOR VALUES IN (3);
CREATE TABLE mp_4 (id int, k int);
CREATE TABLE uq (id int PRIMARY KEY, k int);
CREATE TABLE ip1 (id int, k int);
CREATE TABLE ip2 (id int, k int);
CREATE TABLE ic1 () INHERITS (ip1);
CREATE TABLE ic2 () INHERITS (ip1, ip2);
CREATE TABLE ic3 (id int, k int);
CREATE TABLE ig () INHERITS (ic1, ic2);
INSERT INTO mp SELECT g, 1 + g % 3 FROM generate_series(1, 30) g;
INSERT INTO mp_4 SELECT g, 4 FROM generate_series(1, 5) g;
INSERT INTO ic1 SELECT g, 0 FROM generate_series(1, 4) g;
INSERT INTO ic2 SELECT g, 0 FROM generate_series(1, 6) g;
INSERT INTO ic3 SELECT g, 0 FROM generate_series(1, 3) g;
INSERT INTO ig SELECT g, 0 FROM generate_series(1, 2) g;
INSERT INTO ip1 VALUES (1, 0);
SELECT event_stats.track('mp');
SELECT event_stats.track('ip1');
SELECT event_stats.track('ip2');
SELECT event_stats.track('uq');
SQL
}

# One random statement.
sub random_statement
{
	my $r = rand();
	my $t = pick(@writable);
	my $k = 1 + int(rand(4));
	my $n = 1 + int(rand(20));

	if ($r < 0.22)
	{
		return "INSERT INTO $t SELECT g, $k FROM generate_series(1, $n) g;"
		  if rand() < 0.6;
		return "INSERT INTO $t VALUES ($n, $k), ($n + 1, $k), ($n + 2, $k);";
	}
	if ($r < 0.27)
	{
		return "INSERT INTO uq SELECT g, $k FROM generate_series(1, $n) g "
		  . "ON CONFLICT (id) DO NOTHING;" if rand() < 0.5;
		return "INSERT INTO uq SELECT g, $k FROM generate_series(1, $n) g "
		  . "ON CONFLICT (id) DO UPDATE SET k = excluded.k;";
	}
	if ($r < 0.31)
	{
		my $rows = join('', map { "$_\t$k\n" } 1 .. $n);
		return "COPY $t FROM STDIN;\n$rows\\.";
	}
	if ($r < 0.40)
	{
		my $m = 2 + int(rand(4));
		return "DELETE FROM $t WHERE id % $m = 0;";
	}
	if ($r < 0.45)
	{
		my $k2 = 1 + int(rand(4));
		return "UPDATE mp SET k = $k2 WHERE k = $k AND id % 2 = 0;";
	}
	if ($r < 0.49)
	{
		return "MERGE INTO $t USING (SELECT g AS id FROM generate_series(1, $n) g) s "
		  . "ON $t.id = s.id WHEN MATCHED AND s.id % 2 = 0 THEN DELETE "
		  . "WHEN NOT MATCHED THEN INSERT VALUES (s.id, $k);";
	}
	if ($r < 0.54)
	{
		return "TRUNCATE $t;" if rand() < 0.6;
		return "TRUNCATE $t, " . pick(@writable) . " CASCADE;";
	}
	if ($r < 0.60)
	{
		return "ALTER TABLE mp DETACH PARTITION mp_$k;";
	}
	if ($r < 0.66)
	{
		return "ALTER TABLE mp ATTACH PARTITION mp_$k FOR VALUES IN ($k);";
	}
	if ($r < 0.70)
	{
		my @drop = ("mp_$k");
		push @drop, 'mp_' . (1 + ($k % 4)) if rand() < 0.5;
		push @drop, pick(@inh_children) if rand() < 0.3;
		return 'DROP TABLE ' . join(', ', @drop) . ';';
	}
	if ($r < 0.74)
	{
		return rand() < 0.6
		  ? "CREATE TABLE mp_$k PARTITION OF mp FOR VALUES IN ($k);"
		  : "CREATE TABLE mp_$k (id int, k int);";
	}
	if ($r < 0.83)
	{
		my $c = pick(@inh_children, 'ig');
		my @cmds;
		for (1 .. (rand() < 0.5 ? 1 : 2))
		{
			push @cmds, (rand() < 0.5 ? 'INHERIT ' : 'NO INHERIT ')
			  . pick(@inh_parents, @inh_children);
		}
		return "ALTER TABLE $c " . join(', ', @cmds) . ';';
	}
	if ($r < 0.86)
	{
		my $c = pick(@inh_children, 'ig');
		return rand() < 0.5
		  ? "CREATE TABLE $c () INHERITS (" . join(', ', @inh_parents) . ');'
		  : "CREATE TABLE $c (id int, k int);";
	}
	if ($r < 0.92)
	{
		return "SELECT event_stats.track('" . pick(@trackable) . "');";
	}
	if ($r < 0.94)
	{
		# an ON SELECT rule turns an empty table into a view; always undone,
		# so that the universe keeps its tables
		my $v = pick(map({ "mp_$_" } 1 .. 4), @inh_children);
		return "SAVEPOINT to_view;\nDELETE FROM $v;\n"
		  . "DO \$\$BEGIN PERFORM event_stats.track('$v'); "
		  . "EXCEPTION WHEN duplicate_object THEN NULL; END\$\$;\n"
		  . "CREATE RULE \"_RETURN\" AS ON SELECT TO $v DO INSTEAD SELECT 1 AS id, 1 AS k;\n"
		  . $check . "ROLLBACK TO SAVEPOINT to_view;";
	}
	return "SELECT event_stats.untrack('" . pick(@trackable) . "');";
}

# One random transaction, as a psql script; a second script finishes a
# prepared one.  Statements refused are rolled back to a savepoint.
sub random_transaction
{
	my ($gid) = @_;
	my $iso = rand() < 0.5 ? 'READ COMMITTED' : 'REPEATABLE READ';
	my $sql = "\\set VERBOSITY verbose\nBEGIN ISOLATION LEVEL $iso;\n";
	my $finish = '';

	for my $i (1 .. 1 + int(rand(5)))
	{
		my $stmt = random_statement();
		if (rand() < 0.15)
		{
			# a savepoint rolled back: whatever the statement did is undone
			$sql .= "SAVEPOINT undo;\n$stmt\nROLLBACK TO SAVEPOINT undo;\n";
		}
		else
		{
			$sql .= "SAVEPOINT s;\n$stmt\n\\if :ERROR\nROLLBACK TO SAVEPOINT s;\n"
			  . "\\else\nRELEASE SAVEPOINT s;\n\\endif\n";
		}
		my $par = rand() < 0.25;
		$sql .= $parallel_on if $par;
		$sql .= $check;
		$sql .= $parallel_off if $par;
	}

	my $end = rand();
	if ($end < 0.6)
	{
		$sql .= "COMMIT;\n";
	}
	elsif ($end < 0.8)
	{
		$sql .= "ROLLBACK;\n";
	}
	else
	{
		$sql .= "PREPARE TRANSACTION '$gid';\n";
		$finish = "\\set VERBOSITY verbose\n"
		  . (rand() < 0.6 ? "COMMIT PREPARED '$gid';\n" : "ROLLBACK PREPARED '$gid';\n");
	}
	return ($sql, $finish);
}

my ($checks, $mismatches, $internal, $transactions, $statements_refused, $views_refused) =
  (0, 0, 0, 0, 0, 0);
my (@mismatch_cases, @internal_cases);

# Runs a script, then the check outside any transaction -- except after a
# PREPARE, whose locks the check would wait for: the script that finishes
# the prepared transaction checks.
sub run_script
{
	my ($seed, $step, $sql, $check_after) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', $sql . "\n" . ($check_after ? $check : ''),
		stdout => \$out, stderr => \$err, on_error_stop => 0);
	$checks += $1 while $out =~ /^CHECKED (\d+)$/mg;
	$statements_refused += () = $err =~ /ERROR:  [0-9A-Z]{5}: /g;
	$views_refused += () = $err =~ /ERROR:  55000: cannot convert tracked table/g;
	my @bad = $out =~ /^(MISMATCH .*)$/mg;
	my @xx = $err =~ /(ERROR:  XX000: .*)$/mg;
	$mismatches += @bad;
	$internal += @xx;
	push @mismatch_cases,
	  "seed $seed, transaction $step:\n" . join("\n", @bad) . "\n--- its SQL:\n$sql"
	  if @bad && @mismatch_cases < 3;
	push @internal_cases,
	  "seed $seed, transaction $step:\n" . join("\n", @xx) . "\n--- its SQL:\n$sql"
	  if @xx && @internal_cases < 3;
	return;
}

for my $seed (@seeds)
{
	srand($seed);
	note "model seed $seed, $steps transactions";
	$node->safe_psql('postgres', setup_sql());
	for my $step (1 .. $steps)
	{
		my ($sql, $finish) = random_transaction("model_${seed}_$step");
		run_script($seed, $step, $sql, $finish eq '');
		run_script($seed, $step, $finish, 1) if $finish ne '';
		$transactions++;
	}
	# nothing left prepared for the next seed
	$node->psql('postgres', "ROLLBACK PREPARED '$_'")
	  for split /\n/, $node->safe_psql('postgres', 'SELECT gid FROM pg_prepared_xacts');
}

note "model: $transactions transactions, $checks counter checks, "
  . "$statements_refused statements refused and rolled back to a savepoint";
cmp_ok($checks, '>', 1000, 'the tester checked counters (' . $checks . ' checks)');
cmp_ok($views_refused, '>', 0,
	"an ON SELECT rule reached event_stats' refusal to make a tracked table a view ($views_refused times)");
is($mismatches, 0, 'every tracked counter equalled count(*) in every check')
  or diag(join("\n\n", @mismatch_cases));
is($internal, 0, 'no internal error (XX000)')
  or diag(join("\n\n", @internal_cases));
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC/, 'no backend crashed');

$node->stop;
done_testing();
