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
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "event_stats.h"

PG_FUNCTION_INFO_V1(es_track);
PG_FUNCTION_INFO_V1(es_untrack);

/*
 * A regclass argument can be any OID ('0'::regclass, or a table dropped
 * since the value was read).  Lock it first, with the lock track() and
 * untrack() take anyway, then see whether it exists, as PostgreSQL's own
 * name lookups do, so that a missing table is a clear error rather than
 * a failure to open it.
 */
static void
tracking_api_lock_table(Oid relid)
{
	LockRelationOid(relid, ShareRowExclusiveLock);
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
	{
		UnlockRelationOid(relid, ShareRowExclusiveLock);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	}
}

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
	tracking_api_lock_table(PG_GETARG_OID(0));
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
