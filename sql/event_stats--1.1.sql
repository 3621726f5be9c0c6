/*
 * event_stats 1.1 -- the public API.
 *
 * Everything lives in schema event_stats.  The library must be listed in
 * shared_preload_libraries; without it every function below raises an
 * error that says so.
 *
 * This is the whole of 1.1, for CREATE EXTENSION.  A 1.0 installation gets
 * the same objects from event_stats--1.0--1.1.sql (ALTER EXTENSION
 * event_stats UPDATE); TAP test 020_upgrade compares the two, so a change
 * here needs its twin there, and a later release a script of its own.
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION event_stats" to load this file. \quit

--------------------------------------------------------------------------
-- The schema.  CREATE EXTENSION creates schema event_stats when there is
-- none, and otherwise installs into the one it finds, whoever made it.
-- Every name below, and every name the C code looks up, is resolved in
-- that schema, so it must be a schema nobody but superusers can put
-- objects in: owned by a superuser, with CREATE granted to no one else,
-- and empty.  A schema squatted by another role (one that may create
-- schemas in this database) is refused; see "Security" in the README.
-- Written with pg_catalog-qualified operators: the search_path of an
-- install script starts with the very schema being checked.
--------------------------------------------------------------------------

DO $$
DECLARE
    nsp pg_catalog.pg_namespace;
BEGIN
    SELECT * INTO nsp FROM pg_catalog.pg_namespace n
     WHERE n.nspname OPERATOR(pg_catalog.=) 'event_stats'::pg_catalog.name;
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r
             WHERE r.oid OPERATOR(pg_catalog.=) nsp.nspowner)
    THEN
        RAISE EXCEPTION 'schema "event_stats" is owned by role "%", which is not a superuser',
                        pg_catalog.pg_get_userbyid(nsp.nspowner)
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Its owner could put objects into it that the extension would then resolve and run.',
                  HINT = 'Drop or rename that schema and run CREATE EXTENSION event_stats again.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.aclexplode(nsp.nspacl) a
                WHERE a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
                  AND a.grantee OPERATOR(pg_catalog.<>) nsp.nspowner
                  AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r
                            WHERE r.oid OPERATOR(pg_catalog.=) a.grantee))
    THEN
        RAISE EXCEPTION 'schema "event_stats" grants CREATE to roles that are not superusers'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'REVOKE CREATE ON SCHEMA event_stats FROM those roles, or drop the schema.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_depend d
                WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
                  AND d.refobjid OPERATOR(pg_catalog.=) nsp.oid
                  -- the extension itself depends on its schema
                  AND d.classid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_extension'::pg_catalog.regclass)
    THEN
        RAISE EXCEPTION 'schema "event_stats" is not empty'
            USING ERRCODE = 'object_in_use',
                  HINT = 'Install the extension into a new schema: drop or rename this one first.';
    END IF;
END
$$;

--------------------------------------------------------------------------
-- State tables.  Written only by the extension's C code; see
-- src/counter_store.c for the rules.  Ordinary roles get no privileges on
-- them.  They are extension configuration tables, so pg_dump saves their
-- rows and pg_restore brings counters and values back.
--------------------------------------------------------------------------

CREATE TABLE event_stats.counter_definitions (
    id      integer PRIMARY KEY,
    name    text COLLATE "C" NOT NULL UNIQUE
            CHECK (octet_length(name) BETWEEN 1 AND 63),
    shards  integer NOT NULL CHECK (shards > 0),
    -- who owns the counter, and its privileges (NULL: the owner's alone),
    -- as pg_class keeps them for a sequence; regrole and aclitem dump as
    -- role names, so a restore finds the roles again
    owner   regrole NOT NULL,
    acl     aclitem[]
);
COMMENT ON TABLE event_stats.counter_definitions IS
    'One row per sharded counter. Do not write to it directly.';

CREATE SEQUENCE event_stats.counter_definitions_id_seq
    AS integer OWNED BY event_stats.counter_definitions.id;

-- One row per (counter, shard) that was written: create_counter() inserts
-- none, and the first commit that writes a shard creates its row, so a
-- counter costs rows only for the backend slots that used it.  Rows are
-- not padded and share pages; fillfactor 50 keeps half of each page free
-- for new versions, so a commit usually updates its row on the row's own
-- page (a HOT update, with no new index entry).  Shard 0 is the counter's
-- base row: set() writes its value there, and compaction folds the rows
-- of shards no longer written into it.
CREATE TABLE event_stats.counter_shards (
    counter_id  integer NOT NULL,
    shard       integer NOT NULL,
    value       bigint NOT NULL,
    PRIMARY KEY (counter_id, shard)
) WITH (fillfactor = 50);
COMMENT ON TABLE event_stats.counter_shards IS
    'Shard values of sharded counters; a counter is the sum of its rows, which exist only for the shards written. Do not write to it directly.';

-- One row per tracked table: its rows are counted by counter_id.  relid is
-- a regclass so that pg_dump writes the table's name and pg_restore finds
-- the new OID.  A dump carries these rows but not the tracking counters'
-- definitions and shards (see the filters below): restoring a row starts
-- tracking again under counter_name, counting the restored table, so the
-- value is right whatever order pg_restore loads tables in.
CREATE TABLE event_stats.tracked_tables (
    relid         regclass PRIMARY KEY,
    counter_id    integer NOT NULL UNIQUE,
    counter_name  text COLLATE "C" NOT NULL
);
COMMENT ON TABLE event_stats.tracked_tables IS
    'Tables whose row count a counter keeps; see event_stats.track(). Do not write to it directly.';

REVOKE ALL ON event_stats.counter_definitions, event_stats.counter_shards,
    event_stats.counter_definitions_id_seq, event_stats.tracked_tables FROM PUBLIC;

-- Each server keeps its own state: a logical replication worker's changes
-- to these tables (a publication FOR ALL TABLES carries them) are dropped,
-- and a replicated TRUNCATE of them refused; see src/replication.c.
CREATE FUNCTION event_stats.replicated_state_trigger()
    RETURNS trigger
    AS 'MODULE_PATHNAME', 'es_replicated_state_trigger'
    LANGUAGE C;
COMMENT ON FUNCTION event_stats.replicated_state_trigger() IS
    'Trigger of the state tables: drops the row changes a logical replication worker would apply to them, refuses a replicated TRUNCATE';
REVOKE EXECUTE ON FUNCTION event_stats.replicated_state_trigger() FROM PUBLIC;

CREATE TRIGGER replicated_state
    BEFORE INSERT OR UPDATE OR DELETE ON event_stats.counter_definitions
    FOR EACH ROW EXECUTE FUNCTION event_stats.replicated_state_trigger();
CREATE TRIGGER replicated_state
    BEFORE INSERT OR UPDATE OR DELETE ON event_stats.counter_shards
    FOR EACH ROW EXECUTE FUNCTION event_stats.replicated_state_trigger();
CREATE TRIGGER replicated_state
    BEFORE INSERT OR UPDATE OR DELETE ON event_stats.tracked_tables
    FOR EACH ROW EXECUTE FUNCTION event_stats.replicated_state_trigger();
CREATE TRIGGER replicated_state_truncate
    BEFORE TRUNCATE ON event_stats.counter_definitions
    FOR EACH STATEMENT EXECUTE FUNCTION event_stats.replicated_state_trigger();
CREATE TRIGGER replicated_state_truncate
    BEFORE TRUNCATE ON event_stats.counter_shards
    FOR EACH STATEMENT EXECUTE FUNCTION event_stats.replicated_state_trigger();
CREATE TRIGGER replicated_state_truncate
    BEFORE TRUNCATE ON event_stats.tracked_tables
    FOR EACH STATEMENT EXECUTE FUNCTION event_stats.replicated_state_trigger();
ALTER TABLE event_stats.counter_definitions
    ENABLE ALWAYS TRIGGER replicated_state,
    ENABLE ALWAYS TRIGGER replicated_state_truncate;
ALTER TABLE event_stats.counter_shards
    ENABLE ALWAYS TRIGGER replicated_state,
    ENABLE ALWAYS TRIGGER replicated_state_truncate;
ALTER TABLE event_stats.tracked_tables
    ENABLE ALWAYS TRIGGER replicated_state,
    ENABLE ALWAYS TRIGGER replicated_state_truncate;

SELECT pg_catalog.pg_extension_config_dump('event_stats.counter_definitions',
    'WHERE id NOT IN (SELECT counter_id FROM event_stats.tracked_tables)');
SELECT pg_catalog.pg_extension_config_dump('event_stats.counter_shards',
    'WHERE counter_id NOT IN (SELECT counter_id FROM event_stats.tracked_tables)');
SELECT pg_catalog.pg_extension_config_dump('event_stats.counter_definitions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('event_stats.tracked_tables', '');

--------------------------------------------------------------------------
-- The counter type: a 4-byte handle whose text form is the counter's
-- name.  'events_total'::event_stats.counter resolves the name once, when
-- the literal is read, and fails if there is no such counter.
--------------------------------------------------------------------------

CREATE TYPE event_stats.counter;

CREATE FUNCTION event_stats.counter_in(cstring)
    RETURNS event_stats.counter
    AS 'MODULE_PATHNAME', 'counter_in'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.counter_in(cstring) IS
    'Resolves a counter name to its handle';

CREATE FUNCTION event_stats.counter_out(event_stats.counter)
    RETURNS cstring
    AS 'MODULE_PATHNAME', 'counter_out'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.counter_out(event_stats.counter) IS
    'Prints a counter handle as its name (a dropped counter as its id)';

CREATE TYPE event_stats.counter (
    INPUT = event_stats.counter_in,
    OUTPUT = event_stats.counter_out,
    INTERNALLENGTH = 4,
    PASSEDBYVALUE,
    ALIGNMENT = int4
);
COMMENT ON TYPE event_stats.counter IS
    'Handle of a sharded counter; reads and prints as the counter''s name';

-- The handle is the counter's integer id.
CREATE CAST (event_stats.counter AS integer) WITHOUT FUNCTION;
CREATE CAST (integer AS event_stats.counter) WITHOUT FUNCTION;

-- Comparison, so handles can be grouped, joined and indexed.  Ordering is
-- creation order.
CREATE FUNCTION event_stats.counter_eq(event_stats.counter, event_stats.counter)
    RETURNS boolean AS 'MODULE_PATHNAME', 'counter_eq'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.counter_ne(event_stats.counter, event_stats.counter)
    RETURNS boolean AS 'MODULE_PATHNAME', 'counter_ne'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.counter_lt(event_stats.counter, event_stats.counter)
    RETURNS boolean AS 'MODULE_PATHNAME', 'counter_lt'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.counter_le(event_stats.counter, event_stats.counter)
    RETURNS boolean AS 'MODULE_PATHNAME', 'counter_le'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.counter_gt(event_stats.counter, event_stats.counter)
    RETURNS boolean AS 'MODULE_PATHNAME', 'counter_gt'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.counter_ge(event_stats.counter, event_stats.counter)
    RETURNS boolean AS 'MODULE_PATHNAME', 'counter_ge'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.counter_cmp(event_stats.counter, event_stats.counter)
    RETURNS integer AS 'MODULE_PATHNAME', 'counter_cmp'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.counter_hash(event_stats.counter)
    RETURNS integer AS 'MODULE_PATHNAME', 'counter_hash'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE OPERATOR event_stats.= (
    LEFTARG = event_stats.counter, RIGHTARG = event_stats.counter,
    FUNCTION = event_stats.counter_eq,
    COMMUTATOR = OPERATOR(event_stats.=), NEGATOR = OPERATOR(event_stats.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR event_stats.<> (
    LEFTARG = event_stats.counter, RIGHTARG = event_stats.counter,
    FUNCTION = event_stats.counter_ne,
    COMMUTATOR = OPERATOR(event_stats.<>), NEGATOR = OPERATOR(event_stats.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR event_stats.< (
    LEFTARG = event_stats.counter, RIGHTARG = event_stats.counter,
    FUNCTION = event_stats.counter_lt,
    COMMUTATOR = OPERATOR(event_stats.>), NEGATOR = OPERATOR(event_stats.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR event_stats.<= (
    LEFTARG = event_stats.counter, RIGHTARG = event_stats.counter,
    FUNCTION = event_stats.counter_le,
    COMMUTATOR = OPERATOR(event_stats.>=), NEGATOR = OPERATOR(event_stats.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR event_stats.> (
    LEFTARG = event_stats.counter, RIGHTARG = event_stats.counter,
    FUNCTION = event_stats.counter_gt,
    COMMUTATOR = OPERATOR(event_stats.<), NEGATOR = OPERATOR(event_stats.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR event_stats.>= (
    LEFTARG = event_stats.counter, RIGHTARG = event_stats.counter,
    FUNCTION = event_stats.counter_ge,
    COMMUTATOR = OPERATOR(event_stats.<=), NEGATOR = OPERATOR(event_stats.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS event_stats.counter_ops
    DEFAULT FOR TYPE event_stats.counter USING btree AS
        OPERATOR 1 event_stats.<,
        OPERATOR 2 event_stats.<=,
        OPERATOR 3 event_stats.=,
        OPERATOR 4 event_stats.>=,
        OPERATOR 5 event_stats.>,
        FUNCTION 1 event_stats.counter_cmp(event_stats.counter, event_stats.counter);

CREATE OPERATOR CLASS event_stats.counter_hash_ops
    DEFAULT FOR TYPE event_stats.counter USING hash AS
        OPERATOR 1 event_stats.=,
        FUNCTION 1 event_stats.counter_hash(event_stats.counter);

--------------------------------------------------------------------------
-- Sharded counters
--------------------------------------------------------------------------

CREATE FUNCTION event_stats.create_counter(name text, shards integer DEFAULT NULL)
    RETURNS event_stats.counter
    AS 'MODULE_PATHNAME', 'es_create_counter'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION event_stats.create_counter(text, integer) IS
    'Creates a sharded counter with at most shards shard rows (default: one per backend that can exist, MaxBackends), each created by the first commit that writes it; errors: 42710 name taken, 42602 / 42622 empty or over 63 bytes, 22023 shards out of range, 22004 NULL';

CREATE FUNCTION event_stats.drop_counter(event_stats.counter)
    RETURNS void
    AS 'MODULE_PATHNAME', 'es_drop_counter'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION event_stats.drop_counter(event_stats.counter) IS
    'Drops a counter and its value';

CREATE FUNCTION event_stats.increment(event_stats.counter, delta bigint DEFAULT 1)
    RETURNS void
    AS 'MODULE_PATHNAME', 'es_increment'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION event_stats.increment(event_stats.counter, bigint) IS
    'Adds delta to the counter when, and only if, the transaction commits';

CREATE FUNCTION event_stats.value(event_stats.counter)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'es_value'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED;
COMMENT ON FUNCTION event_stats.value(event_stats.counter) IS
    'The counter''s value in the current snapshot, plus this transaction''s own changes';

CREATE FUNCTION event_stats.set(event_stats.counter, bigint)
    RETURNS void
    AS 'MODULE_PATHNAME', 'es_set'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION event_stats.set(event_stats.counter, bigint) IS
    'Sets the counter at commit; increments committed afterwards add to the new value';

-- Compaction.  A background worker of the library folds each counter's
-- rows of shards no longer written into its shard 0 row, so that value()
-- reads few rows however many backends once wrote the counter.  It has no
-- SQL objects: the settings event_stats.compaction (on/off) and
-- event_stats.compaction_naptime (seconds between passes) govern it.

--------------------------------------------------------------------------
-- Owners and privileges of counters, the way sequences have them: the
-- creator owns a counter; SELECT on it allows value(), UPDATE allows
-- increment() and set(); only the owner drops it, grants, revokes and
-- gives it away.  By default nobody but the owner has any privilege.
-- Counters that track a table follow the table's privileges instead.
--------------------------------------------------------------------------

CREATE FUNCTION event_stats.grant_counter(event_stats.counter, privileges text, grantee name)
    RETURNS void
    AS 'MODULE_PATHNAME', 'es_grant_counter'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION event_stats.grant_counter(event_stats.counter, text, name) IS
    'GRANT for a counter: privileges is a list of SELECT (value()), UPDATE (increment(), set()) or ALL; grantee a role name or public. Owner only (42501); unknown privilege 22023';

CREATE FUNCTION event_stats.revoke_counter(event_stats.counter, privileges text, grantee name)
    RETURNS void
    AS 'MODULE_PATHNAME', 'es_revoke_counter'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION event_stats.revoke_counter(event_stats.counter, text, name) IS
    'REVOKE for a counter: the privileges and grantee as for grant_counter(). Owner only (42501)';

CREATE FUNCTION event_stats.alter_counter_owner(event_stats.counter, new_owner regrole)
    RETURNS void
    AS 'MODULE_PATHNAME', 'es_alter_counter_owner'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION event_stats.alter_counter_owner(event_stats.counter, regrole) IS
    'ALTER ... OWNER TO for a counter: the owner (or a superuser) gives it to a role it is a member of; grants move with it (42501 otherwise)';

CREATE FUNCTION event_stats.value_if_readable(event_stats.counter)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'es_value_if_readable'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL RESTRICTED;
COMMENT ON FUNCTION event_stats.value_if_readable(event_stats.counter) IS
    'value(), or NULL where value() would refuse an existing counter: no SELECT on it (or on its tracked table), row-level security on that table, or a value out of bigint range';

--------------------------------------------------------------------------
-- Row counts of tables, with no trigger and no per-row work
--------------------------------------------------------------------------

CREATE FUNCTION event_stats.track(tbl regclass, counter_name text DEFAULT NULL)
    RETURNS event_stats.counter
    AS 'MODULE_PATHNAME', 'es_track'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION event_stats.track(regclass, text) IS
    'Creates a counter (by default named schema.table) that equals the table''s row count in every snapshot from commit on; a partitioned table counts all its partitions';

CREATE FUNCTION event_stats.untrack(tbl regclass)
    RETURNS void
    AS 'MODULE_PATHNAME', 'es_untrack'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION event_stats.untrack(regclass) IS
    'Stops tracking the table and drops its counter';

-- Every counter is listed; its value only where value() would answer.
CREATE VIEW event_stats.counters AS
    SELECT d.name,
           d.id::event_stats.counter AS counter,
           event_stats.value_if_readable(d.id::event_stats.counter) AS value,
           d.shards,
           t.relid AS tracks,
           d.owner,
           d.acl
      FROM event_stats.counter_definitions d
      LEFT JOIN event_stats.tracked_tables t ON t.counter_id = d.id;
COMMENT ON VIEW event_stats.counters IS
    'Every counter: its value in the current snapshot (NULL where value() would refuse it), the table it tracks, if any, its owner and privileges';

--------------------------------------------------------------------------
-- Privileges.  Creating counters and tracking tables is for the extension
-- owner and roles it grants EXECUTE (track and untrack also require owning
-- the table).  Every role may call the other functions; what they may do
-- to a given counter is its privileges' business (see above).
--------------------------------------------------------------------------

REVOKE EXECUTE ON FUNCTION event_stats.create_counter(text, integer),
    event_stats.track(regclass, text),
    event_stats.untrack(regclass) FROM PUBLIC;
GRANT USAGE ON SCHEMA event_stats TO PUBLIC;
GRANT SELECT ON event_stats.counters TO PUBLIC;

--------------------------------------------------------------------------
-- The hybrid logical clock type.  64 bits, passed by value: the high 52
-- bits are microseconds since 1970-01-01 00:00 UTC, the low 12 bits a
-- logical counter (YugabyteDB's layout).  Text form, which sorts like the
-- values: 2026-11-22T06:40:12.123456Z/0001.
--------------------------------------------------------------------------

CREATE TYPE event_stats.hlc;

CREATE FUNCTION event_stats.hlc_in(cstring)
    RETURNS event_stats.hlc AS 'MODULE_PATHNAME', 'hlc_in'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_in(cstring) IS
    'Reads YYYY-MM-DDTHH:MM:SS.ffffffZ/LLLL (UTC, logical counter 0000-4095)';
CREATE FUNCTION event_stats.hlc_out(event_stats.hlc)
    RETURNS cstring AS 'MODULE_PATHNAME', 'hlc_out'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_out(event_stats.hlc) IS
    'Prints YYYY-MM-DDTHH:MM:SS.ffffffZ/LLLL, which sorts like the values';
CREATE FUNCTION event_stats.hlc_recv(internal)
    RETURNS event_stats.hlc AS 'MODULE_PATHNAME', 'hlc_recv'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_recv(internal) IS
    'Binary input: the raw value, 8 bytes big-endian';
CREATE FUNCTION event_stats.hlc_send(event_stats.hlc)
    RETURNS bytea AS 'MODULE_PATHNAME', 'hlc_send'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_send(event_stats.hlc) IS
    'Binary output: the raw value, 8 bytes big-endian';

CREATE TYPE event_stats.hlc (
    INPUT = event_stats.hlc_in,
    OUTPUT = event_stats.hlc_out,
    RECEIVE = event_stats.hlc_recv,
    SEND = event_stats.hlc_send,
    INTERNALLENGTH = 8,
    PASSEDBYVALUE,
    ALIGNMENT = double
);
COMMENT ON TYPE event_stats.hlc IS
    'Hybrid logical clock value: 52 bits of microseconds since the Unix epoch, 12 bits of logical counter';

-- Casts and parts.  The bigint cast is the raw value; it fails for values
-- from 2041-05-10 on, whose top bit does not fit a signed bigint.
CREATE FUNCTION event_stats.hlc_to_bigint(event_stats.hlc)
    RETURNS bigint AS 'MODULE_PATHNAME', 'hlc_to_bigint'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_to_bigint(event_stats.hlc) IS
    'The raw 64-bit value (physical microseconds << 12 | logical counter)';
CREATE FUNCTION event_stats.hlc_from_bigint(bigint)
    RETURNS event_stats.hlc AS 'MODULE_PATHNAME', 'hlc_from_bigint'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_from_bigint(bigint) IS
    'The hlc whose raw value this is; negative values are refused';
CREATE FUNCTION event_stats.hlc_physical(event_stats.hlc)
    RETURNS timestamptz AS 'MODULE_PATHNAME', 'hlc_to_timestamptz'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_physical(event_stats.hlc) IS
    'The physical part: the time, to the microsecond';
CREATE FUNCTION event_stats.hlc_logical(event_stats.hlc)
    RETURNS integer AS 'MODULE_PATHNAME', 'hlc_logical'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_logical(event_stats.hlc) IS
    'The logical part: 0 to 4095';
CREATE FUNCTION event_stats.hlc_from_parts(physical timestamptz, logical integer DEFAULT 0)
    RETURNS event_stats.hlc AS 'MODULE_PATHNAME', 'hlc_from_parts'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_from_parts(timestamptz, integer) IS
    'The hlc of a time (to the microsecond, 1970 to 2112) and a logical counter, e.g. to compare with a stored value';

CREATE CAST (event_stats.hlc AS bigint)
    WITH FUNCTION event_stats.hlc_to_bigint(event_stats.hlc);
CREATE CAST (bigint AS event_stats.hlc)
    WITH FUNCTION event_stats.hlc_from_bigint(bigint);
CREATE CAST (event_stats.hlc AS timestamptz)
    WITH FUNCTION event_stats.hlc_physical(event_stats.hlc);

-- Comparison: values order as unsigned 64-bit integers, that is by time,
-- then by logical counter.
CREATE FUNCTION event_stats.hlc_eq(event_stats.hlc, event_stats.hlc)
    RETURNS boolean AS 'MODULE_PATHNAME', 'hlc_eq'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.hlc_ne(event_stats.hlc, event_stats.hlc)
    RETURNS boolean AS 'MODULE_PATHNAME', 'hlc_ne'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.hlc_lt(event_stats.hlc, event_stats.hlc)
    RETURNS boolean AS 'MODULE_PATHNAME', 'hlc_lt'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.hlc_le(event_stats.hlc, event_stats.hlc)
    RETURNS boolean AS 'MODULE_PATHNAME', 'hlc_le'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.hlc_gt(event_stats.hlc, event_stats.hlc)
    RETURNS boolean AS 'MODULE_PATHNAME', 'hlc_gt'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.hlc_ge(event_stats.hlc, event_stats.hlc)
    RETURNS boolean AS 'MODULE_PATHNAME', 'hlc_ge'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.hlc_cmp(event_stats.hlc, event_stats.hlc)
    RETURNS integer AS 'MODULE_PATHNAME', 'hlc_cmp'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
-- The raw value hashes as a bigint with the same bits would.
CREATE FUNCTION event_stats.hlc_hash(event_stats.hlc)
    RETURNS integer AS 'hashint8'
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.hlc_hash_extended(event_stats.hlc, bigint)
    RETURNS bigint AS 'hashint8extended'
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION event_stats.hlc_smaller(event_stats.hlc, event_stats.hlc)
    RETURNS event_stats.hlc AS 'MODULE_PATHNAME', 'hlc_smaller'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION event_stats.hlc_larger(event_stats.hlc, event_stats.hlc)
    RETURNS event_stats.hlc AS 'MODULE_PATHNAME', 'hlc_larger'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR event_stats.= (
    LEFTARG = event_stats.hlc, RIGHTARG = event_stats.hlc,
    FUNCTION = event_stats.hlc_eq,
    COMMUTATOR = OPERATOR(event_stats.=), NEGATOR = OPERATOR(event_stats.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR event_stats.<> (
    LEFTARG = event_stats.hlc, RIGHTARG = event_stats.hlc,
    FUNCTION = event_stats.hlc_ne,
    COMMUTATOR = OPERATOR(event_stats.<>), NEGATOR = OPERATOR(event_stats.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR event_stats.< (
    LEFTARG = event_stats.hlc, RIGHTARG = event_stats.hlc,
    FUNCTION = event_stats.hlc_lt,
    COMMUTATOR = OPERATOR(event_stats.>), NEGATOR = OPERATOR(event_stats.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR event_stats.<= (
    LEFTARG = event_stats.hlc, RIGHTARG = event_stats.hlc,
    FUNCTION = event_stats.hlc_le,
    COMMUTATOR = OPERATOR(event_stats.>=), NEGATOR = OPERATOR(event_stats.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR event_stats.> (
    LEFTARG = event_stats.hlc, RIGHTARG = event_stats.hlc,
    FUNCTION = event_stats.hlc_gt,
    COMMUTATOR = OPERATOR(event_stats.<), NEGATOR = OPERATOR(event_stats.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR event_stats.>= (
    LEFTARG = event_stats.hlc, RIGHTARG = event_stats.hlc,
    FUNCTION = event_stats.hlc_ge,
    COMMUTATOR = OPERATOR(event_stats.<=), NEGATOR = OPERATOR(event_stats.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS event_stats.hlc_ops
    DEFAULT FOR TYPE event_stats.hlc USING btree AS
        OPERATOR 1 event_stats.<,
        OPERATOR 2 event_stats.<=,
        OPERATOR 3 event_stats.=,
        OPERATOR 4 event_stats.>=,
        OPERATOR 5 event_stats.>,
        FUNCTION 1 event_stats.hlc_cmp(event_stats.hlc, event_stats.hlc);

CREATE OPERATOR CLASS event_stats.hlc_hash_ops
    DEFAULT FOR TYPE event_stats.hlc USING hash AS
        OPERATOR 1 event_stats.=,
        FUNCTION 1 event_stats.hlc_hash(event_stats.hlc),
        FUNCTION 2 event_stats.hlc_hash_extended(event_stats.hlc, bigint);

CREATE AGGREGATE event_stats.min(event_stats.hlc) (
    SFUNC = event_stats.hlc_smaller, STYPE = event_stats.hlc,
    COMBINEFUNC = event_stats.hlc_smaller,
    SORTOP = OPERATOR(event_stats.<), PARALLEL = SAFE);
COMMENT ON AGGREGATE event_stats.min(event_stats.hlc) IS
    'The smallest hlc';
CREATE AGGREGATE event_stats.max(event_stats.hlc) (
    SFUNC = event_stats.hlc_larger, STYPE = event_stats.hlc,
    COMBINEFUNC = event_stats.hlc_larger,
    SORTOP = OPERATOR(event_stats.>), PARALLEL = SAFE);
COMMENT ON AGGREGATE event_stats.max(event_stats.hlc) IS
    'The largest hlc';

--------------------------------------------------------------------------
-- The clock.  One per server, shared by every session of every database:
-- each value is greater than every value the server handed out before,
-- including before a crash, a restart, a step back of the wall clock or
-- the promotion of this server from standby.  Values are taken on the
-- primary only.
--------------------------------------------------------------------------

CREATE FUNCTION event_stats.hlc_now()
    RETURNS event_stats.hlc AS 'MODULE_PATHNAME', 'es_hlc_now'
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_now() IS
    'A new clock value: the wall clock if it has moved past the last value, else the last value plus one logical tick';

CREATE FUNCTION event_stats.hlc_observe(event_stats.hlc)
    RETURNS event_stats.hlc AS 'MODULE_PATHNAME', 'es_hlc_observe'
    LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_observe(event_stats.hlc) IS
    'Moves the clock past a value seen elsewhere and returns a new value greater than both; refuses null and values more than event_stats.hlc_max_drift ahead of the wall clock';

CREATE FUNCTION event_stats.unique_timestamp()
    RETURNS timestamptz AS 'MODULE_PATHNAME', 'es_unique_timestamp'
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.unique_timestamp() IS
    'A timestamp from the clock that no other call, of this or hlc_now(), shares: each call takes a whole microsecond';

CREATE FUNCTION event_stats.hlc_status(
    OUT current event_stats.hlc,
    OUT wall_clock timestamptz,
    OUT drift interval,
    OUT max_drift interval,
    OUT drift_waits bigint,
    OUT high_water_mark event_stats.hlc,
    OUT backward_steps bigint,
    OUT refused_observations bigint,
    OUT horizon event_stats.hlc,
    OUT horizon_lag interval,
    OUT horizon_holder_pid integer,
    OUT horizon_holder_xid xid)
    RETURNS record AS 'MODULE_PATHNAME', 'es_hlc_status'
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_status() IS
    'The last value handed out, the wall clock, how far the clock runs ahead of it, the bound on that (event_stats.hlc_max_drift) and how many calls waited for the wall clock to keep it, the persisted ceiling, counts of backward wall-clock steps and refused observations, and the closed timestamp: how far it lags the clock and the session (pid) or prepared transaction (xid) holding it back';

--------------------------------------------------------------------------
-- The closed timestamp, for change feeds that never miss a late commit.
-- Protocol: horizon := hlc_horizon(); then, in a snapshot taken after
-- that, read the rows with last_modified in (since, horizon]; the next
-- poll uses since := horizon.  Every transaction that took a value at or
-- below the horizon has committed (so the snapshot sees its rows) or
-- aborted, and no such value is handed out again, so no row is missed and
-- none is read twice.  It covers values written by the transaction that
-- took them.
--------------------------------------------------------------------------

CREATE FUNCTION event_stats.hlc_horizon()
    RETURNS event_stats.hlc AS 'MODULE_PATHNAME', 'es_hlc_horizon'
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_horizon() IS
    'The closed timestamp: every transaction that took a clock value at or below it has committed or aborted, and no such value will be handed out again';

CREATE FUNCTION event_stats.hlc_horizon_for_poll()
    RETURNS event_stats.hlc AS 'MODULE_PATHNAME', 'es_hlc_horizon_for_poll'
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION event_stats.hlc_horizon_for_poll() IS
    'hlc_horizon() for a poll: refused (25000) in a transaction that itself took a clock value and so holds the horizon back, where every poll would come back empty';

-- The newest timestamp that a horizon closes: a unique_timestamp() value T
-- is the clock value T/4095.
CREATE FUNCTION event_stats.hlc_closed_timestamp(event_stats.hlc)
    RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN event_stats.hlc_logical($1) = 4095
                THEN event_stats.hlc_physical($1)
                ELSE event_stats.hlc_physical($1) - interval '1 microsecond' END;
COMMENT ON FUNCTION event_stats.hlc_closed_timestamp(event_stats.hlc) IS
    'The newest unique_timestamp() value at or below an hlc: the bound for timestamptz columns';

CREATE FUNCTION event_stats.changes_since(
    rows_of anyelement,
    since event_stats.hlc,
    column_name name DEFAULT 'last_modified')
    RETURNS TABLE (horizon event_stats.hlc, change anyelement)
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl regclass;
    coltype regtype;
    after_since text := CASE WHEN since IS NULL THEN 'true' ELSE '%1$I > $2' END;
    n bigint;
BEGIN
    SELECT c.oid::regclass INTO tbl
      FROM pg_catalog.pg_type t
      JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
     WHERE t.oid = pg_catalog.pg_typeof(rows_of)
       AND c.relkind IN ('r', 'p', 'v', 'm', 'f');
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'changes_since() needs a row of a table, such as NULL::my_table'
            USING ERRCODE = 'wrong_object_type';
    END IF;
    SELECT a.atttypid::regtype INTO coltype
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = column_name
       AND a.attnum > 0 AND NOT a.attisdropped;
    IF coltype IS NULL THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', column_name, tbl
            USING ERRCODE = 'undefined_column';
    END IF;
    IF coltype NOT IN ('event_stats.hlc'::regtype, 'timestamptz'::regtype) THEN
        RAISE EXCEPTION 'column "%" of relation % is of type %', column_name, tbl, coltype
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'changes_since() reads event_stats.hlc columns and timestamptz columns filled by event_stats.unique_timestamp().';
    END IF;
    -- The rows are read by the next statement, with a snapshot taken after
    -- the horizon; a transaction snapshot is older than the horizon.
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'changes_since() must run in a READ COMMITTED transaction'
            USING ERRCODE = 'active_sql_transaction',
                  DETAIL = 'A ' || pg_catalog.upper(pg_catalog.current_setting('transaction_isolation'))
                           || ' snapshot can predate the horizon and miss rows committed in between.',
                  HINT = 'Poll in READ COMMITTED, or read hlc_horizon() in one transaction and the rows in the next.';
    END IF;

    horizon := event_stats.hlc_horizon_for_poll();
    -- since NULL: from the beginning, no lower bound
    IF coltype = 'event_stats.hlc'::regtype THEN
        RETURN QUERY EXECUTE pg_catalog.format(
            'SELECT $1, t FROM %2$s t WHERE ' || replace(after_since, '>', 'OPERATOR(event_stats.>)')
            || ' AND %1$I OPERATOR(event_stats.<=) $1 ORDER BY %1$I USING OPERATOR(event_stats.<)',
            column_name, tbl)
            USING horizon, since;
    ELSE
        RETURN QUERY EXECUTE pg_catalog.format(
            'SELECT $1, t FROM %2$s t WHERE ' || after_since || ' AND %1$I <= $3 ORDER BY %1$I',
            column_name, tbl)
            USING horizon, event_stats.hlc_closed_timestamp(since),
                  event_stats.hlc_closed_timestamp(horizon);
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        change := NULL;
        RETURN NEXT;
    END IF;
END
$$;
COMMENT ON FUNCTION event_stats.changes_since(anyelement, event_stats.hlc, name) IS
    'One poll of a change feed: the rows of the table of rows_of (e.g. NULL::my_table) whose column is in (since, horizon], in order, each with the horizon to use as the next since (one row with a NULL change when there are none); READ COMMITTED only';
