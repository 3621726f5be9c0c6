/*-------------------------------------------------------------------------
 *
 * hlc_api.c
 *	  SQL-callable functions of the hybrid logical clock: hlc_now(),
 *	  hlc_observe(), unique_timestamp(), hlc_horizon() and hlc_status().
 *
 * The clock itself, and its locking rules, are in hlc_clock.c; the closed
 * timestamp in hlc_horizon.c.  No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/timestamp.h"

#include "event_stats.h"

PG_FUNCTION_INFO_V1(es_hlc_now);
PG_FUNCTION_INFO_V1(es_hlc_observe);
PG_FUNCTION_INFO_V1(es_unique_timestamp);
PG_FUNCTION_INFO_V1(es_hlc_horizon);
PG_FUNCTION_INFO_V1(es_hlc_horizon_for_poll);
PG_FUNCTION_INFO_V1(es_hlc_status);

Datum
es_hlc_now(PG_FUNCTION_ARGS)
{
	es_require_preload();
	PG_RETURN_HLC(hlc_clock_tick(0, false));
}

/*
 * The HLC receive rule.  An observation too far ahead would drag the
 * clock, and every value after it, away from the wall clock, so it is
 * refused before the clock moves.  Not STRICT: a null observation is a
 * caller's mistake that a silent null result would hide.
 */
Datum
es_hlc_observe(PG_FUNCTION_ARGS)
{
	Hlc			observed;
	int64		ahead_us;

	es_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("observed clock value must not be null")));
	observed = PG_GETARG_HLC(0);
	if (hlc_observation_too_far(observed, &ahead_us))
	{
		hlc_count_refused_observation();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("observed clock value %s is too far ahead of the wall clock",
						hlc_to_cstring(observed)),
				 errdetail("It is %lld ms ahead; event_stats.hlc_max_drift allows %d ms.",
						   (long long) (ahead_us / 1000), hlc_max_drift_ms),
				 errhint("Check the clocks of the servers that produced the value.")));
	}
	PG_RETURN_HLC(hlc_clock_tick(observed, false));
}

/*
 * A timestamptz from the same clock that no other value shares: the clock
 * moves to the last logical tick of the returned microsecond.
 */
Datum
es_unique_timestamp(PG_FUNCTION_ARGS)
{
	es_require_preload();
	PG_RETURN_TIMESTAMPTZ(hlc_physical_timestamptz(hlc_clock_tick(0, true)));
}

/*
 * The closed timestamp.  Every transaction that took a value at or below
 * it has committed or aborted, and no such value will be handed out again;
 * read it before taking the snapshot that reads the rows.
 */
Datum
es_hlc_horizon(PG_FUNCTION_ARGS)
{
	HlcHorizon	horizon;

	es_require_preload();
	hlc_horizon_compute(&horizon);
	PG_RETURN_HLC(horizon.horizon);
}

/*
 * hlc_horizon_for_poll() RETURNS hlc
 *
 * hlc_horizon() for a poller.  A transaction that took a clock value
 * holds the horizon below it until it ends, so a poll inside it could
 * never see past its own values: every later poll would return nothing,
 * silently, and stall every other poller of the server with it.  Refused
 * instead.  (hlc_horizon() itself answers, so that a transaction can see
 * its own hold.)
 */
Datum
es_hlc_horizon_for_poll(PG_FUNCTION_ARGS)
{
	HlcHorizon	horizon;
	Hlc			holds;

	es_require_preload();
	if (hlc_horizon_held_here(&holds))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot poll for changes in a transaction that holds the closed timestamp back"),
				 errdetail("This transaction took a clock value above %s; the closed timestamp stays at or below that until the transaction ends, so the poll would find no new rows.",
						   hlc_to_cstring(holds)),
				 errhint("Poll in a transaction that takes no clock values: commit or roll back the writes (e.g. a row whose default is unique_timestamp()) first.")));
	hlc_horizon_compute(&horizon);
	PG_RETURN_HLC(horizon.horizon);
}

static Interval *
interval_from_us(int64 us)
{
	Interval   *result = palloc0(sizeof(Interval));

	result->time = us;
	return result;
}

Datum
es_hlc_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	HlcStatus	status;
	HlcHorizon	horizon;
	Datum		values[12];
	bool		nulls[12] = {0};
	int64		ahead_us;

	es_require_preload();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	hlc_clock_status(&status);
	ahead_us = (int64) HlcPhysical(status.current) - (int64) status.wall_us;

	values[0] = HlcGetDatum(status.current);
	values[1] = TimestampTzGetDatum((TimestampTz) status.wall_us -
									HLC_UNIX_TO_PG_EPOCH_US);
	values[2] = IntervalPGetDatum(interval_from_us(Max(ahead_us, 0)));
	values[3] = IntervalPGetDatum(interval_from_us(status.max_drift_us));
	values[4] = Int64GetDatum((int64) status.drift_waits);
	values[5] = HlcGetDatum(status.high_water_mark);
	values[6] = Int64GetDatum((int64) status.backward_steps);
	values[7] = Int64GetDatum((int64) status.refused_observations);

	/* no horizon where no value can be taken: a standby, a lost state */
	if (hlc_clock_usable())
	{
		hlc_horizon_compute(&horizon);
		values[8] = HlcGetDatum(horizon.horizon);
		values[9] = IntervalPGetDatum(interval_from_us(
			(int64) HlcPhysical(hlc_clock_last()) - (int64) HlcPhysical(horizon.horizon)));
		values[10] = Int32GetDatum(horizon.holder_pid);
		nulls[10] = horizon.holder_pid == 0;
		values[11] = TransactionIdGetDatum(horizon.holder_xid);
		nulls[11] = !TransactionIdIsValid(horizon.holder_xid);
	}
	else
		nulls[8] = nulls[9] = nulls[10] = nulls[11] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
