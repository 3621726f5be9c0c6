# Copyright: event_stats authors.  TAP test of event_stats.
#
# 011_hlc_restart_crash.pl -- the hybrid logical clock never repeats a
# value across restarts, crashes and steps of the wall clock.
#
# The check, after every event: every value the server hands out after it
# is greater than every value any client received before it.  Clients
# stream values (hlc_now(), or unique_timestamp() as the clock value it
# took) with COPY ... TO STDOUT into files while the event happens, so what
# they received is known even when the server dies in the middle of their
# statements; afterwards four sessions at once take 80,000 new values,
# whose minimum must exceed the maximum of everything received so far in
# this test.  Every session's values must also strictly increase.
#
#   1. Clean restart (stop -m fast under load), the clock first pushed 5 s
#      ahead of the wall clock with hlc_observe() so that the wall clock
#      cannot pass the old values during the restart (else a lost state
#      file would go unnoticed): the first value exceeds the observed one
#      and every value received, and is less than 1 s after the last value
#      received -- a clean shutdown persists the exact last value, so the
#      clock resumes where it was, not at the ceiling up to 3 s ahead;
#      afterwards high_water_mark > current.
#   2. Restart with the system clock 1 hour behind (libfaketime FAKETIME=-1h
#      for the server only): the server's clock_timestamp() is shown to be
#      1 h behind the test's own clock (else the check would be vacuous);
#      new hlc_now() and unique_timestamp() values still exceed all earlier
#      ones, and hlc_status().drift is about 1 h.  Restart without it.
#   3. kill -9 of the postmaster and all its children while 6 clients
#      stream values; crash recovery ran (server log); values after exceed
#      values before.
#   4. kill -9 of one streaming backend: the postmaster resets shared memory
#      by itself (crash restart, server log); values after exceed values
#      before.
#   5. The wall clock steps back 10 minutes while the server runs
#      (libfaketime reading its offset from a file, re-read on every call)
#      and two clients stream values across the step: their values keep
#      strictly increasing, new values exceed all earlier ones,
#      hlc_status().backward_steps went up by exactly 1 and drift grew by
#      about 10 minutes.
#   6. A corrupt state file ($PGDATA/event_stats_hlc): garbage, a flipped
#      bit (CRC mismatch), truncated to 12 bytes, empty.  Each time the
#      server starts with a WARNING, hlc_now(), unique_timestamp() and
#      hlc_observe() fail with SQLSTATE XX001 and the hint, hlc_status()
#      works.  The good file put back: values resume above all earlier
#      ones.  A corrupt file after a kill -9 is rewritten by crash recovery
#      replaying the ceiling's WAL record: values resume above all earlier
#      ones.  Last (it forgets the ceiling): the file removed, the clock
#      resumes from the wall clock and writes a new file.
#
# Scenarios 2 and 5 are skipped when libfaketime is not installed.
#
# The node runs with the default event_stats.hlc_max_drift (5 min): with
# the wall clock an hour or ten minutes behind the clock, callers go on
# without waiting, since the bound is measured from the highest wall-clock
# time seen, not from the stepped-back one (014 tests the bound).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;
use Time::HiRes qw(time);
use Math::BigInt;

# the postmaster's children are found in /proc
plan skip_all => 'this test needs Linux /proc' unless -r '/proc/self/stat';

my ($faketime) = grep { -e } glob('/usr/lib/*/faketime/libfaketime.so.1');

my $loaders = 6;

my $node = event_stats_node(
	'hlc_crash',
	max_connections => 40,
	restart_after_crash => 'on');
$node->safe_psql('postgres', 'CREATE EXTENSION event_stats');
my $state_file = $node->data_dir . '/event_stats_hlc';

# The largest value any client has received so far.
my $max_seen;

sub saw
{
	$max_seen = hlc_max($max_seen, @_);
	return;
}

# check_new_hlc_values against everything received so far; the new values
# count as received.  Two tests.
sub check_new_values
{
	my ($what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $sum = check_new_hlc_values($node, $what, $max_seen);
	saw($sum->{max});
	return $sum;
}

# Streams of $n clients ($unique of them of unique_timestamp()), waited for
# until each has received 20,000 values.
sub start_load
{
	my ($n, $unique) = @_;
	my $streams = start_hlc_streams($node, $n, unique => $unique);
	wait_for_hlc_streams($streams, 20_000);
	return $streams;
}

# The end of the streams of start_load, the server stopped or dead: every
# client received its 20,000 values or more, each client's strictly
# increasing.  Two tests.  Returns the summary.
sub finish_load
{
	my ($streams, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $sum = finish_hlc_streams($streams);
	ok(!(grep { $_ < 20_000 } @{ $sum->{per_client} }),
		"$what: each of the clients received at least 20000 values ($sum->{values} in all)");
	is($sum->{not_increasing}, 0,
		"$what: each client's values strictly increase");
	saw($sum->{max});
	return $sum;
}

# The first value of a new session from $call (hlc_now() or
# unique_timestamp()), raw, and how far its physical part is ahead of the
# wall clock read just before the call, in seconds.
sub first_value
{
	my ($call) = @_;
	my $value =
	  $call eq 'unique_timestamp'
	  ? 'event_stats.hlc_from_parts(event_stats.unique_timestamp(), 4095)'
	  : 'event_stats.hlc_now()';
	my $r = $node->safe_psql(
		'postgres', qq{
WITH w AS MATERIALIZED (SELECT clock_timestamp() AS t),
     h AS MATERIALIZED (SELECT $value AS v FROM w)
SELECT h.v::bigint, extract(epoch FROM h.v::timestamptz - w.t) FROM h, w});
	return split /\|/, $r;
}

# SQLSTATE and stderr of $sql on $node, run with VERBOSITY verbose.
sub sql_error
{
	my ($sql) = @_;
	my ($ret, $out, $err) =
	  $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	my ($state) = $err =~ /ERROR:  ([0-9A-Z]{5}):/;
	return ($state // "none (exit $ret)", $err);
}

# The server's clock, seconds behind the test's own clock.
sub server_clock_behind
{
	my $server = $node->safe_psql('postgres',
		'SELECT extract(epoch FROM clock_timestamp())');
	return time() - $server;
}

saw(take_hlc_values($node, 4, 10_000, unique => 2)->{max});

# --- 1. clean restart ---------------------------------------------------------

{
	my $observed = $node->safe_psql('postgres',
		q{SELECT event_stats.hlc_observe(event_stats.hlc_from_parts(clock_timestamp() + interval '5 s'))::bigint}
	);
	saw($observed);
	my $load = start_load($loaders, 0);
	my $before = hlc_status($node);
	note "1. before the stop: $before->{text}";
	$node->stop('fast');
	$node->start;
	my ($first, $ahead) = first_value('hlc_now');
	my $sum = finish_load($load, '1. clean restart');
	note "1. first value after the restart: $first, ${ahead} s ahead of the wall clock";
	cmp_ok($first, '>', $max_seen,
		'1. the first value after a clean restart exceeds every value received before');
	cmp_ok($first, '>', $observed,
		'1. including the value observed 5 s ahead of the wall clock');
	my $gap_us = (Math::BigInt->new($first) - Math::BigInt->new($sum->{max})) >> 12;
	cmp_ok($gap_us, '<', 1_000_000,
		"1. it resumes where the clock was, not a window ahead ($gap_us us after the last value received)"
	);
	saw($first);
	my $after = hlc_status($node);
	note "1. after the restart: $after->{text}";
	cmp_ok($after->{high_water_mark}, '>', $after->{current},
		'1. high_water_mark > current after the restart');
	check_new_values('1. clean restart');
}

# --- 2. restart with the clock 1 hour behind ------------------------------------

SKIP:
{
	skip 'libfaketime is not installed', 11 unless $faketime;

	my $load = start_load($loaders, 2);
	my $before = hlc_status($node);
	note "2. before the stop: $before->{text}";
	$node->stop('fast');
	{
		local %ENV = (
			%ENV,
			LD_PRELOAD => $faketime,
			FAKETIME => '-1h',
			FAKETIME_DONT_FAKE_MONOTONIC => 1);
		$node->start;
	}
	finish_load($load, '2. stop under load');
	my $behind = server_clock_behind();
	note "2. the server's clock is $behind s behind";
	ok($behind > 3590 && $behind < 3610,
		"2. libfaketime works: the server's clock is 1 h behind ($behind s)");

	my ($first, $ahead) = first_value('hlc_now');
	note "2. first hlc_now() after the restart: $first, $ahead s ahead";
	cmp_ok($first, '>', $max_seen,
		'2. under a clock 1 h behind, the first hlc_now() exceeds every value received before'
	);
	saw($first);
	my ($first_u) = first_value('unique_timestamp');
	cmp_ok($first_u, '>', $max_seen,
		'2. and so does the first unique_timestamp()');
	saw($first_u);
	check_new_values('2. clock 1 h behind');
	my $st = hlc_status($node);
	note "2. $st->{text}";
	# 1 h, less the restart's duration, plus the lead the values had over
	# the wall clock (the 5 s of scenario 1, what is left of it)
	ok($st->{drift} > 3590 && $st->{drift} < 3615,
		"2. hlc_status().drift is about 1 h ($st->{drift} s)");

	$node->stop('fast');
	$node->start;
	cmp_ok(server_clock_behind(), '<', 10,
		'2. restarted without libfaketime: the server\'s clock is right again');
	check_new_values('2. restarted without libfaketime');
}

# --- 3. kill -9 of the postmaster and all its children --------------------------

{
	my $load = start_load($loaders, 2);
	my $killed = kill_postmaster_and_children($node);
	note "3. killed the postmaster and $killed children";
	my $log_offset = -s $node->logfile;
	$node->start;
	my ($first, $ahead) = first_value('hlc_now');
	finish_load($load, '3. kill -9');
	ok( $node->log_contains(qr/database system was interrupted/, $log_offset)
		  && $node->log_contains(qr/redo starts at/, $log_offset),
		'3. the server ran crash recovery');
	note "3. first value after crash recovery: $first, $ahead s ahead";
	cmp_ok($first, '>', $max_seen,
		'3. the first value after kill -9 exceeds every value received before');
	saw($first);
	check_new_values('3. after kill -9');
}

# --- 4. kill -9 of one backend ---------------------------------------------------

{
	my $load = start_load($loaders, 2);
	my $log_offset = -s $node->logfile;
	my $victim = $node->safe_psql(
		'postgres', q{
SELECT pid FROM pg_stat_activity
 WHERE application_name = 'hlc_stream' AND state = 'active'
 ORDER BY pid LIMIT 1});
	like($victim, qr/^\d+$/, '4. found a streaming backend');
	kill 'KILL', $victim;
	$node->poll_query_until('postgres', 'SELECT 1', '1')
	  or die 'server did not come back after a backend crash';
	my ($first, $ahead) = first_value('hlc_now');
	finish_load($load, '4. one backend killed');
	ok( $node->log_contains(
			qr/all server processes terminated; reinitializing/, $log_offset),
		'4. the postmaster reset shared memory');
	note "4. first value after the crash restart: $first, $ahead s ahead";
	cmp_ok($first, '>', $max_seen,
		'4. the first value after the crash restart exceeds every value received before'
	);
	saw($first);
	check_new_values('4. after a backend crash');
}

# --- 5. the wall clock steps back while the server runs --------------------------

SKIP:
{
	skip 'libfaketime is not installed', 12 unless $faketime;

	my $rc = $node->basedir . '/faketime.rc';
	my $set_offset = sub {
		my ($offset) = @_;
		# replaced at once: libfaketime re-reads it on every call
		open(my $fh, '>', "$rc.tmp") or die "cannot write $rc.tmp: $!";
		print $fh "$offset\n";
		close $fh or die "cannot write $rc.tmp: $!";
		rename("$rc.tmp", $rc) or die "cannot rename $rc.tmp: $!";
	};
	$set_offset->('+0');
	$node->stop('fast');
	{
		local %ENV = (
			%ENV,
			LD_PRELOAD => $faketime,
			FAKETIME_TIMESTAMP_FILE => $rc,
			FAKETIME_NO_CACHE => 1,
			FAKETIME_DONT_FAKE_MONOTONIC => 1);
		delete $ENV{FAKETIME};
		$node->start;
	}
	cmp_ok(abs(server_clock_behind()), '<', 10,
		'5. the server runs under libfaketime at offset +0');
	check_new_values('5. under libfaketime, before the step');
	my $before = hlc_status($node);
	note "5. before the step: $before->{text}";

	# (not throttled: pg_sleep() would sleep until the wall clock is back)
	my $streams = start_hlc_streams($node, 2, unique => 1, throttle => 0);
	wait_for_hlc_streams($streams, 5000);
	$set_offset->('-10m');
	my $behind = server_clock_behind();
	ok($behind > 590 && $behind < 610,
		"5. the server's wall clock stepped back 10 minutes ($behind s)");
	# 5,000 more values for each client, after the step
	for my $s (@$streams)
	{
		wait_for_hlc_streams([$s], int((-s $s->{file}) / 20) + 5000);
	}
	$node->safe_psql('postgres',
		q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		   WHERE application_name = 'hlc_stream'});
	my $sum = finish_hlc_streams($streams);
	is($sum->{not_increasing}, 0,
		"5. two clients' values strictly increase across the step ($sum->{values} values)"
	);
	saw($sum->{max});
	check_new_values('5. after the step back');
	my $after = hlc_status($node);
	note "5. after the step: $after->{text}";
	is($after->{backward_steps} - $before->{backward_steps},
		1, '5. hlc_status().backward_steps went up by exactly 1');
	my $more = $after->{drift} - $before->{drift};
	ok($more > 590 && $more < 610,
		"5. hlc_status().drift grew by about 10 minutes ($more s)");

	$node->stop('fast');
	$node->start;
	cmp_ok(abs(server_clock_behind()), '<', 10,
		'5. restarted without libfaketime: the server\'s clock is right again');
	check_new_values('5. restarted without libfaketime');
}

# --- 6. a corrupt state file -------------------------------------------------------

{
	ok(-s $state_file == 28, '6. the state file holds 28 bytes (no prepared transaction holds)');
	$node->stop('fast');
	my $good = slurp_file($state_file);
	my $flipped = $good;
	substr($flipped, 8, 1) = chr(ord(substr($flipped, 8, 1)) ^ 1);

	for my $corrupt (
		[ 'garbage' => 'this is not a state file' ],
		[ 'a flipped bit' => $flipped ],
		[ 'truncated to 12 bytes' => substr($good, 0, 12) ],
		[ 'empty' => '' ])
	{
		my ($what, $content) = @$corrupt;
		open(my $fh, '>', $state_file) or die "cannot write $state_file: $!";
		binmode $fh;
		print $fh $content;
		close $fh or die "cannot write $state_file: $!";
		my $log_offset = -s $node->logfile;
		$node->start;
		ok( $node->log_contains(
				qr/WARNING:  hybrid logical clock state file "event_stats_hlc" is corrupt/,
				$log_offset),
			"6. state file $what: WARNING in the server log");
		for my $call ('event_stats.hlc_now()', 'event_stats.unique_timestamp()',
			q{event_stats.hlc_observe('2000-01-01T00:00:00.000000Z/0000')})
		{
			my ($state, $err) = sql_error("SELECT $call");
			is($state, 'XX001', "6. state file $what: $call fails with XX001");
			like(
				$err,
				qr/ERROR:  XX001: hybrid logical clock state file "event_stats_hlc" is corrupt.*HINT:  Restore the file from a backup, or remove it and restart the server/s,
				"6. state file $what: ${call}'s message and hint");
		}
		like(hlc_status($node)->{current},
			qr/^\d+$/, "6. state file $what: hlc_status() works");
		$node->stop('fast');
	}

	# the good file back: the clock resumes above everything
	open(my $fh, '>', $state_file) or die "cannot write $state_file: $!";
	binmode $fh;
	print $fh $good;
	close $fh or die "cannot write $state_file: $!";
	$node->start;
	my ($first) = first_value('hlc_now');
	cmp_ok($first, '>', $max_seen,
		'6. the good file put back: the first value exceeds every value received before'
	);
	saw($first);
	check_new_values('6. the good file put back');

	# A ceiling in WAL after the last checkpoint (the shutdown checkpoint
	# of the stop above: the first value after the start raised the
	# ceiling), then kill -9 and a corrupt file: crash recovery replays the
	# ceiling and rewrites the file.
	kill_postmaster_and_children($node);
	open($fh, '>', $state_file) or die "cannot write $state_file: $!";
	print $fh 'this is not a state file';
	close $fh or die "cannot write $state_file: $!";
	my $log_offset = -s $node->logfile;
	$node->start;
	ok( $node->log_contains(
			qr/WARNING:  hybrid logical clock state file "event_stats_hlc" is corrupt/,
			$log_offset)
		  && $node->log_contains(qr/redo starts at/, $log_offset),
		'6. corrupt file after kill -9: WARNING, then crash recovery');
	($first) = first_value('hlc_now');
	cmp_ok($first, '>', $max_seen,
		'6. the replayed ceiling replaced the corrupt file: the first value exceeds every value received before'
	);
	saw($first);
	check_new_values('6. the file rewritten by crash recovery');
	is(-s $state_file, 28, '6. crash recovery wrote a 28-byte state file');

	# Last: the file removed, the clock resumes from the wall clock.
	$node->stop('fast');
	unlink $state_file or die "cannot remove $state_file: $!";
	$node->start;
	my $ahead;
	($first, $ahead) = first_value('hlc_now');
	ok($ahead >= 0 && $ahead < 1,
		"6. the file removed: hlc_now() works, from the wall clock ($ahead s ahead)");
	is(-s $state_file, 28, '6. and writes a new state file');
}

$node->stop;
done_testing();
