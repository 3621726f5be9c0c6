/*-------------------------------------------------------------------------
 *
 * counter_type.c
 *	  The event_stats.counter type: a 4-byte handle whose text form is the
 *	  counter's name.
 *
 * Like regclass, the name is resolved to the counter's id once, when the
 * text is read (for a constant in a query, at parse time), and an id is
 * printed back as the name.  Ids are never reused, so a handle held across
 * a drop cannot silently point at another counter; such a handle prints as
 * its bare id.
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "event_stats.h"

PG_FUNCTION_INFO_V1(counter_in);
PG_FUNCTION_INFO_V1(counter_out);
PG_FUNCTION_INFO_V1(counter_eq);
PG_FUNCTION_INFO_V1(counter_ne);
PG_FUNCTION_INFO_V1(counter_lt);
PG_FUNCTION_INFO_V1(counter_le);
PG_FUNCTION_INFO_V1(counter_gt);
PG_FUNCTION_INFO_V1(counter_ge);
PG_FUNCTION_INFO_V1(counter_cmp);
PG_FUNCTION_INFO_V1(counter_hash);

CounterId
counter_resolve(const char *name)
{
	CounterDef	def;

	if (!store_lookup_by_name(name, &def))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("counter \"%s\" does not exist", name),
				 errhint("Counters are created with event_stats.create_counter().")));
	return def.id;
}

/*
 * The error for a handle whose counter is gone.  Plans that named a counter
 * by a constant are replanned when a counter is dropped (store_drop), so
 * this is met by handles kept elsewhere: in a table, a variable, a client.
 */
void
counter_report_missing(CounterId id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("counter with id %d does not exist", id),
			 errdetail("The handle refers to a counter that has been dropped, or to no counter at all."),
			 errhint("Counter ids are never reused: look the counter up again by its name.")));
}

/* The newest committed definition of the counter (and this transaction's). */
void
counter_get(CounterId id, CounterDef *def)
{
	if (!store_lookup_by_id(id, NULL, def))
		counter_report_missing(id);
}

Datum
counter_in(PG_FUNCTION_ARGS)
{
	es_require_preload();
	PG_RETURN_INT32(counter_resolve(PG_GETARG_CSTRING(0)));
}

Datum
counter_out(PG_FUNCTION_ARGS)
{
	CounterId	id = PG_GETARG_INT32(0);
	CounterDef	def;

	es_require_preload();
	if (store_lookup_by_id(id, NULL, &def))
		PG_RETURN_CSTRING(pstrdup(def.name));
	PG_RETURN_CSTRING(psprintf("%d", id));
}

/* Ordering follows ids, that is, creation order. */
#define COUNTER_COMPARISON(fname, op) \
Datum \
fname(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_BOOL(PG_GETARG_INT32(0) op PG_GETARG_INT32(1)); \
}

COUNTER_COMPARISON(counter_eq, ==)
COUNTER_COMPARISON(counter_ne, !=)
COUNTER_COMPARISON(counter_lt, <)
COUNTER_COMPARISON(counter_le, <=)
COUNTER_COMPARISON(counter_gt, >)
COUNTER_COMPARISON(counter_ge, >=)

Datum
counter_cmp(PG_FUNCTION_ARGS)
{
	CounterId	a = PG_GETARG_INT32(0);
	CounterId	b = PG_GETARG_INT32(1);

	PG_RETURN_INT32((a > b) - (a < b));
}

Datum
counter_hash(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(hash_uint32((uint32) PG_GETARG_INT32(0)));
}
