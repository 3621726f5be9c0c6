/*-------------------------------------------------------------------------
 *
 * event_stats.h
 *	  Declarations shared by the files of the event_stats extension.
 *
 * Each .c file owns one concept; this header is the list of what one file
 * offers the others.
 *
 *	 module.c			library load, the shared_preload_libraries check
 *	 xact_dispatch.c	the transaction and subtransaction callbacks: which
 *						part hears of each transaction end, in what order
 *	 counter_store.c	the state tables: definitions and shard rows
 *	 counter_pending.c	this transaction's not-yet-written increments,
 *						written at commit
 *	 counter_type.c		the event_stats.counter type: text I/O, operators
 *	 counter_acl.c		owners and privileges of counters
 *	 counter_api.c		SQL-callable counter functions
 *	 tracking.c			row counts of tracked tables: which tables, and what
 *						each committing transaction adds to their counters
 *	 tracking_ddl.c		the hooks that see TRUNCATE, DROP and changes of a
 *						tracked tree before they happen
 *	 tracking_api.c		SQL-callable track() and untrack()
 *	 replication.c		the state tables on a logical replication subscriber
 *	 hlc_type.c			the event_stats.hlc type: layout, text I/O, casts,
 *						comparisons
 *	 hlc_clock.c		the server-wide hybrid logical clock in shared
 *						memory: the hot path and the persisted window
 *	 hlc_persist.c		where the window is persisted: the state file and
 *						the WAL record that carries it to standbys
 *	 hlc_horizon.c		the closed timestamp: which transactions hold
 *						values that may still commit
 *	 hlc_api.c			SQL-callable hlc_now(), hlc_observe(),
 *						unique_timestamp(), hlc_horizon(), hlc_status()
 *	 compaction.c		the background workers that fold shard rows nobody
 *						writes any more into each counter's base row
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENT_STATS_H
#define EVENT_STATS_H

#include "postgres.h"

#include "access/htup.h"
#include "access/xact.h"
#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/acl.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

/* A counter is identified by the int4 id of its definition row. */
typedef int32 CounterId;

#define COUNTER_NAME_MAXLEN		(NAMEDATALEN - 1)

/* module.c */
extern void es_require_preload(void);

/* compaction.c */
extern void compaction_init(void);

/* xact_dispatch.c */
extern void xact_dispatch_register(void);

/* counter_store.c */
typedef struct CounterDef
{
	CounterId	id;
	int32		shards;
	char		name[NAMEDATALEN];
	Oid			owner;
	/*
	 * NULL: default privileges.  Points into the definition cache (or the
	 * caller's memory, for lookups in a snapshot): valid until the next
	 * cache invalidation, so check privileges right after the lookup.
	 */
	Acl		   *acl;
} CounterDef;

extern bool store_is_installed(void);
extern Snapshot store_catalog_snapshot(void);
extern void store_release_snapshot(Snapshot snapshot);
extern void store_require_installed(void);
extern void report_counter_overflow(const char *name) pg_attribute_noreturn();
extern int32 store_max_shards(void);
extern bool store_lookup_by_name(const char *name, CounterDef *def);
extern bool store_lookup_by_id(CounterId id, Snapshot snapshot, CounterDef *def);
extern CounterId store_create(const char *name, int32 shards);
extern void store_drop(CounterId id, bool missing_ok);
extern void store_lock_definition(CounterId id);
extern void store_set_owner_acl(CounterId id, Oid owner, Acl *acl);
extern Oid	store_tracked_tables_relid(void);
extern void store_insert_tuple(Relation rel, HeapTuple tuple);
extern int64 store_sum_shards(const CounterDef *def, Snapshot snapshot,
							  bool *overflow);
extern void store_add_to_shards(const CounterDef *def, int64 delta);
extern void store_reset_shards(const CounterDef *def, int64 value);
extern bool store_layout_is_1_0(void);
extern int	store_compact_counter(CounterId id, TransactionId cold_before,
								  BlockNumber move_above);
extern void store_compact_begin_pass(void);
extern int	store_shard_rows_per_page(void);

/* counter_pending.c */
extern void pending_flush(void);
extern void pending_reset(void);
extern void pending_subxact_end(int level, bool commit);
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
extern void tracking_xact_end(void);
extern int64 tracking_own_delta(CounterId id);
extern void tracking_subxact_end(int level, bool commit);
extern CounterId tracking_track(Oid relid, const char *name);
extern void tracking_untrack(Oid relid);
extern void tracking_restore(void);
extern void tracking_forget_dropped(Oid relid, CounterId id);
extern void tracking_refuse_manual_change(CounterId id, const char *function);
extern void tracking_check_read(CounterId id);
extern bool tracking_may_read(CounterId id);

/* tracking_ddl.c */
extern void tracking_register_hooks(void);

/* counter_type.c */
extern CounterId counter_resolve(const char *name);
extern void counter_report_missing(CounterId id) pg_attribute_noreturn();
extern void counter_get(CounterId id, CounterDef *def);

/* counter_acl.c */
extern bool counter_may(const CounterDef *def, AclMode mode);
extern void counter_require(const CounterDef *def, AclMode mode);
extern void counter_lock_as_owner(CounterId id, const char *function,
								  CounterDef *def);

/*
 * hlc_type.c: an event_stats.hlc is a uint64 passed by value.  The high 52
 * bits are microseconds since 1970-01-01 00:00 UTC, the low 12 bits a
 * logical counter.  The layout is public: clients decode the raw integer.
 */
typedef uint64 Hlc;

#define HLC_LOGICAL_BITS	12
#define HLC_LOGICAL_MAX		((UINT64CONST(1) << HLC_LOGICAL_BITS) - 1)
#define HLC_PHYSICAL_MAX	((UINT64CONST(1) << (64 - HLC_LOGICAL_BITS)) - 1)
#define HLC_MAX				PG_UINT64_MAX

#define HlcPhysical(h)		((h) >> HLC_LOGICAL_BITS)
#define HlcLogical(h)		((uint32) ((h) & HLC_LOGICAL_MAX))
#define HlcMake(us, logical) (((Hlc) (us) << HLC_LOGICAL_BITS) | (Hlc) (logical))

#define DatumGetHlc(d)		DatumGetUInt64(d)
#define HlcGetDatum(h)		UInt64GetDatum(h)
#define PG_GETARG_HLC(n)	DatumGetHlc(PG_GETARG_DATUM(n))
#define PG_RETURN_HLC(h)	return HlcGetDatum(h)

/* microseconds between the Unix epoch and PostgreSQL's (2000-01-01) */
#define HLC_UNIX_TO_PG_EPOCH_US \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

extern char *hlc_to_cstring(Hlc value);
extern TimestampTz hlc_physical_timestamptz(Hlc value);

/* hlc_clock.c */
extern void hlc_clock_init(void);
extern Hlc	hlc_clock_tick(Hlc at_least, bool whole_microsecond);
extern bool hlc_observation_too_far(Hlc observed, int64 *ahead_us);
extern void hlc_count_refused_observation(void);
extern uint64 hlc_wall_clock_us(void);

typedef struct HlcStatus
{
	Hlc			current;
	uint64		wall_us;
	Hlc			high_water_mark;
	uint64		backward_steps;
	uint64		refused_observations;
	uint64		drift_waits;
	int64		max_drift_us;	/* event_stats.hlc_max_drift */
} HlcStatus;

extern void hlc_clock_status(HlcStatus *status);
extern void hlc_clock_raise_persisted(Hlc ceiling);
extern Hlc	hlc_clock_last(void);
extern bool hlc_clock_usable(void);
extern void hlc_clock_require_usable(void);
extern void hlc_clock_log_prepared_hold(TransactionId xid, Hlc holds);
extern void hlc_clock_redo_prepared_hold(TransactionId xid, Hlc holds);
extern void hlc_clock_drop_finished_holds(void);
extern int	hlc_max_drift_ms;

/* a prepared transaction that took clock values: the horizon stays below */
typedef struct HlcPreparedHold
{
	TransactionId xid;
	Hlc			holds;			/* below every value it took */
} HlcPreparedHold;

/* hlc_persist.c */
#define HLC_STATE_FILE		"event_stats_hlc"

extern void hlc_persist_register_rmgr(void);
extern int	hlc_persist_count_holds(void);
extern bool hlc_persist_read(Hlc *ceiling, HlcPreparedHold *holds,
							 int *nholds, int maxholds);
extern void hlc_persist_write_state_file(Hlc ceiling, int elevel);
extern XLogRecPtr hlc_persist_window(Hlc ceiling);
extern void hlc_persist_prepared_hold(TransactionId xid, Hlc holds, Hlc ceiling);
extern void hlc_persist_wait_for_standbys(XLogRecPtr lsn);

/* hlc_horizon.c */
extern Size hlc_horizon_shmem_request(void);
extern void hlc_horizon_shmem_init(const HlcPreparedHold *holds, int nholds);
extern void hlc_horizon_register_hooks(void);
extern void hlc_horizon_pre_prepare(void);
extern void hlc_horizon_xact_end(bool parallel_worker);
extern bool hlc_horizon_hold(Hlc below);
extern void hlc_horizon_tighten(Hlc value);
extern bool hlc_horizon_held_here(Hlc *holds);
extern int	hlc_horizon_max_prepared(void);
extern int	hlc_horizon_copy_prepared(HlcPreparedHold *holds, int maxholds);
extern void hlc_horizon_add_prepared(TransactionId xid, Hlc holds);
extern int	hlc_horizon_prune_prepared(void);

typedef struct HlcHorizon
{
	Hlc			horizon;
	int			holder_pid;		/* 0: none, or a prepared transaction */
	TransactionId holder_xid;	/* the prepared transaction, if one */
} HlcHorizon;

extern void hlc_horizon_compute(HlcHorizon *result);

#endif							/* EVENT_STATS_H */
