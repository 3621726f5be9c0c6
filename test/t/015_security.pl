# Copyright: event_stats authors.  TAP test of event_stats.
#
# 015_security.pl -- trust (issue 10): no role can become superuser, crash
# the server or touch others' counters through event_stats.
#
# One server that preloads the library; roles made with default grants and
# LOGIN, connected as themselves:
#   squatter  owner of databases squat_db and lookalike_db (so it may create
#             schemas there); a plain role elsewhere;
#   alice     owner of a table squatter may not read;
#   attacker  a plain role given CREATE on schema public of shadow_db.
#
# a. Squatted schema (squat_db): an event_stats schema owned by squatter, a
#    non-empty one owned by a superuser, and one granting CREATE to squatter
#    are refused by CREATE EXTENSION (42501, 55006, 42501) with nothing
#    installed, so squatter can never add event_stats.increment(counter,
#    integer), which a superuser's increment('c', 5) would run instead of the
#    real (counter, bigint); an empty superuser-owned schema, and none, are
#    accepted; after a good install squatter can create nothing in the
#    schema (42501).
# b. Look-alike tables (lookalike_db, without the extension): squatter
#    makes event_stats.counter_definitions, counter_shards, tracked_tables
#    and the sequence and indexes of those names, with tracked_tables
#    naming alice's table: alice's INSERT and DELETE commit and change
#    nothing in them (no count leaks, a shard at the bigint maximum makes
#    no commit fail); with an integer where the name column is text, no
#    backend crashes; then the superuser drops the schema and installs the
#    extension normally.
# c. Shadowing through search_path (shadow_db): attacker puts into public
#    operators and functions that changes_since() and the other functions
#    could resolve (=(regtype, regtype), =(oid, regtype), =(oid, regclass),
#    replace(text, text, text), ...) plus public.increment(counter,
#    integer), each of which records that it ran and tries ALTER ROLE
#    attacker SUPERUSER; a superuser calls changes_since() and others with
#    search_path = public, event_stats and with public, pg_catalog,
#    event_stats: none of attacker's code runs.
# d. DROP EXTENSION with work in flight (drop_db): 8 psql clients
#    incrementing a counter and writing a tracked table while another
#    session drops and creates the extension again five times: only the
#    expected errors (no schema, no function, no counter, not installed),
#    no XX000 ("could not open relation with OID") in the server log, and
#    the tracked count exact at the end.  Then one by one: a transaction
#    with a pending increment holds DROP EXTENSION back, and a counter that
#    reuses its id in the new installation gets nothing of it; a prepared
#    one makes DROP EXTENSION time out (55P03) until COMMIT PREPARED; rows
#    written to a tracked table by a transaction that commits after DROP +
#    CREATE EXTENSION add nothing to the new counter with the same id.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

# log_error_verbosity = verbose: every logged error carries its SQLSTATE.
my $node = event_stats_node(
	'security',
	max_prepared_transactions => 10,
	log_error_verbosity => 'verbose',
	# should a backend crash, the checks after it still run
	restart_after_crash => 'on');

# --- helpers -------------------------------------------------------------

# psql with SQLSTATEs in its messages: (exit status, stdout, stderr)
sub run_sql { return psql_verbose($node, @_); }

# The SQLSTATE of the first error in psql's stderr ('none' without one).
sub sqlstate_of
{
	my ($err) = @_;
	return $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : 'none';
}

# One test: $sql fails with SQLSTATE $state (and message $msg, if given).
sub fails_with
{
	my ($db, $sql, $state, $msg, $what, %opt) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($ret, $out, $err) = run_sql($db, $sql, %opt);
	my $ok = sqlstate_of($err) eq $state && (!defined $msg || $err =~ $msg);
	ok($ok, "$what: fails with $state")
	  or diag("exit status $ret, stdout:\n$out\nstderr:\n$err");
	return $ok;
}

# One test: $sql succeeds.  Returns its output (undef if it failed).
sub succeeds
{
	my ($db, $sql, $what, %opt) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($ret, $out, $err) = run_sql($db, $sql, %opt);
	ok($ret == 0, "$what: succeeds")
	  or diag("exit status $ret, stderr:\n$err");
	return $ret == 0 ? $out : undef;
}

# The answer of one query by the superuser, with search_path pg_catalog
# (so that nothing any role put into public can be resolved), or the error
# text when it fails.
sub answer
{
	my ($db, $sql) = @_;
	my ($ret, $out, $err) =
	  run_sql($db, "SET search_path = pg_catalog, pg_temp;\n$sql");
	return $ret == 0 ? $out : "error: $err";
}

# The SQL that makes public.trojan_log (writable by everyone) and
# public.trojan(what): records that it ran, as whom, and tries ALTER ROLE
# $role SUPERUSER, which works when a superuser runs it.
sub trojan_sql
{
	my ($role) = @_;
	return qq{
CREATE TABLE public.trojan_log (what text, run_by name DEFAULT current_user);
GRANT INSERT ON public.trojan_log TO PUBLIC;
CREATE FUNCTION public.trojan(what text) RETURNS boolean
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS \$t\$
BEGIN
    INSERT INTO public.trojan_log (what) VALUES (what);
    BEGIN
        EXECUTE 'ALTER ROLE $role SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN true;
END
\$t\$;
};
}

# Two tests: no trojan ran in $db ($role is not superuser, trojan_log is
# empty).  Then undoes whatever a trojan did, for the checks that follow.
sub no_trojan_ran
{
	my ($db, $role, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is(answer('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = '$role'"),
		'f', "$what: $role is not superuser");
	is( answer(
			$db,
			q{SELECT coalesce(string_agg(ran, '; '), 'nothing')
			    FROM (SELECT what || ' by ' || run_by || ' (' || count(*) || ' times)' AS ran
			            FROM public.trojan_log GROUP BY what, run_by ORDER BY what) r}),
		'nothing',
		"$what: no trojan ran");
	$node->safe_psql('postgres', "ALTER ROLE $role NOSUPERUSER");
	$node->safe_psql($db, 'TRUNCATE public.trojan_log');
	return;
}

# Whether extension event_stats is installed in $db, and how many objects
# schema event_stats holds.
sub installed
{
	my ($db) = @_;
	return answer(
		$db, q{
SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'event_stats')
       || ' ' ||
       (SELECT count(*) FROM pg_depend d JOIN pg_namespace n ON n.oid = d.refobjid
         WHERE d.refclassid = 'pg_namespace'::regclass AND n.nspname = 'event_stats'
           AND d.classid <> 'pg_extension'::regclass)});
}

# Back to no extension and no schema event_stats in $db.
sub clean_slate
{
	my ($db) = @_;
	$node->safe_psql($db,
		"DROP EXTENSION IF EXISTS event_stats CASCADE;\n"
		  . "DROP SCHEMA IF EXISTS event_stats CASCADE;");
	return;
}

$node->safe_psql(
	'postgres', q{
CREATE ROLE squatter LOGIN;
CREATE ROLE alice LOGIN;
CREATE ROLE attacker LOGIN;
CREATE DATABASE squat_db OWNER squatter;
CREATE DATABASE lookalike_db OWNER squatter;
CREATE DATABASE shadow_db;
CREATE DATABASE drop_db;
});

# --- a. squatted schema ----------------------------------------------------

$node->safe_psql('squat_db', trojan_sql('squatter'),
	extra_params => [ '-U', 'squatter' ]);

# The database owner makes an (empty) schema event_stats before the
# superuser installs the extension.
succeeds('squat_db', 'CREATE SCHEMA event_stats',
	'squatter creates schema event_stats', user => 'squatter');
fails_with(
	'squat_db', 'CREATE EXTENSION event_stats', '42501',
	qr/schema "event_stats" is owned by role "squatter", which is not a superuser/,
	'CREATE EXTENSION into a schema owned by a non-superuser');
is(installed('squat_db'), '0 0',
	'squatted schema: nothing installed, the schema still empty');

# What the squatter would do next: its increment(counter, integer) beats
# the real increment(counter, bigint) for increment('c', 5).
run_sql(
	'squat_db', q{
CREATE FUNCTION event_stats.increment(event_stats.counter, integer) RETURNS void
    LANGUAGE plpgsql AS $$ BEGIN PERFORM public.trojan('event_stats.increment(counter, integer)'); END $$;
}, user => 'squatter');
run_sql('squat_db',
	"SELECT event_stats.create_counter('c');\nSELECT event_stats.increment('c', 5);");
no_trojan_ran('squat_db', 'squatter',
	'squatted schema, then a superuser calls event_stats.increment(\'c\', 5)');
clean_slate('squat_db');

# A superuser's schema that is not empty.
$node->safe_psql('squat_db',
	'CREATE SCHEMA event_stats; CREATE TABLE event_stats.leftover (i int);');
fails_with('squat_db', 'CREATE EXTENSION event_stats', '55006',
	qr/schema "event_stats" is not empty/,
	'CREATE EXTENSION into a non-empty schema');
is(installed('squat_db'), '0 1', 'non-empty schema: nothing installed');
clean_slate('squat_db');

# A superuser's empty schema that grants CREATE to another role.
$node->safe_psql('squat_db',
	'CREATE SCHEMA event_stats; GRANT CREATE ON SCHEMA event_stats TO squatter;');
fails_with(
	'squat_db', 'CREATE EXTENSION event_stats', '42501',
	qr/schema "event_stats" grants CREATE to roles that are not superusers/,
	'CREATE EXTENSION into a schema that grants CREATE to a non-superuser');
is(installed('squat_db'), '0 0', 'schema granting CREATE: nothing installed');
clean_slate('squat_db');

# A superuser's empty schema is fine, and so is none at all.
$node->safe_psql('squat_db', 'CREATE SCHEMA event_stats');
succeeds('squat_db', 'CREATE EXTENSION event_stats',
	'CREATE EXTENSION into an empty schema owned by a superuser');
clean_slate('squat_db');
succeeds('squat_db', 'CREATE EXTENSION event_stats',
	'CREATE EXTENSION after the schema was dropped');
cmp_ok((split / /, installed('squat_db'))[1], '>', 20,
	'the extension is installed in full');

# After a good install the squatter (owner of the database) can put
# nothing into schema event_stats.
fails_with(
	'squat_db', q{
CREATE FUNCTION event_stats.increment(event_stats.counter, integer) RETURNS void
    LANGUAGE plpgsql AS $$ BEGIN PERFORM public.trojan('event_stats.increment(counter, integer)'); END $$;
}, '42501', qr/permission denied for schema event_stats/,
	'squatter creates a function in schema event_stats', user => 'squatter');
fails_with('squat_db', 'CREATE TABLE event_stats.x (i int)',
	'42501', qr/permission denied for schema event_stats/,
	'squatter creates a table in schema event_stats', user => 'squatter');
is( answer(
		'squat_db',
		"SELECT event_stats.create_counter('c');\n"
		  . "SELECT event_stats.increment('c', 5);\n"
		  . "SELECT event_stats.value('c');"),
	"c\n\n5",
	'a superuser\'s event_stats.increment(\'c\', 5) runs the real increment');
no_trojan_ran('squat_db', 'squatter', 'after a good install');

# --- b. look-alike tables in a database without the extension --------------

$node->safe_psql(
	'lookalike_db', q{
CREATE TABLE public.secret (id int);
ALTER TABLE public.secret OWNER TO alice;
});

# The look-alikes: the extension's tables (in the layout of 1.1), sequence
# and indexes, by name, with $name_type for counter_definitions.name, and
# tracked_tables naming alice's table.
sub make_lookalikes
{
	my ($name_type, $name) = @_;
	return run_sql(
		'lookalike_db', qq{
DROP SCHEMA IF EXISTS event_stats CASCADE;
CREATE SCHEMA event_stats;
GRANT USAGE ON SCHEMA event_stats TO PUBLIC;
CREATE TABLE event_stats.counter_definitions (
    id      integer PRIMARY KEY,
    name    $name_type NOT NULL UNIQUE,
    shards  integer NOT NULL);
CREATE SEQUENCE event_stats.counter_definitions_id_seq
    AS integer OWNED BY event_stats.counter_definitions.id;
CREATE TABLE event_stats.counter_shards (
    counter_id  integer NOT NULL,
    shard       integer NOT NULL,
    value       bigint NOT NULL,
    PRIMARY KEY (counter_id, shard)) WITH (fillfactor = 50);
CREATE TABLE event_stats.tracked_tables (
    relid         regclass PRIMARY KEY,
    counter_id    integer NOT NULL UNIQUE,
    counter_name  text COLLATE "C" NOT NULL);
INSERT INTO event_stats.counter_definitions VALUES (1, $name, 1);
INSERT INTO event_stats.counter_shards VALUES (1, 0, 0);
INSERT INTO event_stats.tracked_tables VALUES ('public.secret', 1, 'stolen');
GRANT SELECT ON ALL TABLES IN SCHEMA event_stats TO PUBLIC;
}, user => 'squatter');
}

sub lookalike_shard
{
	return answer('lookalike_db',
		'SELECT value FROM event_stats.counter_shards WHERE counter_id = 1');
}

my $log_offset = -s $node->logfile;
my ($ret) = make_lookalikes(q{text COLLATE "C"}, q{'stolen'});
is($ret, 0, 'squatter makes look-alike tables of the extension');
fails_with('lookalike_db', 'SELECT count(*) FROM public.secret',
	'42501', undef, 'squatter may not read alice\'s table', user => 'squatter');

succeeds(
	'lookalike_db',
	"INSERT INTO public.secret SELECT generate_series(1, 3);\n"
	  . "DELETE FROM public.secret WHERE id = 1;",
	'alice inserts and deletes rows of her table',
	user => 'alice');
is(lookalike_shard(), '0',
	'the look-alike shard did not learn how many rows alice\'s table has');

$node->safe_psql('lookalike_db',
	'UPDATE event_stats.counter_shards SET value = 9223372036854775807');
succeeds('lookalike_db', 'INSERT INTO public.secret VALUES (10)',
	'alice inserts a row with the look-alike shard at the bigint maximum',
	user => 'alice');
is(lookalike_shard(), '9223372036854775807',
	'the look-alike shard is unchanged');

# An integer where the C code expects text.
($ret) = make_lookalikes('integer', '424242');
is($ret, 0, 'squatter makes look-alike tables with an integer name column');
succeeds('lookalike_db', 'INSERT INTO public.secret VALUES (20)',
	'alice inserts a row with the integer name column there',
	user => 'alice');
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'the server does not answer';
succeeds('lookalike_db', 'DELETE FROM public.secret WHERE id = 20',
	'alice deletes a row with the integer name column there',
	user => 'alice');
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'the server does not answer';
ok(!$node->log_contains(qr/terminated by signal/, $log_offset),
	'look-alike tables: no backend crashed');
is(answer('lookalike_db', 'SELECT count(*) FROM public.secret'),
	'3', 'alice\'s table holds her 3 rows');
is(lookalike_shard(), '0', 'the look-alike shard is unchanged');

# The superuser drops the look-alikes and installs the extension.
succeeds(
	'lookalike_db',
	"DROP SCHEMA event_stats CASCADE;\nCREATE EXTENSION event_stats;",
	'the superuser drops the look-alike schema and creates the extension');
succeeds('lookalike_db', "SELECT event_stats.track('public.secret')",
	'track() of alice\'s table');
succeeds('lookalike_db', 'INSERT INTO public.secret VALUES (30), (31)',
	'alice inserts rows into her tracked table', user => 'alice');
is( answer(
		'lookalike_db',
		q{SELECT count(*) || ' ' || event_stats.value('public.secret') FROM public.secret}),
	'5 5',
	'the tracked count equals count(*) of alice\'s table');
fails_with('lookalike_db', q{SELECT event_stats.value('public.secret')},
	'42501', undef,
	'squatter may not read the count of alice\'s table', user => 'squatter');

# --- c. shadowing through search_path ----------------------------------------

$node->safe_psql(
	'shadow_db', q{
CREATE EXTENSION event_stats;
GRANT CREATE ON SCHEMA public TO attacker;
CREATE TABLE public.items (
    id int PRIMARY KEY,
    last_modified event_stats.hlc NOT NULL DEFAULT event_stats.hlc_now());
CREATE TABLE public.titems (
    id int PRIMARY KEY,
    last_modified timestamptz NOT NULL DEFAULT event_stats.unique_timestamp());
INSERT INTO public.items SELECT generate_series(1, 3);
INSERT INTO public.titems SELECT generate_series(1, 3);
SELECT event_stats.create_counter('c');
});

# Operators with an exact match where pg_catalog has none (=(regtype,
# regtype), =(oid, regtype), =(oid, regclass)) or the same signature as
# pg_catalog's (resolved first when public comes before pg_catalog).
my @shadow_ops = (
	[ '=', 'regtype', 'regtype', 'boolean', '$1::oid OPERATOR(pg_catalog.=) $2::oid' ],
	[ '=', 'oid', 'regtype', 'boolean', '$1 OPERATOR(pg_catalog.=) $2::oid' ],
	[ '=', 'oid', 'regclass', 'boolean', '$1 OPERATOR(pg_catalog.=) $2::oid' ],
	[ '=', 'name', 'name', 'boolean', '$1 OPERATOR(pg_catalog.=) $2' ],
	[ '=', '"char"', '"char"', 'boolean', '$1 OPERATOR(pg_catalog.=) $2' ],
	[ '=', 'bigint', 'integer', 'boolean', '$1 OPERATOR(pg_catalog.=) $2' ],
	[ '<>', 'text', 'text', 'boolean', '$1 OPERATOR(pg_catalog.<>) $2' ],
	[ '||', 'text', 'text', 'text', '$1 OPERATOR(pg_catalog.||) $2' ],
	[ '>', 'timestamptz', 'timestamptz', 'boolean', '$1 OPERATOR(pg_catalog.>) $2' ],
	[ '<=', 'timestamptz', 'timestamptz', 'boolean', '$1 OPERATOR(pg_catalog.<=) $2' ]);
# Functions of names the extension's SQL uses, qualified or not.
my @shadow_funcs = (
	[ 'replace', 'text, text, text', 'text', 'RETURN pg_catalog.replace($1, $2, $3)' ],
	[ 'format', 'text, name, regclass', 'text', 'RETURN pg_catalog.format($1, $2, $3)' ],
	[ 'upper', 'text', 'text', 'RETURN pg_catalog.upper($1)' ],
	[ 'current_setting', 'text', 'text', 'RETURN pg_catalog.current_setting($1)' ],
	[ 'pg_typeof', 'anyelement', 'regtype', 'RETURN pg_catalog.pg_typeof($1)' ],
	[ 'hlc_horizon', '', 'event_stats.hlc', 'RETURN event_stats.hlc_horizon()' ],
	[ 'hlc_closed_timestamp', 'event_stats.hlc', 'timestamptz',
		'RETURN event_stats.hlc_closed_timestamp($1)' ],
	[ 'increment', 'event_stats.counter, integer', 'void', 'RETURN' ],
	[ 'value', 'event_stats.counter', 'bigint', 'RETURN 0' ],
	[ 'create_counter', 'text', 'event_stats.counter', 'RETURN NULL' ]);
my $shadow_sql = trojan_sql('attacker');
my $fn = 0;
for my $op (@shadow_ops)
{
	my ($name, $l, $r, $type, $body) = @$op;
	$fn++;
	$shadow_sql .= qq{
CREATE FUNCTION public.shadow_op_$fn($l, $r) RETURNS $type LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trojan('operator $name($l, $r)'); RETURN $body; END \$f\$;
CREATE OPERATOR public.$name (LEFTARG = $l, RIGHTARG = $r, FUNCTION = public.shadow_op_$fn);
};
}
for my $f (@shadow_funcs)
{
	my ($name, $args, $type, $body) = @$f;
	$shadow_sql .= qq{
CREATE FUNCTION public.$name($args) RETURNS $type LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM public.trojan('function $name($args)'); $body; END \$f\$;
};
}
succeeds('shadow_db', $shadow_sql,
	'attacker creates shadowing operators and functions in public',
	user => 'attacker');

# The superuser's calls, under a search_path that puts attacker's schema
# first.  No operator in these queries themselves: only the extension's.
my $since_hlc =
  $node->safe_psql('shadow_db', 'SELECT event_stats.min(last_modified) FROM public.items');
my $since_ts = $node->safe_psql('shadow_db',
	'SELECT event_stats.hlc_from_parts(min(last_modified), 4095) FROM public.titems');
my $calls = qq{
SELECT count(*) FROM event_stats.changes_since(NULL::public.items, NULL);
SELECT count(*) FROM event_stats.changes_since(NULL::public.items, '$since_hlc');
SELECT count(*) FROM event_stats.changes_since(NULL::public.titems, NULL);
SELECT count(*) FROM event_stats.changes_since(NULL::public.titems, '$since_ts');
SELECT event_stats.increment('c', 5);
SELECT event_stats.value('c');
SELECT count(*) FROM event_stats.counters;
SELECT event_stats.hlc_closed_timestamp(event_stats.hlc_now()) IS NOT NULL;
};
my $value = 0;
for my $path ('public, event_stats', 'public, pg_catalog, event_stats')
{
	$value += 5;
	my ($r, $out, $err) = run_sql('shadow_db', "SET search_path = $path;\n$calls");
	is($out, "3\n2\n3\n2\n\n$value\n1\nt",
		"search_path $path: changes_since(), increment(), value(), the counters view "
		  . 'and hlc_closed_timestamp() give the right answers')
	  or diag($err);
	no_trojan_ran('shadow_db', 'attacker', "search_path $path");
}

# --- d. DROP EXTENSION with work in flight ---------------------------------

$node->safe_psql(
	'drop_db', q{
CREATE EXTENSION event_stats;
CREATE TABLE public.load_t (client int, i int);
SELECT event_stats.track('public.load_t');
SELECT event_stats.create_counter('load_c');
});

# Each client: 400 transactions of one increment and one tracked row,
# through every DROP and CREATE EXTENSION; errors do not stop it.
my $clients = 8;
my @load;
$log_offset = -s $node->logfile;
for my $c (1 .. $clients)
{
	my $file = $node->basedir . "/load_$c.sql";
	append_to_file($file,
		    "BEGIN;\nSELECT event_stats.increment('load_c');\n"
		  . "INSERT INTO public.load_t VALUES ($c, 1);\n"
		  . "SELECT pg_sleep(0.003);\nCOMMIT;\n")
	  for 1 .. 400;
	push @load,
	  start_command(
		[
			'psql', '-X', '-q', '-v', 'VERBOSITY=verbose',
			'-d', $node->connstr('drop_db'), '-f', $file
		]);
}
my ($drops, $ddl_errors, $running_at_last_drop) = (0, '', 0);
for my $round (1 .. 5)
{
	usleep(400_000);
	$running_at_last_drop = grep { $_->{h}->pumpable } @load;
	my ($r, $out, $err) = run_sql(
		'drop_db', q{
DROP EXTENSION event_stats;
CREATE EXTENSION event_stats;
SELECT event_stats.track('public.load_t');
SELECT event_stats.create_counter('load_c');
});
	$r == 0 ? $drops++ : ($ddl_errors .= $err);
	$_->{h}->pump_nb for @load;
}
# (finish_command would note each client's whole stderr: the errors are
# summed up below instead)
for my $run (@load)
{
	$run->{h}->finish;
	$run->{status} = $? >> 8;
}
is($drops, 5, 'DROP + CREATE EXTENSION five times under load')
  or diag($ddl_errors);
is($running_at_last_drop, $clients, "all $clients clients were still running at the last DROP");
is(join(',', map { $_->{status} } @load), join(',', (0) x $clients),
	'every client ended normally');
my %errors;
for my $run (@load)
{
	$errors{"$1: $2"}++ while $run->{err} =~ /ERROR:\s+([0-9A-Z]{5}): ([^\n]*)/g;
}
note "client errors:\n" . join('', map { "  $errors{$_} x $_\n" } sort keys %errors);
my @expected = (
	qr/^3F000: schema "event_stats" does not exist/,
	qr/^42883: function event_stats\.\w+\(.*\) does not exist/,
	qr/^42704: type "event_stats\.counter" does not exist/,
	qr/^42704: counter "load_c" does not exist/,
	qr/^55000: extension event_stats is not installed in database "drop_db"/,
	qr/^25P02: current transaction is aborted/);
my @unexpected = grep {
	my $e = $_;
	!grep { $e =~ $_ } @expected
} sort keys %errors;
is(join("\n", @unexpected), '', 'the clients saw only the expected errors');
ok(!$node->log_contains(qr/could not open relation with OID/, $log_offset),
	'no "could not open relation with OID" in the server log');
ok(!$node->log_contains(qr/ERROR:\s+XX000/, $log_offset), 'no XX000 in the server log');
ok(!$node->log_contains(qr/terminated by signal/, $log_offset),
	'no backend crashed under load');
check_tracked_exact($node, 'drop_db', 'after the load', 'public.load_t',
	'public.load_t');

# The counter of the first installation has id 1, and so will the first
# counter of the next one.
clean_slate('drop_db');
$node->safe_psql('drop_db', 'CREATE EXTENSION event_stats');
is(answer('drop_db', q{SELECT event_stats.create_counter('c_old')::integer}),
	'1', 'counter c_old has id 1');

# Session B's DROP + CREATE EXTENSION + create_counter('fresh'), sent while
# session A holds a pending increment of c_old.
sub drop_db_session
{
	return $node->background_psql('drop_db', on_error_stop => 0,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
}

# Whether a DROP EXTENSION waits for a lock, polled for 3 s at most.
sub drop_waits
{
	for (1 .. 30)
	{
		usleep(100_000);
		return 1
		  if answer('postgres',
			q{SELECT count(*) FROM pg_stat_activity
			   WHERE wait_event_type = 'Lock' AND query LIKE 'DROP EXTENSION%'})
		  eq '1';
	}
	return 0;
}

my $sa = drop_db_session();
$sa->query_safe('BEGIN');
$sa->query_safe(q{SELECT event_stats.increment('c_old', 1000)});
my $sb = drop_db_session();
$sb->query_until(qr/dropping/, qq{\\echo dropping
DROP EXTENSION event_stats;
CREATE EXTENSION event_stats;
SELECT event_stats.create_counter('fresh')::integer;
});
ok(drop_waits(), 'DROP EXTENSION waits for a transaction with a pending increment');
# More work in A (here a catalog read) processes the invalidations that a
# finished DROP + CREATE EXTENSION would have sent.
$sa->query('SELECT count(*) > 0 FROM pg_catalog.pg_class');
$sa->query('COMMIT');
is($sa->{stderr}, '', 'that transaction commits without an error');
$sb->query(q{SELECT 'b done'});
is($sb->{stderr}, '', 'DROP and CREATE EXTENSION, create_counter(\'fresh\') then succeed');
is(answer('drop_db', q{SELECT 'fresh'::event_stats.counter::integer}),
	'1', 'counter fresh has id 1 again');
is(answer('drop_db', q{SELECT event_stats.value('fresh')}),
	'0', 'fresh got nothing of the increment of c_old');
$sa->quit;
$sb->quit;

# A prepared transaction with a pending increment.
$node->safe_psql(
	'drop_db', q{
SELECT event_stats.create_counter('p');
BEGIN;
SELECT event_stats.increment('p', 7);
PREPARE TRANSACTION 'security_p';
});
fails_with('drop_db', "SET lock_timeout = '1s';\nDROP EXTENSION event_stats;",
	'55P03', undef, 'DROP EXTENSION with a prepared increment pending');
succeeds('drop_db', q{COMMIT PREPARED 'security_p'}, 'COMMIT PREPARED');
is(answer('drop_db', q{SELECT event_stats.value('p')}),
	'7', 'the prepared increment counted');
succeeds('drop_db', 'DROP EXTENSION event_stats',
	'DROP EXTENSION after COMMIT PREPARED');

# Rows written to a tracked table (no lock of the extension) by a
# transaction that commits after DROP + CREATE EXTENSION.
clean_slate('drop_db');
$node->safe_psql('drop_db', 'CREATE EXTENSION event_stats; CREATE TABLE public.tt (i int);');
is(answer('drop_db', q{SELECT event_stats.track('public.tt')::integer}),
	'1', 'the counter tracking tt has id 1');
$sa = drop_db_session();
$sa->query_safe('BEGIN');
$sa->query_safe('INSERT INTO public.tt SELECT generate_series(1, 5)');
$sb = drop_db_session();
$sb->query_until(qr/dropping/, qq{\\echo dropping
DROP EXTENSION event_stats;
CREATE EXTENSION event_stats;
SELECT event_stats.create_counter('x')::integer;
});
# B need not wait for A (which holds no lock of the extension); should it
# wait all the same, A's commit below lets it go on.
my $x_id = '';
for (1 .. 100)
{
	$sb->{run}->pump_nb;
	$x_id = answer('drop_db',
		q{SELECT coalesce((SELECT id FROM event_stats.counter_definitions WHERE name = 'x'), 0)});
	last if $x_id eq '1';
	usleep(50_000);
}
is($x_id, '1',
	'DROP + CREATE EXTENSION and create_counter(\'x\') (id 1 again) done while rows of tt are pending'
);
$sa->query('SELECT count(*) > 0 FROM pg_catalog.pg_class');
$sa->query('COMMIT');
is($sa->{stderr}, '', 'the transaction that wrote tt commits without an error');
$sb->query(q{SELECT 'b done'});
is($sb->{stderr}, '', 'session B saw no error');
is(answer('drop_db', q{SELECT count(*) || ' ' || event_stats.value('x') FROM public.tt}),
	'5 0', 'tt has the 5 rows, counter x got nothing of them');
$sa->quit;
$sb->quit;

ok(!$node->log_contains(qr/ERROR:\s+XX000/), 'no XX000 anywhere in the server log');
ok(!$node->log_contains(qr/terminated by signal/), 'no backend crashed');

$node->stop;
done_testing();
