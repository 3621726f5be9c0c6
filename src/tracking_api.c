/*-------------------------------------------------------------------------
 *
 * tracking_api.c
 *	  SQL-callable functions that start and stop tracking a table's row
 *	  count.
 *
 * Argument checking only; tracking.c does the work.  Like the counter
 * functions, these are not STRICT: a NULL argument is an error.
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "event_stats.h"

PG_FUNCTION_INFO_V1(es_track);
PG_FUNCTION_INFO_V1(es_untrack);

static void
tracking_api_start(FunctionCallInfo fcinfo, const char *function)
{
	es_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table must not be null")));
	PreventCommandIfReadOnly(function);
	PreventCommandIfParallelMode(function);
	store_require_installed();
}

/*
 * track(tbl regclass, counter_name text DEFAULT NULL) RETURNS counter
 */
Datum
es_track(PG_FUNCTION_ARGS)
{
	tracking_api_start(fcinfo, "event_stats.track()");
	PG_RETURN_INT32(tracking_track(PG_GETARG_OID(0),
								   PG_ARGISNULL(1) ? NULL :
								   text_to_cstring(PG_GETARG_TEXT_PP(1))));
}

/*
 * untrack(tbl regclass) RETURNS void
 */
Datum
es_untrack(PG_FUNCTION_ARGS)
{
	tracking_api_start(fcinfo, "event_stats.untrack()");
	tracking_untrack(PG_GETARG_OID(0));
	PG_RETURN_VOID();
}
