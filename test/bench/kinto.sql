-- test/bench/kinto.sql -- Kinto-shaped records for test/bench_hlc.sh and
-- test/demo.sh (../shared/background.md section 2): two identical tables
-- with Kinto's unique index on (parent_id, collection_id, last_modified),
--   records_u  last_modified DEFAULT event_stats.unique_timestamp()
--   records_t  Kinto's bump_timestamp BEFORE INSERT trigger
-- and one function per table that writes one record into the one
-- collection, turning a unique violation of last_modified (Kinto's HTTP
-- 409) into a false result counted by a sharded counter, so that a
-- conflict does not abort a pgbench client.  Needs the extension.

CREATE TABLE records_u (
    id            text NOT NULL,
    parent_id     text NOT NULL,
    collection_id text NOT NULL,
    last_modified timestamptz NOT NULL DEFAULT event_stats.unique_timestamp(),
    data          jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, parent_id, collection_id),
    CONSTRAINT records_u_last_modified UNIQUE (parent_id, collection_id, last_modified)
) WITH (autovacuum_enabled = off);
CREATE TABLE records_t (
    id            text NOT NULL,
    parent_id     text NOT NULL,
    collection_id text NOT NULL,
    last_modified timestamptz NOT NULL,
    data          jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, parent_id, collection_id),
    CONSTRAINT records_t_last_modified UNIQUE (parent_id, collection_id, last_modified)
) WITH (autovacuum_enabled = off);

-- Kinto's bump_timestamp(), on timestamptz: the collection's latest
-- last_modified, the clock rounded to the millisecond, and 1 ms past the
-- latest when the clock has not moved past it.
CREATE FUNCTION kinto_bump_timestamp() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    previous timestamptz;
    current_ts timestamptz;
BEGIN
    SELECT last_modified INTO previous
      FROM records_t
     WHERE parent_id = NEW.parent_id
       AND collection_id = NEW.collection_id
     ORDER BY last_modified DESC
     LIMIT 1;
    current_ts := date_trunc('milliseconds', clock_timestamp() + interval '500 microseconds');
    IF previous IS NOT NULL AND previous >= current_ts THEN
        current_ts := previous + interval '1 millisecond';
    END IF;
    IF NEW.last_modified IS NULL THEN
        NEW.last_modified := current_ts;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER records_t_last_modified BEFORE INSERT ON records_t
    FOR EACH ROW EXECUTE FUNCTION kinto_bump_timestamp();

SELECT event_stats.create_counter('kinto_conflicts_u') \g /dev/null
SELECT event_stats.create_counter('kinto_conflicts_t') \g /dev/null

-- One attempt to write one record into the one collection: true if it was
-- written, false (and the variant's conflict counter + 1) on a unique
-- violation of last_modified; any other error propagates.
CREATE FUNCTION kinto_write_u() RETURNS boolean
    LANGUAGE plpgsql AS $$
DECLARE
    cname text;
BEGIN
    INSERT INTO records_u (id, parent_id, collection_id, data)
    VALUES (gen_random_uuid()::text, '/buckets/bench/collections/tasks', 'record',
            '{"title": "a record from the event_stats HLC benchmark", "done": false}');
    RETURN true;
EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS cname = CONSTRAINT_NAME;
    IF cname IS DISTINCT FROM 'records_u_last_modified' THEN
        RAISE;
    END IF;
    PERFORM event_stats.increment('kinto_conflicts_u');
    RETURN false;
END $$;
CREATE FUNCTION kinto_write_t() RETURNS boolean
    LANGUAGE plpgsql AS $$
DECLARE
    cname text;
BEGIN
    INSERT INTO records_t (id, parent_id, collection_id, data)
    VALUES (gen_random_uuid()::text, '/buckets/bench/collections/tasks', 'record',
            '{"title": "a record from the event_stats HLC benchmark", "done": false}');
    RETURN true;
EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS cname = CONSTRAINT_NAME;
    IF cname IS DISTINCT FROM 'records_t_last_modified' THEN
        RAISE;
    END IF;
    PERFORM event_stats.increment('kinto_conflicts_t');
    RETURN false;
END $$;
