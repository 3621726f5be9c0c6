# Copyright: event_stats authors.  TAP test of event_stats.
#
# 012_hlc_standby.pl -- the hybrid logical clock on a streaming standby,
# and across a failover: a promoted standby never repeats a value the old
# primary handed out.
#
# The clock's ceiling reaches the standby in a WAL record of the
# extension's resource manager; the standby's redo raises its own clock and
# writes its own state file.  Clients stream values (hlc_now(), or
# unique_timestamp() as the clock value it took) with COPY ... TO STDOUT
# into files, so what they received is known even when the primary dies in
# the middle of their statements.
#
#   1. On the standby, hlc_now(), hlc_observe() and unique_timestamp() fail
#      with SQLSTATE 25006; hlc_status() works, and once the standby has
#      caught up its high_water_mark equals the primary's and exceeds every
#      value the primary handed out.
#   2. The standby keeps the ceiling across its own restart after a
#      CHECKPOINT on the primary and a restartpoint on the standby (whose
#      redo then starts after every ceiling record, as checked, so the
#      ceiling can only come from the standby's state file).
#   3. Failover with synchronous replication (synchronous_standby_names =
#      '*'): 6 clients stream values from the primary, which is killed
#      with SIGKILL (postmaster and children at once).  The standby, still
#      in recovery, shows a high_water_mark above every value the clients
#      received; promoted, its first value and 80,000 values from 4
#      sessions exceed every one of them.
#      A transaction prepared on the old primary after taking a value keeps
#      the closed timestamp below that value on the new primary, which names
#      it as the holder.
#   4. The new primary restarts cleanly and its values keep increasing; the
#      prepared transaction still holds the closed timestamp until COMMIT
#      PREPARED on the new primary releases it.
#   5. With a synchronous standby that never confirms, a call that needs a
#      new ceiling (hlc_observe() of the high-water mark) waits until its
#      statement times out, and the high-water mark stays where it was,
#      above every value handed out; without synchronous standbys the same
#      call goes through.
# Every session's values must also strictly increase.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

# the postmaster's children are found in /proc
plan skip_all => 'this test needs Linux /proc' unless -r '/proc/self/stat';

my $primary = event_stats_node(
	'primary',
	init => { allows_streaming => 1 },
	max_connections => 40,
	max_prepared_transactions => 5);
$primary->safe_psql('postgres', 'CREATE EXTENSION event_stats');

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
	my ($node, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $sum = check_new_hlc_values($node, $what, $max_seen);
	saw($sum->{max});
	return $sum;
}

# The first value of a new session of $node, raw.
sub first_value
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT event_stats.hlc_now()::bigint');
}

# values before the base backup: the backup holds a state file
saw(take_hlc_values($primary, 4, 10_000, unique => 2)->{max});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
# the standby preloads the library too, or it could not replay the records
event_stats_conf($standby, max_connections => 40, max_prepared_transactions => 5);
$standby->start;

# --- 1. the clock on a standby ----------------------------------------------------

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', '1. the standby is in recovery');
for my $call (
	'event_stats.hlc_now()', 'event_stats.unique_timestamp()',
	q{event_stats.hlc_observe('2000-01-01T00:00:00.000000Z/0000')})
{
	my ($ret, $out, $err) = $standby->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT $call");
	like(
		$err,
		qr/ERROR:  25006: cannot take a hybrid logical clock value during recovery/,
		"1. the standby refuses $call with SQLSTATE 25006");
}

check_new_values($primary, '1. primary');
$primary->wait_for_catchup($standby);
my $p_status = hlc_status($primary);
my $s_status = hlc_status($standby);
note "1. primary: $p_status->{text}\n1. standby: $s_status->{text}";
cmp_ok($s_status->{high_water_mark}, '>', $max_seen,
	'1. the standby\'s high_water_mark exceeds every value the primary handed out'
);
cmp_ok($s_status->{high_water_mark}, '>=', $p_status->{current},
	'1. and the primary\'s current value');
is($s_status->{high_water_mark}, $p_status->{high_water_mark},
	'1. it equals the primary\'s high_water_mark');

# --- 2. the standby restarts after a restartpoint --------------------------------

check_new_values($primary, '2. primary');
my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$p_status = hlc_status($primary);
$primary->safe_psql('postgres', 'CHECKPOINT');
$primary->wait_for_catchup($standby);
$standby->safe_psql('postgres', 'CHECKPOINT');
is( $standby->safe_psql(
		'postgres', "SELECT redo_lsn >= '$lsn' FROM pg_control_checkpoint()"),
	't',
	'2. the standby\'s restartpoint is past every ceiling record');
my $before = hlc_status($standby);
$standby->restart;
$s_status = hlc_status($standby);
note "2. standby before its restart: $before->{text}\n"
  . "2. standby after its restart: $s_status->{text}";
cmp_ok($s_status->{high_water_mark}, '>', $max_seen,
	'2. after its restart, the standby\'s high_water_mark still exceeds every value the primary handed out'
);
is($s_status->{high_water_mark}, $before->{high_water_mark},
	'2. it is the high_water_mark the standby had before its restart');
is($s_status->{high_water_mark}, $p_status->{high_water_mark},
	'2. and the primary\'s');

# --- 3. failover with synchronous replication ---------------------------------------

$primary->append_conf('postgresql.conf', "synchronous_standby_names = '*'");
$primary->reload;
$primary->poll_query_until('postgres',
	q{SELECT sync_state = 'sync' FROM pg_stat_replication})
  or die 'the standby did not become synchronous';
is($standby->safe_psql('postgres', 'SHOW synchronous_standby_names'),
	'', '3. the standby has no synchronous standby of its own');

# A prepared transaction that took a value holds the closed timestamp below
# it; the hold must survive the failover and be released by whoever commits
# the transaction on the new primary.
my $held = $primary->safe_psql(
	'postgres', q{
BEGIN;
SELECT event_stats.hlc_now()::bigint;
PREPARE TRANSACTION 'held_across_failover';});
saw($held);

my $hwm0 = hlc_status($primary)->{high_water_mark};
my $load = start_hlc_streams($primary, 6, unique => 2);
wait_for_hlc_streams($load, 20_000);
# the ceiling moves on under the load (else the standby would have it
# from before the load)
$primary->poll_query_until('postgres',
	"SELECT high_water_mark::bigint > $hwm0 FROM event_stats.hlc_status()")
  or die 'the ceiling did not move under the load';
my $killed = kill_postmaster_and_children($primary);
note "3. killed the primary's postmaster and $killed children";
my $sum = finish_hlc_streams($load);
ok(!(grep { $_ < 20_000 } @{ $sum->{per_client} }),
	"3. each of the 6 clients received at least 20000 values from the primary ($sum->{values} in all)"
);
is($sum->{not_increasing}, 0, '3. each client\'s values strictly increase');
saw($sum->{max});

$s_status = hlc_status($standby);
note "3. standby after the primary's death: $s_status->{text}";
cmp_ok($s_status->{high_water_mark}, '>', $max_seen,
	'3. before its promotion, the standby\'s high_water_mark exceeds every value the clients received'
);
$standby->promote;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	'f', '3. the standby is promoted');
my $first = first_value($standby);
cmp_ok($first, '>', $max_seen,
	'3. the new primary\'s first value exceeds every value the old primary handed out'
);
saw($first);
check_new_values($standby, '3. new primary');
my $held_xid = $standby->safe_psql('postgres',
	q{SELECT transaction FROM pg_prepared_xacts WHERE gid = 'held_across_failover'});
my $h = $standby->safe_psql('postgres',
	q{SELECT horizon::bigint || ' ' || horizon_holder_xid FROM event_stats.hlc_status()});
my ($horizon, $holder) = split / /, $h;
cmp_ok($horizon, '<', $held,
	'3. on the new primary, the closed timestamp stays below the value the prepared transaction took'
);
is($holder, $held_xid, '3. and names that prepared transaction');

# --- 4. the new primary restarts -----------------------------------------------------

$standby->restart;
$first = first_value($standby);
cmp_ok($first, '>', $max_seen,
	'4. after a clean restart, the new primary\'s first value exceeds every value before'
);
saw($first);
check_new_values($standby, '4. new primary restarted');
my $st = hlc_status($standby);
note "4. $st->{text}";
cmp_ok($st->{high_water_mark}, '>', $st->{current},
	'4. high_water_mark > current');
cmp_ok(
	$standby->safe_psql('postgres', 'SELECT event_stats.hlc_horizon()::bigint'),
	'<', $held,
	'4. after the restart, the prepared transaction still holds the closed timestamp');
$standby->safe_psql('postgres', "COMMIT PREPARED 'held_across_failover'");
cmp_ok(
	$standby->safe_psql('postgres', 'SELECT event_stats.hlc_horizon()::bigint'),
	'>', $held,
	'4. COMMIT PREPARED on the new primary releases it');

# --- 5. no value above a ceiling no synchronous standby confirmed -----------------

# A synchronous standby that never connects: the observation of the
# high-water mark needs a new ceiling, which waits for the standby until the
# statement times out; nothing at or above the old ceiling is handed out.
$standby->append_conf('postgresql.conf', "synchronous_standby_names = 'nobody'");
$standby->reload;
$standby->poll_query_until('postgres', 'SHOW synchronous_standby_names',
	'nobody')
  or die 'synchronous_standby_names not reloaded';
$st = hlc_status($standby);
my ($ret, $out, $err) = $standby->psql(
	'postgres', qq{\\set VERBOSITY verbose
SET statement_timeout = '2s';
SELECT event_stats.hlc_observe('$st->{high_water_mark}'::bigint::event_stats.hlc);});
like($err, qr/ERROR:  57014: canceling statement due to statement timeout/,
	'5. a new ceiling waits for the synchronous standby (statement timeout)');
my $after = hlc_status($standby);
note "5. before: $st->{text}\n5. after: $after->{text}";
is($after->{high_water_mark}, $st->{high_water_mark},
	'5. the high-water mark did not move');
cmp_ok($after->{current}, '<', $st->{high_water_mark},
	'5. no value at or above it was handed out');
$standby->append_conf('postgresql.conf', "synchronous_standby_names = ''");
$standby->reload;
$standby->poll_query_until('postgres', 'SHOW synchronous_standby_names', '')
  or die 'synchronous_standby_names not reloaded';
$first = $standby->safe_psql('postgres',
	"SELECT event_stats.hlc_observe('$st->{high_water_mark}'::bigint::event_stats.hlc)::bigint"
);
cmp_ok($first, '>', $st->{high_water_mark},
	'5. without synchronous standbys, the observation goes through');
saw($first);
check_new_values($standby, '5. synchronous standbys off again');

$standby->stop;
done_testing();
