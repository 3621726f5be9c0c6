/*-------------------------------------------------------------------------
 *
 * counter_api.c
 *	  SQL-callable functions of sharded counters.
 *
 * Argument checking and the public contract live here; the transaction's
 * pending changes are in counter_pending.c, the tables in counter_store.c,
 * and who may do what to a counter in counter_acl.c.  Functions are not
 * STRICT: a NULL argument is an error, not a silently skipped increment.
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "common/int.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "event_stats.h"

PG_FUNCTION_INFO_V1(es_create_counter);
PG_FUNCTION_INFO_V1(es_drop_counter);
PG_FUNCTION_INFO_V1(es_increment);
PG_FUNCTION_INFO_V1(es_value);
PG_FUNCTION_INFO_V1(es_set);
PG_FUNCTION_INFO_V1(es_value_if_readable);

static void
require_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

void
counter_check_name(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("counter name must not be empty")));
	if (len > COUNTER_NAME_MAXLEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("counter name \"%s\" is too long", name),
				 errdetail("Counter names are at most %d bytes long.",
						   COUNTER_NAME_MAXLEN)));
}

/*
 * increment() and set() need UPDATE on the counter, checked at every call
 * (the role may change within a transaction), and refuse tracking
 * counters.
 */
static void
counter_check_change(CounterId id, const char *function)
{
	CounterDef	def;

	tracking_refuse_manual_change(id, function);
	counter_get(id, &def);
	counter_require(&def, ACL_UPDATE);
}

/*
 * create_counter(name text, shards int DEFAULT NULL) RETURNS counter
 */
Datum
es_create_counter(PG_FUNCTION_ARGS)
{
	char	   *name;
	int32		max_shards = store_max_shards();
	int32		shards = max_shards;

	es_require_preload();
	require_arg(fcinfo, 0, "counter name");
	PreventCommandIfReadOnly("event_stats.create_counter()");
	PreventCommandIfParallelMode("event_stats.create_counter()");

	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	counter_check_name(name);
	if (!PG_ARGISNULL(1))
		shards = PG_GETARG_INT32(1);
	if (shards < 1 || shards > max_shards)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of shards must be between 1 and %d", max_shards),
				 errhint("More shards than backends that can exist (%d here) buy nothing.",
						 max_shards)));

	PG_RETURN_INT32(store_create(name, shards));
}

/*
 * drop_counter(counter) RETURNS void
 */
Datum
es_drop_counter(PG_FUNCTION_ARGS)
{
	CounterDef	def;

	es_require_preload();
	require_arg(fcinfo, 0, "counter");
	PreventCommandIfReadOnly("event_stats.drop_counter()");
	PreventCommandIfParallelMode("event_stats.drop_counter()");

	counter_lock_as_owner(PG_GETARG_INT32(0), "event_stats.drop_counter()", &def);
	store_drop(def.id, false);
	PG_RETURN_VOID();
}

/*
 * increment(counter, delta bigint DEFAULT 1) RETURNS void
 */
Datum
es_increment(PG_FUNCTION_ARGS)
{
	es_require_preload();
	require_arg(fcinfo, 0, "counter");
	require_arg(fcinfo, 1, "delta");

	counter_check_change(PG_GETARG_INT32(0), "event_stats.increment()");
	pending_increment(PG_GETARG_INT32(0), PG_GETARG_INT64(1));
	PG_RETURN_VOID();
}

/*
 * set(counter, bigint) RETURNS void
 */
Datum
es_set(PG_FUNCTION_ARGS)
{
	es_require_preload();
	require_arg(fcinfo, 0, "counter");
	require_arg(fcinfo, 1, "value");

	counter_check_change(PG_GETARG_INT32(0), "event_stats.set()");
	pending_set(PG_GETARG_INT32(0), PG_GETARG_INT64(1));
	PG_RETURN_VOID();
}

/*
 * The counter's value in the current snapshot plus this transaction's own
 * pending change; after set() in this transaction the shards no longer
 * matter, the pending state carries the whole value.  With quiet, every
 * reason value() would raise an error for an existing counter -- no right
 * to read it, row-level security on its table, a sum out of range --
 * makes it return false instead.
 */
static bool
counter_read(CounterId id, bool quiet, int64 *result)
{
	Snapshot	snapshot;
	CounterDef	def;
	bool		is_absolute = false;
	int64		pending = 0;
	int64		sum;
	bool		overflow = false;

	/* the definition and the shards are read in one snapshot */
	snapshot = RegisterSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() :
								GetTransactionSnapshot());
	if (!store_lookup_by_id(id, snapshot, &def))
		counter_report_missing(id);

	/* a tracking counter is read by the rules of its table */
	if (OidIsValid(tracking_table_of(id)))
	{
		if (quiet && !tracking_may_read(id))
			goto refused;
		tracking_check_read(id);
	}
	else if (quiet && !counter_may(&def, ACL_SELECT))
		goto refused;
	else
		counter_require(&def, ACL_SELECT);

	if (!pending_lookup(id, &is_absolute, &pending))
		pending = tracking_own_delta(id);
	if (is_absolute)
	{
		UnregisterSnapshot(snapshot);
		*result = pending;
		return true;
	}

	sum = store_sum_shards(&def, snapshot, quiet ? &overflow : NULL);
	UnregisterSnapshot(snapshot);
	if (!overflow && !pg_add_s64_overflow(sum, pending, result))
		return true;
	if (!quiet)
		report_counter_overflow(def.name);
	return false;

refused:
	UnregisterSnapshot(snapshot);
	return false;
}

/*
 * value(counter) RETURNS bigint
 */
Datum
es_value(PG_FUNCTION_ARGS)
{
	int64		result;

	es_require_preload();
	require_arg(fcinfo, 0, "counter");
	(void) counter_read(PG_GETARG_INT32(0), false, &result);
	PG_RETURN_INT64(result);
}

/*
 * value_if_readable(counter) RETURNS bigint
 *
 * value(), or NULL where value() would refuse an existing counter, so that
 * one counter the caller may not read, or whose value left the bigint
 * range, does not make a listing of all of them fail (the counters view).
 */
Datum
es_value_if_readable(PG_FUNCTION_ARGS)
{
	int64		result;

	es_require_preload();
	require_arg(fcinfo, 0, "counter");
	if (!counter_read(PG_GETARG_INT32(0), true, &result))
		PG_RETURN_NULL();
	PG_RETURN_INT64(result);
}
