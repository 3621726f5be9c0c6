# Copyright: event_stats authors.  Helpers shared by the TAP tests of
# event_stats (test/t/*.pl), loaded from each test with
#
#   use FindBin;
#   use lib "$FindBin::RealBin/../perl";
#   use EventStatsTest;
#
# Nodes that preload the library, pgbench scripts and runs with their
# standard checks, amcheck of the extension's tables, the counters view.

package EventStatsTest;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(
  event_stats_node event_stats_conf create_events_schema
  increment_calls commit_script rollback_script
  start_pgbench finish_pgbench run_pgbench check_pgbench_clean
  check_amcheck counters_view);

# --- nodes ----------------------------------------------------------------

# The settings of every test node, in this order, unless a test overrides
# them.  (PostgreSQL::Test::Cluster's own init writes log_statement = all.)
my @DEFAULT_CONF = (
	[ max_connections => 80 ],
	[ log_statement => 'none' ],
	[ shared_buffers => '32MB' ]);

# Appends to $node's postgresql.conf the preload of event_stats and the
# settings above, overridden by %conf (name => value; further names follow
# in sorted order; a value of undef leaves a default setting out).
sub event_stats_conf
{
	my ($node, %conf) = @_;
	my %value = ((map { @$_ } @DEFAULT_CONF), %conf);
	my @names = map { $_->[0] } @DEFAULT_CONF;
	my %is_default = map { $_ => 1 } @names;
	push @names, sort grep { !$is_default{$_} } keys %conf;
	$node->append_conf('postgresql.conf',
		    "\nshared_preload_libraries = 'event_stats'\n"
		  . join('', map { "$_ = $value{$_}\n" } grep { defined $value{$_} } @names));
	return;
}

# A new node $name that preloads event_stats, started.  %conf as for
# event_stats_conf, but for the key init: options for the node's init,
# e.g. init => { allows_streaming => 1 }.
sub event_stats_node
{
	my ($name, %conf) = @_;
	my $init = delete $conf{init} // {};
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%$init);
	event_stats_conf($node, %conf);
	$node->start;
	return $node;
}

# Creates in database $db of $node the extension (and amcheck too, for
# check_amcheck, with amcheck => 1) and the table events, whose rows the
# tests count alongside the counters.
sub create_events_schema
{
	my ($node, $db, %opt) = @_;
	$node->safe_psql(
		$db,
		"CREATE EXTENSION event_stats;\n"
		  . ($opt{amcheck} ? "CREATE EXTENSION amcheck;\n" : '')
		  . "CREATE TABLE events (id bigserial PRIMARY KEY, payload text);\n");
	return;
}

# --- pgbench scripts --------------------------------------------------------

# One "SELECT event_stats.increment(...)" line per counter, each with the
# argument list tail $delta ('' for one, ', :d' for pgbench's variable d).
sub increment_calls
{
	my ($delta, @counters) = @_;
	return join('',
		map { "SELECT event_stats.increment('$_'$delta);\n" } @counters);
}

# A transaction at isolation $level that inserts one events row ('x') and
# increments each of @counters by one, committed.
sub commit_script
{
	my ($level, @counters) = @_;
	return "BEGIN ISOLATION LEVEL $level;\n"
	  . "INSERT INTO events(payload) VALUES ('x');\n"
	  . increment_calls('', @counters)
	  . "COMMIT;\n";
}

# A transaction at isolation $level that inserts one events row ('rolled
# back') and increments each of @counters by a random delta, rolled back.
sub rollback_script
{
	my ($level, @counters) = @_;
	return "\\set d random(1, 1000)\n"
	  . "BEGIN ISOLATION LEVEL $level;\n"
	  . "INSERT INTO events(payload) VALUES ('rolled back');\n"
	  . increment_calls(', :d', @counters)
	  . "ROLLBACK;\n";
}

# --- pgbench runs -----------------------------------------------------------

my $script_no = 0;

# Starts pgbench -n with 2 threads against $node in the background and
# returns a handle for finish_pgbench.  $scripts: the text of one script,
# or [text => weight, ...], scripts numbered 0, 1, ... in that order (as in
# pgbench's per-transaction log).  %opt: clients; transactions (per client,
# -t) or seconds (-T); db ('postgres' by default); args, further options.
sub start_pgbench
{
	my ($node, $scripts, %opt) = @_;
	die 'start_pgbench: clients, and transactions or seconds, please'
	  unless $opt{clients}
	  && (defined $opt{transactions} xor defined $opt{seconds});

	my @weighted = ref $scripts ? @$scripts : ($scripts, undef);
	my @files;
	while (@weighted)
	{
		my ($text, $weight) = splice(@weighted, 0, 2);
		my $file = $node->basedir . '/pgbench_' . ++$script_no . '.sql';
		append_to_file($file, $text);
		push @files, '-f', defined $weight ? "$file\@$weight" : $file;
	}

	my @cmd = (
		'pgbench', '-n', '-c', $opt{clients}, '-j', 2,
		defined $opt{transactions}
		? ('-t', $opt{transactions})
		: ('-T', $opt{seconds}),
		@{ $opt{args} // [] },
		'-h', $node->host, '-p', $node->port,
		@files, $opt{db} // 'postgres');
	my $run = {
		cmd => \@cmd,
		out => '',
		err => '',
		total => defined $opt{transactions}
		? $opt{clients} * $opt{transactions}
		: undef,
	};
	$run->{h} = IPC::Run::start(\@cmd, '>', \$run->{out}, '2>', \$run->{err});
	return $run;
}

# Waits for a pgbench of start_pgbench to end (kill => 1: kills it first),
# notes its output and returns the handle with status (exit status), out
# and err (its stdout and stderr) filled in.
sub finish_pgbench
{
	my ($run, %opt) = @_;
	$run->{h}->kill_kill if $opt{kill};
	$run->{h}->finish;
	$run->{status} = $? >> 8;
	note "@{$run->{cmd}}\nexit status $run->{status}\n$run->{out}\n$run->{err}";
	return $run;
}

# Runs pgbench to its end: start_pgbench and finish_pgbench.
sub run_pgbench
{
	return finish_pgbench(start_pgbench(@_));
}

# The standard checks of a finished pgbench run with a transaction count:
# exit status 0, every transaction of every client processed, none failed
# (a serialization failure or a deadlock counts as failed).  Three tests.
sub check_pgbench_clean
{
	my ($run, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $total = $run->{total}
	  // die 'check_pgbench_clean: pgbench was run for a time, not a count';
	is($run->{status}, 0, "$what: pgbench exit status 0");
	like(
		$run->{out},
		qr/^number of transactions actually processed: $total\/$total$/m,
		"$what: all $total transactions processed");
	like(
		$run->{out},
		qr/^number of failed transactions: 0 \(0\.000%\)$/m,
		"$what: pgbench reports 0 failed transactions");
	return;
}

# --- checks on the database ---------------------------------------------

# One test: amcheck, in database $db, of the extension's tables and of
# @{$opt{also}}: verify_heapam (with TOAST) finds no corrupt tuple in each
# table, and every btree index of each table passes bt_index_check with
# heapallindexed, or with parent => 1 bt_index_parent_check with
# heapallindexed and rootdescend (stronger, but it takes a ShareLock: not
# while a prepared transaction holds a row lock on the table).
sub check_amcheck
{
	my ($node, $db, $what, %opt) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $check =
	  $opt{parent}
	  ? q{bt_index_parent_check('%s', true, true)}
	  : q{bt_index_check('%s', true)};
	my (@sql, @want);
	for my $table ('event_stats.counter_definitions',
		'event_stats.counter_shards', @{ $opt{also} // [] })
	{
		my @indexes = split /\n/,
		  $node->safe_psql(
			$db, qq{
SELECT i.indexrelid::regclass FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am a ON a.oid = c.relam
 WHERE i.indrelid = '$table'::regclass AND a.amname = 'btree'
 ORDER BY 1});
		die "check_amcheck: $table has no btree index" unless @indexes;
		push @sql, qq{SELECT '$table: ' || count(*) || ' corrupt tuples'
		                FROM verify_heapam('$table', check_toast => true);};
		push @want, "$table: 0 corrupt tuples";
		for my $index (@indexes)
		{
			# (the amcheck functions are volatile: the subquery's call is
			# kept although its result is not used)
			push @sql, qq{SELECT '$index: checked' FROM (SELECT }
			  . sprintf($check, $index) . ') x;';
			push @want, "$index: checked";
		}
	}
	is($node->safe_psql($db, join("\n", @sql)),
		join("\n", @want),
		"$what: amcheck finds the heaps and indexes consistent");
	return;
}

# The counters view as text: one "name|id|value|shards" line per counter,
# ordered by name.
sub counters_view
{
	my ($node, $db) = @_;
	return $node->safe_psql(
		$db, q{
SELECT string_agg(format('%s|%s|%s|%s', name, counter::integer, value, shards),
                  E'\n' ORDER BY name)
  FROM event_stats.counters});
}

1;
