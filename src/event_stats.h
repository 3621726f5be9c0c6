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
 *	 tracking.c			row counts of tracked tables: which tables, and what
 *						each committing transaction adds to their counters
 *	 tracking_ddl.c		the hooks that see TRUNCATE, DROP and changes of a
 *						tracked tree before they happen
 *	 tracking_api.c		SQL-callable track() and untrack()
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENT_STATS_H
#define EVENT_STATS_H

#include "postgres.h"

#include "access/htup.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"
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
extern void store_require_installed(void);
extern void report_counter_overflow(const char *name) pg_attribute_noreturn();
extern int32 store_max_shards(void);
extern bool store_lookup_by_name(const char *name, CounterDef *def);
extern bool store_lookup_by_id(CounterId id, Snapshot snapshot, CounterDef *def);
extern CounterId store_create(const char *name, int32 shards);
extern void store_drop(CounterId id, bool missing_ok);
extern Oid	store_tracked_tables_relid(void);
extern void store_insert_tuple(Relation rel, HeapTuple tuple);
extern int64 store_sum_shards(const CounterDef *def, Snapshot snapshot);
extern void store_add_to_shards(const CounterDef *def, int64 delta);
extern void store_reset_shards(const CounterDef *def, int64 value);

/* counter_pending.c */
extern void pending_register_callbacks(void);
extern void pending_increment(CounterId id, int64 delta);
extern void pending_set(CounterId id, int64 value);
extern bool pending_lookup(CounterId id, bool *is_absolute, int64 *amount);
extern void pending_add_tracked(CounterId id, int64 delta);

/* counter_api.c */
extern void counter_check_name(const char *name);

/* tracking.c */
extern bool tracking_is_member(Oid relid);
extern bool tracking_is_leaf(Oid relid);
extern Oid	tracking_table_of(CounterId id);
extern CounterId tracking_counter_of(Oid relid);
extern List *tracking_counters_at_or_above(Oid relid);
extern List *tracking_counters_of_leaf(Oid relid);
extern void tracking_record_leaf(Oid relid, List *before, CounterId sole);
extern void tracking_record_leaf_now(Oid relid);
extern void tracking_check_tree(Oid relid, List *tree);
extern void tracking_report_counts_off(Oid relid) pg_attribute_noreturn();
extern void tracking_collect(void);
extern int64 tracking_own_delta(CounterId id);
extern void tracking_xact_end(void);
extern void tracking_subxact_end(int level, bool commit);
extern CounterId tracking_track(Oid relid, const char *name);
extern void tracking_untrack(Oid relid);
extern void tracking_restore(void);
extern void tracking_forget_dropped(Oid relid, CounterId id);
extern void tracking_refuse_manual_change(CounterId id, const char *function);
extern void tracking_check_read(CounterId id);

/* tracking_ddl.c */
extern void tracking_register_hooks(void);

/* counter_type.c */
extern CounterId counter_resolve(const char *name);

#endif							/* EVENT_STATS_H */
