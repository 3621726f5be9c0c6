/*-------------------------------------------------------------------------
 *
 * event_stats.h
 *	  Declarations shared by the files of the event_stats extension.
 *
 * Each .c file owns one concept; this header is the list of what one file
 * offers the others.
 *
 *	 module.c			library load, the shared_preload_libraries check
 *	 counter_store.c	the state tables: definitions and shard rows
 *	 counter_pending.c	this transaction's not-yet-written increments and
 *						the transaction callbacks that write them
 *	 counter_type.c		the event_stats.counter type: text I/O, operators
 *	 counter_api.c		SQL-callable counter functions
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENT_STATS_H
#define EVENT_STATS_H

#include "postgres.h"

#include "utils/snapshot.h"

/* A counter is identified by the int4 id of its definition row. */
typedef int32 CounterId;

#define COUNTER_NAME_MAXLEN		(NAMEDATALEN - 1)

/* module.c */
extern void es_require_preload(void);

/* counter_store.c */
typedef struct CounterDef
{
	CounterId	id;
	int32		shards;
	char		name[NAMEDATALEN];
} CounterDef;

extern bool store_is_installed(void);
extern void report_counter_overflow(const char *name) pg_attribute_noreturn();
extern int32 store_max_shards(void);
extern bool store_lookup_by_name(const char *name, CounterDef *def);
extern bool store_lookup_by_id(CounterId id, Snapshot snapshot, CounterDef *def);
extern CounterId store_create(const char *name, int32 shards);
extern void store_drop(CounterId id);
extern int64 store_sum_shards(const CounterDef *def, Snapshot snapshot);
extern void store_add_to_shards(const CounterDef *def, int64 delta);
extern void store_reset_shards(const CounterDef *def, int64 value);

/* counter_pending.c */
extern void pending_register_callbacks(void);
extern void pending_increment(CounterId id, int64 delta);
extern void pending_set(CounterId id, int64 value);
extern bool pending_lookup(CounterId id, bool *is_absolute, int64 *amount);

/* counter_type.c */
extern CounterId counter_resolve(const char *name);

#endif							/* EVENT_STATS_H */
