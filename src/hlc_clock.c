/*-------------------------------------------------------------------------
 *
 * hlc_clock.c
 *	  The server-wide hybrid logical clock: one 64-bit word in shared memory.
 *
 * Every value any backend of the server hands out, in any database, is
 * taken by moving HlcShared.last forward with one compare-and-swap: to the
 * wall clock when the wall clock is past the last value, else to the last
 * value plus one, a logical tick that carries into the microseconds after
 * 4095.  That is the whole hot path: the wall clock, a few plain reads of
 * shared memory and one atomic compare-and-swap.  No lock, no WAL, no I/O.
 *
 * Crashes, restarts and failover: the persisted window.  No value at or
 * above HlcShared.persisted is ever handed out, and persisted is raised
 * only after the new ceiling is durable: written to the state file, in WAL
 * flushed to disk, and confirmed by the synchronous standbys when there are
 * any (hlc_persist.c).  A server starting up, after a clean shutdown, a
 * kill -9 or a backend crash, resumes the clock at the ceiling it reads
 * back, so nothing handed out before can come again whatever the wall
 * clock says; a standby replays the ceilings and resumes above them when
 * promoted.  A clean shutdown replaces the ceiling with the exact last
 * value (hlc_shmem_shutdown), so only a crash makes the clock jump ahead.
 *
 * The ceiling is kept up to HLC_WINDOW_US ahead of the clock: a backend that
 * takes a value within half a window of it raises it another window beyond
 * the wall clock (TiDB PD's "save next + window first").  That backend pays
 * the write, at most once per half window while the clock is in use and
 * never while it is idle; the others go on below the old ceiling without
 * waiting.  A backend waits only when its value would reach the ceiling
 * itself: the first call after start-up, or an observation that moves the
 * clock by more than half a window at once.
 *
 * The drift bound.  Nothing moves the clock's physical part further ahead
 * of the wall clock than event_stats.hlc_max_drift: hlc_observe() refuses
 * such observations, and a value that would move the physical part forward,
 * past the last value's, to more than the bound ahead is not taken: its
 * caller sleeps in short steps, cancellable, re-reading the wall clock,
 * until the wall clock has caught up (as CockroachDB waits out its
 * uncertainty).  "The wall clock" here is the highest reading any backend
 * has taken since start-up (wall_max), so that a wall clock stepped back
 * does not stop the clock: it goes on by logical ticks and microseconds,
 * as before, and only a caller that would take it more than the bound
 * beyond any time the wall clock has shown waits.  Without that, one backend calling unique_timestamp(),
 * which takes a whole microsecond each time, faster than a million times a
 * second would push the clock, and everyone's values, ever further ahead,
 * and the state file would carry the lead across restarts.  Logical ticks
 * within the last value's microsecond never wait, so hlc_now() goes on at
 * up to 4096 values per microsecond whatever the wall clock does.  After a
 * crash the clock resumes at the persisted ceiling, up to 3 s ahead of the
 * wall clock; with a bound smaller than that, callers that need a new
 * microsecond wait until the wall clock is within the bound again.
 * wall_max starts at the time of the clock resumed at start-up, which
 * stands for wall-clock readings taken before, so that a server started
 * with its wall clock behind does not make callers wait either.  The bound
 * is PGC_SIGHUP because it limits a clock every session shares.
 *
 * Why this and not a WAL record per value (WAL on the hot path) or a
 * background worker raising the ceiling (one more process, whose death or
 * delay stalls every caller): here the clock cannot stall while any
 * backend can write, and the price is one write every 1.5 s.  Why 3 s: after
 * a restart the clock resumes up to one window ahead of the wall clock (the
 * values are still unique and increasing; their physical part runs ahead
 * until the wall clock catches up), and 3 s keeps that jump short.
 *
 * Backward steps of the wall clock.  wall_high is a wall-clock reading some
 * backend took earlier, raised at most once a millisecond.  A backend reads
 * it before it reads the wall clock, so a reading below it means the wall
 * clock went back; the backend that swaps in its own reading counts the
 * step, once.  The values handed out never go back: the clock ticks
 * logically until the wall clock passes it again.  Steps shorter than the
 * up-to-1 ms lag of wall_high may go uncounted.
 *
 * Locking rules (HlcShared, in shared memory):
 *	- last: moved forward only, by compare-and-swap, by any backend, and
 *	  only to values below persisted.  Redo raises it to a replayed ceiling.
 *	- persisted: raised only to a ceiling that is durable, by compare-and-
 *	  swap to the maximum.  Read without a lock: it never goes down, so a
 *	  stale read only sends a backend to the slow path.
 *	- written, written_lsn, state_lost: only with window_lock held
 *	  exclusively; so are writes of the state file, which also carries the
 *	  holds of prepared transactions (hlc_horizon.c).  written is the highest ceiling made durable locally;
 *	  it runs ahead of persisted while its writer waits for synchronous
 *	  standbys, which it does without the lock so that it can be cancelled.
 *	- wall_high, wall_max, backward_steps, refused_observations,
 *	  drift_waits: atomics.  wall_max is raised like wall_high, at most
 *	  once a millisecond, by compare-and-swap, and never lowered.
 * In recovery only the startup process changes the clock (redo), and the
 * SQL functions that take values refuse to run.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "event_stats.h"

/* how far ahead of the clock the persisted ceiling is kept */
#define HLC_WINDOW_US			(3 * USECS_PER_SEC)
#define HLC_WINDOW				HlcMake(HLC_WINDOW_US, 0)

/* wall_high is raised when a reading passes it by this much */
#define HLC_WALL_HIGH_STEP_US	1000

/*
 * The longest sleep of a wait for the wall clock to catch up: short, so
 * that a waiting caller takes its value soon after it may, and notices a
 * cancel.
 */
#define HLC_DRIFT_WAIT_STEP_US	10000

typedef struct HlcShared
{
	pg_atomic_uint64 last;		/* the last value handed out */
	pg_atomic_uint64 persisted; /* no value at or above it is handed out */
	pg_atomic_uint64 wall_high; /* an earlier wall-clock reading, in us */
	pg_atomic_uint64 wall_max;	/* about the highest reading, or the resumed
								 * clock's time at start-up */
	pg_atomic_uint64 backward_steps;
	pg_atomic_uint64 refused_observations;
	pg_atomic_uint64 drift_waits;	/* calls that waited for the wall clock */
	Hlc			written;		/* highest durable ceiling (window_lock) */
	XLogRecPtr	written_lsn;	/* its WAL record (window_lock) */
	bool		state_lost;		/* state file unreadable (window_lock) */
} HlcShared;

/* event_stats.hlc_max_drift, in milliseconds */
int			hlc_max_drift_ms = 5 * 60 * 1000;

/* set in the postmaster at shared memory start-up, inherited by children */
static HlcShared *hlc_shared = NULL;
static LWLock *hlc_window_lock = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void hlc_shmem_request(void);
static void hlc_shmem_startup(void);
static void hlc_shmem_shutdown(int code, Datum arg);

void
hlc_clock_init(void)
{
	DefineCustomIntVariable("event_stats.hlc_max_drift",
							"Sets how far the hybrid logical clock may run ahead of the wall clock.",
							"hlc_observe() refuses values further ahead, and a call whose value would move the clock further ahead waits until the wall clock catches up.",
							&hlc_max_drift_ms,
							5 * 60 * 1000,
							0,
							24 * 60 * 60 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	hlc_persist_register_rmgr();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = hlc_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = hlc_shmem_startup;
}

static void
hlc_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(HlcShared)));
	RequestAddinShmemSpace(hlc_horizon_shmem_request());
	/* the window lock, and hlc_horizon.c's lock of prepared holds */
	RequestNamedLWLockTranche("event_stats_hlc", 2);
}

/*
 * Runs at server start and again after every crash restart: the clock
 * resumes at the ceiling the state file holds; redo of later WAL raises it
 * further (hlc_clock_raise_persisted).
 */
static void
hlc_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	hlc_shared = ShmemInitStruct("event_stats hlc", sizeof(HlcShared), &found);
	hlc_window_lock = &(GetNamedLWLockTranche("event_stats_hlc"))->lock;
	if (!found)
	{
		Hlc			ceiling = 0;
		int			maxholds = hlc_horizon_max_prepared();
		HlcPreparedHold *holds = palloc(Max(maxholds, 1) * sizeof(HlcPreparedHold));
		int			nholds = 0;

		hlc_shared->state_lost = !hlc_persist_read(&ceiling, holds, &nholds,
												   maxholds);
		hlc_horizon_shmem_init(holds, nholds);
		pfree(holds);
		hlc_shared->written = ceiling;
		hlc_shared->written_lsn = InvalidXLogRecPtr;
		pg_atomic_init_u64(&hlc_shared->last, ceiling);
		pg_atomic_init_u64(&hlc_shared->persisted, ceiling);
		pg_atomic_init_u64(&hlc_shared->wall_high, 0);
		/* the resumed clock stands for wall-clock time seen before */
		pg_atomic_init_u64(&hlc_shared->wall_max, HlcPhysical(ceiling));
		pg_atomic_init_u64(&hlc_shared->backward_steps, 0);
		pg_atomic_init_u64(&hlc_shared->refused_observations, 0);
		pg_atomic_init_u64(&hlc_shared->drift_waits, 0);
	}
	LWLockRelease(AddinShmemInitLock);

	if (!IsUnderPostmaster)
		on_shmem_exit(hlc_shmem_shutdown, (Datum) 0);
}

/*
 * At a clean shutdown, in the postmaster after every backend has exited,
 * the exact last value replaces the ceiling in the state file, so that a
 * restart resumes where the clock was instead of up to a window ahead (and
 * quick restarts do not add up).  After a crash (code != 0) shared memory
 * may be damaged: the ceiling written before stays.
 */
static void
hlc_shmem_shutdown(int code, Datum arg)
{
	Hlc			last;

	if (code != 0 || hlc_shared == NULL || hlc_shared->state_lost)
		return;
	last = pg_atomic_read_u64(&hlc_shared->last);
	/* nothing to gain, e.g. on a standby, where last is the ceiling */
	if (last >= pg_atomic_read_u64(&hlc_shared->persisted) - 1)
		return;
	hlc_persist_write_state_file(last + 1, LOG);
}

/* the wall clock, in microseconds since the Unix epoch */
uint64
hlc_wall_clock_us(void)
{
	int64		us = GetCurrentTimestamp() + HLC_UNIX_TO_PG_EPOCH_US;

	return us < 0 ? 0 : (uint64) us;
}

/*
 * The wall clock, counting a backward step and keeping wall_high and
 * wall_max current.  *drift_base is what the drift bound is measured from:
 * the higher of the reading and wall_max.
 */
static uint64
hlc_read_wall_clock(uint64 *drift_base)
{
	uint64		high = pg_atomic_read_u64(&hlc_shared->wall_high);
	uint64		max = pg_atomic_read_u64(&hlc_shared->wall_max);
	uint64		wall;

	/* the reading must not be taken before high was loaded */
	pg_read_barrier();
	wall = hlc_wall_clock_us();

	if (unlikely(wall < high))
	{
		if (pg_atomic_compare_exchange_u64(&hlc_shared->wall_high, &high, wall))
			pg_atomic_fetch_add_u64(&hlc_shared->backward_steps, 1);
	}
	else if (wall >= high + HLC_WALL_HIGH_STEP_US)
		(void) pg_atomic_compare_exchange_u64(&hlc_shared->wall_high, &high, wall);
	if (wall >= max + HLC_WALL_HIGH_STEP_US)
		(void) pg_atomic_compare_exchange_u64(&hlc_shared->wall_max, &max, wall);
	*drift_base = Max(wall, max);
	return wall;
}

/* Can this server hand out values now? */
bool
hlc_clock_usable(void)
{
	return !RecoveryInProgress() && !hlc_shared->state_lost;
}

void
hlc_clock_require_usable(void)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot take a hybrid logical clock value during recovery"),
				 errhint("The clock hands out values only on the primary server; a standby resumes it when promoted.")));
	if (unlikely(hlc_shared->state_lost))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("hybrid logical clock state file \"%s\" is corrupt",
						HLC_STATE_FILE),
				 errdetail("The highest value handed out before the server started is unknown, so no value is handed out."),
				 errhint("Restore the file from a backup, or remove it and restart the server to resume the clock from the wall clock, which may repeat earlier values if the wall clock is behind them.")));
}

static void
hlc_report_exhausted(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("hybrid logical clock is exhausted"),
			 errdetail("An hlc holds times up to 2112-09-17 UTC.")));
}

/*
 * The value after last: the wall clock if it is ahead, else last plus one
 * logical tick; and above "after".  With whole_microsecond, the value is
 * the last logical tick of the next free microsecond, so that no other
 * value shares its microsecond.
 */
static Hlc
hlc_next_value(Hlc last, uint64 wall, Hlc after, bool whole_microsecond)
{
	Hlc			next;

	if (unlikely(last == HLC_MAX || after == HLC_MAX))
		hlc_report_exhausted();
	next = Max(last + 1, after + 1);
	if (whole_microsecond)
	{
		uint64		us = Max(HlcPhysical(next) + (HlcLogical(next) != 0), wall);

		if (unlikely(us > HLC_PHYSICAL_MAX))
			hlc_report_exhausted();
		return HlcMake(us, HLC_LOGICAL_MAX);
	}
	if (unlikely(wall > HLC_PHYSICAL_MAX))
		hlc_report_exhausted();
	return Max(next, HlcMake(wall, 0));
}

/*
 * How many microseconds the wall clock (drift_base, see
 * hlc_read_wall_clock) must still advance before next may be taken under
 * event_stats.hlc_max_drift; 0 if it may be taken now.
 * Only a value that moves the physical part forward, past last's, can have
 * to wait (see the file header).
 */
static inline uint64
hlc_drift_excess(Hlc next, Hlc last, uint64 drift_base)
{
	uint64		bound = drift_base + (uint64) hlc_max_drift_ms * 1000;

	if (likely(HlcPhysical(next) <= bound) ||
		HlcPhysical(next) <= HlcPhysical(last))
		return 0;
	return HlcPhysical(next) - bound;
}

/*
 * Sleep one step of a wait for the wall clock, shown in pg_stat_activity
 * as an Extension wait.  A cancel or a terminate ends the wait with an
 * error; nothing has been taken yet.
 */
static void
hlc_wait_for_wall_clock(uint64 excess_us)
{
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	pg_usleep((long) Min(excess_us, HLC_DRIFT_WAIT_STEP_US));
	pgstat_report_wait_end();
	CHECK_FOR_INTERRUPTS();
}

/*
 * Raise the persisted ceiling above "reached".  With wait false, give up at
 * once if another backend is already writing.
 */
static void
hlc_extend_window(Hlc reached, bool wait)
{
	Hlc			ceiling;
	XLogRecPtr	lsn;
	uint64		current;

	if (wait)
		LWLockAcquire(hlc_window_lock, LW_EXCLUSIVE);
	else if (!LWLockConditionalAcquire(hlc_window_lock, LW_EXCLUSIVE))
		return;

	if (hlc_shared->written <= reached ||
		hlc_shared->written - reached <= HLC_WINDOW / 2)
	{
		Hlc			from = Max(reached, HlcMake(hlc_wall_clock_us(), 0));

		ceiling = from > HLC_MAX - HLC_WINDOW ? HLC_MAX : from + HLC_WINDOW;
		hlc_shared->written_lsn = hlc_persist_window(ceiling);
		hlc_shared->written = ceiling;
	}
	ceiling = hlc_shared->written;
	lsn = hlc_shared->written_lsn;
	LWLockRelease(hlc_window_lock);

	hlc_persist_wait_for_standbys(lsn);

	current = pg_atomic_read_u64(&hlc_shared->persisted);
	while (current < ceiling &&
		   !pg_atomic_compare_exchange_u64(&hlc_shared->persisted, &current, ceiling))
		;
}

/*
 * Take the next value of the clock: greater than every value handed out
 * before and than "after".  See hlc_next_value for whole_microsecond.
 * Waits while the value would be too far ahead of the wall clock (see the
 * file header).
 */
Hlc
hlc_clock_tick(Hlc after, bool whole_microsecond)
{
	uint64		wall;
	Hlc			last;
	Hlc			next;
	Hlc			persisted;
	uint64		drift_base;
	uint64		excess;
	bool		waited = false;
	bool		first_hold;

	hlc_clock_require_usable();
	wall = hlc_read_wall_clock(&drift_base);
	last = pg_atomic_read_u64(&hlc_shared->last);
	/* the closed timestamp stays below this transaction's values */
	first_hold = hlc_horizon_hold(last);
	for (;;)
	{
		next = hlc_next_value(last, wall, after, whole_microsecond);
		excess = hlc_drift_excess(next, last, drift_base);
		if (unlikely(excess > 0))
		{
			if (!waited)
				pg_atomic_fetch_add_u64(&hlc_shared->drift_waits, 1);
			waited = true;
			hlc_wait_for_wall_clock(excess);
			wall = hlc_read_wall_clock(&drift_base);
			last = pg_atomic_read_u64(&hlc_shared->last);

			/*
			 * No value taken yet: hold at the clock's new last value, as a
			 * fresh hold would, so that the wait does not keep the closed
			 * timestamp where the clock was when the wait began.
			 */
			if (first_hold)
				hlc_horizon_tighten(last + 1);
			continue;
		}
		persisted = pg_atomic_read_u64(&hlc_shared->persisted);
		if (unlikely(next >= persisted))
		{
			hlc_extend_window(next, true);
			last = pg_atomic_read_u64(&hlc_shared->last);
			continue;
		}
		if (pg_atomic_compare_exchange_u64(&hlc_shared->last, &last, next))
			break;
	}
	if (unlikely(first_hold))
		hlc_horizon_tighten(next);

	/* next < persisted here */
	if (unlikely(persisted - next <= HLC_WINDOW / 2))
		hlc_extend_window(next, false);
	return next;
}

/*
 * Is an observed value further ahead of the wall clock than
 * event_stats.hlc_max_drift allows?  *ahead_us says by how much it is ahead.
 */
bool
hlc_observation_too_far(Hlc observed, int64 *ahead_us)
{
	*ahead_us = (int64) HlcPhysical(observed) - (int64) hlc_wall_clock_us();
	return *ahead_us > (int64) hlc_max_drift_ms * 1000;
}

void
hlc_count_refused_observation(void)
{
	pg_atomic_fetch_add_u64(&hlc_shared->refused_observations, 1);
}

Hlc
hlc_clock_last(void)
{
	return pg_atomic_read_u64(&hlc_shared->last);
}

void
hlc_clock_status(HlcStatus *status)
{
	status->current = pg_atomic_read_u64(&hlc_shared->last);
	status->wall_us = hlc_wall_clock_us();
	status->high_water_mark = pg_atomic_read_u64(&hlc_shared->persisted);
	status->backward_steps = pg_atomic_read_u64(&hlc_shared->backward_steps);
	status->refused_observations =
		pg_atomic_read_u64(&hlc_shared->refused_observations);
	status->drift_waits = pg_atomic_read_u64(&hlc_shared->drift_waits);
	status->max_drift_us = (int64) hlc_max_drift_ms * 1000;
}

/*
 * Redo of a ceiling record, in the startup process (crash recovery, or a
 * standby).  The ceiling is durable on the primary; it is written to this
 * server's state file before the clock moves, so that a restart of this
 * server, which replays WAL only from its last checkpoint or restartpoint,
 * still finds it.  The newest replayed ceiling bounds every value handed
 * out before it, so it also replaces a state file that was unreadable.
 */
void
hlc_clock_raise_persisted(Hlc ceiling)
{
	LWLockAcquire(hlc_window_lock, LW_EXCLUSIVE);
	if (ceiling > hlc_shared->written || hlc_shared->state_lost)
	{
		hlc_persist_write_state_file(ceiling, ERROR);
		hlc_shared->written = Max(hlc_shared->written, ceiling);
		hlc_shared->state_lost = false;
	}
	if (ceiling > pg_atomic_read_u64(&hlc_shared->persisted))
		pg_atomic_write_u64(&hlc_shared->persisted, ceiling);
	if (ceiling > pg_atomic_read_u64(&hlc_shared->last))
		pg_atomic_write_u64(&hlc_shared->last, ceiling);
	LWLockRelease(hlc_window_lock);
}

/*
 * A transaction being prepared holds values: record the hold durably, with
 * the window lock that serialises writes of the state file.
 */
void
hlc_clock_log_prepared_hold(TransactionId xid, Hlc holds)
{
	LWLockAcquire(hlc_window_lock, LW_EXCLUSIVE);
	hlc_horizon_add_prepared(xid, holds);
	hlc_persist_prepared_hold(xid, holds, hlc_shared->written);
	LWLockRelease(hlc_window_lock);
}

/*
 * COMMIT PREPARED or ROLLBACK PREPARED has finished a transaction: drop
 * the holds of finished transactions and, if there were any, rewrite the
 * state file without them, so that it does not keep them until the next
 * write and a restart does not need room for them.  The transaction is
 * already finished, so a failure to write is only a WARNING: the old file,
 * with the hold, stays valid.  Not while the state is lost: the file must
 * keep the unknown ceiling's place until it is restored or removed.
 */
void
hlc_clock_drop_finished_holds(void)
{
	if (!hlc_clock_usable())
		return;
	LWLockAcquire(hlc_window_lock, LW_EXCLUSIVE);
	if (hlc_horizon_prune_prepared() > 0)
		hlc_persist_write_state_file(hlc_shared->written, WARNING);
	LWLockRelease(hlc_window_lock);
}

/* Redo of a prepared transaction's hold, in the startup process. */
void
hlc_clock_redo_prepared_hold(TransactionId xid, Hlc holds)
{
	LWLockAcquire(hlc_window_lock, LW_EXCLUSIVE);
	hlc_horizon_add_prepared(xid, holds);
	hlc_persist_write_state_file(hlc_shared->written, ERROR);
	LWLockRelease(hlc_window_lock);
}
