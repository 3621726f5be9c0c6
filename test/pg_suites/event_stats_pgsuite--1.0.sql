-- event_stats_pgsuite: the harness of stage (c) of test/pg_suites.sh, where
-- PostgreSQL's own regression and isolation suites run with event_stats
-- created in every test database.  Test-only; never installed by the
-- extension's own Makefile.
--
-- An event trigger tracks every permanent table (plain or partitioned) a
-- test creates.  Before every DROP command, and at the end of the run, each
-- tracked table this session created that still exists is checked:
-- event_stats.value() of its counter against count(*), in one statement,
-- so in one snapshot.  Results go to the server log only (LOG is below the
-- clients' default client_min_messages), as lines starting "es_pgsuite:",
-- which test/pg_suites.sh counts:
--   es_pgsuite: tracked T                    a table was tracked
--   es_pgsuite: not tracked T (SQLSTATE: message)   track() refused it
--   es_pgsuite: check T value V count N      one check, equal
--   es_pgsuite: MISMATCH T value V count N   one check, different
--   es_pgsuite: skipped T (why)              not checked, and why
--   es_pgsuite: check failed T (why)         the check itself failed
-- Refusals of track() are caught, so a table event_stats cannot count
-- changes nothing for the test that created it.  Tracking runs as the
-- superuser that created the extension, whatever role the test set; the
-- checks run as the test's role (see check_table).

\echo Use "CREATE EXTENSION event_stats_pgsuite" to load this file. \quit

GRANT USAGE ON SCHEMA event_stats_pgsuite TO PUBLIC;

-- The tables this session tracked are kept in a setting of the session,
-- event_stats_pgsuite.mine, as "relid:counter" items separated by spaces:
-- it is transactional like the tables (a rolled-back CREATE TABLE takes its
-- item with it), and reading it takes no SSI predicate lock, where reading
-- a table would in a SERIALIZABLE transaction and could make the test's
-- own commands fail.

-- One check of one table, as the role running the command that triggered
-- it, with its search_path: count(*) plans the table's index expressions,
-- which may run the test's functions, and those may insist on their role
-- or their search_path.  Tables that role may not read are skipped, as are
-- those row-level security applies to (value() refuses them), tables whose
-- own functions raise an error of PL/pgSQL when count(*) plans them, and
-- tables another session dropped meanwhile.
CREATE FUNCTION event_stats_pgsuite.check_table(tbl oid, counter integer)
    RETURNS void LANGUAGE plpgsql
AS $$
DECLARE
    may_read boolean := pg_catalog.has_table_privilege(tbl, 'SELECT');
    name text;
    v bigint;
    n bigint;
BEGIN
    IF may_read IS NULL THEN
        RAISE LOG 'es_pgsuite: skipped % (dropped meanwhile)', tbl;
        RETURN;
    END IF;
    name := tbl::regclass::text;
    IF NOT may_read THEN
        RAISE LOG 'es_pgsuite: skipped % (no SELECT privilege for %)', name, current_user;
        RETURN;
    END IF;
    IF pg_catalog.row_security_active(tbl) THEN
        -- value() refuses it, and the test's policies may not even plan
        RAISE LOG 'es_pgsuite: skipped % (row-level security applies to %)', name, current_user;
        RETURN;
    END IF;
    EXECUTE pg_catalog.format(
        'SELECT event_stats.value_if_readable(%s::event_stats.counter), pg_catalog.count(*) FROM %s',
        counter, name) INTO v, n;
    IF v IS NULL THEN
        -- the role may read the table and no policy applies: value() must answer
        RAISE LOG 'es_pgsuite: check failed % (value() refused % although count(*) answers)', name, current_user;
    ELSIF v <> n THEN
        RAISE LOG 'es_pgsuite: MISMATCH % value % count %', name, v, n;
    ELSE
        RAISE LOG 'es_pgsuite: check % value % count %', name, v, n;
    END IF;
EXCEPTION
    WHEN undefined_table THEN
        RAISE LOG 'es_pgsuite: skipped % (dropped meanwhile)', tbl;
    WHEN assert_failure OR raise_exception THEN
        RAISE LOG 'es_pgsuite: skipped % (a function of the test raised %: %)', name, SQLSTATE, SQLERRM;
    WHEN OTHERS THEN
        RAISE LOG 'es_pgsuite: check failed % (%: %)', name, SQLSTATE, SQLERRM;
END $$;

-- Every tracked table, for the check at the end of the run.
CREATE FUNCTION event_stats_pgsuite.tracked_tables()
    RETURNS TABLE (relid oid, counter_id integer)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.relid::oid, t.counter_id FROM event_stats.tracked_tables t ORDER BY 1
$$;

-- Checks the tracked tables this session created that still exist, and
-- forgets those that are gone; with every_session, every tracked table.
CREATE FUNCTION event_stats_pgsuite.check_tables(every_session boolean DEFAULT false)
    RETURNS integer LANGUAGE plpgsql
AS $$
DECLARE
    r record;
    item text;
    kept text[] := '{}';
    mine text := pg_catalog.current_setting('event_stats_pgsuite.mine', true);
    checked integer := 0;
BEGIN
    IF every_session THEN
        FOR r IN SELECT * FROM event_stats_pgsuite.tracked_tables() LOOP
            PERFORM event_stats_pgsuite.check_table(r.relid, r.counter_id);
            checked := checked + 1;
        END LOOP;
        RETURN checked;
    END IF;
    IF mine IS NULL OR mine = '' THEN
        RETURN 0;
    END IF;
    FOREACH item IN ARRAY pg_catalog.string_to_array(mine, ' ') LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_class
                    WHERE oid = pg_catalog.split_part(item, ':', 1)::oid) THEN
            PERFORM event_stats_pgsuite.check_table(pg_catalog.split_part(item, ':', 1)::oid,
                                                   pg_catalog.split_part(item, ':', 2)::integer);
            checked := checked + 1;
            kept := kept || item;
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(kept) < pg_catalog.cardinality(pg_catalog.string_to_array(mine, ' ')) THEN
        PERFORM pg_catalog.set_config('event_stats_pgsuite.mine',
                                      pg_catalog.array_to_string(kept, ' '), false);
    END IF;
    RETURN checked;
END $$;

-- Tracks the permanent tables the command created.  A table the command
-- only touched shows up too (a foreign key's referenced table): tracked
-- already, it is left as it is.
CREATE FUNCTION event_stats_pgsuite.track_new_tables()
    RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    c integer;
BEGIN
    FOR r IN
        SELECT DISTINCT c.oid, c.oid::regclass::text AS name
          FROM pg_event_trigger_ddl_commands() d
          JOIN pg_class c ON c.oid = d.objid
         WHERE d.classid = 'pg_class'::regclass
           AND d.objsubid = 0
           AND d.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
           AND NOT d.in_extension
           AND c.relkind IN ('r', 'p')
           AND c.relpersistence = 'p'
           AND c.oid >= 16384
    LOOP
        BEGIN
            c := event_stats.track(r.oid)::integer;
            PERFORM set_config('event_stats_pgsuite.mine',
                               concat_ws(' ', nullif(current_setting('event_stats_pgsuite.mine', true), ''),
                                         r.oid || ':' || c),
                               false);
            RAISE LOG 'es_pgsuite: tracked %', r.name;
        EXCEPTION
            WHEN duplicate_object THEN
                NULL;       -- tracked already: a table the command only touched
            WHEN OTHERS THEN
                RAISE LOG 'es_pgsuite: not tracked % (%: %)', r.name, SQLSTATE, SQLERRM;
        END;
    END LOOP;
END $$;

CREATE FUNCTION event_stats_pgsuite.check_before_drop()
    RETURNS event_trigger LANGUAGE plpgsql
AS $$
BEGIN
    IF tg_tag LIKE 'DROP %' THEN
        PERFORM event_stats_pgsuite.check_tables();
    END IF;
END $$;

CREATE EVENT TRIGGER event_stats_pgsuite_track
    ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    EXECUTE FUNCTION event_stats_pgsuite.track_new_tables();

CREATE EVENT TRIGGER event_stats_pgsuite_check
    ON ddl_command_start
    EXECUTE FUNCTION event_stats_pgsuite.check_before_drop();
