/*-------------------------------------------------------------------------
 *
 * tracking.c
 *	  Exact row counts of tracked tables, kept at the commit of each
 *	  transaction from the tuple counts PostgreSQL already keeps.
 *
 * A tracked table T has a counter whose value is the number of rows of T:
 * the sum over T's *leaves* (T itself, or every partition or inheritance
 * child with storage below it) of their rows.  Nothing runs per row.
 * heapam already counts, per relation and per (sub)transaction, the tuples
 * a transaction inserted and deleted (pgstat's PgStat_TableXactStatus; a
 * rolled-back subtransaction's counts are removed, a TRUNCATE is noted).
 * At PRE_COMMIT / PRE_PREPARE, tracking_collect() turns the top-level
 * counts of every tracked leaf into one pending increment per counter,
 * which counter_pending.c then writes like any other increment
 * (xact_dispatch.c calls this file first).
 *
 * Those counts cannot say how many committed rows a leaf held when it
 * starts or stops counting toward a counter within the transaction:
 * TRUNCATE, DROP, ATTACH / DETACH PARTITION, INHERIT / NO INHERIT, and
 * track() itself.  For those a *leaf record* is made (by tracking_ddl.c and
 * by track()) while holding a lock that keeps every other writer out of the
 * leaf until commit, so the leaf's committed row count cannot change any
 * more.  The record keeps that count and the counters the leaf counted
 * toward before.  At commit, for each leaf L and counter X:
 *
 *	 delta(X) = [L counts toward X now]		* final(L)
 *			  - [L counted toward X before] * committed(L)
 *
 * where final(L) is what L holds when this transaction commits.  For a leaf
 * without a record this is simply inserted - deleted.
 *
 * tracked_tables (relid regclass, counter_id) is read and written only
 * here.  Backend-local state, none of it shared:
 *
 *	 the tracking cache (members, by_counter, leaves) in its own memory
 *	 context, built from tracked_tables and pg_inherits in the newest
 *	 snapshot.  The relcache callback only marks it stale; it is rebuilt on
 *	 next use.  Any invalidation of tracked_tables or of a relation in a
 *	 tracked tree (a partition attached, detached or dropped) makes it
 *	 stale.
 *
 *	 leaf_records, in TopTransactionContext: the current transaction's
 *	 records, each owned by the subtransaction level that made it; emptied
 *	 when the transaction ends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/pg_class.h"
#include "catalog/indexing.h"
#include "catalog/pg_inherits.h"
#include "common/int.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "event_stats.h"

/* The leading columns of a tracked_tables row, read in place. */
typedef struct TrackedRow
{
	Oid			relid;
	int32		counter_id;
} TrackedRow;

#define Natts_tracked			3

/* A relation in some tracked tree. */
typedef struct TrackedMember
{
	Oid			relid;			/* hash key */
	bool		is_leaf;		/* a table whose rows count */
	CounterId	tracked_by;		/* counter tracking this very table, or 0 */
	int			ncounters;		/* counters its rows count toward */
	CounterId  *counters;
} TrackedMember;

/* A tracking counter. */
typedef struct TrackedCounter
{
	CounterId	id;				/* hash key */
	Oid			relid;			/* the tracked table */
	int			nleaves;
} TrackedCounter;

typedef struct TrackingCache
{
	MemoryContext cxt;
	HTAB	   *members;
	HTAB	   *by_counter;
	TrackedMember **leaves;		/* the members with is_leaf, in members */
	int			nleaves;
} TrackingCache;

static TrackingCache cache;
static bool cache_valid = false;
static bool cache_callback_registered = false;
static Oid	cache_tracked_tables = InvalidOid;

/* bumped by every invalidation, so a build that raced one is redone */
static uint64 cache_generation = 0;

typedef struct LeafRecord
{
	Oid			relid;
	int			nest_level;		/* subtransaction level that made it */
	int64		committed;		/* committed rows of the leaf, fixed by lock */
	int			nbefore;		/* counters it counted toward before */
	CounterId  *before;
} LeafRecord;

static List *leaf_records = NIL;

static void
tracking_invalidate(Datum arg, Oid relid)
{
	if (!cache_valid)
		return;
	if (relid == InvalidOid || relid == cache_tracked_tables ||
		hash_search(cache.members, &relid, HASH_FIND, NULL) != NULL)
	{
		cache_valid = false;
		cache_generation++;
	}
}

/*
 * Every ancestor of relid, through every parent: partitions have one, but
 * a table of a legacy inheritance tree may have several (CREATE TABLE ...
 * INHERITS (a, b)), and each of them, and each of theirs, is an ancestor.
 * (get_partition_ancestors() follows the first parent only.)  Reads
 * pg_inherits with the catalog snapshot, like the rest of the cache.
 */
static List *
inheritance_ancestors(Oid relid)
{
	List	   *result = NIL;
	List	   *queue = list_make1_oid(relid);
	Relation	inherits = table_open(InheritsRelationId, AccessShareLock);

	while (queue != NIL)
	{
		Oid			child = linitial_oid(queue);
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tuple;

		queue = list_delete_first(queue);
		ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(child));
		scan = systable_beginscan(inherits, InheritsRelidSeqnoIndexId, true,
								  NULL, 1, &key);
		while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		{
			Oid			parent = ((Form_pg_inherits) GETSTRUCT(tuple))->inhparent;

			/* a diamond reaches an ancestor twice */
			if (!list_member_oid(result, parent))
			{
				result = lappend_oid(result, parent);
				queue = lappend_oid(queue, parent);
			}
		}
		systable_endscan(scan);
	}
	table_close(inherits, AccessShareLock);
	return result;
}

static TrackedMember *
cache_member(TrackingCache *c, Oid relid)
{
	bool		found;
	TrackedMember *m = hash_search(c->members, &relid, HASH_ENTER, &found);

	if (!found)
	{
		m->is_leaf = false;
		m->tracked_by = 0;
		m->ncounters = 0;
		m->counters = NULL;
	}
	return m;
}

static void
member_add_counter(TrackedMember *m, CounterId id)
{
	for (int i = 0; i < m->ncounters; i++)
		if (m->counters[i] == id)
			return;
	if (m->counters == NULL)
		m->counters = palloc(sizeof(CounterId));
	else
		m->counters = repalloc(m->counters, (m->ncounters + 1) * sizeof(CounterId));
	m->counters[m->ncounters++] = id;
}

/* Adds table relid, tracked by counter id, and every relation under it. */
static void
cache_add_tracked(TrackingCache *c, Oid relid, CounterId id)
{
	TrackedCounter *tc;
	List	   *tree;
	ListCell   *lc;

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		return;					/* dropped by a transaction still ending */

	tc = hash_search(c->by_counter, &id, HASH_ENTER, NULL);
	tc->relid = relid;
	tc->nleaves = 0;
	cache_member(c, relid)->tracked_by = id;

	tree = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, tree)
	{
		Oid			r = lfirst_oid(lc);
		TrackedMember *m = cache_member(c, r);

		if (get_rel_relkind(r) != RELKIND_RELATION)
			continue;
		m->is_leaf = true;
		member_add_counter(m, id);
		tc->nleaves++;
	}

	/* ancestors: writes routed through them land in our leaves */
	foreach(lc, inheritance_ancestors(relid))
		cache_member(c, lfirst_oid(lc));
}

static void
cache_collect_leaves(TrackingCache *c)
{
	HASH_SEQ_STATUS seq;
	TrackedMember *m;

	/* dynahash never moves an entry, so pointers to them stay valid */
	c->leaves = palloc((hash_get_num_entries(c->members) + 1) * sizeof(TrackedMember *));
	c->nleaves = 0;
	hash_seq_init(&seq, c->members);
	while ((m = hash_seq_search(&seq)) != NULL)
		if (m->is_leaf)
			c->leaves[c->nleaves++] = m;
}

static void
cache_build(TrackingCache *c, Oid tracked_tables)
{
	HASHCTL		ctl;
	Relation	rel;
	Snapshot	snapshot;
	TableScanDesc scan;
	HeapTuple	tuple;
	MemoryContext old;

	c->cxt = AllocSetContextCreate(CacheMemoryContext, "event_stats tracking",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(c->cxt);

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(TrackedMember);
	ctl.hcxt = c->cxt;
	c->members = hash_create("event_stats tracked relations", 16, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(CounterId);
	ctl.entrysize = sizeof(TrackedCounter);
	c->by_counter = hash_create("event_stats tracking counters", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	rel = table_open(tracked_tables, AccessShareLock);
	snapshot = store_catalog_snapshot();
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TrackedRow *row = (TrackedRow *) GETSTRUCT(tuple);

		cache_add_tracked(c, row->relid, row->counter_id);
	}
	table_endscan(scan);
	store_release_snapshot(snapshot);
	table_close(rel, AccessShareLock);

	cache_collect_leaves(c);
	MemoryContextSwitchTo(old);
}

/*
 * Makes the cache current.  Returns false when the extension is not
 * installed in this database (then there is nothing to track).
 */
static bool
tracking_cache_ensure(void)
{
	Oid			tracked_tables;

	if (cache_valid)
		return true;

	if (!cache_callback_registered)
	{
		CacheRegisterRelcacheCallback(tracking_invalidate, (Datum) 0);
		cache_callback_registered = true;
	}

	tracked_tables = store_tracked_tables_relid();
	if (!OidIsValid(tracked_tables))
		return false;

	for (;;)
	{
		uint64		generation = cache_generation;
		TrackingCache fresh;

		cache_build(&fresh, tracked_tables);
		if (generation != cache_generation)
		{
			/* an invalidation arrived while reading: read again */
			MemoryContextDelete(fresh.cxt);
			continue;
		}
		if (cache.cxt != NULL)
			MemoryContextDelete(cache.cxt);
		cache = fresh;
		cache_tracked_tables = tracked_tables;
		cache_valid = true;
		return true;
	}
}

static TrackedMember *
member_find(Oid relid)
{
	return hash_search(cache.members, &relid, HASH_FIND, NULL);
}

static TrackedCounter *
tracking_counter_find(CounterId id)
{
	return hash_search(cache.by_counter, &id, HASH_FIND, NULL);
}

bool
tracking_is_member(Oid relid)
{
	return tracking_cache_ensure() && member_find(relid) != NULL;
}

bool
tracking_is_leaf(Oid relid)
{
	TrackedMember *m;

	return tracking_cache_ensure() && (m = member_find(relid)) != NULL &&
		m->is_leaf;
}

/* The table counter id tracks, or InvalidOid if it tracks none. */
Oid
tracking_table_of(CounterId id)
{
	TrackedCounter *tc;

	if (!tracking_cache_ensure())
		return InvalidOid;
	tc = tracking_counter_find(id);
	return tc ? tc->relid : InvalidOid;
}

/* The counter tracking this very table, or 0. */
CounterId
tracking_counter_of(Oid relid)
{
	TrackedMember *m;

	if (!tracking_cache_ensure())
		return 0;
	m = member_find(relid);
	return m ? m->tracked_by : 0;
}

/*
 * The counters whose tracked table is relid or one of its ancestors,
 * nearest first.
 */
List *
tracking_counters_at_or_above(Oid relid)
{
	List	   *result = NIL;
	List	   *chain;
	ListCell   *lc;

	if (!tracking_cache_ensure())
		return NIL;
	chain = lcons_oid(relid, inheritance_ancestors(relid));
	foreach(lc, chain)
	{
		TrackedMember *m = member_find(lfirst_oid(lc));

		if (m != NULL && m->tracked_by != 0)
			result = lappend_int(result, m->tracked_by);
	}
	return result;
}

/* The counters leaf relid counts toward now. */
List *
tracking_counters_of_leaf(Oid relid)
{
	TrackedMember *m;
	List	   *result = NIL;

	if (!tracking_cache_ensure() || (m = member_find(relid)) == NULL)
		return NIL;
	for (int i = 0; i < m->ncounters; i++)
		result = lappend_int(result, m->counters[i]);
	return result;
}

/* ----------
 * Counting rows
 * ----------
 */

/*
 * This transaction's own rows in leaf relid, over every subtransaction
 * level still open: inserted - deleted, and whether it truncated the leaf
 * (then the sum is the rows it holds now, since levels inside the one that
 * truncated came later).  Returns false if it never wrote the leaf.
 */
static bool
leaf_own_counts(Oid relid, int64 *net, bool *truncated)
{
	PgStat_TableStatus *tab = find_tabstat_entry(relid);

	*net = 0;
	*truncated = false;
	if (tab == NULL || tab->trans == NULL)
		return false;
	for (PgStat_TableXactStatus *t = tab->trans; t != NULL; t = t->upper)
	{
		*net += t->tuples_inserted - t->tuples_deleted;
		if (t->truncdropped)
		{
			*truncated = true;
			break;
		}
	}
	return true;
}

/* Rows of relid visible to the newest snapshot, our own included. */
static int64
leaf_count_rows(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	Snapshot	snapshot = store_catalog_snapshot();
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	int64		rows = 0;

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		rows++;
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	store_release_snapshot(snapshot);
	table_close(rel, NoLock);
	return rows;
}

/*
 * The committed value of counter id in the newest snapshot.  Only
 * meaningful while every writer of its only leaf is locked out.
 */
static int64
counter_committed_value(CounterId id, bool *found)
{
	CounterDef	def;
	Snapshot	snapshot;
	int64		value;

	*found = store_lookup_by_id(id, NULL, &def);
	if (!*found)
		return 0;
	snapshot = store_catalog_snapshot();
	value = store_sum_shards(&def, snapshot, NULL);
	store_release_snapshot(snapshot);
	return value;
}

static void
report_uncountable_truncate(Oid relid)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot count the rows removed by truncating table \"%s\"",
					get_rel_name(relid)),
			 errdetail("The table belongs to a tracked table with other partitions or children, and it was truncated where event_stats could not count its rows first (for example by logical replication)."),
			 errhint("Truncate it with TRUNCATE, or call event_stats.untrack() and event_stats.track() again.")));
}

/* ----------
 * Leaf records
 * ----------
 */

static LeafRecord *
record_find(Oid relid)
{
	ListCell   *lc;

	foreach(lc, leaf_records)
	{
		LeafRecord *rec = lfirst(lc);

		if (rec->relid == relid)
			return rec;
	}
	return NULL;
}

/*
 * Records the committed row count of leaf relid, and the counters it
 * counted toward before this transaction changed its membership (before).
 * Takes a SHARE lock on the leaf, which keeps other writers out until the
 * end of the transaction, so the count stays true until commit.  When a
 * counter in before had relid as its only leaf (sole), its committed value
 * is the count and no scan is needed.
 *
 * The first record of a leaf in a transaction wins: a later one would
 * count this transaction's own earlier changes as committed.
 */
void
tracking_record_leaf(Oid relid, List *before, CounterId sole)
{
	LeafRecord *rec;
	int64		committed = 0;
	bool		known = false;
	ListCell   *lc;
	int			i = 0;
	MemoryContext old;

	if (record_find(relid) != NULL)
		return;

	LockRelationOid(relid, ShareLock);
	if (sole != 0)
		committed = counter_committed_value(sole, &known);
	if (!known)
	{
		int64		own;
		bool		truncated;

		(void) leaf_own_counts(relid, &own, &truncated);
		if (!truncated)
			committed = leaf_count_rows(relid) - own;
		else if (before != NIL)
			report_uncountable_truncate(relid);
		/* else: truncated already, and its old rows counted nowhere */
	}

	rec = MemoryContextAlloc(TopTransactionContext, sizeof(LeafRecord));
	rec->relid = relid;
	rec->nest_level = GetCurrentTransactionNestLevel();
	rec->committed = committed;
	rec->nbefore = list_length(before);
	rec->before = MemoryContextAlloc(TopTransactionContext,
									 (rec->nbefore + 1) * sizeof(CounterId));
	foreach(lc, before)
		rec->before[i++] = lfirst_int(lc);

	old = MemoryContextSwitchTo(TopTransactionContext);
	leaf_records = lappend(leaf_records, rec);
	MemoryContextSwitchTo(old);
}

static bool
record_counted_before(const LeafRecord *rec, CounterId id)
{
	for (int i = 0; i < rec->nbefore; i++)
		if (rec->before[i] == id)
			return true;
	return false;
}

/*
 * Does counter id's committed value still stand for the committed rows of
 * the leaves it covers now?  Not once this transaction has changed which
 * leaves it covers: the cache describes the tree as this transaction left
 * it, the committed value the tree as it was.  Every leaf that stops
 * counting toward a counter (DETACH, DROP, NO INHERIT, ...) is recorded
 * first, naming the counter, so a record naming it means its coverage
 * changed.  (A leaf that starts counting raises nleaves, which disables
 * the shortcut anyway.)
 */
static bool
counter_value_is_leaf_count(CounterId id)
{
	TrackedCounter *tc = tracking_counter_find(id);
	ListCell   *lc;

	if (tc == NULL || tc->nleaves != 1)
		return false;
	foreach(lc, leaf_records)
		if (record_counted_before(lfirst(lc), id))
			return false;
	return true;
}

/* A record for a leaf whose membership is about to change, from the cache. */
void
tracking_record_leaf_now(Oid relid)
{
	List	   *before = tracking_counters_of_leaf(relid);
	CounterId	sole = 0;
	ListCell   *lc;

	foreach(lc, before)
		if (counter_value_is_leaf_count(lfirst_int(lc)))
			sole = lfirst_int(lc);
	tracking_record_leaf(relid, before, sole);
}

/* ----------
 * This transaction's deltas
 * ----------
 */

/*
 * Where computed deltas go: at commit, into pending increments of every
 * counter; for value() inside the transaction, into one counter's sum.
 */
typedef struct DeltaSink
{
	CounterId	only;			/* 0: all counters, as pending increments */
	int64		sum;			/* the deltas of counter `only` */
	bool		checked;		/* `only` 0: the extension was locked */
	bool		discard;		/* ... and had been dropped meanwhile */
} DeltaSink;

/*
 * Before the first delta becomes a pending increment: lock the extension,
 * which waits for a DROP EXTENSION in progress, and make sure the cache
 * still describes the installed extension.  Writing rows to a tracked table
 * takes no lock of ours, so the extension may have been dropped (and
 * created again, with counter ids starting over) since the cache was
 * built; then the counters these deltas belonged to are gone, and the
 * deltas go with them.
 */
static bool
sink_discards(DeltaSink *sink)
{
	if (!sink->checked)
	{
		sink->checked = true;
		sink->discard = !store_is_installed() ||
			store_tracked_tables_relid() != cache_tracked_tables;
	}
	return sink->discard;
}

static void
sink_add(DeltaSink *sink, CounterId id, int64 delta)
{
	if (delta == 0)
		return;
	if (sink->only == 0)
	{
		if (!sink_discards(sink))
			pending_add_tracked(id, delta);
	}
	else if (id == sink->only &&
			 pg_add_s64_overflow(sink->sum, delta, &sink->sum))
		report_counter_overflow(get_rel_name(tracking_table_of(id)));
}

static void
collect_leaf(TrackedMember *m, DeltaSink *sink)
{
	int64		net;
	bool		truncated;

	if (!leaf_own_counts(m->relid, &net, &truncated))
		return;
	for (int i = 0; i < m->ncounters; i++)
	{
		CounterId	id = m->counters[i];
		int64		delta = net;

		if (truncated)
		{
			/* truncated where no record was made: only a sole leaf works */
			bool		found;
			int64		committed;

			if (!counter_value_is_leaf_count(id))
				report_uncountable_truncate(m->relid);
			committed = counter_committed_value(id, &found);
			if (pg_sub_s64_overflow(net, committed, &delta))
				delta = 0;		/* unreachable: both are row counts */
		}
		sink_add(sink, id, delta);
	}
}

static void
collect_record(LeafRecord *rec, DeltaSink *sink)
{
	TrackedMember *m = member_find(rec->relid);
	int64		net;
	bool		truncated;
	int64		final = rec->committed;

	if (leaf_own_counts(rec->relid, &net, &truncated))
		final = (truncated ? 0 : rec->committed) + net;

	if (m != NULL && m->is_leaf)
		for (int i = 0; i < m->ncounters; i++)
			sink_add(sink, m->counters[i], final -
					 (record_counted_before(rec, m->counters[i]) ? rec->committed : 0));

	for (int i = 0; i < rec->nbefore; i++)
	{
		bool		still = false;

		if (m != NULL && m->is_leaf)
			for (int j = 0; j < m->ncounters; j++)
				still |= (m->counters[j] == rec->before[i]);
		if (!still)
			sink_add(sink, rec->before[i], -rec->committed);
	}
}

static void
collect_all(DeltaSink *sink)
{
	ListCell   *lc;

	for (int i = 0; i < cache.nleaves; i++)
	{
		if (record_find(cache.leaves[i]->relid) == NULL)
			collect_leaf(cache.leaves[i], sink);
	}
	foreach(lc, leaf_records)
		collect_record(lfirst(lc), sink);
}

/*
 * What this transaction would add to tracking counter id if it committed
 * now, so that value() inside it equals its own count(*).
 */
int64
tracking_own_delta(CounterId id)
{
	DeltaSink	sink = {.only = id};

	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()) ||
		!tracking_cache_ensure() || tracking_counter_find(id) == NULL)
		return 0;
	collect_all(&sink);
	return sink.sum;
}

/*
 * With track_counts off heapam counts nothing, and a write to a tracked
 * table would go unseen.  tracking_ddl.c refuses such writes statement by
 * statement; this catches any path that bypasses the executor.
 */
static void
refuse_uncounted_writes(void)
{
	for (int i = 0; i < cache.nleaves; i++)
	{
		LOCKTAG		tag;

		SET_LOCKTAG_RELATION(tag, MyDatabaseId, cache.leaves[i]->relid);
		if (LockHeldByMe(&tag, RowExclusiveLock))
			tracking_report_counts_off(cache.leaves[i]->relid);
	}
}

void
tracking_report_counts_off(Oid relid)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot write to tracked table \"%s\" while track_counts is off",
					get_rel_name(relid)),
			 errdetail("event_stats counts the rows of tracked tables from the statistics counters that track_counts enables."),
			 errhint("Set track_counts to on.")));
}

/*
 * At PRE_COMMIT / PRE_PREPARE, before the pending increments are written:
 * adds each tracked leaf's change to its counters.
 */
void
tracking_collect(void)
{
	DeltaSink	sink = {0};

	/* a transaction without an xid wrote no rows and made no records */
	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;
	if (!tracking_cache_ensure())
		return;
	if (cache.nleaves == 0 && leaf_records == NIL)
		return;
	if (!pgstat_track_counts)
		refuse_uncounted_writes();
	collect_all(&sink);
}

/* At the end of the transaction: the records went with its memory. */
void
tracking_xact_end(void)
{
	leaf_records = NIL;
}

/* At the end of subtransaction level: its records fold or go. */
void
tracking_subxact_end(int level, bool commit)
{
	ListCell   *lc;

	foreach(lc, leaf_records)
	{
		LeafRecord *rec = lfirst(lc);

		if (rec->nest_level != level)
			continue;
		if (commit)
			rec->nest_level = level - 1;
		else
			leaf_records = foreach_delete_current(leaf_records, lc);
	}
}

/* ----------
 * tracked_tables
 * ----------
 */

static void
tracked_tables_insert(Oid relid, CounterId id, const char *name)
{
	Relation	rel = table_open(store_tracked_tables_relid(), RowExclusiveLock);
	Datum		values[Natts_tracked];
	bool		isnull[Natts_tracked] = {false};

	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int32GetDatum(id);
	values[2] = CStringGetTextDatum(name);
	store_insert_tuple(rel, heap_form_tuple(RelationGetDescr(rel), values, isnull));
	CacheInvalidateRelcache(rel);
	table_close(rel, RowExclusiveLock);
	CommandCounterIncrement();
}

static void
tracked_tables_delete(Oid relid)
{
	Relation	rel = table_open(store_tracked_tables_relid(), RowExclusiveLock);
	Snapshot	snapshot = store_catalog_snapshot();
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	HeapTuple	tuple;

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
		if (((TrackedRow *) GETSTRUCT(tuple))->relid == relid)
			simple_heap_delete(rel, &tuple->t_self);
	table_endscan(scan);
	store_release_snapshot(snapshot);
	CacheInvalidateRelcache(rel);
	table_close(rel, RowExclusiveLock);
	CommandCounterIncrement();
}

/* ----------
 * track / untrack
 * ----------
 */

static void
check_trackable(Relation rel)
{
	char		relkind = rel->rd_rel->relkind;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot track \"%s\"", RelationGetRelationName(rel)),
				 errdetail_relkind_not_supported(relkind)));
	if (IsCatalogRelation(rel) ||
		rel->rd_rel->relnamespace == get_rel_namespace(store_tracked_tables_relid()))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot track system table \"%s\"",
						RelationGetRelationName(rel))));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot track temporary table \"%s\"",
						RelationGetRelationName(rel))));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot track unlogged table \"%s\"",
						RelationGetRelationName(rel)),
				 errdetail("Crash recovery empties unlogged tables, and their counter would keep its value.")));
	if (!pg_class_ownercheck(RelationGetRelid(rel), GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER,
					   get_relkind_objtype(relkind), RelationGetRelationName(rel));
}

/*
 * Every relation of tree, which joins tracked table relid's tree (its
 * nearest tracked ancestor, the one the errors name), or which relid's
 * track() would count, must be a permanent table whose rows we see: a foreign table's rows never pass through our heap, an unlogged
 * one's vanish in crash recovery, a temporary one's are invisible to other
 * sessions' count(*).
 */
void
tracking_check_tree(Oid relid, List *tree)
{
	ListCell   *lc;

	foreach(lc, tree)
	{
		Oid			member = lfirst_oid(lc);
		char		relkind = get_rel_relkind(member);

		if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot count the rows of \"%s\" in tracked table \"%s\"",
							get_rel_name(member), get_rel_name(relid)),
					 errdetail_relkind_not_supported(relkind)));
		if (get_rel_persistence(member) != RELPERSISTENCE_PERMANENT)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot count the rows of \"%s\" in tracked table \"%s\"",
							get_rel_name(member), get_rel_name(relid)),
					 errdetail("Only permanent tables can be counted: not temporary or unlogged ones.")));
	}
}

static char *
default_counter_name(Relation rel)
{
	return psprintf("%s.%s",
					get_namespace_name(RelationGetNamespace(rel)),
					RelationGetRelationName(rel));
}

/*
 * Starts tracking relid under a new counter.  SHARE ROW EXCLUSIVE on the
 * table and its tree waits for writers in progress and keeps new ones out
 * until commit, so the rows counted now are exactly the rows committed
 * before the counter starts receiving increments.
 */
CounterId
tracking_track(Oid relid, const char *name)
{
	Relation	rel;
	List	   *tree;
	ListCell   *lc;
	CounterId	id;
	char	   *counter_name;

	if (!pgstat_track_counts)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot track tables while track_counts is off"),
				 errhint("Set track_counts to on.")));

	rel = table_open(relid, ShareRowExclusiveLock);
	check_trackable(rel);
	tree = find_all_inheritors(relid, ShareRowExclusiveLock, NULL);
	tracking_check_tree(relid, tree);
	counter_name = name ? pstrdup(name) : default_counter_name(rel);
	table_close(rel, NoLock);

	if ((id = tracking_counter_of(relid)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table \"%s\" is already tracked", get_rel_name(relid))));

	foreach(lc, tree)
		if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_RELATION)
			tracking_record_leaf_now(lfirst_oid(lc));

	counter_check_name(counter_name);
	id = store_create(counter_name, store_max_shards());
	tracked_tables_insert(relid, id, counter_name);
	return id;
}

/*
 * Stops tracking relid and drops its counter.  Like track(), it keeps
 * writers out until commit (SHARE ROW EXCLUSIVE on the table and its tree):
 * dropping the counter locks its shard rows, and a writer that still saw
 * the table tracked would otherwise wait on them at its commit, or
 * deadlock with this transaction.
 */
void
tracking_untrack(Oid relid)
{
	Relation	rel = table_open(relid, ShareRowExclusiveLock);
	CounterId	id;

	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER,
					   get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
	table_close(rel, NoLock);
	(void) find_all_inheritors(relid, ShareRowExclusiveLock, NULL);

	id = tracking_counter_of(relid);
	if (id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table \"%s\" is not tracked", get_rel_name(relid))));
	tracked_tables_delete(relid);
	store_drop(id, false);
}

/*
 * After rows were loaded into tracked_tables (pg_restore; nothing else may
 * write it): a row whose counter does not exist names a table to track
 * again, under the same counter name, counting its rows as they are now.
 * Rows of the table restored later are counted by their own commits.
 */
void
tracking_restore(void)
{
	Relation	rel = table_open(store_tracked_tables_relid(), AccessShareLock);
	Snapshot	snapshot = store_catalog_snapshot();
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	HeapTuple	tuple;
	List	   *relids = NIL;
	List	   *names = NIL;
	ListCell   *lc1,
			   *lc2;

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TrackedRow *row = (TrackedRow *) GETSTRUCT(tuple);
		CounterDef	def;
		bool		isnull;

		if (store_lookup_by_id(row->counter_id, NULL, &def))
			continue;
		relids = lappend_oid(relids, row->relid);
		names = lappend(names, TextDatumGetCString(heap_getattr(tuple, 3,
																RelationGetDescr(rel),
																&isnull)));
	}
	table_endscan(scan);
	store_release_snapshot(snapshot);
	table_close(rel, AccessShareLock);

	forboth(lc1, relids, lc2, names)
	{
		tracked_tables_delete(lfirst_oid(lc1));
		tracking_track(lfirst_oid(lc1), lfirst(lc2));
	}
}

/*
 * DROP of a tracked table: the tracking and its counter go with it.  Our
 * own tables may already be gone when DROP EXTENSION ... CASCADE drops a
 * tracked table, and then there is nothing left to clean up.
 */
void
tracking_forget_dropped(Oid relid, CounterId id)
{
	Oid			tracked_tables = store_tracked_tables_relid();

	if (!OidIsValid(tracked_tables) ||
		!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(tracked_tables)))
		return;
	tracked_tables_delete(relid);
	store_drop(id, true);
}

/* Manual changes would break the equality with count(*). */
void
tracking_refuse_manual_change(CounterId id, const char *function)
{
	Oid			relid = tracking_table_of(id);

	if (OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot call %s on a counter that tracks table \"%s\"",
						function, get_rel_name(relid)),
				 errdetail("The counter is kept equal to the table's row count."),
				 errhint("Use event_stats.untrack() to stop tracking the table.")));
}

/* A tracked table's row count is readable by those who may count its rows. */
typedef enum TrackedReadDenial
{
	TRACKED_READ_OK,
	TRACKED_READ_NO_PRIVILEGE,
	TRACKED_READ_RLS
} TrackedReadDenial;

static TrackedReadDenial
tracking_read_denial(Oid relid)
{
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT,
								  ACLMASK_ANY) != ACLCHECK_OK)
		return TRACKED_READ_NO_PRIVILEGE;
	/* the count covers every row; row-level security would hide some */
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return TRACKED_READ_RLS;
	return TRACKED_READ_OK;
}

/* May the current role read this counter, as far as tracking is concerned? */
bool
tracking_may_read(CounterId id)
{
	Oid			relid = tracking_table_of(id);

	return !OidIsValid(relid) || tracking_read_denial(relid) == TRACKED_READ_OK;
}

void
tracking_check_read(CounterId id)
{
	Oid			relid = tracking_table_of(id);

	if (!OidIsValid(relid))
		return;
	switch (tracking_read_denial(relid))
	{
		case TRACKED_READ_OK:
			break;
		case TRACKED_READ_NO_PRIVILEGE:
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));
			break;
		case TRACKED_READ_RLS:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot read the row count of table \"%s\" under row-level security",
							get_rel_name(relid)),
					 errdetail("The counter counts every row, including rows the policies hide from you.")));
	}
}
