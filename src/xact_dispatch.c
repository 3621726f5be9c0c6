/*-------------------------------------------------------------------------
 *
 * xact_dispatch.c
 *	  The one place where event_stats hears about the end of transactions
 *	  and subtransactions, and the order in which its parts are told.
 *
 * One transaction callback and one subtransaction callback, registered
 * once by _PG_init, call each part in this order, for every event:
 *
 *	 1. the closed timestamp (hlc_horizon.c): at PRE_PREPARE,
 *		hlc_horizon_pre_prepare() logs the transaction's hold as a prepared
 *		hold, before the PREPARE record; at COMMIT, ABORT and PREPARE,
 *		hlc_horizon_xact_end() clears the backend's slot, which is only
 *		correct once the transaction is visible (or gone), as it is when
 *		these events fire;
 *	 2. row counts of tracked tables (tracking.c): at PRE_COMMIT and
 *		PRE_PREPARE, tracking_collect() turns the tracked leaves' row
 *		changes into pending increments of their counters; at the ends,
 *		tracking_xact_end() forgets its records, and at each subtransaction
 *		end tracking_subxact_end() folds or drops that level's;
 *	 3. pending increments (counter_pending.c): at PRE_COMMIT and
 *		PRE_PREPARE, pending_flush() writes every pending increment to the
 *		store, one write per counter; at the ends pending_reset() forgets
 *		them, and at each subtransaction end pending_subxact_end() folds or
 *		drops that level.
 *
 * Step 2 must precede step 3 at PRE_COMMIT / PRE_PREPARE: the tracked
 * tables' changes are increments that step 3 writes.  Step 1 touches
 * nothing the others read; it runs first as it always has.  Parts never
 * call each other from their event handlers, so the counter side is a
 * one-way chain: SQL API -> tracking / pending -> store.
 *
 * State: none; the callbacks are registered once, in _PG_init.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"

#include "event_stats.h"

static void
es_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			tracking_collect();
			pending_flush();
			break;
		case XACT_EVENT_PRE_PREPARE:
			hlc_horizon_pre_prepare();
			tracking_collect();
			pending_flush();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			hlc_horizon_xact_end(false);
			tracking_xact_end();
			pending_reset();
			break;
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			hlc_horizon_xact_end(true);
			tracking_xact_end();
			pending_reset();
			break;
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			/* increments are refused in parallel workers, which write no rows */
			break;
	}
}

static void
es_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	tracking_subxact_end(level, event == SUBXACT_EVENT_COMMIT_SUB);
	pending_subxact_end(level, event == SUBXACT_EVENT_COMMIT_SUB);
}

void
xact_dispatch_register(void)
{
	RegisterXactCallback(es_xact_callback, NULL);
	RegisterSubXactCallback(es_subxact_callback, NULL);
}
