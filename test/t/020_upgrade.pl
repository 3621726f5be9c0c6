# Copyright: event_stats authors.  TAP test of event_stats.
#
# 020_upgrade.pl -- ALTER EXTENSION event_stats UPDATE from 1.0 to 1.1,
# under load, loses nothing, and gives the objects CREATE EXTENSION gives.
#
# a. The two ways to 1.1 give the same objects: CREATE EXTENSION (1.1's own
#    script) and CREATE EXTENSION ... VERSION '1.0' followed by ALTER
#    EXTENSION ... UPDATE.  Compared: \dx+ event_stats, and a catalog
#    listing of every member with its comment, the columns of the state
#    tables (dropped ones left out), their options, indexes, constraints,
#    triggers and privileges, routine definitions, types, operators,
#    casts, the view, the sequence and the configuration-table filters.
#    A change to one script without the other fails here.
# b. A 1.0 database filled the way a 1.0 server fills it: counters with
#    the default shard count, 4 and 1 shards, granted to a role, given to
#    another owner, one dropped; increments large, negative and summing to
#    zero; a sum whose partial sums leave bigint, and one out of bigint
#    range (value() refuses it); set(); tracked plain and partitioned
#    tables; the clock used; a shard row for every shard, as the 1.0
#    library created them (the 1.1 library creates them when it writes),
#    except for one counter that has rows only where the 1.1 library wrote
#    them, none at shard 0, and one that has none yet; and a prepared
#    transaction holding an increment, the first row of that counter and a
#    row of a tracked table.
# c. Refusals, each leaving 1.0 in place: the update in a REPEATABLE READ
#    transaction, with a prepared transaction holding a lock on
#    counter_shards, and with data in the filler column.
# d. The update while 8 pgbench clients increment counters, insert into and
#    delete from the tracked tables (REPEATABLE READ and READ COMMITTED,
#    some rolled back) and read: each committed transaction records its
#    increments in a ledger table, so every counter's exact value is the
#    sum of its ledger rows, in any snapshot; the reading clients check
#    that (and value() = count(*) of the tracked tables) inside REPEATABLE
#    READ snapshots, some taken before the update and read after it, and
#    abort on any difference.  A REPEATABLE READ session reads every
#    counter before the update and again after it, in one snapshot.  The
#    prepared transaction is still open during the update, and so are two
#    transactions that dropped a counter (a drop deletes the rows at once):
#    the update waits for none of them and leaves those counters' rows as
#    they are; then one drop is rolled back, the other committed.
#    Checked: pgbench reports 0 failed transactions and no aborted client,
#    and went on committing after the update; version 1.1; counter_shards
#    kept its OID, lost the filler column, has fillfactor 50 and a new
#    relfilenode; every counter not written since has at most one row
#    (none for a sum of 0; the one out of bigint range keeps its rows);
#    every value exact after COMMIT PREPARED, in one snapshot with the
#    ledger; owners and privileges as before; the clock's next values
#    above those before; amcheck clean.
# e. pg_dump / pg_restore of the updated database; a dump of the 1.0
#    database restored under 1.1 (refused: its data has the filler column)
#    and into a database where 1.0 was created first, then updated.
# f. Three rounds of an update among 8 clients committing 16 counters each
#    (a third of one shard), in a new database each: exact, no failed
#    transaction, and the update done within 10 s (when it queued for its
#    lock, commits and the update waited on each other through the
#    deadlock detector for 12 to 35 s).
# g. Compaction, turned on, folds the rows the update left to the counter
#    that had a change in progress.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $clients = 8;

# Compaction would fold the rows whose number this test checks (g. turns
# it on).  fsync on, as on a real server: a commit's rows stay in progress
# while it waits for its WAL flush, which the update must cope with (see f.).
my $node = event_stats_node(
	'upgrade',
	max_connections => 80,
	max_prepared_transactions => 10,
	fsync => 'on',
	'event_stats.compaction' => 'off');

# psql with SQLSTATEs in its messages: (exit status, stdout, stderr)
sub run_sql { return psql_verbose($node, @_); }

# One test: $sql fails with SQLSTATE $state and a message matching $msg.
sub fails_with
{
	my ($db, $sql, $state, $msg, $what, %opt) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($ret, $out, $err) = run_sql($db, $sql, %opt);
	my $got = $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : 'none';
	ok($got eq $state && $err =~ $msg, "$what: fails with $state")
	  or diag("exit status $ret, stdout:\n$out\nstderr:\n$err");
	return;
}

sub extversion
{
	my ($db) = @_;
	return $node->safe_psql($db,
		q{SELECT extversion FROM pg_extension WHERE extname = 'event_stats'});
}

# --- a. CREATE EXTENSION 1.1 = CREATE EXTENSION 1.0 + UPDATE ----------------

# Every property of the extension's objects that either script sets, one
# line each, sorted.
my $objects_sql = q{
WITH ext AS (
    SELECT e.oid, e.extversion, e.extconfig, e.extcondition
      FROM pg_extension e WHERE e.extname = 'event_stats'),
members AS (
    SELECT d.classid, d.objid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
       AND d.deptype = 'e'),
rels AS (
    SELECT m.objid AS oid FROM members m WHERE m.classid = 'pg_class'::regclass)
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
    SELECT 'version ' || ext.extversion AS line FROM ext
  UNION ALL
    SELECT 'config ' || cfg.rel::regclass || ' ' || cfg.cond
      FROM ext, unnest(ext.extconfig, ext.extcondition) AS cfg(rel, cond)
  UNION ALL
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0)
           || ' comment ' || coalesce(obj_description(m.objid, cat.relname), '-')
      FROM members m JOIN pg_class cat ON cat.oid = m.classid
  UNION ALL
    SELECT 'schema acl ' || coalesce(n.nspacl::text, '-')
      FROM pg_namespace n WHERE n.nspname = 'event_stats'
  UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' kind ' || c.relkind::text
           || ' persistence ' || c.relpersistence::text
           || ' options ' || coalesce(c.reloptions::text, '-')
           || ' acl ' || coalesce(c.relacl::text, '-')
      FROM pg_class c JOIN rels r ON r.oid = c.oid
  UNION ALL
    SELECT 'column ' || a.attrelid::regclass
           || ' #' || row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)
           || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
           || coalesce(' collate ' || nullif(a.attcollation, 0)::regcollation::text, '')
           || ' acl ' || coalesce(a.attacl::text, '-')
           || ' comment ' || coalesce(col_description(a.attrelid, a.attnum), '-')
      FROM pg_attribute a
      JOIN rels r ON r.oid = a.attrelid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
           || ' clustered ' || i.indisclustered
           || ' options ' || coalesce(ic.reloptions::text, '-')
      FROM pg_index i
      JOIN rels r ON r.oid = i.indrelid
      JOIN pg_class ic ON ic.oid = i.indexrelid
  UNION ALL
    SELECT 'constraint ' || co.conrelid::regclass || ' ' || co.conname || ' '
           || pg_get_constraintdef(co.oid)
      FROM pg_constraint co JOIN rels r ON r.oid = co.conrelid
  UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
      FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid
  UNION ALL
    SELECT 'view ' || c.oid::regclass || ' ' || pg_get_viewdef(c.oid)
      FROM pg_class c JOIN rels r ON r.oid = c.oid
     WHERE c.relkind = 'v'
  UNION ALL
    SELECT 'sequence ' || s.seqrelid::regclass || ' ' || s.seqtypid::regtype
           || ' ' || s.seqstart || ' ' || s.seqincrement || ' ' || s.seqmax
           || ' ' || s.seqmin || ' ' || s.seqcache || ' ' || s.seqcycle
      FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid
  UNION ALL
    SELECT 'routine ' || p.oid::regprocedure
           || ' ' || md5(CASE WHEN p.prokind = 'a' THEN '' ELSE pg_get_functiondef(p.oid) END)
           || ' acl ' || coalesce(p.proacl::text, '-')
      FROM pg_proc p
      JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
  UNION ALL
    SELECT 'aggregate ' || a.aggfnoid::regprocedure || ' ' || a.aggtransfn::regproc
           || ' ' || a.aggcombinefn::regproc || ' ' || a.aggsortop::regoperator
      FROM pg_aggregate a
      JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = a.aggfnoid
  UNION ALL
    SELECT 'type ' || t.oid::regtype || ' ' || t.typlen || ' ' || t.typbyval
           || ' ' || t.typalign::text || ' ' || t.typinput::regproc || ' ' || t.typoutput::regproc
           || ' ' || t.typreceive::regproc || ' ' || t.typsend::regproc
      FROM pg_type t
      JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
  UNION ALL
    SELECT 'operator ' || o.oid::regoperator || ' ' || o.oprcode::regproc
           || ' ' || o.oprcom::regoperator || ' ' || o.oprnegate::regoperator
           || ' ' || o.oprrest::regproc || ' ' || o.oprjoin::regproc
           || ' ' || o.oprcanhash || ' ' || o.oprcanmerge
      FROM pg_operator o
      JOIN members m ON m.classid = 'pg_operator'::regclass AND m.objid = o.oid
  UNION ALL
    SELECT 'cast ' || c.castsource::regtype || ' ' || c.casttarget::regtype
           || ' ' || c.castfunc::regprocedure || ' ' || c.castcontext::text || ' ' || c.castmethod::text
      FROM pg_cast c
      JOIN members m ON m.classid = 'pg_cast'::regclass AND m.objid = c.oid
  UNION ALL
    SELECT 'opclass ' || oc.opcname || ' ' || am.amname || ' default ' || oc.opcdefault
      FROM pg_opclass oc
      JOIN pg_am am ON am.oid = oc.opcmethod
      JOIN members m ON m.classid = 'pg_opclass'::regclass AND m.objid = oc.oid
  UNION ALL
    SELECT 'amop ' || f.opfname || ' ' || ao.amopstrategy || ' ' || ao.amopopr::regoperator
      FROM pg_amop ao
      JOIN pg_opfamily f ON f.oid = ao.amopfamily
      JOIN members m ON m.classid = 'pg_opfamily'::regclass AND m.objid = f.oid
  UNION ALL
    SELECT 'amproc ' || f.opfname || ' ' || ap.amprocnum || ' ' || ap.amproc::regprocedure
      FROM pg_amproc ap
      JOIN pg_opfamily f ON f.oid = ap.amprocfamily
      JOIN members m ON m.classid = 'pg_opfamily'::regclass AND m.objid = f.oid
) x};

$node->safe_psql('postgres', 'CREATE DATABASE direct');
$node->safe_psql('postgres', 'CREATE DATABASE updated');
$node->safe_psql('direct', 'CREATE EXTENSION event_stats');
$node->safe_psql('updated', q{CREATE EXTENSION event_stats VERSION '1.0'});
is(extversion('direct'), '1.1', 'CREATE EXTENSION installs 1.1');
is(extversion('updated'), '1.0', q{CREATE EXTENSION ... VERSION '1.0' installs 1.0});
like(
	$node->safe_psql('updated', $objects_sql),
	qr/^column event_stats\.counter_shards #4 filler character\(380\) not null default ''::bpchar/m,
	'1.0 has the filler column');
$node->safe_psql('updated', 'ALTER EXTENSION event_stats UPDATE');
is(extversion('updated'), '1.1', 'ALTER EXTENSION event_stats UPDATE goes to 1.1');

my $direct_objects = $node->safe_psql('direct', $objects_sql);
is($node->safe_psql('updated', $objects_sql),
	$direct_objects,
	'updated from 1.0 = created as 1.1: every member, comment, column, option, index, trigger, privilege, definition');
like(
	$direct_objects,
	qr/^relation event_stats\.counter_shards kind r persistence p options \{fillfactor=50\} acl /m,
	'counter_shards has fillfactor 50');
is( $node->safe_psql(
		'direct', q{
SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
 WHERE attrelid = 'event_stats.counter_shards'::regclass AND attnum > 0
   AND NOT attisdropped}),
	'counter_id,shard,value',
	'1.1: counter_shards has the columns counter_id, shard, value');
is($node->safe_psql('updated', '\dx+ event_stats'),
	$node->safe_psql('direct', '\dx+ event_stats'),
	'\dx+ event_stats lists the same objects both ways');

# --- b. a 1.0 database with counters, tracked tables and the clock ----------

$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql(
	'app', q{
CREATE EXTENSION event_stats VERSION '1.0';
CREATE EXTENSION amcheck;
CREATE ROLE app_writer LOGIN;
CREATE ROLE counter_owner;

-- every committed change of the counters the load writes, with the change
CREATE TABLE ledger (id bigserial PRIMARY KEY, counter text NOT NULL,
                     delta bigint NOT NULL);
CREATE INDEX ledger_counter ON ledger (counter);
CREATE TABLE items (id bigserial PRIMARY KEY, client int NOT NULL, payload text);
CREATE INDEX items_client ON items (client, id);
CREATE TABLE pitems (id bigserial, client int NOT NULL, k int NOT NULL,
                     PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
CREATE TABLE pitems_lo PARTITION OF pitems FOR VALUES FROM (0) TO (50);
CREATE TABLE pitems_hi PARTITION OF pitems FOR VALUES FROM (50) TO (100);
INSERT INTO items (client, payload) SELECT -1, 'before' FROM generate_series(1, 500);
INSERT INTO pitems (client, k) SELECT -1, g % 100 FROM generate_series(1, 700) g;
SELECT event_stats.track('items');
SELECT event_stats.track('pitems', 'pitems_rows');

SELECT event_stats.create_counter('c_default');
SELECT event_stats.create_counter('c4', 4);
SELECT event_stats.create_counter('c1', shards => 1);
SELECT event_stats.create_counter('c_gone');
SELECT event_stats.create_counter('c_big', 8);
SELECT event_stats.create_counter('c_ovf', 4);
SELECT event_stats.create_counter('c_neg', 2);
SELECT event_stats.create_counter('c_zero');
SELECT event_stats.create_counter('c_set', 3);
SELECT event_stats.create_counter('c_lazy', 8);
SELECT event_stats.create_counter('c_prep', 2);
SELECT event_stats.create_counter('c_owned', 2);
SELECT event_stats.create_counter('c_drop_rb', 4);
SELECT event_stats.create_counter('c_drop_c', 2);
SELECT event_stats.create_counter('c_fresh', 4);
SELECT event_stats.drop_counter('c_gone');
SELECT event_stats.grant_counter('c_default', 'UPDATE', 'app_writer');
SELECT event_stats.grant_counter('c4', 'SELECT, UPDATE', 'app_writer');
SELECT event_stats.grant_counter('c_big', 'SELECT', 'public');
SELECT event_stats.alter_counter_owner('c_owned', 'counter_owner');

-- a row for every shard of every counter but c_lazy and c_fresh, as the
-- 1.0 library made them at create_counter() and track() (track() wrote
-- its count)
INSERT INTO event_stats.counter_shards (counter_id, shard, value)
SELECT d.id, g, 0
  FROM event_stats.counter_definitions d, generate_series(0, d.shards - 1) g
 WHERE d.name NOT IN ('c_lazy', 'c_fresh')
ON CONFLICT DO NOTHING;
-- values that backends of a 1.0 server can leave in shard rows: partial
-- sums beyond bigint with a total that fits (806), and two halves of a
-- total out of bigint range
UPDATE event_stats.counter_shards s SET value = v.value
  FROM (VALUES (1, 9223372036854775807), (2, 9223372036854775807),
               (3, -9223372036854775808), (4, -9223372036854775000)) v(shard, value)
 WHERE s.counter_id = 'c_big'::event_stats.counter::integer AND s.shard = v.shard;
UPDATE event_stats.counter_shards s SET value = 9000000000000000000
 WHERE s.counter_id = 'c_ovf'::event_stats.counter::integer AND s.shard IN (1, 2);
-- rows only where the 1.1 library wrote them, in a 1.0 database: no shard 0
INSERT INTO event_stats.counter_shards (counter_id, shard, value)
SELECT 'c_lazy'::event_stats.counter::integer, s, v
  FROM (VALUES (3, 40), (5, 2)) x(s, v);
});

# Increments through the library: the load's counters with their ledger
# rows, a large and a negative one among them; the others alone.
$node->safe_psql(
	'app', q{
BEGIN;
SELECT event_stats.increment('c_default', 4611686018427387904);
INSERT INTO ledger (counter, delta) VALUES ('c_default', 4611686018427387904);
COMMIT;
BEGIN;
SELECT event_stats.increment('c4', -123456789);
SELECT event_stats.increment('c1', 1000);
INSERT INTO ledger (counter, delta) VALUES ('c4', -123456789), ('c1', 1000);
COMMIT;
SELECT event_stats.increment('c_neg', -42);
SELECT event_stats.increment('c_neg', -58);
SELECT event_stats.increment('c_zero', 5);
SELECT event_stats.increment('c_zero', -5);
SELECT event_stats.set('c_set', 1000000);
SELECT event_stats.increment('c_set', 7);
SELECT event_stats.increment('c_prep', 11);
SELECT event_stats.increment('c_owned', 3);
SELECT event_stats.increment('c_drop_rb', 77);
SELECT event_stats.increment('c_drop_c', 88);
});

# The clock, used; its last values.
$node->safe_psql(
	'app', q{
SELECT count(event_stats.hlc_now()) FROM generate_series(1, 1000);
SELECT count(event_stats.unique_timestamp()) FROM generate_series(1, 1000);
});
my ($clock_ts, $clock_hlc) = split /\|/,
  $node->safe_psql('app',
	q{SELECT event_stats.unique_timestamp() || '|' || event_stats.hlc_now()::bigint});
like($clock_hlc, qr/^\d+$/, "1.0: the clock's last value $clock_hlc");

# Every counter as the counters view shows it (value NULL where value()
# refuses), and the values of the quiet counters, which nobody writes from
# here on.
my $view_sql = q{
SELECT string_agg(format('%s|%s|%s|%s|%s|%s', name, counter::integer, shards,
                         owner, acl, coalesce(value::text, 'NULL')),
                  E'\n' ORDER BY name)
  FROM event_stats.counters};
my $view_before = $node->safe_psql('app', $view_sql);
my %quiet = (
	c_big => 806,
	c_neg => -100,
	c_zero => 0,
	c_set => 1000007,
	c_lazy => 42,
	c_drop_rb => 77,
	c_drop_c => 88,
	c_fresh => 0,
	c_prep => 11,
	c_owned => 3);
for my $c (sort keys %quiet)
{
	is($node->safe_psql('app', "SELECT event_stats.value('$c')"),
		$quiet{$c}, "1.0: value($c) = $quiet{$c}");
}
fails_with('app', q{SELECT event_stats.value('c_ovf')},
	'22003', qr/out of range|overflow/i, '1.0: value(c_ovf), out of bigint range');
is($node->safe_psql('app', 'SELECT count(*) FROM ledger'), '3', '1.0: three ledger rows');

# Rows per counter, and the table's identity.
my $rows_sql = q{
SELECT string_agg(format('%s:%s', d.name, (SELECT count(*) FROM event_stats.counter_shards s
                                            WHERE s.counter_id = d.id)),
                  ',' ORDER BY d.name)
  FROM event_stats.counter_definitions d};
my %rows_before = map { split /:/ } split /,/, $node->safe_psql('app', $rows_sql);
is($rows_before{c4}, 4, '1.0: c4 has a row for each of its 4 shards');
cmp_ok($rows_before{c_default}, '>=', 80,
	"1.0: c_default has a row for each of its $rows_before{c_default} shards");
my $table_sql = q{
SELECT oid || ' ' || relfilenode FROM pg_class
 WHERE oid = 'event_stats.counter_shards'::regclass};
my ($shards_oid, $filenode_before) = split / /, $node->safe_psql('app', $table_sql);

# The dump of the 1.0 database, for e.
my $tmp = PostgreSQL::Test::Utils::tempdir;

sub run_ok
{
	my ($cmd, $what) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run($cmd, '>', \$out, '2>', \$err);
	is($? >> 8, 0, "$what: exit status 0");
	return ($out, $err);
}
run_ok(
	[
		'pg_dump', '-Fc', '-f', "$tmp/v10.dump",
		'-h', $node->host, '-p', $node->port, 'app'
	],
	'pg_dump -Fc of the 1.0 database');

# A prepared transaction holding an increment, the first row of a counter
# (created at PREPARE) and a row of a tracked table.
$node->safe_psql(
	'app', q{
BEGIN;
SELECT event_stats.increment('c_prep', 100);
SELECT event_stats.increment('c_fresh', 9);
INSERT INTO items (client, payload) VALUES (-3, 'prepared');
PREPARE TRANSACTION 'held';
});

# --- c. refusals -------------------------------------------------------------

fails_with(
	'app', q{
BEGIN ISOLATION LEVEL REPEATABLE READ;
ALTER EXTENSION event_stats UPDATE TO '1.1';},
	'25001', qr/must run in a READ COMMITTED transaction/,
	'the update in a REPEATABLE READ transaction');

$node->safe_psql(
	'app', q{
BEGIN;
SELECT count(*) FROM event_stats.counter_shards;
PREPARE TRANSACTION 'reader';
});
fails_with('app', q{ALTER EXTENSION event_stats UPDATE TO '1.1'},
	'55006', qr/prepared transactions hold a lock on event_stats\.counter_shards: 'reader'/,
	'the update while a prepared transaction holds a lock on counter_shards');
$node->safe_psql('app', q{ROLLBACK PREPARED 'reader'});

fails_with(
	'app', q{
BEGIN;
UPDATE event_stats.counter_shards SET filler = 'kept here'
 WHERE counter_id = 'c_big'::event_stats.counter::integer AND shard = 7;
ALTER EXTENSION event_stats UPDATE TO '1.1';},
	'55000', qr/column filler of event_stats\.counter_shards holds data/,
	'the update with data in the filler column');

is(extversion('app'), '1.0', 'after the refusals: still 1.0');
is($node->safe_psql('app', $view_sql), $view_before, 'after the refusals: counters unchanged');

# --- d. the update under load ----------------------------------------------------

my $rr_rw = q{\set d random(-1000, 1000000)
\set k random(0, 99)
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO ledger (counter, delta) VALUES ('c_default', :d), ('c4', 1), ('c1', -1);
SELECT event_stats.increment('c_default', :d);
SELECT event_stats.increment('c4');
SELECT event_stats.increment('c1', -1);
INSERT INTO items (client, payload) VALUES (:client_id, 'rr');
INSERT INTO pitems (client, k) VALUES (:client_id, :k);
COMMIT;
};
my $rc_rw = q{\set d random(-1000000, 1000)
\set k random(0, 99)
BEGIN ISOLATION LEVEL READ COMMITTED;
INSERT INTO ledger (counter, delta) VALUES ('c4', :d);
SELECT event_stats.increment('c4', :d);
DELETE FROM items WHERE id = (SELECT min(id) FROM items WHERE client = :client_id);
INSERT INTO pitems (client, k) VALUES (:client_id, :k), (:client_id, 99 - :k);
COMMIT;
};
my $rolled_back = q{\set d random(1, 1000)
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO ledger (counter, delta) VALUES ('c_default', :d), ('c1', :d);
SELECT event_stats.increment('c_default', :d);
SELECT event_stats.increment('c1', :d);
INSERT INTO items (client, payload) VALUES (:client_id, 'rolled back');
ROLLBACK;
};

# Every counter the load writes equals the sum of its ledger rows, and each
# tracked table's counter its count(*), in the statement's snapshot.
my $exact_sql = q{
SELECT bool_and(ok) AS ok FROM (
    SELECT event_stats.value(c::event_stats.counter)
           = (SELECT coalesce(sum(l.delta), 0) FROM ledger l WHERE l.counter = c) AS ok
      FROM unnest(ARRAY['c_default', 'c4', 'c1']) c
  UNION ALL
    SELECT event_stats.value('public.items') = (SELECT count(*) FROM items)
  UNION ALL
    SELECT event_stats.value('pitems_rows') = (SELECT count(*) FROM pitems)) x};
# The same in REPEATABLE READ snapshots taken a moment before (some before
# the update, read after it); a difference aborts the client.
my $reader = qq{BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM ledger;
SELECT pg_sleep(0.02);
$exact_sql \\gset
\\if :ok
\\else
SELECT 'counters differ from the ledger in this snapshot'::integer;
\\endif
COMMIT;
};

my $load = start_pgbench(
	$node,
	[ $rr_rw => 4, $rc_rw => 2, $rolled_back => 1, $reader => 2 ],
	db => 'app',
	clients => $clients,
	seconds => 16);
$node->poll_query_until('app', 'SELECT count(*) >= 500 FROM ledger')
  or die 'the load did not start';

# A REPEATABLE READ snapshot, read before the update and after it.
my $rr_session = $node->background_psql('app');
$rr_session->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $snapshot_sql = q{
SELECT string_agg(d.name || '=' || coalesce(event_stats.value_if_readable(d.id::event_stats.counter)::text,
                                            'NULL'),
                  ',' ORDER BY d.name)
       || ' ledger ' || (SELECT count(*) FROM ledger)
       || ' items ' || (SELECT count(*) FROM items)
  FROM event_stats.counter_definitions d};
my $rr_before = $rr_session->query_safe($snapshot_sql);
is($rr_session->query_safe($exact_sql), 't',
	'REPEATABLE READ session: counters = ledger and count(*) before the update');

# Two transactions that dropped a counter, open across the update: a drop
# deletes the counter's rows at once and releases the table's lock.
my %dropper;
for my $c (qw(c_drop_rb c_drop_c))
{
	$dropper{$c} = $node->background_psql('app');
	$dropper{$c}->query_safe('BEGIN');
	$dropper{$c}->query_safe("SELECT event_stats.drop_counter('$c')");
}

my $ledger_at_update = $node->safe_psql('app', 'SELECT max(id) FROM ledger');
my ($ret, $out, $err) =
  run_sql('app', q{\timing on
ALTER EXTENSION event_stats UPDATE TO '1.1';});
is($ret, 0, 'ALTER EXTENSION event_stats UPDATE TO 1.1 under load succeeds')
  or diag($err);
note "the update: $out\n$err";
my $ledger_after_update = $node->safe_psql('app', 'SELECT max(id) FROM ledger');
cmp_ok($ledger_after_update, '>', 2,
	"the load committed before the update ($ledger_at_update ledger rows, then $ledger_after_update)");
is(extversion('app'), '1.1', 'the database is at 1.1');

# Right after the update, with the load going on.
my ($oid_after, $filenode_after) = split / /, $node->safe_psql('app', $table_sql);
is($oid_after, $shards_oid, 'counter_shards kept its OID');
isnt($filenode_after, $filenode_before,
	"counter_shards was rewritten (relfilenode $filenode_before -> $filenode_after)");
is( $node->safe_psql(
		'app', q{
SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
 WHERE attrelid = 'event_stats.counter_shards'::regclass AND attnum > 0
   AND NOT attisdropped}),
	'counter_id,shard,value',
	'counter_shards has no filler column');
is( $node->safe_psql(
		'app', q{
SELECT reloptions FROM pg_class WHERE oid = 'event_stats.counter_shards'::regclass}),
	'{fillfactor=50}',
	'counter_shards has fillfactor 50');

my %rows_after = map { split /:/ } split /,/, $node->safe_psql('app', $rows_sql);
for my $c (qw(c_big c_neg c_set c_lazy c_owned))
{
	is($rows_after{$c}, 1,
		"$c, not written since: its $rows_before{$c} rows folded into one");
}
is($rows_after{c_zero}, 0, 'c_zero, at 0: no row left');
is( $node->safe_psql(
		'app', q{
SELECT string_agg(shard || '=' || value, ',' ORDER BY shard)
  FROM event_stats.counter_shards
 WHERE counter_id IN (SELECT id FROM event_stats.counter_definitions
                       WHERE name IN ('c_big', 'c_lazy'))}),
	'0=806,3=42',
	'c_big folded into shard 0 (806), c_lazy without a shard 0 row into its lowest row (42)');
is( $node->safe_psql(
		'app', q{
SELECT string_agg(shard || '=' || value, ',' ORDER BY shard)
  FROM event_stats.counter_shards
 WHERE counter_id = 'c_ovf'::event_stats.counter::integer}),
	'1=9000000000000000000,2=9000000000000000000',
	'c_ovf, out of bigint range: its rows of 0 gone, the others kept');
for my $c (qw(c_prep c_drop_rb c_drop_c))
{
	is($rows_after{$c}, $rows_before{$c},
		"$c, with a change in progress: its $rows_before{$c} rows left as they were");
}
is($rows_after{c_fresh}, 0,
	'c_fresh, its first row being created by the prepared transaction: none seen');

# The drops in progress end: one rolled back, one committed.
$dropper{c_drop_rb}->query_safe('ROLLBACK');
$dropper{c_drop_c}->query_safe('COMMIT');
$_->quit for values %dropper;
is($node->safe_psql('app', q{SELECT event_stats.value('c_drop_rb')}),
	'77', 'c_drop_rb, its drop rolled back after the update: 77');
is( $node->safe_psql(
		'app', q{
SELECT count(*) FROM event_stats.counter_definitions WHERE name = 'c_drop_c'}),
	'0', 'c_drop_c, its drop committed after the update: gone');
my ($drop_c_id) = $view_before =~ /^c_drop_c\|(\d+)\|/m;
is( $node->safe_psql('app',
		"SELECT count(*) FROM event_stats.counter_shards WHERE counter_id = $drop_c_id"),
	'0', 'c_drop_c: no row left');

# The snapshot taken before the update sees exactly what it saw.
is($rr_session->query_safe($snapshot_sql), $rr_before,
	'REPEATABLE READ session: every counter, read again after the update, as before it');
is($rr_session->query_safe($exact_sql), 't',
	'REPEATABLE READ session: counters = ledger and count(*) after the update');
$rr_session->query_safe('COMMIT');
$rr_session->quit;

# The load goes on after the update.
$node->poll_query_until('app',
	'SELECT max(id) >= ' . ($ledger_after_update + 500) . ' FROM ledger')
  or die 'the load did not go on after the update';
my $run = finish_pgbench($load);
is($run->{status}, 0, 'pgbench exit status 0');
like($run->{out}, qr/^number of failed transactions: 0 \(0\.000%\)$/m,
	'pgbench reports 0 failed transactions');
unlike($run->{out} . $run->{err}, qr/aborted|ERROR/,
	'no client aborted, no error (the readers found every snapshot exact)');
my $ledger_end = $node->safe_psql('app', 'SELECT max(id) FROM ledger');
note "ledger ids: $ledger_at_update when the update began, "
  . "$ledger_after_update when it ended, $ledger_end at the end";

# Values in one snapshot with the ledger; the prepared transaction counts
# once committed.
is($node->safe_psql('app', $exact_sql), 't',
	'every counter the load wrote = the sum of its ledger rows, tracked counters = count(*)');
is($node->safe_psql('app', q{SELECT event_stats.value('c_prep')}),
	'11', 'c_prep before COMMIT PREPARED: 11');
$node->safe_psql('app', q{COMMIT PREPARED 'held'});
is($node->safe_psql('app', q{SELECT event_stats.value('c_prep')}),
	'111', 'c_prep after COMMIT PREPARED: 111');
is($node->safe_psql('app', q{SELECT event_stats.value('c_fresh')}),
	'9', 'c_fresh after COMMIT PREPARED: 9');
is($node->safe_psql('app', $exact_sql), 't',
	'with the prepared row of items committed: still exact');
for my $c (sort grep { !/^(c_prep|c_fresh|c_drop_c)$/ } keys %quiet)
{
	is($node->safe_psql('app', "SELECT event_stats.value('$c')"),
		$quiet{$c}, "1.1: value($c) = $quiet{$c}");
}
fails_with('app', q{SELECT event_stats.value('c_ovf')},
	'22003', qr/out of range|overflow/i, '1.1: value(c_ovf), still out of bigint range');

# Definitions, owners and privileges as they were; only values moved.
my $defs_sql = q{
SELECT string_agg(format('%s|%s|%s|%s|%s', name, counter::integer, shards, owner, acl),
                  E'\n' ORDER BY name)
  FROM event_stats.counters};
my $defs_before = join("\n",
	map { join('|', (split /\|/, $_, -1)[ 0 .. 4 ]) }
	grep { !/^c_drop_c\|/ } split /\n/, $view_before);
is($node->safe_psql('app', $defs_sql), $defs_before,
	'every counter with its id, shards, owner and privileges as before (c_drop_c dropped)');
fails_with('app', q{SELECT event_stats.value('c_default')},
	'42501', qr/permission denied/, 'app_writer may not read c_default',
	user => 'app_writer');
$node->safe_psql(
	'app', q{
BEGIN;
SET LOCAL ROLE app_writer;
SELECT event_stats.increment('c4', 5);
RESET ROLE;
INSERT INTO ledger (counter, delta) VALUES ('c4', 5);
COMMIT;});
is( $node->safe_psql('app',
		q{SET ROLE app_writer; SELECT event_stats.value('c4')}),
	$node->safe_psql('app',
		q{SELECT sum(delta) FROM ledger WHERE counter = 'c4'}),
	'app_writer increments and reads c4 as granted');
my ($last_id) = sort { $b <=> $a } $view_before =~ /^[^|]*\|(\d+)\|/mg;
is($node->safe_psql('app', q{SELECT event_stats.create_counter('c_new')::integer}),
	$last_id + 1, 'a new counter takes the next id of the sequence');

# The clock goes on above its last values.
is( $node->safe_psql(
		'app', qq{
SELECT event_stats.unique_timestamp() > '$clock_ts'::timestamptz
   AND event_stats.hlc_now()::bigint > $clock_hlc}),
	't',
	'the clock: new values above those taken before the update');

check_amcheck($node, 'app', 'after the update and the load', parent => 1);

# --- e. dumps ----------------------------------------------------------------------

# pg_restore --exit-on-error of $dump into $db (with $list: -L $list);
# returns its exit status and stderr.
sub restore
{
	my ($db, $dump, $list) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'pg_restore', '--exit-on-error', '-d', $db,
			'-h', $node->host, '-p', $node->port,
			defined $list ? ('-L', $list) : (), $dump
		],
		'>', \$out, '2>', \$err);
	return ($? >> 8, $err);
}

# The updated database.
run_ok(
	[
		'pg_dump', '-Fc', '-f', "$tmp/v11.dump",
		'-h', $node->host, '-p', $node->port, 'app'
	],
	'pg_dump -Fc of the updated database');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
my ($status, $restore_err) = restore('restored', "$tmp/v11.dump");
is($status, 0, 'pg_restore of the updated database') or diag($restore_err);
is(extversion('restored'), '1.1', 'restored: 1.1');
is($node->safe_psql('restored', $view_sql),
	$node->safe_psql('app', $view_sql),
	'restored: every counter with its id, shards, owner, privileges and value');
is($node->safe_psql('restored', $exact_sql), 't',
	'restored: counters = ledger, tracked counters = count(*)');

# The dump of 1.0: CREATE EXTENSION in a dump names no version, so a
# restore creates 1.1, whose counter_shards has no filler column for the
# dumped rows.  The README's recipe: create 1.0 in the new database first,
# restore all but the schema (which CREATE EXTENSION made; the dump's
# CREATE EXTENSION IF NOT EXISTS then does nothing), update.
$node->safe_psql('postgres', 'CREATE DATABASE restored_plain');
($status, $restore_err) = restore('restored_plain', "$tmp/v10.dump");
isnt($status, 0, 'a 1.0 dump restored as it is under 1.1 fails');
like($restore_err, qr/column "filler" of relation "counter_shards" does not exist/,
	'... on the filler column of counter_shards');

my ($listing) = run_ok([ 'pg_restore', '-l', "$tmp/v10.dump" ],
	'pg_restore -l of the 1.0 dump');
my @entries = split /\n/, $listing;
my @schema = grep { /^\d+; \d+ \d+ SCHEMA - event_stats / } @entries;
is(scalar @schema, 1, 'the 1.0 dump has one entry for schema event_stats');
append_to_file("$tmp/v10.list",
	join("\n", grep { !/^\d+; \d+ \d+ SCHEMA - event_stats / } @entries) . "\n");
$node->safe_psql('postgres', 'CREATE DATABASE restored_v10');
$node->safe_psql('restored_v10', q{CREATE EXTENSION event_stats VERSION '1.0'});
($status, $restore_err) =
  restore('restored_v10', "$tmp/v10.dump", "$tmp/v10.list");
is($status, 0,
	'the 1.0 dump restored, but for its schema, where 1.0 was created first')
  or diag($restore_err);
is(extversion('restored_v10'), '1.0', 'restored_v10: 1.0');
my $v10_view = $node->safe_psql('restored_v10', $view_sql);
$node->safe_psql('restored_v10', 'ALTER EXTENSION event_stats UPDATE');
is(extversion('restored_v10'), '1.1', 'restored_v10: updated to 1.1');
is($node->safe_psql('restored_v10', $view_sql), $v10_view,
	'restored_v10: every counter as restored, after the update');
is($v10_view, $view_before,
	'restored_v10: the counters of the 1.0 database, values and all');
is($node->safe_psql('restored_v10', $exact_sql), 't',
	'restored_v10: counters = ledger, tracked counters = count(*)');
is($node->safe_psql('restored_v10', $objects_sql),
	$direct_objects,
	'restored_v10: the objects of 1.1');

# --- f. the update among many commits ---------------------------------------------
#
# A commit writes its counters one after the other and releases the
# table's lock after each.  Had the update queued for its lock, a commit
# that has written one counter and asks for the lock again queues behind
# it, while another commit that holds the lock waits for that commit's
# row: the deadlock detector lets the first go ahead after deadlock_timeout,
# once per counter it has left, and the update, with every commit queued
# behind it, waited 12 to 35 s in such rounds.  The update takes the lock
# when the table is free instead.  Three rounds: a new 1.0 database, 8
# clients committing 16 counters (a third of them of one shard) and a
# tracked table per transaction, the update a second in; each round exact,
# with no failed transaction, and the update done within 10 s.  (CLUSTER
# warns about the row versions in progress it copies; noted.)

my $round_counters = join(', ', map { "'b$_'" } 1 .. 16);
my $round_exact = qq{
SELECT bool_and(event_stats.value(c::event_stats.counter)
                = (SELECT coalesce(sum(l.delta), 0) FROM ledger l WHERE l.counter = c))
       AND event_stats.value('public.items') = (SELECT count(*) FROM items)
  FROM unnest(ARRAY[$round_counters]) c};
my $round_load = q{\set d random(-1000, 1000000)
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO ledger (counter, delta)
  SELECT 'b' || g, :d + g FROM generate_series(1, 16) g;
} . join('', map { "SELECT event_stats.increment('b$_', :d + $_);\n" } 1 .. 16) . q{INSERT INTO items (client, payload) VALUES (:client_id, 'round');
COMMIT;
};
for my $round (1 .. 3)
{
	my $db = "busy$round";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql(
		$db, q{
CREATE EXTENSION event_stats VERSION '1.0';
CREATE TABLE ledger (counter text NOT NULL, delta bigint NOT NULL);
CREATE TABLE items (id bigserial PRIMARY KEY, client int NOT NULL, payload text);
SELECT event_stats.track('items');
SELECT event_stats.create_counter('b' || g, CASE WHEN g % 3 = 0 THEN 1 END)
  FROM generate_series(1, 16) g;
INSERT INTO event_stats.counter_shards (counter_id, shard, value)
SELECT d.id, g, 0
  FROM event_stats.counter_definitions d, generate_series(0, d.shards - 1) g
ON CONFLICT DO NOTHING;
});
	my $bg = start_pgbench($node, $round_load,
		db => $db, clients => $clients, seconds => 3);
	$node->poll_query_until($db, 'SELECT count(*) >= 1600 FROM ledger')
	  or die 'the load did not start';
	my $t0 = time;
	my ($r, $o, $e) = run_sql($db, q{ALTER EXTENSION event_stats UPDATE});
	my $took = time - $t0;
	is($r, 0, "round $round: the update succeeds") or diag($e);
	cmp_ok($took, '<', 10, sprintf('round %d: the update took %.2f s', $round, $took));
	my $in_progress = () = $e =~ /concurrent (?:insert|delete) in progress/g;
	note "round $round: CLUSTER warned $in_progress times about row versions in progress";
	my $bg_run = finish_pgbench($bg);
	is($bg_run->{status}, 0, "round $round: pgbench exit status 0");
	like($bg_run->{out}, qr/^number of failed transactions: 0 \(0\.000%\)$/m,
		"round $round: 0 failed transactions");
	is($node->safe_psql($db, $round_exact), 't',
		"round $round: every counter = its ledger sum, the tracked counter = count(*)");
}

# --- g. compaction folds what the update left ------------------------------------

$node->safe_psql('postgres', q{
ALTER SYSTEM SET event_stats.compaction = on;
ALTER SYSTEM SET event_stats.compaction_naptime = '1s';});
$node->reload;
$node->poll_query_until(
	'app', q{
SELECT count(*) = 1 AND min(shard) = 0 FROM event_stats.counter_shards
 WHERE counter_id = 'c_prep'::event_stats.counter::integer})
  or die 'compaction did not fold the rows of c_prep';
pass('g. compaction folded the rows the update left to c_prep into its shard 0');
is($node->safe_psql('app', q{SELECT event_stats.value('c_prep')}),
	'111', 'g. c_prep after compaction: 111');
is($node->safe_psql('app', $exact_sql), 't',
	'g. after compaction: every counter = its ledger sum, tracked counters = count(*)');

$node->stop;
done_testing();
