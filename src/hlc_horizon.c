/*-------------------------------------------------------------------------
 *
 * hlc_horizon.c
 *	  The closed timestamp: the highest clock value at or below which every
 *	  transaction that took a value has committed or aborted, and no value
 *	  will be handed out again.
 *
 * Each backend has a hold slot in shared memory.  Before a transaction's
 * first value is taken, the backend stores in its slot the clock's last
 * value, which is below every value the transaction will get; once the
 * compare-and-swap has given it its value v, it tightens the slot to v - 1.
 * The slot is cleared at XACT_EVENT_COMMIT / ABORT (hlc_horizon_xact_end,
 * called by xact_dispatch.c), which fire after the transaction has become
 * visible to new snapshots (or has gone).
 * The horizon is
 *
 *		min(the clock's last value, every slot, every prepared hold)
 *
 * read in that order.  Why that is safe: a backend stores its slot before
 * its compare-and-swap (a full barrier), so a reader that sees the clock at
 * or past v also sees the slot; a reader that sees the clock below v
 * computes a horizon below v anyway.  And every later value is above the
 * clock's last value, so none can fall at or below the horizon.
 *
 * A prepared transaction outlives its backend, and crashes and restarts:
 * at PRE_PREPARE its hold moves into a table of prepared holds that is
 * written to the clock's state file and logged in WAL (hlc_persist.c)
 * before the PREPARE record.  Whoever finishes the transaction, an entry is
 * dropped once the transaction is no longer in progress: checked when the
 * horizon is computed and when an entry is added, and right after COMMIT
 * PREPARED and ROLLBACK PREPARED (a ProcessUtility hook), which also
 * rewrite the state file, so that it does not keep finished holds.  The
 * table has room for max_prepared_transactions entries, or for as many as
 * the state file held at server start if that is more: a server restarted
 * with a lower max_prepared_transactions still reads a file that holds
 * finished transactions' holds (written before a crash, or by redo on a
 * standby, which replays COMMIT PREPARED without the hook).
 *
 * A parallel worker's values belong to its leader's transaction: it holds
 * in the leader's slot, which it lowers with compare-and-swap, never
 * raises; the leader clears the slot at its own transaction end.
 *
 * Locking rules (HorizonShared, in shared memory):
 *	- slots[i]: written by backend i (BackendId i + 1) with plain atomic
 *	  stores, and by its parallel workers with compare-and-swap to a lower
 *	  value while the leader is in parallel mode; read by anyone, without a
 *	  lock.  HLC_MAX means "holds nothing".
 *	- capacity: set when shared memory is initialised, read-only after.
 *	- prepared[], nprepared: written with prepared_lock held exclusively;
 *	  nprepared is an atomic so that a horizon with no prepared holds can
 *	  skip the lock.  Writers of
 *	  the state file hold the clock's window lock first (hlc_clock.c).
 * The clock's hot path never takes prepared_lock.
 * Backend-local: xact_holds, this backend's transaction has stored its
 * hold; prepared_capacity, set in the postmaster and inherited; the previous
 * ProcessUtility hook, written once in _PG_init.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/transam.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/backendid.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/utility.h"

#include "event_stats.h"

typedef union HorizonSlot
{
	struct
	{
		pg_atomic_uint64 holds; /* below every value of the transaction */
		int			pid;		/* who holds it, for hlc_status() */
	}			s;
	char		pad[PG_CACHE_LINE_SIZE];	/* one slot per cache line */
} HorizonSlot;

typedef struct HorizonShared
{
	int			capacity;		/* room in prepared[] */
	pg_atomic_uint32 nprepared; /* prepared holds in use */
	HlcPreparedHold prepared[FLEXIBLE_ARRAY_MEMBER];	/* capacity */
} HorizonShared;

/* set in the postmaster at shared memory start-up, inherited by children */
static HorizonShared *horizon = NULL;
static HorizonSlot *horizon_slots = NULL;
static LWLock *prepared_lock = NULL;

/* room for prepared holds, set in the postmaster's shmem_request hook */
static int	prepared_capacity = 0;

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* this backend's transaction has stored its hold */
static bool xact_holds = false;

/*
 * How many prepared holds the table (and so the state file) can have.
 * Known from the postmaster's shmem_request hook on, before the table
 * exists (the clock's start-up hook reads the state file into a buffer of
 * this size).
 */
int
hlc_horizon_max_prepared(void)
{
	return prepared_capacity > 0 ? prepared_capacity : horizon->capacity;
}

/* the table of prepared holds, up to the slots */
static Size
horizon_head_size(int capacity)
{
	return MAXALIGN(add_size(offsetof(HorizonShared, prepared),
							 mul_size(capacity, sizeof(HlcPreparedHold))));
}

static Size
horizon_shmem_size(int capacity)
{
	Size		size = horizon_head_size(capacity);

	size = add_size(size, mul_size(MaxBackends, sizeof(HorizonSlot)));
	return add_size(size, PG_CACHE_LINE_SIZE);
}

/*
 * In the postmaster's shmem_request hook: the shared memory the horizon
 * needs, with room for max_prepared_transactions holds, or for every hold
 * of the state file if it has more (see the file header).
 */
Size
hlc_horizon_shmem_request(void)
{
	prepared_capacity = Max(Max(max_prepared_xacts, hlc_persist_count_holds()), 1);
	return horizon_shmem_size(prepared_capacity);
}

/* Called with AddinShmemInitLock held, by the clock's start-up hook. */
void
hlc_horizon_shmem_init(const HlcPreparedHold *holds, int nholds)
{
	bool		found;

	horizon = ShmemInitStruct("event_stats hlc horizon",
							  horizon_shmem_size(prepared_capacity), &found);
	if (!found)
		horizon->capacity = prepared_capacity;
	horizon_slots = (HorizonSlot *)
		TYPEALIGN(PG_CACHE_LINE_SIZE,
				  (char *) horizon + horizon_head_size(horizon->capacity));
	prepared_lock = &(GetNamedLWLockTranche("event_stats_hlc"))[1].lock;
	if (found)
		return;

	for (int i = 0; i < MaxBackends; i++)
	{
		pg_atomic_init_u64(&horizon_slots[i].s.holds, HLC_MAX);
		horizon_slots[i].s.pid = 0;
	}
	nholds = Min(nholds, horizon->capacity);
	memcpy(horizon->prepared, holds, nholds * sizeof(HlcPreparedHold));
	pg_atomic_init_u32(&horizon->nprepared, nholds);
}

static HorizonSlot *
my_slot(void)
{
	BackendId	id = IsParallelWorker() ? ParallelLeaderBackendId : MyBackendId;

	if (id == InvalidBackendId || id > MaxBackends)
		elog(ERROR, "backend %d has no hybrid logical clock hold slot", id);
	return &horizon_slots[id - 1];
}

/*
 * Before the clock moves for a value of this transaction: below is the
 * clock's last value, so every value the transaction takes is above it.
 * True if the caller, outside parallel mode, has just set the hold and
 * should tighten it to its value (hlc_horizon_tighten).
 */
bool
hlc_horizon_hold(Hlc below)
{
	HorizonSlot *slot;

	uint64		current;

	if (likely(xact_holds))
		return false;
	slot = my_slot();
	current = pg_atomic_read_u64(&slot->s.holds);
	xact_holds = true;
	if (IsInParallelMode())
	{
		while (below < current &&
			   !pg_atomic_compare_exchange_u64(&slot->s.holds, &current, below))
			;
		if (IsParallelWorker() && MyProc->lockGroupLeader != NULL)
			slot->s.pid = MyProc->lockGroupLeader->pid;
		else
			slot->s.pid = MyProcPid;
		return false;
	}

	/*
	 * No worker runs now, but one may have held for this transaction
	 * earlier, below the clock's present value: never raise that.
	 */
	slot->s.pid = MyProcPid;
	if (current != HLC_MAX)
		return false;
	pg_atomic_write_u64(&slot->s.holds, below);
	return true;
}

/*
 * Does the current transaction (or a parallel worker of it) hold the
 * horizon back?  Then *holds is where.
 */
bool
hlc_horizon_held_here(Hlc *holds)
{
	*holds = pg_atomic_read_u64(&my_slot()->s.holds);
	return *holds != HLC_MAX;
}

/*
 * Hold just below value: the transaction's first value, or, while a caller
 * that set the hold waits for the wall clock before taking any value, the
 * value after the clock's new last one (hlc_clock_tick).
 */
void
hlc_horizon_tighten(Hlc value)
{
	pg_atomic_write_u64(&my_slot()->s.holds, value - 1);
}

static void
release_my_slot(void)
{
	xact_holds = false;
	if (horizon_slots == NULL || MyBackendId == InvalidBackendId ||
		MyBackendId > MaxBackends)
		return;
	if (pg_atomic_read_u64(&horizon_slots[MyBackendId - 1].s.holds) != HLC_MAX)
		pg_atomic_write_u64(&horizon_slots[MyBackendId - 1].s.holds, HLC_MAX);
}

/*
 * At PRE_PREPARE: the transaction's hold, if it took a value, becomes a
 * prepared hold, logged before the PREPARE record.
 */
void
hlc_horizon_pre_prepare(void)
{
	Hlc			holds;

	if (horizon_slots == NULL || MyBackendId == InvalidBackendId)
		return;
	holds = pg_atomic_read_u64(&horizon_slots[MyBackendId - 1].s.holds);
	if (holds != HLC_MAX && max_prepared_xacts > 0)
		hlc_clock_log_prepared_hold(GetTopTransactionId(), holds);
}

/*
 * At COMMIT, ABORT and PREPARE, which fire after the transaction became
 * visible (or is gone): the slot is cleared.  In a parallel worker the
 * leader releases the slot; the worker only forgets it held one.
 */
void
hlc_horizon_xact_end(bool parallel_worker)
{
	if (parallel_worker)
		xact_holds = false;
	else
		release_my_slot();
}

/*
 * COMMIT PREPARED and ROLLBACK PREPARED: once the command has finished the
 * transaction, its hold is dropped and the state file rewritten.  (A
 * failed command finished nothing; the error goes on.)
 */
static void
horizon_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		finishes_prepared = false;

	if (IsA(parsetree, TransactionStmt))
	{
		TransactionStmtKind kind = ((TransactionStmt *) parsetree)->kind;

		finishes_prepared = kind == TRANS_STMT_COMMIT_PREPARED ||
			kind == TRANS_STMT_ROLLBACK_PREPARED;
	}

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
							params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	if (finishes_prepared && horizon != NULL &&
		pg_atomic_read_u32(&horizon->nprepared) > 0)
		hlc_clock_drop_finished_holds();
}

void
hlc_horizon_register_hooks(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = horizon_ProcessUtility;
}

/*
 * Is a prepared hold's transaction finished?  During recovery the proc
 * array does not know prepared transactions yet, so only the commit log
 * can say; a transaction it does not know as finished stays held.
 */
static bool
prepared_hold_finished(TransactionId xid)
{
	if (TransactionIdPrecedes(xid, ShmemVariableCache->oldestClogXid))
		return true;
	if (!RecoveryInProgress())
		return !TransactionIdIsInProgress(xid);
	return TransactionIdDidCommit(xid) || TransactionIdDidAbort(xid);
}

/*
 * Drop the holds of finished transactions; prepared_lock held exclusively.
 * Returns how many are left.  Callers that write the state file afterwards
 * hold the clock's window lock too.
 */
static int
prune_prepared(void)
{
	int			count = pg_atomic_read_u32(&horizon->nprepared);
	int			kept = 0;

	for (int i = 0; i < count; i++)
		if (!prepared_hold_finished(horizon->prepared[i].xid))
			horizon->prepared[kept++] = horizon->prepared[i];
	pg_atomic_write_u32(&horizon->nprepared, kept);
	return kept;
}

/*
 * A transaction being prepared (or a replayed record of one) holds values.
 * The caller holds the clock's window lock and writes the state file next.
 */
void
hlc_horizon_add_prepared(TransactionId xid, Hlc holds)
{
	int			count;

	LWLockAcquire(prepared_lock, LW_EXCLUSIVE);
	count = prune_prepared();
	for (int i = 0; i < count; i++)
	{
		if (TransactionIdEquals(horizon->prepared[i].xid, xid))
		{
			horizon->prepared[i].holds = Min(horizon->prepared[i].holds, holds);
			LWLockRelease(prepared_lock);
			return;
		}
	}
	if (count >= horizon->capacity)
	{
		LWLockRelease(prepared_lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many prepared transactions hold hybrid logical clock values"),
				 errhint("Increase max_prepared_transactions.")));
	}
	horizon->prepared[count].xid = xid;
	horizon->prepared[count].holds = holds;
	pg_atomic_write_u32(&horizon->nprepared, count + 1);
	LWLockRelease(prepared_lock);
}

/*
 * Drop the holds of finished transactions now; the caller holds the
 * clock's window lock and rewrites the state file if any were dropped.
 * Returns how many were dropped.
 */
int
hlc_horizon_prune_prepared(void)
{
	int			dropped;

	LWLockAcquire(prepared_lock, LW_EXCLUSIVE);
	dropped = pg_atomic_read_u32(&horizon->nprepared);
	dropped -= prune_prepared();
	LWLockRelease(prepared_lock);
	return dropped;
}

int
hlc_horizon_copy_prepared(HlcPreparedHold *holds, int maxholds)
{
	int			n;

	if (horizon == NULL)
		return 0;
	LWLockAcquire(prepared_lock, LW_SHARED);
	n = Min((int) pg_atomic_read_u32(&horizon->nprepared), maxholds);
	memcpy(holds, horizon->prepared, n * sizeof(HlcPreparedHold));
	LWLockRelease(prepared_lock);
	return n;
}

/*
 * The closed timestamp, and who holds it there: a backend (pid), a
 * prepared transaction (xid), or nobody (the clock's last value).
 */
void
hlc_horizon_compute(HlcHorizon *result)
{
	int			count;

	hlc_clock_require_usable();
	result->horizon = hlc_clock_last();
	result->holder_pid = 0;
	result->holder_xid = InvalidTransactionId;

	/* the slots must not be read before the clock */
	pg_read_barrier();
	for (int i = 0; i < MaxBackends; i++)
	{
		Hlc			holds = pg_atomic_read_u64(&horizon_slots[i].s.holds);

		if (holds < result->horizon)
		{
			result->horizon = holds;
			result->holder_pid = horizon_slots[i].s.pid;
		}
	}

	/*
	 * A hold moves into the prepared table before its slot is cleared, so
	 * the table must not be read before the slots.
	 */
	pg_read_barrier();
	if (pg_atomic_read_u32(&horizon->nprepared) == 0)
		return;
	LWLockAcquire(prepared_lock, LW_EXCLUSIVE);
	count = prune_prepared();
	for (int i = 0; i < count; i++)
	{
		if (horizon->prepared[i].holds < result->horizon)
		{
			result->horizon = horizon->prepared[i].holds;
			result->holder_pid = 0;
			result->holder_xid = horizon->prepared[i].xid;
		}
	}
	LWLockRelease(prepared_lock);
}
