# Copyright: event_stats authors.  TAP test of event_stats.
#
# 010_hlc_kinto.pl -- the Kinto case: 32 concurrent writers to one
# collection, last_modified under a UNIQUE index on (parent_id,
# collection_id, last_modified), see zero unique violations when
# last_modified comes from event_stats.unique_timestamp().
#
# Two tables of Kinto's shape (records: id, parent_id, collection_id,
# last_modified timestamptz NOT NULL, data jsonb; PRIMARY KEY (id, parent_id,
# collection_id); UNIQUE (parent_id, collection_id, last_modified)), each
# with the same 1000 records, dated a year back, before the load:
#   records          last_modified DEFAULT event_stats.unique_timestamp();
#                    an update sets last_modified = unique_timestamp();
#   records_trigger  Kinto's own way, as its bump_timestamp() trigger does
#                    it (BEFORE INSERT OR UPDATE OF data): previous = the
#                    collection's latest last_modified in epoch milliseconds
#                    (read in the statement's snapshot), current = the
#                    clock in epoch milliseconds, bumped to previous + 1
#                    when the clock has not moved past previous; an insert
#                    or update without a last_modified (NULL) takes it.
#                    (Kinto's separate timestamps table, which only matters
#                    for a collection with no record, is left out.)
# Both tables are written by the same plpgsql function, kinto_write(), one
# pgbench transaction per call: an insert of a new record (weight 4) or an
# update of the data of one of the 1000 first records (weight 1), all in one
# collection.  kinto_write() catches unique_violation and records it (table,
# operation, constraint) in an unlogged table, so that a violation costs the
# client one write (Kinto answers 409) instead of aborting it.
# Checked for records, under 32 pgbench clients: pgbench processed every
# transaction, none failed, no client aborted; no violation was recorded;
# the row count is 1000 + the insert transactions of pgbench's
# per-transaction log; updates did bump last_modified; all last_modified
# distinct.
# Checked for records_trigger, the same load: pgbench itself still clean
# (the function absorbs the violations), and the recorded unique violations
# of the last_modified index are many (> 0: the test's counting method does
# see them), none of the primary key; rows = 1000 + inserts - failed
# inserts.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventStatsTest;

my $clients = 32;
my $per_client = 500;
my $total = $clients * $per_client;
my $prefill = 1000;

my $node = event_stats_node('hlc_kinto', max_connections => 80);

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION event_stats;

CREATE TABLE records (
    id text NOT NULL,
    parent_id text NOT NULL,
    collection_id text NOT NULL,
    last_modified timestamptz NOT NULL DEFAULT event_stats.unique_timestamp(),
    data jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, parent_id, collection_id));
CREATE UNIQUE INDEX records_last_modified
    ON records (parent_id, collection_id, last_modified);

CREATE TABLE records_trigger (
    id text NOT NULL,
    parent_id text NOT NULL,
    collection_id text NOT NULL,
    last_modified timestamptz NOT NULL,
    data jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, parent_id, collection_id));
CREATE UNIQUE INDEX records_trigger_last_modified
    ON records_trigger (parent_id, collection_id, last_modified);

-- Kinto's helpers: a timestamp as epoch milliseconds and back.
CREATE FUNCTION as_epoch(ts timestamptz) RETURNS bigint IMMUTABLE STRICT
  LANGUAGE sql AS \$\$SELECT floor(extract(epoch FROM ts) * 1000)::bigint\$\$;
CREATE FUNCTION from_epoch(epoch bigint) RETURNS timestamptz IMMUTABLE STRICT
  LANGUAGE sql AS \$\$SELECT 'epoch'::timestamptz + epoch * interval '1 millisecond'\$\$;

-- Kinto's bump_timestamp() trigger.
CREATE FUNCTION bump_timestamp() RETURNS trigger LANGUAGE plpgsql AS \$\$
DECLARE
    previous bigint;
    current bigint;
BEGIN
    SELECT as_epoch(max(last_modified)) INTO previous
      FROM records_trigger
     WHERE parent_id = NEW.parent_id AND collection_id = NEW.collection_id;
    -- bump to 1 ms after previous if the clock has not moved past it
    current := as_epoch(clock_timestamp());
    IF previous IS NOT NULL AND previous >= current THEN
        current := previous + 1;
    END IF;
    IF NEW.last_modified IS NULL
       OR (previous IS NOT NULL AND as_epoch(NEW.last_modified) = previous) THEN
        NEW.last_modified := from_epoch(current);
    END IF;
    RETURN NEW;
END
\$\$;
CREATE TRIGGER records_trigger_last_modified
  BEFORE INSERT OR UPDATE OF data ON records_trigger
  FOR EACH ROW EXECUTE FUNCTION bump_timestamp();

CREATE UNLOGGED TABLE violations (tbl text NOT NULL, op text NOT NULL,
                                  constraint_name text NOT NULL);
CREATE SEQUENCE record_ids;

-- One Kinto write to table tbl, in collection ('bucket1', 'collection1'):
-- op 'insert' creates record rid, op 'update' replaces record rid's data.
-- records takes last_modified from unique_timestamp() (its default on
-- insert), records_trigger from its trigger (NULL asks for a new one).  A
-- unique violation is recorded in violations, the write lost (Kinto: 409).
CREATE FUNCTION kinto_write(tbl text, op text, rid text) RETURNS void
  LANGUAGE plpgsql AS \$\$
DECLARE
    c text;
BEGIN
    IF op = 'insert' THEN
        EXECUTE format('INSERT INTO %I (id, parent_id, collection_id, data)
                        VALUES (\$1, ''bucket1'', ''collection1'', \$2)', tbl)
          USING rid, jsonb_build_object('title', rid, 'n', 0);
    ELSE
        EXECUTE format('UPDATE %I SET data = jsonb_set(data, ''{n}'', to_jsonb((data->>''n'')::int + 1)),
                                      last_modified = %s
                        WHERE id = \$1 AND parent_id = ''bucket1''
                          AND collection_id = ''collection1''',
                       tbl,
                       CASE tbl WHEN 'records' THEN 'event_stats.unique_timestamp()'
                                ELSE 'NULL' END)
          USING rid;
    END IF;
EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
    INSERT INTO violations VALUES (tbl, op, c);
END
\$\$;

-- The records before the load, the same in both tables, dated a year
-- back, 1 ms apart (an explicit last_modified: not from the clock, and the
-- trigger keeps it).
INSERT INTO records (id, parent_id, collection_id, last_modified, data)
  SELECT 'pre' || i, 'bucket1', 'collection1',
         now() - interval '1 year' + i * interval '1 millisecond',
         jsonb_build_object('title', 'pre' || i, 'n', 0)
    FROM generate_series(1, $prefill) i;
INSERT INTO records_trigger SELECT * FROM records;
});

is( $node->safe_psql(
		'postgres', q{
SELECT (SELECT count(*) FROM records) || ' ' ||
       (SELECT count(*) FROM records_trigger NATURAL JOIN records)}),
	"$prefill $prefill",
	"the same $prefill records in each table before the load");

# pgbench with the two Kinto writes on table $tbl; returns the finished run
# and the number of insert and update transactions per pgbench's
# per-transaction log (script 0: insert, 1: update).
sub kinto_load
{
	my ($tbl) = @_;
	my $log_prefix = $node->basedir . "/${tbl}_log";
	my $run = run_pgbench(
		$node,
		[
			"SELECT kinto_write('$tbl', 'insert', 'r' || nextval('record_ids'));\n"
			  => 4,
			"\\set r random(1, $prefill)\n"
			  . "SELECT kinto_write('$tbl', 'update', 'pre' || :r);\n" => 1
		],
		clients => $clients,
		transactions => $per_client,
		args => [ '-l', "--log-prefix=$log_prefix" ]);
	my @per_script = (0, 0);
	for my $log (glob("$log_prefix.*"))
	{
		for my $line (split /\n/, slurp_file($log))
		{
			my @f = split / /, $line;
			die "unexpected pgbench log line \"$line\""
			  unless @f >= 6 && $f[3] =~ /^[01]$/;
			$per_script[ $f[3] ]++;
		}
	}
	return ($run, @per_script);
}

sub check_pgbench
{
	my ($run, $inserts, $updates, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	check_pgbench_clean($run, $what);
	unlike($run->{out} . $run->{err}, qr/aborted/i, "$what: no client aborted");
	unlike($run->{err}, qr/error/i, "$what: no error on stderr");
	is($inserts + $updates, $total, "$what: pgbench logged all $total transactions");
	cmp_ok($inserts, '>', 0, "$what: inserts ran");
	cmp_ok($updates, '>', 0, "$what: updates ran");
	return;
}

# The violations recorded for table $tbl: "op:constraint:count" lines.
sub violations
{
	my ($tbl) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT coalesce(string_agg(format('%s:%s:%s', op, constraint_name, n), ','
                           ORDER BY op, constraint_name), '')
  FROM (SELECT op, constraint_name, count(*) n FROM violations
         WHERE tbl = '$tbl' GROUP BY 1, 2) x});
}

# --- unique_timestamp() -----------------------------------------------------

my $before = $node->safe_psql('postgres', 'SELECT max(last_modified) FROM records');
my ($run, $inserts, $updates) = kinto_load('records');
check_pgbench($run, $inserts, $updates, 'unique_timestamp()');
is(violations('records'), '', 'unique_timestamp(): no unique violation at all');
is($node->safe_psql('postgres', 'SELECT count(*) FROM records'),
	$prefill + $inserts,
	"unique_timestamp(): every insert made a row ($prefill + $inserts)");
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) - count(DISTINCT last_modified) FROM records}),
	0,
	'unique_timestamp(): all last_modified values distinct');
is( $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM records
 WHERE id LIKE 'pre%' AND (data->>'n')::int > 0 AND last_modified <= '$before'}),
	0,
	'unique_timestamp(): every updated record has a new last_modified');
is( $node->safe_psql(
		'postgres', qq{
SELECT sum((data->>'n')::int) FROM records WHERE id LIKE 'pre%'}),
	$updates,
	"unique_timestamp(): all $updates updates applied");

# --- Kinto's bump_timestamp() trigger --------------------------------------------

($run, $inserts, $updates) = kinto_load('records_trigger');
check_pgbench($run, $inserts, $updates, 'bump trigger');
my %lost = (insert => 0, update => 0);
my $other = '';
for (split /,/, violations('records_trigger'))
{
	my ($op, $constraint, $n) = split /:/;
	if ($constraint eq 'records_trigger_last_modified') { $lost{$op} += $n }
	else { $other .= "$_," }
}
diag("bump trigger: unique violations of last_modified under $clients clients: "
	  . "$lost{insert} of $inserts inserts, $lost{update} of $updates updates");
cmp_ok($lost{insert} + $lost{update}, '>', 0,
	'bump trigger: concurrent writers do hit unique violations of last_modified '
	  . '(what unique_timestamp() avoids, counted the same way)');
is($other, '', 'bump trigger: no other violation');
is($node->safe_psql('postgres', 'SELECT count(*) FROM records_trigger'),
	$prefill + $inserts - $lost{insert},
	'bump trigger: rows = records before + inserts - inserts lost to violations');

$node->stop;
done_testing();
