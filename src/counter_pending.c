/*-------------------------------------------------------------------------
 *
 * counter_pending.c
 *	  Increments and sets made by the current transaction, not yet written.
 *
 * increment() and set() only change a backend-local hash table; nothing is
 * written until the transaction commits or prepares.  Then, at
 * XACT_EVENT_PRE_COMMIT / XACT_EVENT_PRE_PREPARE (pending_flush, called by
 * xact_dispatch.c after tracking.c has added the tracked tables' row
 * changes), while the transaction can still write (and still fail), each
 * touched counter gets exactly one write through counter_store.c, however
 * many increments the transaction made.  Rows written at PREPARE belong to the prepared
 * transaction: COMMIT PREPARED makes them visible, ROLLBACK PREPARED
 * discards them, from whichever backend.
 *
 * Subtransactions: each counter keeps a stack of states, one per
 * subtransaction level that changed it, innermost first.  Each state is
 * cumulative (it already includes the levels below it), so committing a
 * subtransaction just replaces the state below, and aborting one pops it.
 *
 * A state is either relative (amount is a delta to add) or absolute (set()
 * was called, and amount is the value the counter takes, later increments
 * of the same transaction included).
 *
 * Backend-local state: `pending` lives as long as the backend, so that a
 * transaction does not pay for building a hash table; its entries and their
 * states (in TopTransactionContext) belong to the current top-level
 * transaction, and pending_reset() empties it when that ends.
 * Nothing here is shared.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "common/int.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "event_stats.h"

typedef struct PendingState
{
	int			nest_level;		/* subtransaction level that owns it */
	bool		is_absolute;	/* set() was called: amount is the value */
	int64		amount;
	struct PendingState *below; /* state of the enclosing level, if any */
} PendingState;

typedef struct PendingCounter
{
	CounterId	id;				/* hash key */
	CounterDef	def;
	PendingState *top;			/* innermost level; NULL once all aborted */
} PendingCounter;

static HTAB *pending = NULL;

/* deepest subtransaction level holding a state; lets most ends skip work */
static int	pending_deepest = 0;

/* true while the pre-commit flush runs: no more changes may be queued */
static bool pending_flushing = false;

static inline bool
pending_any(void)
{
	return pending != NULL && hash_get_num_entries(pending) > 0;
}

/*
 * At the end of the transaction (committed, aborted, prepared, or a
 * parallel worker's): forgets its entries; their states went with its
 * memory.
 */
void
pending_reset(void)
{
	if (pending_any())
	{
		HASH_SEQ_STATUS seq;
		PendingCounter *pc;

		hash_seq_init(&seq, pending);
		while ((pc = hash_seq_search(&seq)) != NULL)
			hash_search(pending, &pc->id, HASH_REMOVE, NULL);
	}
	pending_deepest = 0;
	pending_flushing = false;
}

/*
 * The counter's entry, created on first use.  A counter that does not exist
 * is an error, or with missing_ok gives NULL.
 */
static PendingCounter *
pending_entry(CounterId id, bool missing_ok)
{
	PendingCounter *pc;

	if (pending_flushing)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot change a counter while its transaction is committing")));

	if (pending == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(CounterId);
		ctl.entrysize = sizeof(PendingCounter);
		ctl.hcxt = TopMemoryContext;
		pending = hash_create("event_stats pending counters", 16, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	pc = hash_search(pending, &id, HASH_FIND, NULL);
	if (pc != NULL)
		return pc;

	/* look the definition up before creating the entry, so an error leaves none */
	{
		CounterDef	def;

		if (!store_lookup_by_id(id, NULL, &def))
		{
			if (missing_ok)
				return NULL;
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("counter with id %d does not exist", id)));
		}
		pc = hash_search(pending, &id, HASH_ENTER, NULL);
		pc->def = def;
		pc->top = NULL;
	}
	return pc;
}

/* The state of the current subtransaction level, pushed on first change. */
static PendingState *
pending_current_state(PendingCounter *pc)
{
	int			level = GetCurrentTransactionNestLevel();
	PendingState *state;

	if (pc->top != NULL && pc->top->nest_level == level)
		return pc->top;

	state = MemoryContextAlloc(TopTransactionContext, sizeof(PendingState));
	if (pc->top != NULL)
		*state = *pc->top;
	else
	{
		state->is_absolute = false;
		state->amount = 0;
	}
	state->nest_level = level;
	state->below = pc->top;
	pc->top = state;
	pending_deepest = Max(pending_deepest, level);
	return state;
}

static void
pending_check_writable(const char *function)
{
	PreventCommandIfReadOnly(function);
	if (IsInParallelMode())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot change a counter during a parallel operation")));
}

/* Adds delta to the counter's state at the current level (after a set() too). */
static void
pending_add(PendingCounter *pc, int64 delta)
{
	int64		sum;

	if (pg_add_s64_overflow(pc->top ? pc->top->amount : 0, delta, &sum))
		report_counter_overflow(pc->def.name);
	pending_current_state(pc)->amount = sum;
}

void
pending_increment(CounterId id, int64 delta)
{
	pending_check_writable("event_stats.increment()");
	pending_add(pending_entry(id, false), delta);
}

/*
 * A tracked table's row change, added at commit by tracking.c.  A counter
 * dropped in the meantime (the table untracked) takes nothing.
 */
void
pending_add_tracked(CounterId id, int64 delta)
{
	PendingCounter *pc = pending_entry(id, true);

	if (pc != NULL)
		pending_add(pc, delta);
}

void
pending_set(CounterId id, int64 value)
{
	PendingCounter *pc;
	PendingState *state;

	pending_check_writable("event_stats.set()");
	pc = pending_entry(id, false);
	state = pending_current_state(pc);
	state->is_absolute = true;
	state->amount = value;
}

/*
 * What this transaction would add to (or set) the counter if it committed
 * now.  Returns false when it has no pending change for it.
 */
bool
pending_lookup(CounterId id, bool *is_absolute, int64 *amount)
{
	PendingCounter *pc;

	if (!pending_any())
		return false;
	pc = hash_search(pending, &id, HASH_FIND, NULL);
	if (pc == NULL || pc->top == NULL)
		return false;
	*is_absolute = pc->top->is_absolute;
	*amount = pc->top->amount;
	return true;
}

static int
pending_cmp_id(const void *a, const void *b)
{
	const PendingCounter *pa = *(PendingCounter *const *) a;
	const PendingCounter *pb = *(PendingCounter *const *) b;

	return (pa->id > pb->id) - (pa->id < pb->id);
}

/*
 * At PRE_COMMIT / PRE_PREPARE: writes every pending change, one write per
 * counter, in counter id order so that two committing transactions that
 * must wait for each other always do so in the same order and cannot
 * deadlock.
 */
void
pending_flush(void)
{
	long		n;
	PendingCounter **sorted;
	HASH_SEQ_STATUS seq;
	PendingCounter *pc;
	long		i = 0;

	if (!pending_any())
		return;
	n = hash_get_num_entries(pending);

	pending_flushing = true;
	sorted = MemoryContextAlloc(TopTransactionContext, n * sizeof(PendingCounter *));
	hash_seq_init(&seq, pending);
	while ((pc = hash_seq_search(&seq)) != NULL)
		sorted[i++] = pc;
	qsort(sorted, n, sizeof(PendingCounter *), pending_cmp_id);

	CommandCounterIncrement();
	if (!store_is_installed())
		return;
	for (i = 0; i < n; i++)
	{
		PendingState *state = sorted[i]->top;

		if (state == NULL)
			continue;
		Assert(state->nest_level == 1);
		if (state->is_absolute)
			store_reset_shards(&sorted[i]->def, state->amount);
		else if (state->amount != 0)
			store_add_to_shards(&sorted[i]->def, state->amount);
	}
}

/*
 * At the end of subtransaction level: folds the committing level into its
 * parent, or drops the aborted one.
 */
void
pending_subxact_end(int level, bool commit)
{
	HASH_SEQ_STATUS seq;
	PendingCounter *pc;

	if (!pending_any() || level > pending_deepest)
		return;
	hash_seq_init(&seq, pending);
	while ((pc = hash_seq_search(&seq)) != NULL)
	{
		PendingState *state = pc->top;

		if (state == NULL || state->nest_level != level)
			continue;

		if (!commit)
			pc->top = state->below;
		else if (state->below != NULL && state->below->nest_level == level - 1)
		{
			/* states are cumulative: the inner one replaces the outer */
			state->below->is_absolute = state->is_absolute;
			state->below->amount = state->amount;
			pc->top = state->below;
		}
		else
			state->nest_level = level - 1;
		/* popped states stay in TopTransactionContext until it ends */
	}
	pending_deepest = level - 1;
}
