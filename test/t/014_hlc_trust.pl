# Copyright: event_stats authors.  TAP test of event_stats.
#
# 014_hlc_trust.pl -- what an ordinary role can do to the server-wide
# clock is bounded, and the state file does not stop a restart.
#
#   1. event_stats.hlc_max_drift = 200ms in postgresql.conf.  An
#      unprivileged role (CREATE ROLE ... LOGIN, default grants) cannot
#      change it (SET: 55P02; ALTER SYSTEM: 42501), and hlc_observe()
#      refuses a value 1 s ahead but takes one 100 ms ahead.  The role runs
#      unique_timestamp() as fast as one session can (3 million calls,
#      each taking a whole microsecond, faster than the wall clock moves)
#      while a second session of the role streams 300,000 values of it
#      and the test polls hlc_status(): drift never exceeds the bound (plus
#      10 ms), drift_waits > 0, max_drift shows the bound, the streamed
#      values strictly increase, and the 3 million are distinct.  A bound
#      changed with ALTER SYSTEM and a reload shows in max_drift.
#   2. PREPARE TRANSACTION after hlc_now(), then COMMIT PREPARED: the
#      state file is back to 28 bytes (no hold).  A clean restart with
#      max_prepared_transactions = 0: the clock works (no XX001) and
#      hlc_now() exceeds every value before.
#   3. A valid state file that holds two finished transactions' holds (as
#      one written before a crash, or by a standby's redo, can), read with
#      max_prepared_transactions = 0: no WARNING, the clock works, the
#      horizon is not held, and the holds are gone from the file after the
#      next clean stop.  The same file with a flipped bit, or cut short, is
#      still reported corrupt (XX001).
#   4. A transaction still prepared, its hold in the state file, across a
#      clean restart with max_prepared_transactions large enough: the
#      horizon stays held by it until COMMIT PREPARED.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;
use IPC::Run;

my $bound_ms = 200;
my $epsilon_ms = 10;

my $node = event_stats_node(
	'hlc_trust',
	max_prepared_transactions => 10,
	'event_stats.hlc_max_drift' => $bound_ms);
$node->safe_psql('postgres',
	'CREATE EXTENSION event_stats; CREATE ROLE regress_hlc_trust LOGIN;');
my $state_file = $node->data_dir . '/event_stats_hlc';
my $user_connstr = $node->connstr('postgres') . ' user=regress_hlc_trust';

# SQLSTATE of $sql run on $node by the unprivileged role ($as_user) or the
# superuser, or 'none'.
sub sqlstate
{
	my ($sql, $as_user) = @_;
	my ($ret, $out, $err) = $node->psql(
		'postgres', "\\set VERBOSITY verbose\n$sql",
		$as_user ? (connstr => $user_connstr) : ());
	my ($state) = $err =~ /ERROR:  ([0-9A-Z]{5}):/;
	return $state // 'none';
}

sub user_psql
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql, connstr => $user_connstr);
}

# --- 1. the drift bound ---------------------------------------------------------

is(user_psql('SHOW event_stats.hlc_max_drift'),
	"${bound_ms}ms", '1. the role sees the bound of postgresql.conf');
is(sqlstate("SET event_stats.hlc_max_drift = '1h'", 1),
	'55P02', '1. SET of the bound by the role fails with 55P02');
is(sqlstate("SET event_stats.hlc_max_drift = '1h'"),
	'55P02', '1. and by a superuser too: the bound is server-wide');
is(sqlstate("ALTER SYSTEM SET event_stats.hlc_max_drift = '1h'", 1),
	'42501', '1. ALTER SYSTEM by the role fails with 42501');
is( sqlstate(
		q{SELECT event_stats.hlc_observe(event_stats.hlc_from_parts(clock_timestamp() + interval '1 s'))},
		1),
	'22023',
	'1. hlc_observe() of a value 1 s ahead is refused');
is( user_psql(
		q{SELECT event_stats.hlc_observe(v)::bigint > v::bigint FROM (SELECT event_stats.hlc_from_parts(clock_timestamp() + interval '100 ms') v) s}
	),
	't',
	'1. hlc_observe() of a value 100 ms ahead is taken');

my $waits_before = $node->safe_psql('postgres',
	'SELECT drift_waits FROM event_stats.hlc_status()');

my $calls = 3_000_000;
my ($a_out, $a_err) = ('', '');
my $tight = IPC::Run::start(
	[
		'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
		'-d', $user_connstr,
		'-c',
		"SELECT count(*), count(DISTINCT u) FROM (SELECT event_stats.unique_timestamp() u FROM generate_series(1, $calls)) s"
	],
	'>', \$a_out, '2>', \$a_err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
my $stream_file = $node->basedir . '/trust_stream.txt';
my $stream_err = '';
my $stream = IPC::Run::start(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-d', $user_connstr,
		'-c',
		'COPY (SELECT event_stats.hlc_from_parts(event_stats.unique_timestamp(), 4095)::bigint FROM generate_series(1, 300000)) TO STDOUT'
	],
	'<', \undef, '>', $stream_file, '2>', \$stream_err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));

# poll while the tight loop runs
my ($polls, $max_drift_ms) = (0, 0);
while ($tight->pumpable)
{
	my $d = $node->safe_psql('postgres',
		'SELECT extract(epoch FROM drift) * 1000 FROM event_stats.hlc_status()');
	$max_drift_ms = $d if $d > $max_drift_ms;
	$polls++;
	$tight->pump_nb;
	select(undef, undef, undef, 0.05);
}
$tight->finish;
$stream->finish;
chomp $a_out;
note "tight loop: $a_out $a_err; $polls polls, largest drift $max_drift_ms ms";
is($a_out, "$calls|$calls",
	"1. the role's $calls unique_timestamp() calls in one statement are distinct");
cmp_ok($polls, '>', 5, "1. hlc_status() polled during the loop ($polls times)");
cmp_ok($max_drift_ms, '<=', $bound_ms + $epsilon_ms,
	"1. drift polled during the loop never exceeded the bound ($max_drift_ms ms)");

my ($drift_ms, $max_drift, $waits) = split /\|/, $node->safe_psql(
	'postgres', q{
SELECT extract(epoch FROM drift) * 1000, max_drift, drift_waits
  FROM event_stats.hlc_status()});
note "after the loop: drift $drift_ms ms, max_drift $max_drift, drift_waits $waits";
cmp_ok($drift_ms, '<=', $bound_ms + $epsilon_ms,
	"1. drift after the loop is within the bound ($drift_ms ms)");
is($max_drift, '00:00:00.2', '1. hlc_status().max_drift shows the bound');
cmp_ok($waits - $waits_before, '>', 0,
	'1. hlc_status().drift_waits counted the waits (' . ($waits - $waits_before) . ')');

{
	open(my $fh, '<', $stream_file) or die "cannot open $stream_file: $!";
	my ($n, $prev, $increasing) = (0, undef, 1);
	while (my $line = <$fh>)
	{
		chomp $line;
		$increasing = 0 if defined $prev && $line <= $prev;
		$prev = $line;
		$n++;
	}
	close $fh;
	note "stream: $n values $stream_err";
	is($n, 300_000, '1. the streaming session received its 300000 values');
	ok($increasing, "1. and they strictly increase");
}

$node->append_conf('postgresql.conf', "event_stats.hlc_max_drift = '1s'\n");
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT max_drift = interval '1 s' FROM event_stats.hlc_status()})
  or die 'the reloaded bound did not show';
pass('1. a reloaded bound shows in hlc_status().max_drift');

# --- 2. COMMIT PREPARED drops the hold; restart with max_prepared_transactions = 0

sub hlc_now_raw
{
	return $node->safe_psql('postgres',
		'SELECT event_stats.hlc_now()::bigint');
}

$node->safe_psql(
	'postgres', q{
BEGIN;
SELECT event_stats.hlc_now();
PREPARE TRANSACTION 'trust_p1';});
is(-s $state_file, 44, '2. PREPARE TRANSACTION wrote its hold to the state file');
$node->safe_psql('postgres', q{COMMIT PREPARED 'trust_p1'});
is(-s $state_file, 28, '2. COMMIT PREPARED dropped it from the state file');
$node->safe_psql(
	'postgres', q{
BEGIN;
SELECT event_stats.hlc_now();
PREPARE TRANSACTION 'trust_p2';
ROLLBACK PREPARED 'trust_p2';});
is(-s $state_file, 28, '2. so does ROLLBACK PREPARED');

my $before = hlc_now_raw();
$node->stop('fast');
$node->append_conf('postgresql.conf', "max_prepared_transactions = 0\n");
$node->start;
is(sqlstate('SELECT event_stats.hlc_now()'),
	'none', '2. restarted with max_prepared_transactions = 0: hlc_now() works');
cmp_ok(hlc_now_raw(), '>', $before, '2. and exceeds the values before');

# --- 3. a state file with finished transactions' holds ---------------------------

# CRC-32C, as PostgreSQL's pg_crc32c
sub crc32c
{
	my ($data) = @_;
	my $crc = 0xFFFFFFFF;
	for my $byte (unpack('C*', $data))
	{
		$crc ^= $byte;
		$crc = ($crc >> 1) ^ (($crc & 1) ? 0x82F63B78 : 0) for 1 .. 8;
	}
	return $crc ^ 0xFFFFFFFF;
}

sub write_state_file
{
	my ($content) = @_;
	open(my $fh, '>', $state_file) or die "cannot write $state_file: $!";
	binmode $fh;
	print $fh $content;
	close $fh or die "cannot write $state_file: $!";
	return;
}

my @finished = map {
	$node->safe_psql('postgres', 'SELECT txid_current()')
} 1 .. 2;
$before = hlc_now_raw();
$node->stop('fast');
my $good = slurp_file($state_file);
is(length($good), 28, '3. the state file after a clean stop holds no hold');
my ($magic, $size, $ceiling, $n) = unpack('V V Q< V', $good);
is(crc32c(substr($good, 0, 24)), unpack('V', substr($good, 24, 4)),
	'3. the test computes the state file\'s CRC as the server does');
my $body = pack('V V Q< V V', $magic, 24 + 2 * 16 + 4, $ceiling, 2, 0)
  . join('', map { pack('V V Q<', $_, 0, $ceiling - (1 << 20)) } @finished);
my $with_holds = $body . pack('V', crc32c($body));

write_state_file($with_holds);
my $log_offset = -s $node->logfile;
$node->start;
ok(!$node->log_contains(qr/is corrupt/, $log_offset),
	'3. two finished holds, max_prepared_transactions = 0: no corrupt file reported');
is(sqlstate('SELECT event_stats.hlc_now(), event_stats.unique_timestamp()'),
	'none', '3. the clock works');
cmp_ok(hlc_now_raw(), '>', $before, '3. and exceeds the values before');
is( $node->safe_psql(
		'postgres',
		'SELECT horizon_holder_xid IS NULL FROM event_stats.hlc_status()'),
	't',
	'3. no finished transaction holds the horizon');
$node->stop('fast');
is(-s $state_file, 28, '3. the finished holds are gone from the file after a clean stop');
$good = slurp_file($state_file);

my $flipped = $with_holds;
substr($flipped, 30, 1) = chr(ord(substr($flipped, 30, 1)) ^ 1);
for my $corrupt ([ 'a flipped bit' => $flipped ],
	[ 'cut short' => substr($with_holds, 0, 40) ])
{
	my ($what, $content) = @$corrupt;
	write_state_file($content);
	$log_offset = -s $node->logfile;
	$node->start;
	ok( $node->log_contains(
			qr/WARNING:  hybrid logical clock state file "event_stats_hlc" is corrupt/,
			$log_offset),
		"3. the file with two holds, $what: reported corrupt");
	is(sqlstate('SELECT event_stats.hlc_now()'),
		'XX001', "3. the file with two holds, $what: hlc_now() fails with XX001");
	$node->stop('fast');
}
write_state_file($good);

# --- 4. a transaction still prepared across a restart -----------------------------

$node->append_conf('postgresql.conf', "max_prepared_transactions = 2\n");
$node->start;
my ($taken, $xid) = split /\|/, $node->safe_psql(
	'postgres', q{
BEGIN;
SELECT event_stats.hlc_now()::bigint, txid_current();
PREPARE TRANSACTION 'trust_p3';});
cmp_ok($taken, '>', $before, '4. the good state file back: the clock resumes above');
$node->restart;
hlc_now_raw() for 1 .. 3;
my ($horizon, $holder) = split /\|/, $node->safe_psql('postgres',
	'SELECT horizon::bigint, horizon_holder_xid FROM event_stats.hlc_status()');
is($holder, $xid, '4. after a restart the prepared transaction still holds the horizon');
cmp_ok($horizon, '<', $taken, '4. below the value it took');
$node->safe_psql('postgres', q{COMMIT PREPARED 'trust_p3'});
($horizon, $holder) = split /\|/, $node->safe_psql('postgres',
	'SELECT horizon::bigint, horizon_holder_xid FROM event_stats.hlc_status()');
is($holder, '', '4. COMMIT PREPARED released it');
cmp_ok($horizon, '>=', $taken, '4. the horizon passed its value');
is(-s $state_file, 28, '4. and the state file holds no hold');

$node->stop;
done_testing();
