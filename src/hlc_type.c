/*-------------------------------------------------------------------------
 *
 * hlc_type.c
 *	  The event_stats.hlc type: a hybrid logical clock value.
 *
 * A value is a uint64 passed by value, laid out as YugabyteDB lays out its
 * hybrid time: the high 52 bits are microseconds since 1970-01-01 00:00 UTC
 * (enough until 2112-09-17), the low 12 bits a logical counter that orders
 * values taken within one microsecond.  Values compare as unsigned
 * integers, so the raw integer, the physical time and the text form all
 * sort the same way.
 *
 * The text form is ISO-8601 UTC with microseconds, then '/' and the
 * logical counter as four digits:
 *
 *		2026-11-22T06:40:12.123456Z/0001
 *
 * Every field has a fixed width, so the text sorts like the value.  Input
 * accepts exactly this form (what output produces); anything else is an
 * error rather than a guess.
 *
 * Casts to bigint expose the raw integer.  bigint is signed, so values from
 * 2041-05-10T11:56:53.685248Z on, whose top bit is set, do not fit: the
 * cast fails rather than wrap to a negative number.
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "event_stats.h"

PG_FUNCTION_INFO_V1(hlc_in);
PG_FUNCTION_INFO_V1(hlc_out);
PG_FUNCTION_INFO_V1(hlc_recv);
PG_FUNCTION_INFO_V1(hlc_send);
PG_FUNCTION_INFO_V1(hlc_to_bigint);
PG_FUNCTION_INFO_V1(hlc_from_bigint);
PG_FUNCTION_INFO_V1(hlc_to_timestamptz);
PG_FUNCTION_INFO_V1(hlc_logical);
PG_FUNCTION_INFO_V1(hlc_from_parts);
PG_FUNCTION_INFO_V1(hlc_eq);
PG_FUNCTION_INFO_V1(hlc_ne);
PG_FUNCTION_INFO_V1(hlc_lt);
PG_FUNCTION_INFO_V1(hlc_le);
PG_FUNCTION_INFO_V1(hlc_gt);
PG_FUNCTION_INFO_V1(hlc_ge);
PG_FUNCTION_INFO_V1(hlc_cmp);
PG_FUNCTION_INFO_V1(hlc_smaller);
PG_FUNCTION_INFO_V1(hlc_larger);

/* "YYYY-MM-DDTHH:MM:SS.ffffffZ/LLLL": '9' marks a digit */
static const char hlc_text_pattern[] = "9999-99-99T99:99:99.999999Z/9999";

#define HLC_TEXT_LEN	(sizeof(hlc_text_pattern) - 1)

char *
hlc_to_cstring(Hlc value)
{
	uint64		us = HlcPhysical(value);
	uint64		days = us / USECS_PER_DAY;
	uint64		in_day = us % USECS_PER_DAY;
	uint64		secs = in_day / USECS_PER_SEC;
	int			year,
				month,
				day;

	j2date((int) days + UNIX_EPOCH_JDATE, &year, &month, &day);
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ/%04u",
					year, month, day,
					(int) (secs / SECS_PER_HOUR),
					(int) (secs / SECS_PER_MINUTE % MINS_PER_HOUR),
					(int) (secs % SECS_PER_MINUTE),
					(int) (in_day % USECS_PER_SEC),
					HlcLogical(value));
}

static void
report_bad_hlc_text(const char *str, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type %s: \"%s\"",
					"event_stats.hlc", str),
			 errdetail("%s", detail),
			 errhint("An hlc is written as UTC time with microseconds and a logical counter, for example \"2026-01-31T23:59:59.000001Z/0000\".")));
}

/* the decimal number in str[from, from + len), all digits by now */
static int
hlc_text_field(const char *str, int from, int len)
{
	int			result = 0;

	for (int i = from; i < from + len; i++)
		result = result * 10 + (str[i] - '0');
	return result;
}

static Hlc
hlc_parse(const char *str)
{
	int			year,
				month,
				day,
				hour,
				minute,
				second,
				micro,
				logical,
				jd,
				y2,
				m2,
				d2;
	int64		us;

	if (strlen(str) != HLC_TEXT_LEN)
		report_bad_hlc_text(str, "The value does not have the form YYYY-MM-DDTHH:MM:SS.ffffffZ/LLLL.");
	for (size_t i = 0; i < HLC_TEXT_LEN; i++)
	{
		bool		want_digit = hlc_text_pattern[i] == '9';

		if (want_digit ? !isdigit((unsigned char) str[i]) :
			str[i] != hlc_text_pattern[i])
			report_bad_hlc_text(str, "The value does not have the form YYYY-MM-DDTHH:MM:SS.ffffffZ/LLLL.");
	}

	year = hlc_text_field(str, 0, 4);
	month = hlc_text_field(str, 5, 2);
	day = hlc_text_field(str, 8, 2);
	hour = hlc_text_field(str, 11, 2);
	minute = hlc_text_field(str, 14, 2);
	second = hlc_text_field(str, 17, 2);
	micro = hlc_text_field(str, 20, 6);
	logical = hlc_text_field(str, 28, 4);

	if (month < 1 || month > 12 || day < 1)
		report_bad_hlc_text(str, "The date does not exist.");
	jd = date2j(year, month, day);
	j2date(jd, &y2, &m2, &d2);
	if (y2 != year || m2 != month || d2 != day)
		report_bad_hlc_text(str, "The date does not exist.");
	if (hour > 23 || minute > 59 || second > 59)
		report_bad_hlc_text(str, "The time of day does not exist.");
	if (logical > (int) HLC_LOGICAL_MAX)
		report_bad_hlc_text(str, "The logical counter must be between 0000 and 4095.");

	us = (int64) (jd - UNIX_EPOCH_JDATE) * USECS_PER_DAY +
		((int64) hour * SECS_PER_HOUR + minute * SECS_PER_MINUTE + second) *
		USECS_PER_SEC + micro;
	if (us < 0 || (uint64) us > HLC_PHYSICAL_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("event_stats.hlc value out of range: \"%s\"", str),
				 errdetail("An hlc holds times from 1970-01-01 to 2112-09-17 UTC.")));
	return HlcMake(us, logical);
}

Datum
hlc_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_HLC(hlc_parse(PG_GETARG_CSTRING(0)));
}

Datum
hlc_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(hlc_to_cstring(PG_GETARG_HLC(0)));
}

/* Binary form: the raw value as an 8-byte big-endian integer. */
Datum
hlc_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);

	PG_RETURN_HLC((Hlc) pq_getmsgint64(buf));
}

Datum
hlc_send(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, (int64) PG_GETARG_HLC(0));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

Datum
hlc_to_bigint(PG_FUNCTION_ARGS)
{
	Hlc			value = PG_GETARG_HLC(0);

	if (value > (Hlc) PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("event_stats.hlc value %s is out of range for type bigint",
						hlc_to_cstring(value)),
				 errdetail("Values from 2041-05-10T11:56:53.685248Z on use the 64th bit, which bigint does not have.")));
	PG_RETURN_INT64((int64) value);
}

Datum
hlc_from_bigint(PG_FUNCTION_ARGS)
{
	int64		raw = PG_GETARG_INT64(0);

	if (raw < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint value %lld is out of range for type event_stats.hlc",
						(long long) raw),
				 errdetail("The raw value of an hlc is never negative.")));
	PG_RETURN_HLC((Hlc) raw);
}

TimestampTz
hlc_physical_timestamptz(Hlc value)
{
	return (TimestampTz) HlcPhysical(value) - HLC_UNIX_TO_PG_EPOCH_US;
}

Datum
hlc_to_timestamptz(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(hlc_physical_timestamptz(PG_GETARG_HLC(0)));
}

Datum
hlc_logical(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32((int32) HlcLogical(PG_GETARG_HLC(0)));
}

Datum
hlc_from_parts(PG_FUNCTION_ARGS)
{
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
	int32		logical = PG_GETARG_INT32(1);
	int64		us;

	if (TIMESTAMP_NOT_FINITE(ts) ||
		pg_add_s64_overflow(ts, HLC_UNIX_TO_PG_EPOCH_US, &us) ||
		us < 0 || (uint64) us > HLC_PHYSICAL_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range for type event_stats.hlc"),
				 errdetail("An hlc holds times from 1970-01-01 to 2112-09-17 UTC.")));
	if (logical < 0 || logical > (int32) HLC_LOGICAL_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("logical counter %d is out of range for type event_stats.hlc",
						logical),
				 errdetail("The logical counter is between 0 and 4095.")));
	PG_RETURN_HLC(HlcMake(us, logical));
}

#define HLC_COMPARISON(fname, op) \
Datum \
fname(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_BOOL(PG_GETARG_HLC(0) op PG_GETARG_HLC(1)); \
}

HLC_COMPARISON(hlc_eq, ==)
HLC_COMPARISON(hlc_ne, !=)
HLC_COMPARISON(hlc_lt, <)
HLC_COMPARISON(hlc_le, <=)
HLC_COMPARISON(hlc_gt, >)
HLC_COMPARISON(hlc_ge, >=)

Datum
hlc_cmp(PG_FUNCTION_ARGS)
{
	Hlc			a = PG_GETARG_HLC(0);
	Hlc			b = PG_GETARG_HLC(1);

	PG_RETURN_INT32((a > b) - (a < b));
}

Datum
hlc_smaller(PG_FUNCTION_ARGS)
{
	PG_RETURN_HLC(Min(PG_GETARG_HLC(0), PG_GETARG_HLC(1)));
}

Datum
hlc_larger(PG_FUNCTION_ARGS)
{
	PG_RETURN_HLC(Max(PG_GETARG_HLC(0), PG_GETARG_HLC(1)));
}
