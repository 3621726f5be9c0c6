# Copyright: event_stats authors.  Helpers shared by the TAP tests of
# event_stats (test/t/*.pl), loaded from each test with
#
#   use FindBin;
#   use lib "$FindBin::RealBin/../perl";
#   use EventStatsTest;
#
# Nodes that preload the library, pgbench scripts and runs with their
# standard checks, amcheck of the extension's tables, the counters view,
# tracked tables' counts, psql scripts run in the background, kill -9 of a
# whole server, hybrid logical clock values streamed to files.

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
  check_amcheck counters_view
  tracking_tables_sql tracking_prefill_sql tracking_scripts tracking_counters
  events_id wait_for_events_id
  rows_and_value check_tracked_exact
  start_command finish_command start_psql_script psql_verbose
  drop_counters_in_batches
  kill_postmaster_and_children
  start_hlc_streams wait_for_hlc_streams finish_hlc_streams take_hlc_values
  check_new_hlc_values
  hlc_status hlc_max hlc_min);

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
	return start_command(\@cmd,
		total => defined $opt{transactions}
		? $opt{clients} * $opt{transactions}
		: undef);
}

# Starts @$cmd in the background, its stdout and stderr collected; returns
# a handle (with %more in it) for finish_command.
sub start_command
{
	my ($cmd, %more) = @_;
	my $run = { %more, cmd => $cmd, out => '', err => '' };
	$run->{h} = IPC::Run::start($cmd, '>', \$run->{out}, '2>', \$run->{err});
	return $run;
}

# Waits for a command of start_command to end (kill => 1: kills it first),
# notes its output and returns the handle with status (exit status), out
# and err (its stdout and stderr) filled in.
sub finish_command
{
	my ($run, %opt) = @_;
	$run->{h}->kill_kill if $opt{kill};
	$run->{h}->finish;
	$run->{status} = $? >> 8;
	note "@{$run->{cmd}}\nexit status $run->{status}\n$run->{out}\n$run->{err}";
	return $run;
}

# Waits for a pgbench of start_pgbench to end: finish_command.
sub finish_pgbench
{
	return finish_command(@_);
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

# --- tracked tables ---------------------------------------------------------

# The tables of the tracking tests, as SQL:
#   events   a plain table, with a unique column ukey for ON CONFLICT;
#   tags     a plain table with a foreign key to events ON DELETE CASCADE;
#   pevents  a partitioned table, RANGE (k) into pevents_lo (k < 50) and
#            pevents_hi, itself partitioned by HASH (client) into
#            pevents_hi_0 and pevents_hi_1: three leaves on two levels.
# Every table has a primary key (a replica identity for logical
# replication); events and pevents take their ids from events_id_seq.
sub tracking_tables_sql
{
	return q{
CREATE TABLE events (id bigserial PRIMARY KEY, client int NOT NULL,
                     k int NOT NULL, ukey int UNIQUE, payload text);
CREATE INDEX events_client_k ON events (client, k);
CREATE TABLE tags (id bigserial PRIMARY KEY,
                   event_id bigint NOT NULL REFERENCES events ON DELETE CASCADE,
                   client int NOT NULL);
CREATE INDEX tags_event_id ON tags (event_id);
CREATE TABLE pevents (id bigint NOT NULL DEFAULT nextval('events_id_seq'),
                      client int NOT NULL, k int NOT NULL, payload text,
                      PRIMARY KEY (id, k, client))
  PARTITION BY RANGE (k);
CREATE TABLE pevents_lo PARTITION OF pevents FOR VALUES FROM (0) TO (50);
CREATE TABLE pevents_hi PARTITION OF pevents FOR VALUES FROM (50) TO (100)
  PARTITION BY HASH (client);
CREATE TABLE pevents_hi_0 PARTITION OF pevents_hi
  FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE pevents_hi_1 PARTITION OF pevents_hi
  FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE INDEX pevents_client_k ON pevents (client, k);
};
}

# Rows of client -1 in the tables of tracking_tables_sql: 1000 in events,
# 1286 in pevents, 333 in tags.
sub tracking_prefill_sql
{
	return q{
INSERT INTO events(client, k, payload)
  SELECT -1, g % 100, 'before' FROM generate_series(1, 1000) g;
INSERT INTO pevents(client, k, payload)
  SELECT -1, g % 100, 'before' FROM generate_series(1, 1500) g;
DELETE FROM pevents WHERE id % 7 = 0;
INSERT INTO tags(event_id, client) SELECT id, -1 FROM events WHERE id % 3 = 0;
};
}

# pgbench scripts writing the tables of tracking_tables_sql, for
# start_pgbench: [text => weight, ...].  REPEATABLE READ unless said:
#   one       one row into events, with a tags row for it through a
#             data-modifying CTE, and one into pevents
#   multi     2..20 rows into events and pevents (INSERT ... SELECT)
#   delete    a few of the client's own rows of events (cascading to tags)
#             and of pevents
#   savepoint a row kept; rows inserted and deleted in a savepoint that is
#             rolled back (payload 'rolled back'); a row kept
#   move      UPDATE moving rows between pevents_lo and pevents_hi (a
#             delete and an insert in two leaves), an in-place UPDATE
#   merge     MERGE inserting the client's missing 'merge' rows of 4 keys
#             and deleting those that exist, in events and pevents
#   upsert    INSERT ... ON CONFLICT (ukey) DO UPDATE of 3 keys out of
#             1001..1100 (rows of client -2, which nobody deletes),
#             contended by every client, at READ COMMITTED
#   conflict  INSERT ... ON CONFLICT (ukey) DO NOTHING of 3 keys out of
#             1..200, contended by every client, at READ COMMITTED
# (At REPEATABLE READ, PostgreSQL itself raises serialization failures for
# ON CONFLICT on rows the snapshot cannot see.)  Clients delete and update
# only their own rows (client = :client_id), so no REPEATABLE READ
# transaction can fail for PostgreSQL's own reasons: with these scripts
# alone, any failed transaction is the extension's fault.
sub tracking_scripts
{
	my $rr = 'BEGIN ISOLATION LEVEL REPEATABLE READ;';
	return [
		# one
		qq{\\set k random(0, 99)
$rr
WITH e AS (INSERT INTO events(client, k, payload) VALUES (:client_id, :k, 'one')
           RETURNING id)
INSERT INTO tags(event_id, client) SELECT id, :client_id FROM e;
INSERT INTO pevents(client, k, payload) VALUES (:client_id, :k, 'one');
COMMIT;
} => 4,
		# multi
		qq{\\set k random(0, 99)
\\set n random(2, 20)
$rr
INSERT INTO events(client, k, payload)
  SELECT :client_id, (:k + g) % 100, 'multi' FROM generate_series(1, :n) g;
INSERT INTO pevents(client, k, payload)
  SELECT :client_id, (:k + g) % 100, 'multi' FROM generate_series(1, :n) g;
COMMIT;
} => 2,
		# delete
		qq{\\set k random(0, 99)
$rr
DELETE FROM events WHERE client = :client_id AND k BETWEEN :k AND :k + 4;
DELETE FROM pevents WHERE client = :client_id AND k BETWEEN :k AND :k + 4;
COMMIT;
} => 3,
		# savepoint
		qq{\\set k random(0, 99)
$rr
INSERT INTO events(client, k, payload) VALUES (:client_id, :k, 'kept');
SAVEPOINT s;
INSERT INTO events(client, k, payload)
  SELECT :client_id, g, 'rolled back' FROM generate_series(0, 9) g;
INSERT INTO pevents(client, k, payload)
  SELECT :client_id, g * 10, 'rolled back' FROM generate_series(0, 9) g;
DELETE FROM events WHERE client = :client_id AND k < 50;
DELETE FROM pevents WHERE client = :client_id;
ROLLBACK TO SAVEPOINT s;
INSERT INTO pevents(client, k, payload) VALUES (:client_id, :k, 'kept');
COMMIT;
} => 1,
		# move
		qq{\\set k random(0, 99)
$rr
UPDATE events SET payload = 'updated' WHERE client = :client_id AND k = :k;
UPDATE pevents SET k = 99 - k WHERE client = :client_id AND k BETWEEN :k AND :k + 2;
COMMIT;
} => 2,
		# merge
		qq{\\set k random(0, 96)
$rr
MERGE INTO events t
USING (SELECT :client_id AS client, g AS k FROM generate_series(:k, :k + 3) g) s
   ON t.client = s.client AND t.k = s.k AND t.payload = 'merge'
 WHEN MATCHED THEN DELETE
 WHEN NOT MATCHED THEN INSERT (client, k, payload) VALUES (s.client, s.k, 'merge');
MERGE INTO pevents t
USING (SELECT :client_id AS client, g AS k FROM generate_series(:k, :k + 3) g) s
   ON t.client = s.client AND t.k = s.k AND t.payload = 'merge'
 WHEN MATCHED THEN DELETE
 WHEN NOT MATCHED THEN INSERT (client, k, payload) VALUES (s.client, s.k, 'merge');
COMMIT;
} => 1,
		# upsert
		qq{\\set u random(1001, 1098)
BEGIN ISOLATION LEVEL READ COMMITTED;
INSERT INTO events(client, k, ukey, payload)
  SELECT -2, 0, g, 'upsert' FROM generate_series(:u, :u + 2) g
  ON CONFLICT (ukey) DO UPDATE SET k = events.k + 1;
COMMIT;
} => 1,
		# conflict
		qq{\\set u random(1, 198)
\\set k random(0, 99)
BEGIN ISOLATION LEVEL READ COMMITTED;
INSERT INTO events(client, k, ukey, payload)
  SELECT :client_id, :k, g, 'conflict' FROM generate_series(:u, :u + 2) g
  ON CONFLICT (ukey) DO NOTHING;
COMMIT;
} => 2
	];
}

# The counter that tracks each table of tracking_tables_sql, by table, as
# the tests name them when they track the tables.
sub tracking_counters
{
	return (
		events => 'public.events',
		tags => 'tags_rows',
		pevents => 'pevents_rows');
}

# How far writers have got: the last id taken from events_id_seq.
sub events_id
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT last_value FROM events_id_seq');
}

# Waits until writers have taken ids up to $target from events_id_seq.
sub wait_for_events_id
{
	my ($node, $target) = @_;
	$node->poll_query_until('postgres',
		"SELECT last_value >= $target FROM events_id_seq")
	  or die "load did not reach id $target";
	return;
}

# count(*) of $table and value() of counter $counter, read by one statement,
# hence in one snapshot: the list (rows, value).
sub rows_and_value
{
	my ($node, $db, $table, $counter) = @_;
	my $r = $node->safe_psql($db,
		    "SELECT (SELECT count(*) FROM $table) || ' ' || "
		  . "event_stats.value('$counter')");
	die "rows_and_value: unexpected answer \"$r\"" unless $r =~ /^-?\d+ -?\d+$/;
	return split / /, $r;
}

# One test: value() of counter $counter equals count(*) of $table in one
# snapshot (both numbers in the test name).  Returns the row count.
sub check_tracked_exact
{
	my ($node, $db, $what, $table, $counter) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($rows, $value) = rows_and_value($node, $db, $table, $counter);
	is($value, $rows,
		"$what: value('$counter') = $value, count(*) of $table = $rows");
	return $rows;
}

# --- psql scripts in the background ------------------------------------------

# Starts psql -X -q -v ON_ERROR_STOP=1 -f FILE against database $db of $node
# in the background, FILE holding $sql (so that COPY ... FROM STDIN reads
# its data from the script); returns a handle for finish_command.
my $psql_script_no = 0;

sub start_psql_script
{
	my ($node, $db, $sql) = @_;
	my $file = $node->basedir . '/psql_script_' . ++$psql_script_no . '.sql';
	append_to_file($file, $sql);
	return start_command(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-h', $node->host, '-p', $node->port, '-d', $db, '-f', $file
		]);
}

# --- kill -9 of a whole server -------------------------------------------------

# The process ids of the children of process $ppid, read from /proc.
sub postmaster_children
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $dh, '/proc') or die "cannot open /proc: $!";
	for my $pid (grep { /^\d+$/ } readdir $dh)
	{
		open(my $fh, '<', "/proc/$pid/stat") or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat;
		# pid (comm) state ppid ...; comm may contain spaces and parentheses
		next unless $stat =~ /\)\s+\S+\s+(\d+)/;
		push @kids, $pid if $1 == $ppid;
	}
	closedir $dh;
	return @kids;
}

# SIGKILL of $node's postmaster and all its children at the same moment
# (the postmaster stopped first, so that it forks no new child between the
# listing and the kill), waiting until every one of them is gone and
# reaped.  Returns the number of children killed.  Needs Linux /proc.
sub kill_postmaster_and_children
{
	my ($node) = @_;
	my ($pm) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
	die "no postmaster pid" unless $pm =~ /^\d+$/ && kill(0, $pm);
	kill 'STOP', $pm;
	my @kids = postmaster_children($pm);
	kill 'KILL', @kids;
	$node->kill9;    # SIGKILL $pm, and the node object knows it is down
	for my $pid ($pm, @kids)
	{
		my $tries = 0;
		while (-e "/proc/$pid")
		{
			die "process $pid still exists 60 s after SIGKILL" if ++$tries > 6000;
			select(undef, undef, undef, 0.01);
		}
	}
	return scalar @kids;
}

# --- hybrid logical clock: values streamed to files --------------------------
#
# What clients received from the clock, even when the server dies in the
# middle of their statements: each client streams values with COPY ... TO
# STDOUT into a file of its own, one raw value (hlc::bigint) a line, which
# psql writes row by row as they arrive (and flushes when its connection is
# lost).  Raw values are integers below 2^63 (until 2041), which Perl's
# numeric operators compare exactly; List::Util's min and max do not (they
# compare as floating point), hence hlc_max and hlc_min.

my $hlc_stream_no = 0;

# The largest of the raw clock values @_ (undef ones left out).
sub hlc_max
{
	my $max;
	for (grep { defined } @_) { $max = $_ if !defined $max || $_ > $max; }
	return $max;
}

# The smallest of the raw clock values @_ (undef ones left out).
sub hlc_min
{
	my $min;
	for (grep { defined } @_) { $min = $_ if !defined $min || $_ < $min; }
	return $min;
}

# The COPY of one streaming client: $rows values of hlc_now(), or with
# $unique of unique_timestamp(), each as the clock value it took (the last
# logical tick of its microsecond).  With $throttle, the client pauses 1 ms
# in place of every 200th value (some 90,000 values a second), so that the
# files stay small.  (generate_series in the select list, not in FROM,
# where a function scan would first materialize all its rows.)
sub hlc_stream_sql
{
	my ($rows, $unique, $throttle) = @_;
	my $value =
	  $unique
	  ? 'event_stats.hlc_from_parts(event_stats.unique_timestamp(), 4095)'
	  : 'event_stats.hlc_now()';
	my $where =
	  $throttle ? ' WHERE g % 200 <> 0 OR pg_sleep(0.001) IS NULL' : '';
	return "COPY (SELECT ${value}::bigint"
	  . " FROM (SELECT generate_series(1, $rows) AS g) s$where) TO STDOUT";
}

# Starts $n psql clients against database postgres of $node in the
# background (application_name hlc_stream), each streaming clock values
# into a file of its own.  %opt: unique, how many of the clients take
# unique_timestamp() instead of hlc_now() (none by default); rows, how many
# values each client takes, as fast as it can; without rows, each client
# streams until the server stops it, throttled (see hlc_stream_sql) unless
# throttle => 0.
# Returns a handle for wait_for_hlc_streams and finish_hlc_streams.
sub start_hlc_streams
{
	my ($node, $n, %opt) = @_;
	my $unique = $opt{unique} // 0;
	my $rows = $opt{rows} // 100_000_000;
	my @streams;
	for my $i (1 .. $n)
	{
		my $s = {
			file => $node->basedir . '/hlc_stream_' . ++$hlc_stream_no . '.txt',
			err => '',
			unique => $i <= $unique
		};
		$s->{cmd} = [
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d',
			$node->connstr('postgres')
			  . q{ application_name=hlc_stream options='-c jit=off'},
			'-c', hlc_stream_sql($rows, $s->{unique},
				$opt{throttle} // !defined $opt{rows})
		];
		$s->{h} = IPC::Run::start(
			$s->{cmd}, '<', \undef, '>', $s->{file}, '2>', \$s->{err},
			IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
		push @streams, $s;
	}
	return \@streams;
}

# Waits until every client of start_hlc_streams has received at least about
# $values values (its file holds as many lines of 20 bytes).
sub wait_for_hlc_streams
{
	my ($streams, $values) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	for my $s (@$streams)
	{
		while ((-s $s->{file} // 0) < 20 * $values)
		{
			die "hlc stream $s->{file} did not reach $values values: $s->{err}"
			  if time > $deadline;
			select(undef, undef, undef, 0.01);
		}
	}
	return;
}

# Waits for the clients of start_hlc_streams to end (kill => 1: kills them
# first) and reads their files, leaving out a last line without its newline
# (cut short).  Returns a summary: values (how many in all), min and max
# (raw), not_increasing (how many clients received a value not greater than
# the one before it), per_client (the number of values of each), status
# (each client's exit status) and err (their stderr, joined).
sub finish_hlc_streams
{
	my ($streams, %opt) = @_;
	my %sum = (
		values => 0,
		not_increasing => 0,
		per_client => [],
		status => [],
		err => '');
	for my $s (@$streams)
	{
		$s->{h}->kill_kill if $opt{kill};
		eval { $s->{h}->finish; };
		if ($@)
		{
			$s->{h}->kill_kill;
			die "hlc stream $s->{file} did not end: $@";
		}
		push @{ $sum{status} }, $? >> 8;
		$sum{err} .= $s->{err};

		open(my $fh, '<', $s->{file}) or die "cannot open $s->{file}: $!";
		my ($n, $prev, $increasing) = (0, undef, 1);
		while (my $line = <$fh>)
		{
			last unless chomp $line;    # cut short
			die "hlc stream $s->{file}: unexpected line \"$line\""
			  unless $line =~ /^\d{1,19}$/;
			$increasing = 0 if defined $prev && $line <= $prev;
			$sum{min} = $line if !defined $sum{min} || $line < $sum{min};
			$sum{max} = $line if !defined $sum{max} || $line > $sum{max};
			$prev = $line;
			$n++;
		}
		close $fh;
		$sum{values} += $n;
		$sum{not_increasing}++ unless $increasing;
		push @{ $sum{per_client} }, $n;
	}
	note "hlc streams: $sum{values} values ("
	  . join(', ', @{ $sum{per_client} })
	  . '), exit status '
	  . join(', ', @{ $sum{status} })
	  . ($sum{err} ne '' ? "\n$sum{err}" : '');
	return \%sum;
}

# $n clients at the same time each take $rows values of the clock of $node
# (%opt: unique, as for start_hlc_streams); dies unless every one of them
# took all its values.  Returns the summary of finish_hlc_streams.
sub take_hlc_values
{
	my ($node, $n, $rows, %opt) = @_;
	my $sum =
	  finish_hlc_streams(start_hlc_streams($node, $n, %opt, rows => $rows));
	die "take_hlc_values: a client failed: $sum->{err}"
	  if grep { $_ != 0 } @{ $sum->{status} };
	die 'take_hlc_values: a client missed values'
	  if grep { $_ != $rows } @{ $sum->{per_client} };
	return $sum;
}

# Four sessions of $node at once take 20,000 values each (two of hlc_now(),
# two of unique_timestamp()): all of them must exceed $max_seen, every
# value received before, and each session's must strictly increase.  Two
# tests, named after $what.  Returns the summary of finish_hlc_streams.
sub check_new_hlc_values
{
	my ($node, $what, $max_seen) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $sum = take_hlc_values($node, 4, 20_000, unique => 2);
	cmp_ok($sum->{min}, '>', $max_seen,
		"$what: 80000 new values from 4 sessions all exceed every value received before"
	);
	is($sum->{not_increasing}, 0,
		"$what: each session's values strictly increase");
	return $sum;
}

# hlc_status() of $node, as a hash: current and high_water_mark (raw
# values), wall_clock and drift (in seconds), backward_steps,
# refused_observations, and text (the whole row as text).
sub hlc_status
{
	my ($node) = @_;
	my $row = $node->safe_psql(
		'postgres', q{
SELECT current::bigint, high_water_mark::bigint,
       extract(epoch FROM wall_clock), extract(epoch FROM drift),
       backward_steps, refused_observations, s::text
  FROM event_stats.hlc_status() s});
	my %st;
	@st{
		qw(current high_water_mark wall_clock drift backward_steps
		  refused_observations text)
	} = split /\|/, $row, 7;
	return \%st;
}


# Runs $sql in database $db of $node as the superuser, or as role
# $opt{user}, with VERBOSITY=verbose (so messages carry their SQLSTATE):
# the list (exit status, stdout, stderr).  Never dies, so that every check
# runs even on broken code.
sub psql_verbose
{
	my ($node, $db, $sql, %opt) = @_;
	my ($out, $err) = ('', '');
	my $ret = $node->psql(
		$db, $sql,
		stdout => \$out,
		stderr => \$err,
		extra_params => [
			'-v', 'VERBOSITY=verbose',
			defined $opt{user} ? ('-U', $opt{user}) : ()
		]);
	return ($ret, $out, $err);
}

# Drops the counters named $prefix || g for g in $from .. $to (by $step),
# committing every 1000: a drop locks its counter to the end of its
# transaction, as DROP TABLE locks its table.
sub drop_counters_in_batches
{
	my ($node, $db, $prefix, $from, $to, $step) = @_;
	$step //= 1;
	$node->safe_psql(
		$db, qq{
	DO \$\$
	BEGIN
		FOR g IN $from .. $to BY $step LOOP
			PERFORM event_stats.drop_counter(('$prefix' || g)::event_stats.counter);
			IF g % 1000 = $from % 1000 THEN
				COMMIT;
			END IF;
		END LOOP;
	END \$\$;});
	return;
}

1;
