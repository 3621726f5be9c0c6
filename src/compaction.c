/*-------------------------------------------------------------------------
 *
 * compaction.c
 *	  The compaction background workers: they fold shard rows that nobody
 *	  writes any more into each counter's base row (shard 0).
 *
 * A shard row is created by the first commit of a backend slot that writes
 * a counter, and stays.  Over time every backend slot that ever wrote a
 * counter leaves a row (and, in the 1.0 layout, a heap page) behind, while
 * only the slots of live, busy sessions need theirs.  Compaction gives the
 * others back: the value moves into shard 0 and the row goes, in one
 * transaction (counter_store.c, store_compact_counter), so every snapshot
 * sees the same sum before and after.  A writer that comes back simply
 * creates its row again.
 *
 * Two kinds of process:
 *
 *	 - the launcher, a static worker registered by _PG_init, one per server.
 *	   It connects to no database: every event_stats.compaction_naptime it
 *	   reads pg_database and, one database at a time, starts a worker for
 *	   each database that accepts connections (template0 excepted) and waits
 *	   for it to exit.  It starts once recovery is over, so it runs on a
 *	   primary and on a promoted standby, never during recovery.  With
 *	   event_stats.compaction = off it stays, idle, until a reload turns it
 *	   on again.  SIGTERM makes it exit (stopping its worker first);
 *	   if it fails, the postmaster starts it again after
 *	   COMPACTION_RESTART_SECS.
 *
 *	 - the per-database worker, dynamic and short-lived: it connects to one
 *	   database, returns at once where the extension is not installed or
 *	   still has the 1.0 layout, otherwise lists the counters that have
 *	   a cold shard row besides shard 0 (worker_list_candidates),
 *	   and calls store_compact_counter() for each, committing every
 *	   COMPACTION_BATCH counters so that a pass never holds a long
 *	   transaction (nor a long snapshot), and exits.  A counter whose
 *	   folding fails is reported and skipped, so it cannot stop the others;
 *	   a worker that fails as a whole costs that database one pass, the
 *	   launcher goes on with the next one.
 *
 * Only rows that are cold are folded: rows nobody has written for at least
 * a naptime, so that compaction does not take away the row of a session
 * that is about to write it again (which would only create it anew, an
 * insertion and its index entries instead of a HOT update).  Coldness is measured in transaction ids, since that is
 * what a row carries: before it starts a database's worker, the launcher
 * reads the next transaction id and keeps it, per database, in its own
 * memory; the next pass hands that id to the worker (in bgw_extra) as
 * cold_before.  A row whose newest version has an older xmin was last
 * written by a transaction that had its id before the previous pass began,
 * hence at least a naptime ago.  (A transaction that took its id long
 * before it wrote the row looks colder than it is; that costs at most one
 * re-creation of its row, never a wrong value: store_compact_counter never
 * touches a row that is being written, and takes no lock it would wait
 * for.)  The first pass after the launcher starts (server start, crash
 * restart, compaction turned on again) only reads the ids and folds
 * nothing.  A database the launcher could not start a worker for keeps its
 * older id, which is only more cautious.  An id older than
 * COMPACTION_MAX_XID_AGE transactions is dropped and read anew, so that
 * the 32-bit comparisons in the store cannot wrap around.
 *
 * Why launcher memory and not shared memory or a table: the launcher is
 * the only process that starts workers, so it is the only one that needs
 * the ids, and losing them (when it restarts) only delays compaction by a
 * naptime.  Why one database at a time: compaction is background work,
 * and it needs only two background worker slots this way, whatever the
 * number of databases.
 *
 * The worker's transactions run at READ COMMITTED (never SERIALIZABLE,
 * whatever the defaults say: its reads must not take SSI predicate locks
 * that could fail serializable readers of counters), with a short
 * lock_timeout (a DDL lock on our tables or a queued DROP EXTENSION makes
 * it give up until the next pass instead of stalling the launcher), and
 * with synchronous_commit off (a fold lost in a crash was never needed).
 *
 * State: compaction_enabled and compaction_naptime are GUCs, changed only
 * by the configuration file (PGC_SIGHUP).  The launcher's per-database
 * ids (db_states) and its warning flag live in the launcher alone.
 * Nothing is shared.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "event_stats.h"

/*
 * Counters folded per transaction of a worker.  Each fold runs in a
 * subtransaction that takes a transaction id of its own (it locks or
 * writes rows), and a backend caches at most PGPROC_MAX_CACHED_SUBXIDS (64)
 * of them: beyond, every snapshot taken anywhere in the server while the
 * transaction runs would have to consult pg_subtrans.
 */
#define COMPACTION_BATCH			50

/* how long the postmaster waits before it starts a failed launcher again */
#define COMPACTION_RESTART_SECS		10

/* see the header comment */
#define COMPACTION_MAX_XID_AGE		(UINT64CONST(1) << 30)

/* how long a worker waits for a lock before it gives up until next pass */
#define COMPACTION_LOCK_TIMEOUT		"1s"

/* what pg_stat_activity shows as application_name, for both processes */
#define COMPACTION_APPNAME			"event_stats compaction"

/* GUCs */
static bool compaction_enabled = true;
static int	compaction_naptime = 10;	/* seconds */

/* launcher: what it knows of one database */
typedef struct CompactionDbState
{
	Oid			dboid;			/* hash key */
	FullTransactionId cold_before;	/* next xid when its last pass began */
	uint64		pass;			/* the last pass that listed it */
} CompactionDbState;

static HTAB *db_states = NULL;
static uint64 pass_number = 0;

/* launcher: the shortage of worker slots was reported and not over yet */
static bool slot_shortage_reported = false;

/* a database of the launcher's list */
typedef struct CompactionDb
{
	Oid			dboid;
	char		name[NAMEDATALEN];
} CompactionDb;

PGDLLEXPORT void compaction_launcher_main(Datum main_arg) pg_attribute_noreturn();
PGDLLEXPORT void compaction_worker_main(Datum main_arg) pg_attribute_noreturn();

/*
 * Defines the GUCs and registers the launcher.  Called by _PG_init while
 * the library is being preloaded.
 */
/*
 * What the launcher and the per-database workers share: both connect (the
 * launcher to no database), both start only once recovery is over.
 */
static void
compaction_worker_init(BackgroundWorker *worker, const char *function,
					   const char *type, int restart_time)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = restart_time;
	strlcpy(worker->bgw_library_name, "event_stats", BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker->bgw_type, type, BGW_MAXLEN);
}

void
compaction_init(void)
{
	BackgroundWorker worker;

	DefineCustomBoolVariable("event_stats.compaction",
							 "Enables folding idle shard rows into each counter's base row.",
							 "A background worker visits every database once per event_stats.compaction_naptime and compacts the counters of those that have the extension.",
							 &compaction_enabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("event_stats.compaction_naptime",
							"Sets the time between two compaction visits of each database.",
							"Only shard rows not written for at least this long are folded.",
							&compaction_naptime,
							10,
							1,
							24 * 60 * 60,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	compaction_worker_init(&worker, "compaction_launcher_main",
						   "event_stats compaction launcher",
						   COMPACTION_RESTART_SECS);
	strlcpy(worker.bgw_name, "event_stats compaction launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* ----------
 * The launcher
 * ----------
 */

/*
 * The databases a worker may connect to, in the launcher's current memory
 * context.  template0 is left out even where it allows connections: it is
 * meant never to change.
 */
static List *
launcher_list_databases(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext oldcxt;
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	StartTransactionCommand();
	/* an active snapshot keeps HOT pruning of pg_database behind our scan */
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database form = (Form_pg_database) GETSTRUCT(tuple);
		CompactionDb *db;

		if (!form->datallowconn || database_is_invalid_form(form) ||
			strcmp(NameStr(form->datname), "template0") == 0)
			continue;
		/* the list outlives the transaction: cells and all in cxt */
		oldcxt = MemoryContextSwitchTo(cxt);
		db = palloc(sizeof(CompactionDb));
		db->dboid = form->oid;
		strlcpy(db->name, NameStr(form->datname), NAMEDATALEN);
		dbs = lappend(dbs, db);
		MemoryContextSwitchTo(oldcxt);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	return dbs;
}

/*
 * Waits until the worker of handle has exited.  A shutdown request stops
 * the worker too, so that nothing outlives the launcher's decision to go.
 */
static void
launcher_wait_for_worker(BackgroundWorkerHandle *handle)
{
	for (;;)
	{
		pid_t		pid;

		if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED)
			return;
		if (ShutdownRequestPending)
		{
			TerminateBackgroundWorker(handle);
			proc_exit(0);
		}
		HandleMainLoopInterrupts();

		/* bgw_notify_pid: the postmaster sets our latch at its start and exit */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L,
						 WAIT_EVENT_BGWORKER_SHUTDOWN);
		ResetLatch(MyLatch);
	}
}

/*
 * Runs a worker on database db, folding rows older than cold_before, and
 * waits for it.  false when no worker could be started.
 */
static bool
launcher_run_worker(const CompactionDb *db, FullTransactionId cold_before)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	compaction_worker_init(&worker, "compaction_worker_main",
						   "event_stats compaction", BGW_NEVER_RESTART);
	snprintf(worker.bgw_name, BGW_MAXLEN,
			 "event_stats compaction of database \"%s\"", db->name);
	worker.bgw_main_arg = ObjectIdGetDatum(db->dboid);
	StaticAssertStmt(sizeof(FullTransactionId) <= BGW_EXTRALEN,
					 "bgw_extra too small for a FullTransactionId");
	memcpy(worker.bgw_extra, &cold_before, sizeof(FullTransactionId));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		/* once per shortage: the log should not get a line per naptime */
		if (!slot_shortage_reported)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("event_stats compaction found no free background worker slot"),
					 errdetail("Shard rows are not compacted until a slot is free; the launcher tries again every event_stats.compaction_naptime."),
					 errhint("You might need to increase \"max_worker_processes\": event_stats needs two slots for compaction.")));
		slot_shortage_reported = true;
		return false;
	}
	if (slot_shortage_reported)
		ereport(LOG,
				(errmsg("event_stats compaction found a free background worker slot again")));
	slot_shortage_reported = false;

	launcher_wait_for_worker(handle);
	pfree(handle);
	return true;
}

/*
 * Visits database db in pass pass_number: starts its worker with the id
 * read at its previous visit, if there was one, and keeps the id read now
 * for the next pass.
 */
static void
launcher_visit(const CompactionDb *db)
{
	CompactionDbState *state;
	FullTransactionId next;
	bool		found;

	state = hash_search(db_states, &db->dboid, HASH_ENTER, &found);
	state->pass = pass_number;
	next = ReadNextFullTransactionId();
	if (!found ||
		U64FromFullTransactionId(next) - U64FromFullTransactionId(state->cold_before) >
		COMPACTION_MAX_XID_AGE)
	{
		/* nothing is known to be cold yet */
		state->cold_before = next;
		return;
	}
	if (launcher_run_worker(db, state->cold_before))
		state->cold_before = next;
}

/* One pass over all databases; stops early if compaction is turned off. */
static void
launcher_pass(MemoryContext pass_cxt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(pass_cxt);
	List	   *dbs;
	ListCell   *lc;
	HASH_SEQ_STATUS seq;
	CompactionDbState *state;
	bool		complete = true;

	pass_number++;
	dbs = launcher_list_databases();
	foreach(lc, dbs)
	{
		HandleMainLoopInterrupts();
		if (!compaction_enabled)
		{
			complete = false;
			break;
		}
		launcher_visit((CompactionDb *) lfirst(lc));
	}

	/* forget databases that are gone (or no longer accept connections) */
	if (complete)
	{
		hash_seq_init(&seq, db_states);
		while ((state = hash_seq_search(&seq)) != NULL)
		{
			if (state->pass != pass_number)
				(void) hash_search(db_states, &state->dboid, HASH_REMOVE, NULL);
		}
	}

	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(pass_cxt);
}

/* Forgets every database's id: compaction was off, so they are stale. */
static void
launcher_forget_all(void)
{
	HASH_SEQ_STATUS seq;
	CompactionDbState *state;

	hash_seq_init(&seq, db_states);
	while ((state = hash_seq_search(&seq)) != NULL)
		(void) hash_search(db_states, &state->dboid, HASH_REMOVE, NULL);
}

/*
 * Sleeps for a naptime from now, or until compaction is turned off.  A
 * reload that changes the naptime applies to the sleep under way.
 */
static void
launcher_nap(void)
{
	TimestampTz start = GetCurrentTimestamp();

	for (;;)
	{
		long		remaining;

		HandleMainLoopInterrupts();
		if (!compaction_enabled)
			return;
		remaining = (long) compaction_naptime * 1000L -
			TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
		if (remaining <= 0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 remaining, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void
compaction_launcher_main(Datum main_arg)
{
	HASHCTL		ctl;
	MemoryContext pass_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	/* no database: only shared catalogs (pg_database) are read */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	SetConfigOption("application_name", COMPACTION_APPNAME,
					PGC_USERSET, PGC_S_SESSION);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CompactionDbState);
	db_states = hash_create("event_stats compaction databases", 16, &ctl,
							HASH_ELEM | HASH_BLOBS);
	pass_cxt = AllocSetContextCreate(TopMemoryContext,
									 "event_stats compaction pass",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		HandleMainLoopInterrupts();
		if (compaction_enabled)
		{
			launcher_pass(pass_cxt);
			launcher_nap();
		}
		else
		{
			launcher_forget_all();
			/* a reload sets the latch */
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}

/* ----------
 * The per-database worker
 * ----------
 */

/*
 * Whether this database's counters are ours to compact, in the current
 * transaction.  store_is_installed() also takes the share lock on the
 * extension that DROP EXTENSION waits for, to the end of the transaction.
 */
static bool
worker_may_compact(void)
{
	return store_is_installed() && !store_layout_is_1_0();
}

/*
 * The counters worth a call of store_compact_counter, in id order,
 * allocated in cxt; *n is set to their number.  NULL when there is nothing
 * to do in this database.  *dbname is set to the database's name, in cxt
 * too.
 *
 * A candidate has a shard row other than shard 0 that is cold in this
 * snapshot (a counter's only row too: folded, it becomes a base row on one
 * of the table's first pages, see store_compact_counter): its xmin
 * precedes cold_before, which age() tells without wrapping around, both
 * ages being taken from the same transaction id.  This is only a sieve,
 * read with an MVCC snapshot; store_compact_counter looks at the newest
 * versions itself.  It spares busy counters, all of whose rows are written
 * all the time, a call that would lock (or create) their base row for
 * nothing at every pass.
 *
 * A counter left with its base row alone is a candidate too when that row
 * sits on page *move_above or later: twice the pages the table's live rows
 * would take inserted afresh.  store_compact_counter moves such a row to a
 * lower page with room, so that the pages at the end empty out and VACUUM
 * can truncate them.  Rows a pass deletes can be pruned (and their room
 * used) only once no snapshot sees them, so a table emptied by churn comes
 * down over two or three passes.
 */
static CounterId *
worker_list_candidates(MemoryContext cxt, TransactionId cold_before, int *n,
					   char **dbname, BlockNumber *move_above)
{
	CounterId  *ids = NULL;
	char	   *name;
	Oid			argtypes[2] = {XIDOID, INT4OID};
	Datum		args[2];
	int			ret;

	*n = 0;
	*move_above = InvalidBlockNumber;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "listing event_stats counters to compact");

	name = get_database_name(MyDatabaseId);
	*dbname = MemoryContextStrdup(cxt, name ? name : "?");

	if (worker_may_compact())
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		args[0] = TransactionIdGetDatum(cold_before);
		args[1] = Int32GetDatum(store_shard_rows_per_page());
		ret = SPI_execute_with_args("WITH s AS ("
									"  SELECT counter_id, shard, xmin,"
									"         (ctid::text::point)[0] AS block"
									"    FROM event_stats.counter_shards),"
									" h AS ("
									"  SELECT 2 * ceil(count(*)::float8 / $2) AS high FROM s)"
									"SELECT counter_id, (SELECT high FROM h)::int8"
									"  FROM s"
									" GROUP BY counter_id"
									" HAVING bool_or(shard <> 0 AND age(xmin) > age($1))"
									"     OR (bool_and(shard = 0) AND"
									"         max(block) >= (SELECT high FROM h))"
									" ORDER BY counter_id",
									2, argtypes, args, NULL, true, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute failed: error code %d", ret);
		if (SPI_processed > 0)
		{
			ids = MemoryContextAlloc(cxt, SPI_processed * sizeof(CounterId));
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				bool		isnull;
				Datum		d = SPI_getbinval(SPI_tuptable->vals[i],
											  SPI_tuptable->tupdesc, 1, &isnull);

				if (!isnull)
					ids[(*n)++] = DatumGetInt32(d);
				d = SPI_getbinval(SPI_tuptable->vals[i],
								  SPI_tuptable->tupdesc, 2, &isnull);
				if (!isnull)
					*move_above = (BlockNumber) Min(DatumGetInt64(d),
													MaxBlockNumber);
			}
		}
		SPI_finish();
	}

	PopActiveSnapshot();
	CommitTransactionCommand();
	return ids;
}

/*
 * Folds counter id in a subtransaction of its own: an error (say, a sum
 * that would overflow shard 0) is reported as a warning and costs only this
 * counter its compaction.  A cancel request still ends the worker.
 */
static int
worker_compact_one(CounterId id, TransactionId cold_before, BlockNumber move_above)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int folded = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		folded = store_compact_counter(id, cold_before, move_above);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			PG_RE_THROW();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;

		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("event_stats compaction skipped counter %d: %s",
						id, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 edata->hint ? errhint("%s", edata->hint) : 0));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return folded;
}

/*
 * CONTEXT line of whatever the worker reports: background workers' log
 * lines carry no application_name, and the database is what matters.
 */
static void
worker_error_context(void *arg)
{
	errcontext("%s", MyBgworkerEntry->bgw_name);
}

void
compaction_worker_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	FullTransactionId cold_before;
	TransactionId cold_xid;
	BlockNumber move_above;
	MemoryContext cxt;
	CounterId  *ids;
	int			nids;
	char	   *dbname;
	int			counters = 0;
	int			folded = 0;
	bool		stopped = false;
	ErrorContextCallback errcallback;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	errcallback.callback = worker_error_context;
	errcallback.arg = NULL;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	memcpy(&cold_before, MyBgworkerEntry->bgw_extra, sizeof(FullTransactionId));
	cold_xid = XidFromFullTransactionId(cold_before);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	/* session settings that database or role defaults must not change */
	SetConfigOption("application_name", COMPACTION_APPNAME,
					PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("default_transaction_read_only", "off",
					PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("lock_timeout", COMPACTION_LOCK_TIMEOUT,
					PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION);

	StaticAssertStmt(COMPACTION_BATCH < PGPROC_MAX_CACHED_SUBXIDS,
					 "a batch's subtransactions would overflow the subxid cache");
	cxt = AllocSetContextCreate(TopMemoryContext, "event_stats compaction",
								ALLOCSET_DEFAULT_SIZES);
	ids = worker_list_candidates(cxt, cold_xid, &nids, &dbname, &move_above);
	store_compact_begin_pass();

	for (int first = 0; first < nids && !stopped; first += COMPACTION_BATCH)
	{
		int			last = Min(first + COMPACTION_BATCH, nids);

		/* turned off meanwhile: the rest waits */
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!compaction_enabled)
			break;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "compacting event_stats counters");

		/* a DROP EXTENSION may have come between two transactions */
		if (!worker_may_compact())
			stopped = true;
		for (int i = first; i < last && !stopped; i++)
		{
			int			n;

			CHECK_FOR_INTERRUPTS();
			n = worker_compact_one(ids[i], cold_xid, move_above);
			if (n > 0)
			{
				counters++;
				folded += n;
			}
		}

		PopActiveSnapshot();
		CommitTransactionCommand();
	}

	pgstat_report_activity(STATE_IDLE, NULL);
	ereport(DEBUG1,
			(errmsg_internal("event_stats compaction folded %d shard rows of %d counters in database \"%s\"",
							 folded, counters, dbname)));
	proc_exit(0);
}
