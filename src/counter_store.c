/*-------------------------------------------------------------------------
 *
 * counter_store.c
 *	  The state tables of sharded counters, read and written by direct heap
 *	  access.
 *
 * Two ordinary tables in schema event_stats hold all durable counter state,
 * so it is WAL-logged, crash-safe, replicated and dumped like any table:
 *
 *	 counter_definitions (id, name, shards, owner, acl)
 *	 counter_shards      (counter_id, shard, value)
 *
 * A counter's value is the sum of its shard rows.  A counter has at most
 * `shards` rows (numbered 0 .. shards - 1), but a row exists only once
 * something was written to it: create_counter() inserts the definition
 * alone, and a counter never written has no rows and the value 0.  Shard 0
 * is the counter's base row, where set() and compaction put what they
 * fold.  Shard rows are written only here, and only in four ways:
 *
 *	 - store_add_to_shards(), once per counter at the commit (or PREPARE) of a
 *	   transaction that incremented it.  It writes one shard row, preferring
 *	   the row numbered after this backend's BackendId.  A row whose newest
 *	   version is being written (or inserted) by another transaction is
 *	   skipped, not waited for (heap_update with wait = false), and the next
 *	   row is tried; only when every shard is busy does it wait, on its
 *	   preferred one.  With the default of one shard per possible backend,
 *	   two live transactions never prefer the same row, so commits never
 *	   queue on a row lock.  A row that does not exist yet is created
 *	   (shard_create), under the lock protocol below.
 *
 *	 - store_reset_shards() for set(), at commit: the base row takes the
 *	   value (created if need be) and every other row is deleted, waiting
 *	   for in-flight writers.  Increments that commit after it create rows
 *	   again, or find the base row, and add to them, so none is lost.
 *
 *	 - store_drop(): every row is deleted.
 *
 *	 - store_compact_counter(), for the compaction worker: the rows nobody
 *	   has written for a while are deleted and their sum added to the base
 *	   row, in one transaction, without ever waiting.
 *
 * Heavyweight locks, all on objects of no catalog (LOCKTAG_OBJECT with the
 * OID of one of our tables as class), always taken in this order:
 *
 *	 - the definition lock, (counter_definitions, counter id, 0): changes of
 *	   the definition row (drop, owner, privileges) hold it in
 *	   ShareUpdateExclusiveLock mode to the end of their transaction
 *	   (store_lock_definition).  Whoever must know that the counter still
 *	   exists takes it in ShareLock mode just for the moment of reading the
 *	   definition (counter_lock_if_defined), which is how that read can be
 *	   non-MVCC, hence free of SSI predicate locks, and still exact.
 *
 *	 - the counter lock, (counter_shards, counter id, 0): a creator of a
 *	   shard row takes it in RowExclusiveLock mode, which does not conflict
 *	   with itself, for as long as its insertion takes; set() and drop take
 *	   it in ShareRowExclusiveLock mode, which conflicts with creators and
 *	   with itself, to the end of their transaction, before they list the
 *	   rows; compaction takes it in ShareUpdateExclusiveLock mode,
 *	   conditionally, which keeps set(), drop and other compactions out but
 *	   not creators.  So set() lists every row inserted before it, committed
 *	   or not (from its index entry), and overwrites or deletes it once its
 *	   inserter has committed; a creator that comes later waits for set()'s
 *	   commit and adds on top.  Without it, an increment could create a row
 *	   after set()'s scan yet commit before set() and survive it.  For drop,
 *	   the same order means the rows of earlier creators are deleted and
 *	   later creators, once set free, find the counter gone and create
 *	   nothing.  Only creation takes it; updates of existing rows never do.
 *	   It is not kept to the end of the creator's transaction: a commit may
 *	   create rows for a hundred thousand counters, and the lock table has
 *	   room for a few thousand locks per backend.
 *
 *	 - the creation lock of the row, (counter_shards, counter id, 1 +
 *	   shard): taken conditionally after the counter lock (held by someone
 *	   else: the row is busy, try the next), and released right after the
 *	   heap and index insertion, before the end of the transaction (so a
 *	   prepared transaction never keeps it).  Under it the row is looked up
 *	   again, and inserted only if absent: two transactions never insert
 *	   the same (counter, shard).  After its release, a dirty snapshot shows
 *	   the insertion in progress, which others treat as a busy row, until
 *	   the creator commits or aborts (COMMIT/ROLLBACK PREPARED for a
 *	   prepared one).
 *
 *	 set() holds the counter lock in a mode that keeps every creator out,
 *	 so it can itself create shard 0 without waiting.  Counters are written
 *	 in id order at commit, so the waits of two committing transactions
 *	 cannot form a cycle.
 *
 * Writers always act on the newest version of a row, found with a dirty
 * snapshot rather than the transaction snapshot (see shard_fetch_latest),
 * and retry when it was replaced under them; set(), drop and compaction
 * list a counter's rows from the primary key's entries (shards_listed).
 * None of these reads is MVCC, so none takes an SSI predicate lock: REPEATABLE
 * READ and SERIALIZABLE writers never fail on our bookkeeping, and pay SSI
 * only for what they read themselves (value()).  The price is that writes
 * go through heap_update directly, so index entries for non-HOT updates
 * are inserted here too.
 *
 * Readers (store_sum_shards) use the caller's MVCC snapshot, so a value is
 * exactly the sum of the increments committed before that snapshot.
 *
 * Layout.  Since 1.1 rows are dense (no padding) and the table has
 * fillfactor 50, leaving room on each page for the HOT versions of its
 * rows.  A backend inserts its rows where its relation target block points
 * (the page it inserted into last), so the rows one backend writes sit
 * together, apart from other backends' rows.  A 1.0 installation keeps its
 * layout -- each row padded (filler, fillfactor 10) onto a page of its own
 * -- until ALTER EXTENSION event_stats UPDATE: new rows get the filler
 * while the column lives (shard_tuple), and compaction leaves it alone.
 *
 * Which tables: only members of the installed extension (pg_depend), of
 * the layout this file reads, are ever opened (store_fill_oids).  The
 * library runs in every backend of every database, and anyone allowed to
 * create a schema can make one called event_stats with tables of our names
 * in a database without the extension; those are never read.
 *
 * DROP EXTENSION: the first use of our tables in a transaction takes a
 * share lock on the extension itself, held to the end of the transaction
 * (store_lookup_oids).  DROP EXTENSION, which locks the extension
 * exclusively before it drops anything, therefore waits for transactions
 * with queued increments, prepared ones included, and for readers.
 *
 * Backend-local caches, none of them shared, all owned by this file:
 *
 *	 store_oids		OIDs of our tables, indexes and sequence, and of the
 *					extension; with ext_locked / ext_locked_lxid, the
 *					extension this backend locked and in which transaction;
 *	 def_cache		definitions by id and by name, the way syscache keeps
 *					catalog rows: create and drop send a relcache
 *					invalidation of counter_definitions at commit, and any
 *					invalidation of our relations empties both caches;
 *	 shard_hints	per counter, the shard and TID this backend last wrote,
 *					so the next commit can go straight to the row instead of
 *					descending the index.  A hint is only a guess: it is
 *					checked (visible, same key) before use, and a stale one
 *					falls back to the index.
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
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/sequence.h"
#include "common/int.h"
#include "common/int128.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "event_stats.h"

#define ES_SCHEMA				"event_stats"

/* counter_definitions */
#define Natts_def				5
#define Anum_def_id				1
#define Anum_def_name			2
#define Anum_def_shards			3
#define Anum_def_owner			4
#define Anum_def_acl			5

/* counter_shards; 1.0 has a fourth column, the filler (see shard_tuple) */
#define Natts_shard				3
#define Anum_shard_counter		1
#define Anum_shard_shard		2
#define Anum_shard_value		3
#define Anum_shard_filler		4

/* tracked_tables (its rows are read by tracking.c) */
#define Natts_tracked			3

/* char(n) length of the filler column; see the install script */
#define SHARD_FILLER_LEN		380

/*
 * The leading, fixed-width, NOT NULL columns of counter_shards, as laid out
 * in a heap tuple, so that a shard row can be read and changed in place the
 * way catalog code uses GETSTRUCT.
 */
typedef struct ShardRow
{
	int32		counter_id;
	int32		shard;
	int64		value;
} ShardRow;

#define SHARD_ROW(tuple)		((ShardRow *) GETSTRUCT(tuple))

typedef struct StoreOids
{
	Oid			ext;			/* the pg_extension row */
	Oid			defs;
	Oid			defs_id_idx;
	Oid			defs_name_idx;
	Oid			defs_id_seq;
	Oid			shards;
	Oid			shards_idx;
	Oid			tracked;		/* tracked_tables, owned by tracking.c */
} StoreOids;

static StoreOids store_oids;
static bool store_oids_valid = false;
static bool store_callback_registered = false;

/* the extension this backend locked, and in which transaction */
static Oid	ext_locked = InvalidOid;
static LocalTransactionId ext_locked_lxid = InvalidLocalTransactionId;

typedef struct DefByName
{
	char		name[NAMEDATALEN];	/* hash key */
	CounterDef	def;
} DefByName;

typedef struct DefById
{
	CounterId	id;				/* hash key */
	CounterDef	def;
} DefById;

typedef struct ShardHint
{
	CounterId	id;				/* hash key */
	int32		shard;
	ItemPointerData tid;
} ShardHint;

static MemoryContext def_cache_cxt = NULL;	/* both hashes and their ACLs */
static HTAB *defs_by_name = NULL;
static HTAB *defs_by_id = NULL;
static HTAB *shard_hints = NULL;

/*
 * Bumped by every invalidation that empties the caches.  A lookup caches
 * its result only if no invalidation arrived while it ran: its snapshot may
 * predate a drop whose invalidation was processed when it opened a
 * relation.
 */
static uint64 store_cache_generation = 0;

/* prune a shard's page once it has room for fewer new versions than this */
#define SHARD_PRUNE_ROOM_VERSIONS	3

/*
 * Modes of the counter lock (see the file header): creators of shard rows
 * take the first, which does not conflict with itself; set() and drop take
 * the second, which conflicts with the first and with itself.
 */
#define COUNTER_LOCK_CREATE		RowExclusiveLock
#define COUNTER_LOCK_REWRITE	ShareRowExclusiveLock
#define COUNTER_LOCK_COMPACT	ShareUpdateExclusiveLock

typedef enum ShardWrite
{
	SHARD_WRITTEN,				/* the row now carries our change */
	SHARD_BUSY,					/* another transaction is writing it */
	SHARD_GONE,					/* the counter was dropped */
	SHARD_RETRY					/* the row exists after all: look again */
} ShardWrite;

typedef enum ShardOp
{
	SHARD_OP_ADD,
	SHARD_OP_ASSIGN,
	SHARD_OP_DELETE
} ShardOp;

static HTAB *
local_hash(const char *name, Size keysize, Size entrysize, int flags,
		   MemoryContext cxt)
{
	HASHCTL		ctl;

	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = cxt;
	return hash_create(name, 64, &ctl, HASH_ELEM | HASH_CONTEXT | flags);
}

static void
store_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid ||
		relid == store_oids.defs || relid == store_oids.shards ||
		relid == store_oids.defs_id_idx || relid == store_oids.defs_name_idx ||
		relid == store_oids.shards_idx || relid == store_oids.tracked)
	{
		store_oids_valid = false;
		store_cache_generation++;
		if (def_cache_cxt != NULL)
		{
			MemoryContextDelete(def_cache_cxt);
			def_cache_cxt = NULL;
			defs_by_name = defs_by_id = NULL;
		}
		/* a rewritten or recreated table makes every remembered TID wrong */
		if (shard_hints != NULL)
		{
			hash_destroy(shard_hints);
			shard_hints = NULL;
		}
	}
}

/*
 * A table or sequence of ours: found by name in the extension's schema, and
 * accepted only if pg_depend records it as a member of the extension.  A
 * relation someone else made there, under our name, is refused.
 */
static Oid
store_member_relid(Oid ext, Oid nsp, const char *relname)
{
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		return InvalidOid;
	if (getExtensionOfObject(RelationRelationId, relid) != ext)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("relation \"%s.%s\" is not a member of extension event_stats",
						ES_SCHEMA, relname),
				 errhint("Drop the relation; only CREATE EXTENSION event_stats may create it.")));
	return relid;
}

/* An index of ours: accepted only if it is an index of our table. */
static Oid
store_index_relid(Oid nsp, const char *relname, Oid table)
{
	Oid			relid = get_relname_relid(relname, nsp);

	if (OidIsValid(relid) && IndexGetRelation(relid, true) != table)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("relation \"%s.%s\" is not an index of extension event_stats",
						ES_SCHEMA, relname)));
	return relid;
}

/*
 * The C code reads our tables' tuples in place (GETSTRUCT) and deforms them
 * with fixed expectations: refuse a table of any other shape, whoever made
 * it, rather than misread it.
 */
static void
store_check_layout(Oid relid, const char *relname, int natts, const Oid *types,
				   AttrNumber nullable, bool filler_allowed)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	bool		ok = desc->natts == natts;

	/*
	 * counter_shards may carry the 1.0 filler after its columns: live in a
	 * 1.0 installation, dropped in one updated to 1.1 (shard_tuple).
	 */
	if (filler_allowed && desc->natts == natts + 1)
	{
		Form_pg_attribute att = TupleDescAttr(desc, natts);

		ok = att->attisdropped ||
			(att->atttypid == BPCHAROID && att->attnotnull);
	}

	for (int i = 0; ok && i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		ok = att->atttypid == types[i] && !att->attisdropped &&
			(att->attnotnull || att->attnum == nullable);
	}
	table_close(rel, AccessShareLock);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s.%s\" does not have the layout event_stats expects",
						ES_SCHEMA, relname),
				 errdetail("This library reads the layouts of versions 1.0 and 1.1."),
				 errhint("If the server still runs an older event_stats library, restart it; compare the table with the extension's install script before changing anything, since dropping the extension drops every counter.")));
}

/*
 * The installed extension, or InvalidOid.  "Installed" means pg_extension
 * has event_stats; then every relation read must be one of its members
 * (store_fill_oids): a schema or tables of our names without the extension
 * -- anyone who may create a schema can make them -- are never read.  The
 * cheap syscache probe for the schema comes first, so that databases
 * without it pay nothing more at each commit.
 */
static Oid
store_find_extension(void)
{
	if (!OidIsValid(get_namespace_oid(ES_SCHEMA, true)))
		return InvalidOid;
	return get_extension_oid(ES_SCHEMA, true);
}

/*
 * Fills store_oids with the relations of extension ext, which the caller
 * has locked.  False when they are not all there: the DROP EXTENSION
 * running in this transaction has dropped some.  (The control file fixes
 * the extension's schema to event_stats.)
 */
static bool
store_fill_oids(Oid ext)
{
	/* types; the ACL alone may be NULL (default privileges) */
	static const Oid def_types[Natts_def] =
	{INT4OID, TEXTOID, INT4OID, REGROLEOID, ACLITEMARRAYOID};
	static const Oid shard_types[Natts_shard] = {INT4OID, INT4OID, INT8OID};
	static const Oid tracked_types[Natts_tracked] = {REGCLASSOID, INT4OID, TEXTOID};
	Oid			nsp = get_namespace_oid(ES_SCHEMA, true);
	StoreOids	o;

	if (!OidIsValid(nsp))
		return false;
	o.ext = ext;
	o.defs = store_member_relid(ext, nsp, "counter_definitions");
	o.defs_id_seq = store_member_relid(ext, nsp, "counter_definitions_id_seq");
	o.shards = store_member_relid(ext, nsp, "counter_shards");
	o.tracked = store_member_relid(ext, nsp, "tracked_tables");
	if (!OidIsValid(o.defs) || !OidIsValid(o.defs_id_seq) ||
		!OidIsValid(o.shards) || !OidIsValid(o.tracked))
		return false;
	o.defs_id_idx = store_index_relid(nsp, "counter_definitions_pkey", o.defs);
	o.defs_name_idx = store_index_relid(nsp, "counter_definitions_name_key", o.defs);
	o.shards_idx = store_index_relid(nsp, "counter_shards_pkey", o.shards);
	if (!OidIsValid(o.defs_id_idx) || !OidIsValid(o.defs_name_idx) ||
		!OidIsValid(o.shards_idx))
		return false;

	store_check_layout(o.defs, "counter_definitions", Natts_def, def_types,
					   Anum_def_acl, false);
	store_check_layout(o.shards, "counter_shards", Natts_shard, shard_types, 0,
					   true);
	store_check_layout(o.tracked, "tracked_tables", Natts_tracked, tracked_types,
					   0, false);

	store_oids = o;
	store_oids_valid = true;
	return true;
}

/*
 * The OIDs of our relations, looked up once and cached.  With missing_ok,
 * returns NULL instead of raising an error when the extension is not (or no
 * longer) installed in this database.
 *
 * The first use in a transaction also locks the extension (AccessShareLock
 * on its pg_extension object, which DROP EXTENSION locks exclusively before
 * anything else), and holds the lock until the transaction ends.  So DROP
 * EXTENSION waits for every transaction, prepared ones included, that read
 * or queued changes to counters, instead of pulling the tables from under
 * its commit; and since everyone takes this lock before opening any of our
 * relations, waiting for it cannot deadlock with the drop.  Taking the
 * lock processes invalidations, which empty store_oids if the extension
 * was dropped meanwhile, so everything is looked at again afterwards.
 */
static const StoreOids *
store_lookup_oids(bool missing_ok)
{
	if (!store_callback_registered)
	{
		CacheRegisterRelcacheCallback(store_invalidate, (Datum) 0);
		store_callback_registered = true;
	}

	for (;;)
	{
		Oid			ext;
		bool		locked;

		ext = store_oids_valid ? store_oids.ext : store_find_extension();
		locked = OidIsValid(ext) && ext == ext_locked &&
			ext_locked_lxid == MyProc->lxid;
		if (locked && store_oids_valid)
			return &store_oids;
		if (OidIsValid(ext) && !locked)
		{
			LockDatabaseObject(ExtensionRelationId, ext, 0, AccessShareLock);
			ext_locked = ext;
			ext_locked_lxid = MyProc->lxid;
			continue;
		}
		if (OidIsValid(ext) && store_fill_oids(ext))
			return &store_oids;

		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension event_stats is not installed in database \"%s\"",
						get_database_name(MyDatabaseId)),
				 errhint("Run CREATE EXTENSION event_stats.")));
	}
}

static const StoreOids *
store_get_oids(void)
{
	return store_lookup_oids(false);
}

/* Raises the "not installed" error unless the extension is installed. */
void
store_require_installed(void)
{
	(void) store_get_oids();
}

/*
 * false once the extension's tables are gone, e.g. after DROP EXTENSION
 * earlier in the committing transaction: its pending changes go with them.
 */
bool
store_is_installed(void)
{
	return store_lookup_oids(true) != NULL;
}

/*
 * OID of event_stats.tracked_tables, or InvalidOid when the extension is not
 * installed in this database.
 */
Oid
store_tracked_tables_relid(void)
{
	const StoreOids *oids = store_lookup_oids(true);

	return oids ? oids->tracked : InvalidOid;
}

/* The one error for a counter value beyond int8, wherever it is detected. */
void
report_counter_overflow(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("value of counter \"%s\" is out of range for type bigint",
					name)));
}

/*
 * Upper bound for a counter's shard count, and its default: one shard for
 * every backend that can exist in this server.
 */
int32
store_max_shards(void)
{
	return MaxBackends;
}

/* ----------
 * Index maintenance for tuples written with heap_insert / heap_update.
 *
 * Our indexes are on plain columns only (see the install script), so the
 * index values are the heap attributes themselves.
 * ----------
 */
/*
 * update: the tuple is a new version with unchanged key columns.  check:
 * how unique indexes check (UNIQUE_CHECK_YES raises on a duplicate;
 * UNIQUE_CHECK_PARTIAL reports it).  Returns false if a unique index
 * reported a possible duplicate.
 */
static bool
insert_index_entries(Relation heap, HeapTuple tuple, bool update,
					 IndexUniqueCheck check)
{
	List	   *indexes = RelationGetIndexList(heap);
	ListCell   *lc;
	bool		unique = true;

	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo  *info = BuildIndexInfo(index);
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];
		bool		is_unique = index->rd_index->indisunique;

		Assert(info->ii_Expressions == NIL && info->ii_Predicate == NIL);
		for (int i = 0; i < info->ii_NumIndexAttrs; i++)
			values[i] = heap_getattr(tuple, info->ii_IndexAttrNumbers[i],
									 RelationGetDescr(heap), &isnull[i]);

		if (!index_insert(index, values, isnull, &tuple->t_self, heap,
						  is_unique ? check : UNIQUE_CHECK_NO, update, info) &&
			is_unique)
			unique = false;
		index_close(index, RowExclusiveLock);
	}
	list_free(indexes);
	return unique;
}

void
store_insert_tuple(Relation rel, HeapTuple tuple)
{
	simple_heap_insert(rel, tuple);
	insert_index_entries(rel, tuple, false, UNIQUE_CHECK_YES);
}

/*
 * A snapshot of the newest committed state (plus this transaction's own
 * changes), for the catalog-like reads of our tables: definitions by name
 * or id, the tracking cache, and the scans DDL bookkeeping makes under a
 * lock that keeps writers out.  Release it with store_release_snapshot().
 *
 * - In a SERIALIZABLE transaction: SnapshotSelf.  An MVCC read of our
 *   tables there takes SSI predicate locks and checks for conflicts out, so
 *   two transactions that each dropped a tracked table (or one that tracked
 *   a new one) failed with 40001 on our bookkeeping, where PostgreSQL alone
 *   commits both: its own catalogs are exempt from predicate locking.
 *   SnapshotSelf sees the same rows, committed ones and this transaction's,
 *   except while a concurrent commit is changing them; callers either take
 *   a miss as a reason to look again (def_lookup) or are rebuilt by the
 *   invalidation that commit sends (the tracking cache), and the DDL scans
 *   run while writers are locked out.
 * - In parallel mode, where GetLatestSnapshot() refuses to run (a query
 *   with value() in its target list runs it in the leader of a parallel
 *   plan): the catalog snapshot, taken afresh, the same thing by another
 *   door (PostgreSQL's own catalog lookups use it in parallel mode).
 * - Otherwise: the latest MVCC snapshot.
 */
Snapshot
store_catalog_snapshot(void)
{
	if (IsolationIsSerializable())
		return SnapshotSelf;
	if (!IsInParallelMode())
		return RegisterSnapshot(GetLatestSnapshot());
	InvalidateCatalogSnapshot();
	return RegisterSnapshot(GetCatalogSnapshot(InvalidOid));
}

void
store_release_snapshot(Snapshot snapshot)
{
	if (IsMVCCSnapshot(snapshot))
		UnregisterSnapshot(snapshot);
}

/* ----------
 * Definitions
 * ----------
 */
/*
 * Reads a definition row.  The ACL, if the row has one, is copied into
 * aclcxt: the caller's memory, or the definition cache's.
 */
static void
def_from_tuple(Relation rel, HeapTuple tuple, CounterDef *def,
			   MemoryContext aclcxt)
{
	Datum		values[Natts_def];
	bool		isnull[Natts_def];

	heap_deform_tuple(tuple, RelationGetDescr(rel), values, isnull);
	def->id = DatumGetInt32(values[Anum_def_id - 1]);
	def->shards = DatumGetInt32(values[Anum_def_shards - 1]);
	text_to_cstring_buffer(DatumGetTextPP(values[Anum_def_name - 1]),
						   def->name, sizeof(def->name));
	def->owner = DatumGetObjectId(values[Anum_def_owner - 1]);
	def->acl = NULL;
	if (!isnull[Anum_def_acl - 1])
	{
		MemoryContext old = MemoryContextSwitchTo(aclcxt);

		def->acl = DatumGetAclPCopy(values[Anum_def_acl - 1]);
		MemoryContextSwitchTo(old);
	}
}

/*
 * Looks a definition up through one index.  A NULL snapshot means the
 * newest state, the way catalog lookups resolve names: committed rows plus
 * this transaction's own.  Caching the latter is safe because our own
 * create and drop send a relcache invalidation that is also processed
 * locally, at (sub)transaction abort as well as at commit.
 */
static bool
def_lookup(Oid indexoid, AttrNumber attno, RegProcedure eqproc, Datum key,
		   Snapshot snapshot, CounterDef *def)
{
	const StoreOids *oids = store_get_oids();
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tuple;
	bool		found = false;
	bool		own_snapshot = (snapshot == NULL);

	if (own_snapshot)
		snapshot = store_catalog_snapshot();

	rel = table_open(oids->defs, AccessShareLock);
	for (int attempt = 0; !found && attempt < 2; attempt++)
	{
		/* systable_beginscan rewrites the key for the index: a new one each time */
		ScanKeyInit(&skey, attno, BTEqualStrategyNumber, eqproc, key);
		scan = systable_beginscan(rel, indexoid, true, snapshot, 1, &skey);
		tuple = systable_getnext(scan);
		if (HeapTupleIsValid(tuple))
		{
			def_from_tuple(rel, tuple, def, CurrentMemoryContext);
			found = true;
		}
		systable_endscan(scan);

		/*
		 * A non-MVCC index scan can miss a row whose non-HOT update (owner,
		 * privileges) commits while it runs; the update's index entry was
		 * in place before that commit, so a second look finds it.
		 */
		if (IsMVCCSnapshot(snapshot))
			break;
	}
	table_close(rel, AccessShareLock);

	if (own_snapshot)
		store_release_snapshot(snapshot);
	return found;
}

static void
def_cache_add(const CounterDef *def)
{
	DefByName  *byname;
	DefById    *byid;
	CounterDef	cached = *def;

	if (def_cache_cxt == NULL)
	{
		def_cache_cxt = AllocSetContextCreate(CacheMemoryContext,
											  "event_stats counter definitions",
											  ALLOCSET_SMALL_SIZES);
		defs_by_name = local_hash("event_stats counters by name",
								  NAMEDATALEN, sizeof(DefByName), HASH_STRINGS,
								  def_cache_cxt);
		defs_by_id = local_hash("event_stats counters by id",
								sizeof(CounterId), sizeof(DefById), HASH_BLOBS,
								def_cache_cxt);
	}
	/* the entries share one copy of the ACL, freed with the cache */
	if (def->acl != NULL)
	{
		cached.acl = MemoryContextAlloc(def_cache_cxt, ACL_SIZE(def->acl));
		memcpy(cached.acl, def->acl, ACL_SIZE(def->acl));
	}
	byname = hash_search(defs_by_name, def->name, HASH_ENTER, NULL);
	byname->def = cached;
	byid = hash_search(defs_by_id, &def->id, HASH_ENTER, NULL);
	byid->def = cached;
}

/* The newest committed definition of this name, through the cache. */
bool
store_lookup_by_name(const char *name, CounterDef *def)
{
	const StoreOids *oids = store_get_oids();
	DefByName  *hit;
	uint64		generation = store_cache_generation;

	if (strlen(name) > COUNTER_NAME_MAXLEN)
		return false;
	if (defs_by_name != NULL &&
		(hit = hash_search(defs_by_name, name, HASH_FIND, NULL)) != NULL)
	{
		*def = hit->def;
		return true;
	}
	if (!def_lookup(oids->defs_name_idx, Anum_def_name, F_TEXTEQ,
					CStringGetTextDatum(name), NULL, def))
		return false;
	if (generation == store_cache_generation)
		def_cache_add(def);
	return true;
}

/*
 * The definition with this id: in snapshot when one is given, else the
 * newest committed one, through the cache.
 */
bool
store_lookup_by_id(CounterId id, Snapshot snapshot, CounterDef *def)
{
	const StoreOids *oids = store_get_oids();
	DefById    *hit;
	uint64		generation = store_cache_generation;

	if (snapshot == NULL && defs_by_id != NULL &&
		(hit = hash_search(defs_by_id, &id, HASH_FIND, NULL)) != NULL)
	{
		*def = hit->def;
		return true;
	}
	if (!def_lookup(oids->defs_id_idx, Anum_def_id, F_INT4EQ,
					Int32GetDatum(id), snapshot, def))
		return false;
	if (snapshot == NULL && generation == store_cache_generation)
		def_cache_add(def);
	return true;
}

/* Makes every backend, this one included, forget cached definitions. */
static void
def_cache_invalidate_everywhere(Relation defs)
{
	CacheInvalidateRelcache(defs);
}

/*
 * Makes every backend of the database replan its cached plans at their
 * next use, once this transaction commits.  A counter named by a constant
 * ('events'::event_stats.counter, or increment('events') in a PL/pgSQL
 * function) was resolved to its id when the query was analysed, and
 * nothing ties the plan to the counter, as a regclass constant ties a plan
 * to its table.  After a drop, a replan resolves the name again: to a
 * counter created since under that name, as a regclass constant follows a
 * table dropped and created again, or to a clear "does not exist".
 * PostgreSQL resets every cached plan when pg_namespace changes
 * (plancache.c), so a catalog-wide invalidation of pg_namespace is the
 * means it offers; drops are rare enough for that.
 */
static void
plans_invalidate_everywhere(void)
{
	CacheInvalidateCatalog(NamespaceRelationId);
}

/*
 * Whether counter_shards, as opened, still has the live filler column of
 * the 1.0 layout: a database where ALTER EXTENSION event_stats UPDATE has
 * not run yet.  The library serves it as it is until then.
 */
static bool
shard_rel_has_filler(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	return desc->natts >= Anum_shard_filler &&
		!TupleDescAttr(desc, Anum_shard_filler - 1)->attisdropped;
}

/*
 * A new shard row in the layout of the table as opened: the 1.0 filler is
 * given its blank value while the column lives, and is NULL once dropped.
 */
static HeapTuple
shard_tuple(Relation rel, CounterId id, int32 shard, int64 value)
{
	Datum		values[Anum_shard_filler] = {0};
	bool		isnull[Anum_shard_filler] = {false};

	values[Anum_shard_counter - 1] = Int32GetDatum(id);
	values[Anum_shard_shard - 1] = Int32GetDatum(shard);
	values[Anum_shard_value - 1] = Int64GetDatum(value);
	if (shard_rel_has_filler(rel))
		values[Anum_shard_filler - 1] =
			DirectFunctionCall3(bpcharin, CStringGetDatum(""),
								ObjectIdGetDatum(InvalidOid),
								Int32GetDatum(SHARD_FILLER_LEN + VARHDRSZ));
	else
		isnull[Anum_shard_filler - 1] = true;
	return heap_form_tuple(RelationGetDescr(rel), values, isnull);
}

CounterId
store_create(const char *name, int32 shards)
{
	const StoreOids *oids = store_get_oids();
	CounterDef	existing;
	Relation	defs;
	Datum		values[Natts_def];
	bool		isnull[Natts_def] = {false};
	HeapTuple	tuple;
	CounterId	id;
	int64		next;

	if (store_lookup_by_name(name, &existing))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("counter \"%s\" already exists", name)));

	next = nextval_internal(oids->defs_id_seq, false);
	if (next > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("no more counter ids are available")));
	id = (CounterId) next;

	defs = table_open(oids->defs, RowExclusiveLock);
	values[Anum_def_id - 1] = Int32GetDatum(id);
	values[Anum_def_name - 1] = CStringGetTextDatum(name);
	values[Anum_def_shards - 1] = Int32GetDatum(shards);
	values[Anum_def_owner - 1] = ObjectIdGetDatum(GetUserId());
	isnull[Anum_def_acl - 1] = true;	/* default privileges */
	tuple = heap_form_tuple(RelationGetDescr(defs), values, isnull);
	store_insert_tuple(defs, tuple);
	def_cache_invalidate_everywhere(defs);
	table_close(defs, RowExclusiveLock);

	/* no shard rows: the first commit that writes a shard creates its row */
	CommandCounterIncrement();
	return id;
}

/* ----------
 * Shard rows
 * ----------
 */

/*
 * Copies the newest version of one shard row, or returns NULL if it found
 * none: the row was never created (or its creator aborted), the counter was
 * dropped, or -- rarely -- the lookup raced with an update (see
 * counter_still_defined and shard_create).
 *
 * The lookup uses a dirty snapshot, not SnapshotSelf.  Visibility is judged
 * per index entry, one after the other, and an update that commits between
 * two of them could otherwise hide both versions: the new one (visited
 * first when it sits on a lower page) while its writer was in progress, the
 * old one after it committed.  A dirty snapshot also accepts versions whose
 * insertion or deletion is still in progress, so some version always
 * qualifies.  If the one found is still being inserted, *inserter is set to
 * that transaction and the caller must not write the row until it ends.
 * The page of a version found stays pinned in *pin for the caller.
 * Like every non-MVCC read, it takes no SSI predicate lock.
 */
static HeapTuple
shard_fetch_latest(Relation rel, CounterId id, int32 shard,
				   TransactionId *inserter, Buffer *pin)
{
	SnapshotData dirty;
	ScanKeyData skey[2];
	SysScanDesc scan;
	HeapTuple	tuple;
	HeapTuple	copy = NULL;

	InitDirtySnapshot(dirty);
	ScanKeyInit(&skey[0], Anum_shard_counter, BTEqualStrategyNumber,
				F_INT4EQ, Int32GetDatum(id));
	ScanKeyInit(&skey[1], Anum_shard_shard, BTEqualStrategyNumber,
				F_INT4EQ, Int32GetDatum(shard));
	scan = systable_beginscan(rel, store_oids.shards_idx, true, &dirty,
							  2, skey);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		copy = heap_copytuple(tuple);
		/* the dirty snapshot describes the tuple it accepted last */
		*inserter = dirty.xmin;

		/*
		 * Pin the page before the scan lets go of it, and keep the pin until
		 * the row is written: otherwise the version could be pruned and its
		 * line pointer reused by a newer version, which heap_update would
		 * then overwrite with a value computed from this stale copy.
		 */
		*pin = ReadBuffer(rel, ItemPointerGetBlockNumber(&copy->t_self));
	}
	systable_endscan(scan);
	return copy;
}

/*
 * Takes the counter lock in mode and tells whether the counter is still
 * defined: a drop that committed before we got the lock has removed it, and
 * one that comes later waits for our lock.  With wait = false (compaction)
 * it returns false instead of waiting for either lock.
 *
 * This runs inside the commit of SERIALIZABLE transactions, which must not
 * gain SSI dependencies on our bookkeeping, so the definition is read with
 * SnapshotSelf, which takes no predicate lock.  A non-MVCC index scan can
 * miss a row whose non-HOT update (owner, privileges) commits while it
 * runs; so the read is made under the definition lock in ShareLock mode,
 * which waits for a transaction changing the definition
 * (store_lock_definition, held to its end) and keeps new ones out for the
 * moment of the read; it is released right after.  Everyone takes the
 * definition lock before the counter lock, drop included.
 */
static bool
counter_lock_if_defined(Relation rel, CounterId id, LOCKMODE mode, bool wait)
{
	LOCKTAG		deftag;
	LOCKTAG		countertag;
	CounterDef	def;
	bool		found;

	SET_LOCKTAG_OBJECT(deftag, MyDatabaseId, store_oids.defs, (Oid) id, 0);
	SET_LOCKTAG_OBJECT(countertag, MyDatabaseId, RelationGetRelid(rel),
					   (Oid) id, 0);
	if (LockAcquire(&deftag, ShareLock, false, !wait) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	if (LockAcquire(&countertag, mode, false, !wait) == LOCKACQUIRE_NOT_AVAIL)
	{
		LockRelease(&deftag, ShareLock, false);
		return false;
	}
	found = def_lookup(store_oids.defs_id_idx, Anum_def_id, F_INT4EQ,
					   Int32GetDatum(id), SnapshotSelf, &def);
	LockRelease(&deftag, ShareLock, false);
	return found;
}

/*
 * Copies the row at this backend's hinted TID when it is still the newest
 * version of (counter, shard).  The buffer stays pinned in *pin until the
 * caller has written the row, so pruning cannot free the line pointer in
 * between.
 */
static HeapTuple
shard_fetch_hinted(Relation rel, CounterId id, int32 shard, Buffer *pin)
{
	ShardHint  *hint;
	HeapTupleData tuple;

	*pin = InvalidBuffer;
	if (shard_hints == NULL ||
		(hint = hash_search(shard_hints, &id, HASH_FIND, NULL)) == NULL ||
		hint->shard != shard)
		return NULL;

	/* VACUUM may have truncated the table without any invalidation */
	tuple.t_self = hint->tid;
	if (ItemPointerGetBlockNumber(&tuple.t_self) < RelationGetNumberOfBlocks(rel) &&
		heap_fetch(rel, SnapshotSelf, &tuple, pin, true) &&
		SHARD_ROW(&tuple)->counter_id == id &&
		SHARD_ROW(&tuple)->shard == shard)
	{
		HeapTuple	copy = heap_copytuple(&tuple);

		/*
		 * Index fetches prune a page as a side effect; this path bypasses
		 * the index, so prune here, or the page fills with our own dead
		 * versions and the next update cannot be HOT.  Only when the page
		 * is nearly full, though: fillfactor 10 would make
		 * heap_page_prune_opt prune (and WAL-log it) on almost every
		 * commit.  Pruning keeps the line pointer of the live version we
		 * are about to update.  The free-space read is unlocked, which is
		 * fine for a hint, as in heap_page_prune_opt itself.
		 */
		if (PageGetHeapFreeSpace(BufferGetPage(*pin)) <
			SHARD_PRUNE_ROOM_VERSIONS * MAXALIGN(tuple.t_len))
			heap_page_prune_opt(rel, *pin);
		return copy;
	}

	if (BufferIsValid(*pin))
		ReleaseBuffer(*pin);
	*pin = InvalidBuffer;
	hash_search(shard_hints, &id, HASH_REMOVE, NULL);
	return NULL;
}

static void
shard_remember(CounterId id, int32 shard, ItemPointer tid)
{
	ShardHint  *hint;

	if (shard_hints == NULL)
		shard_hints = local_hash("event_stats shard hints", sizeof(CounterId),
								 sizeof(ShardHint), HASH_BLOBS,
								 CacheMemoryContext);
	hint = hash_search(shard_hints, &id, HASH_ENTER, NULL);
	hint->shard = shard;
	hint->tid = *tid;
}

/* Sets a shard row copy's value for op: add arg to it, or assign arg. */
static void
shard_set_value(HeapTuple tuple, const CounterDef *def, ShardOp op, int64 arg)
{
	ShardRow   *row = SHARD_ROW(tuple);
	int64		newval = arg;

	if (op == SHARD_OP_ADD && pg_add_s64_overflow(row->value, arg, &newval))
		report_counter_overflow(def->name);
	row->value = newval;
}

/*
 * The counter lock, on (counter_shards, counter id): see the file header.
 */
static void
counter_lock(Relation rel, CounterId id, LOCKMODE mode)
{
	LockDatabaseObject(RelationGetRelid(rel), (Oid) id, 0, mode);
}

static void
counter_unlock(Relation rel, CounterId id, LOCKMODE mode)
{
	UnlockDatabaseObject(RelationGetRelid(rel), (Oid) id, 0, mode);
}

/*
 * The creation lock of one shard row: (counter_shards, counter id) with the
 * shard in the 16-bit sub-id, numbered from 1 so that it never names the
 * counter lock.  With more than 65535 shards, shards 65535 apart share a
 * tag; that only makes one of them look busy now and then, never lets two
 * transactions create the same row.
 */
static void
shard_create_locktag(LOCKTAG *tag, Relation rel, CounterId id, int32 shard)
{
	SET_LOCKTAG_OBJECT(*tag, MyDatabaseId, RelationGetRelid(rel), (Oid) id,
					   (uint16) (shard % PG_UINT16_MAX + 1));
}

/*
 * Marks in present[] every shard number that has an entry for this counter
 * in counter_shards' primary key, whatever the row version it points to:
 * read from the index keys alone, with no heap access and, the scan being
 * non-MVCC, no SSI predicate lock.
 *
 * It lists every row that exists, and maybe some that no longer do.  set(),
 * drop and compaction call it holding the counter lock in a mode that keeps
 * creators and each other out, so the only changes left are updates of
 * existing rows by incrementers.  An update inserts its new index entry (if
 * it needs one) before it commits, and the entry of the version it
 * replaced goes only once that version is dead to every transaction, i.e.
 * after the commit: so a row cannot slip between the entries one scan
 * reads, as it can when a non-MVCC scan judges each entry's heap tuple
 * (see shard_fetch_latest).  Callers settle a listed row that is gone with
 * shard_write, which finds out under the creation lock.
 */
static void
shards_listed(Relation rel, const CounterDef *def, bool *present)
{
	Relation	index = index_open(store_oids.shards_idx, AccessShareLock);
	IndexScanDesc scan;
	ScanKeyData skey;

	ScanKeyInit(&skey, Anum_shard_counter, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(def->id));
	scan = index_beginscan(rel, index, SnapshotAny, 1, 0);
	scan->xs_want_itup = true;
	index_rescan(scan, &skey, 1, NULL, 0);
	while (index_getnext_tid(scan, ForwardScanDirection) != NULL)
	{
		bool		isnull;
		Datum		shard = index_getattr(scan->xs_itup, Anum_shard_shard,
										  scan->xs_itupdesc, &isnull);

		if (!isnull && DatumGetInt32(shard) >= 0 &&
			DatumGetInt32(shard) < def->shards)
			present[DatumGetInt32(shard)] = true;
	}
	index_endscan(scan);
	index_close(index, AccessShareLock);
}

/*
 * Inserts the row (counter, shard) with value, unless the primary key
 * already has a live entry for it; returns whether it did.  A probe is
 * deleted again right away: it only asks whether the row exists.
 *
 * The caller holds the row's creation lock and found no version of it, so
 * no other transaction is inserting it; but its dirty lookup may have
 * raced a non-HOT update of an existing row (see shard_fetch_latest).
 * The primary key's own check settles it, without an MVCC read (whose SSI
 * predicate locks would give SERIALIZABLE incrementers serialization
 * failures): with UNIQUE_CHECK_PARTIAL, a duplicate is reported instead of
 * raised or waited for, and our heap tuple is then deleted again.  Until we
 * end, others' dirty lookups still take that dead tuple for an insertion in
 * progress, i.e. a busy row, which is harmless.
 */
static bool
shard_insert(Relation rel, CounterId id, int32 shard, int64 value, bool probe)
{
	HeapTuple	tuple = shard_tuple(rel, id, shard, value);
	bool		unique;

	simple_heap_insert(rel, tuple);
	unique = insert_index_entries(rel, tuple, false, UNIQUE_CHECK_PARTIAL);

	if (unique && !probe)
		shard_remember(id, shard, &tuple->t_self);
	else
	{
		/* make the insertion visible to heap_delete, then undo it */
		CommandCounterIncrement();
		simple_heap_delete(rel, &tuple->t_self);
	}
	heap_freetuple(tuple);
	return unique;
}

/*
 * Settles a shard row that a lookup did not find, following the lock
 * protocol of the file header.  Under the row's creation lock (held only
 * for as long as the insertion takes) it looks again and, if there still is
 * no version, lets the primary key decide between "no row" and a lookup
 * that raced a non-HOT update: it inserts the row with value (op ADD or
 * ASSIGN), or inserts and deletes it again (op DELETE: the row is then
 * known to be absent).
 *
 * An increment first takes the counter lock in COUNTER_LOCK_CREATE mode, for
 * as long as the insertion takes, and checks the counter is still defined;
 * set(), drop and compaction come with the counter lock already held
 * (counter_locked).  With wait = false, a creation lock held by another
 * transaction makes the row busy.  Returns SHARD_RETRY when the row exists
 * after all, SHARD_GONE when the counter was dropped.
 */
static ShardWrite
shard_create(Relation rel, const CounterDef *def, int32 shard, ShardOp op,
			 int64 value, bool wait, bool counter_locked)
{
	LOCKTAG		tag;
	HeapTuple	tuple;
	Buffer		pin = InvalidBuffer;
	TransactionId inserter = InvalidTransactionId;
	ShardWrite	result;

	/*
	 * Waits for a set(), drop or compaction in progress; then a dropped
	 * counter is seen as such, and the rows set() left are added to.
	 */
	if (!counter_locked &&
		!counter_lock_if_defined(rel, def->id, COUNTER_LOCK_CREATE, true))
		return SHARD_GONE;

	shard_create_locktag(&tag, rel, def->id, shard);
	if (LockAcquire(&tag, ExclusiveLock, false, !wait) == LOCKACQUIRE_NOT_AVAIL)
	{
		if (!counter_locked)
			counter_unlock(rel, def->id, COUNTER_LOCK_CREATE);
		return SHARD_BUSY;
	}

	/*
	 * Every row of this shard was inserted by a holder of this lock, who
	 * released it only after the heap and index insertions: look again.
	 * The dirty snapshot shows insertions in progress, so a miss now means
	 * no row, or a lookup that raced a non-HOT update of a committed row;
	 * shard_insert tells the two apart.
	 */
	tuple = shard_fetch_latest(rel, def->id, shard, &inserter, &pin);
	if (tuple != NULL)
	{
		ReleaseBuffer(pin);
		heap_freetuple(tuple);
		result = SHARD_RETRY;
	}
	else if (!shard_insert(rel, def->id, shard, value, op == SHARD_OP_DELETE))
		result = SHARD_RETRY;
	else
		result = SHARD_WRITTEN;

	/*
	 * From now on a dirty snapshot shows our insertion in progress, which
	 * others treat as busy, and set(), drop and compaction list it from
	 * its index entry and wait for its end: both locks have done their
	 * work.  Releasing them keeps the lock table from filling up with one
	 * entry per counter a transaction creates rows of (a commit may touch
	 * a hundred thousand), and a prepared transaction keeps neither.
	 */
	LockRelease(&tag, ExclusiveLock, false);
	if (!counter_locked)
		counter_unlock(rel, def->id, COUNTER_LOCK_CREATE);
	return result;
}

/* Writes the change into a private copy of the row's newest version. */
static TM_Result
shard_apply(Relation rel, const CounterDef *def, HeapTuple tuple,
			ShardOp op, int64 arg, bool wait)
{
	CommandId	cid = GetCurrentCommandId(true);
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	TM_Result	result;

	if (op == SHARD_OP_DELETE)
		return heap_delete(rel, &tuple->t_self, cid, InvalidSnapshot, wait,
						   &tmfd, false);

	/* the copy becomes the new version, as in catalog updates */
	shard_set_value(tuple, def, op, arg);
	result = heap_update(rel, &tuple->t_self, tuple, cid, InvalidSnapshot,
						 wait, &tmfd, &lockmode);
	if (result == TM_Ok)
	{
		if (!HeapTupleIsHeapOnly(tuple))
			insert_index_entries(rel, tuple, true, UNIQUE_CHECK_YES);
		shard_remember(def->id, SHARD_ROW(tuple)->shard, &tuple->t_self);
	}
	return result;
}

/*
 * Applies one change to the newest version of one shard row.  With wait =
 * false a row that another transaction is writing is reported busy instead
 * of waited for.  The row's page stays pinned from lookup to write.
 *
 * A row that is not there is settled by shard_create: created by an
 * increment or an assignment, known to be absent for a delete.  Only
 * increments come without the counter lock (see shards_listed).
 */
static ShardWrite
shard_write(Relation rel, const CounterDef *def, int32 shard,
			ShardOp op, int64 arg, bool wait)
{
	bool		try_hint = (op == SHARD_OP_ADD);

	for (;;)
	{
		HeapTuple	tuple = NULL;
		Buffer		pin = InvalidBuffer;
		TransactionId inserter = InvalidTransactionId;
		TM_Result	result;

		CHECK_FOR_INTERRUPTS();

		if (try_hint)
			tuple = shard_fetch_hinted(rel, def->id, shard, &pin);
		try_hint = false;
		if (tuple == NULL)
			tuple = shard_fetch_latest(rel, def->id, shard, &inserter, &pin);
		if (tuple == NULL)
		{
			ShardWrite	settled = shard_create(rel, def, shard, op, arg, wait,
											   op != SHARD_OP_ADD);

			if (settled != SHARD_RETRY)
				return settled;
			continue;
		}

		if (TransactionIdIsValid(inserter))
		{
			/* another transaction is writing this row right now */
			ReleaseBuffer(pin);
			if (wait)
				XactLockTableWait(inserter, rel, &tuple->t_self, XLTW_Update);
			heap_freetuple(tuple);
			if (!wait)
				return SHARD_BUSY;
			continue;
		}

		result = shard_apply(rel, def, tuple, op, arg, wait);
		ReleaseBuffer(pin);
		heap_freetuple(tuple);

		switch (result)
		{
			case TM_Ok:
				return SHARD_WRITTEN;
			case TM_BeingModified:
				Assert(!wait);
				return SHARD_BUSY;
			case TM_Updated:
			case TM_Deleted:
				/* replaced since we looked: act on the newer version */
				break;
			default:
				elog(ERROR, "unexpected result %d writing shard %d of counter %d",
					 (int) result, shard, def->id);
		}
	}
}

/*
 * Adds delta to one of the counter's shards, creating its row if it has
 * none yet.  Runs once per counter at the commit of a transaction that
 * incremented it.
 */
void
store_add_to_shards(const CounterDef *def, int64 delta)
{
	const StoreOids *oids = store_get_oids();
	Relation	rel = table_open(oids->shards, RowExclusiveLock);
	int32		first = (MyBackendId - 1) % def->shards;
	ShardWrite	done = SHARD_BUSY;

	for (int32 i = 0; i < def->shards && done == SHARD_BUSY; i++)
		done = shard_write(rel, def, (first + i) % def->shards,
						   SHARD_OP_ADD, delta, false);

	/* every shard is being written by someone else: queue on our own */
	if (done == SHARD_BUSY)
		shard_write(rel, def, first, SHARD_OP_ADD, delta, true);

	table_close(rel, RowExclusiveLock);
}

/*
 * Makes the counter's value exactly `value`: shard 0, its base row, takes
 * it (the row is created if need be), and every other row is deleted; a
 * counter set to 0 keeps no row at all.  Waits for transactions committing
 * increments to the same rows, and (through the counter lock) for those
 * creating rows, so that each of them lands either before (and is
 * overwritten) or after (and is added on top, in a row of its own).
 */
void
store_reset_shards(const CounterDef *def, int64 value)
{
	const StoreOids *oids = store_get_oids();
	Relation	rel = table_open(oids->shards, RowExclusiveLock);
	bool	   *present;

	if (!counter_lock_if_defined(rel, def->id, COUNTER_LOCK_REWRITE, true))
	{
		/* dropped meanwhile: there is nothing left to set */
		table_close(rel, RowExclusiveLock);
		return;
	}

	/* no row can appear while we hold the rewrite lock */
	present = palloc0(def->shards * sizeof(bool));
	shards_listed(rel, def, present);
	present[0] = present[0] || value != 0;
	for (int32 s = 0; s < def->shards; s++)
		if (present[s])
			shard_write(rel, def, s,
						s == 0 && value != 0 ? SHARD_OP_ASSIGN : SHARD_OP_DELETE,
						value, true);
	pfree(present);

	table_close(rel, RowExclusiveLock);
}

void
store_drop(CounterId id, bool missing_ok)
{
	const StoreOids *oids = store_get_oids();
	CounterDef	def;
	Relation	defs;
	Relation	shards;
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found;
	ItemPointerData tid;
	TM_FailureData tmfd;
	TM_Result	result = TM_Deleted;
	bool	   *present;

	store_lock_definition(id);
	defs = table_open(oids->defs, RowExclusiveLock);
	ScanKeyInit(&skey, Anum_def_id, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(id));
	scan = systable_beginscan(defs, oids->defs_id_idx, true, SnapshotSelf,
							  1, &skey);
	tuple = systable_getnext(scan);
	found = HeapTupleIsValid(tuple);
	if (found)
	{
		def_from_tuple(defs, tuple, &def, CurrentMemoryContext);
		tid = tuple->t_self;
	}
	systable_endscan(scan);

	/* a concurrent drop of the same counter wins; this one then finds none */
	if (found)
		result = heap_delete(defs, &tid, GetCurrentCommandId(true),
							 InvalidSnapshot, true, &tmfd, false);
	if (result != TM_Ok)
	{
		table_close(defs, RowExclusiveLock);
		if (missing_ok)
			return;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("counter with id %d does not exist", id)));
	}
	def_cache_invalidate_everywhere(defs);
	plans_invalidate_everywhere();
	table_close(defs, RowExclusiveLock);

	/*
	 * The rewrite lock waits for transactions creating rows of this counter,
	 * so their rows are committed (or gone) when we list them; those that
	 * come later wait for us and then find the counter dropped.
	 */
	shards = table_open(oids->shards, RowExclusiveLock);
	counter_lock(shards, id, COUNTER_LOCK_REWRITE);
	present = palloc0(def.shards * sizeof(bool));
	shards_listed(shards, &def, present);
	for (int32 s = 0; s < def.shards; s++)
		if (present[s])
			shard_write(shards, &def, s, SHARD_OP_DELETE, 0, true);
	pfree(present);
	table_close(shards, RowExclusiveLock);

	CommandCounterIncrement();
}

/*
 * Serialises the changes of one definition row -- drop, owner, privileges
 * -- among themselves, until the end of the transaction, the way
 * PostgreSQL locks a catalog object before altering it.  Increments never
 * take it: they do not change the definition.
 */
void
store_lock_definition(CounterId id)
{
	const StoreOids *oids = store_get_oids();

	LockDatabaseObject(oids->defs, (Oid) id, 0, ShareUpdateExclusiveLock);
}

/*
 * Replaces the counter's owner and ACL (NULL: default privileges).  The
 * caller holds store_lock_definition(id) since before it read the values
 * it changed.
 */
void
store_set_owner_acl(CounterId id, Oid owner, Acl *acl)
{
	const StoreOids *oids = store_get_oids();
	Relation	defs = table_open(oids->defs, RowExclusiveLock);
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tuple;
	HeapTuple	newtuple;
	Datum		values[Natts_def] = {0};
	bool		isnull[Natts_def] = {false};
	bool		replace[Natts_def] = {false};

	ScanKeyInit(&skey, Anum_def_id, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(id));
	scan = systable_beginscan(defs, oids->defs_id_idx, true, SnapshotSelf,
							  1, &skey);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("counter with id %d does not exist", id)));

	values[Anum_def_owner - 1] = ObjectIdGetDatum(owner);
	replace[Anum_def_owner - 1] = true;
	values[Anum_def_acl - 1] = PointerGetDatum(acl);
	isnull[Anum_def_acl - 1] = (acl == NULL);
	replace[Anum_def_acl - 1] = true;
	newtuple = heap_modify_tuple(tuple, RelationGetDescr(defs), values, isnull,
								 replace);
	simple_heap_update(defs, &tuple->t_self, newtuple);
	if (!HeapTupleIsHeapOnly(newtuple))
		insert_index_entries(defs, newtuple, true, UNIQUE_CHECK_YES);
	systable_endscan(scan);

	def_cache_invalidate_everywhere(defs);
	table_close(defs, RowExclusiveLock);
	CommandCounterIncrement();
}

/*
 * Sums the shard rows visible to snapshot.  The sum is formed in 128 bits:
 * shards may hold values of both signs whose running total leaves the int8
 * range although the result does not.  A sum out of that range is an
 * error, or with overflow given, sets *overflow and returns 0.
 */
int64
store_sum_shards(const CounterDef *def, Snapshot snapshot, bool *overflow)
{
	const StoreOids *oids = store_get_oids();
	Relation	rel = table_open(oids->shards, AccessShareLock);
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tuple;
	INT128		sum = int64_to_int128(0);

	ScanKeyInit(&skey, Anum_shard_counter, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(def->id));
	scan = systable_beginscan(rel, oids->shards_idx, true, snapshot, 1, &skey);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		int128_add_int64(&sum, SHARD_ROW(tuple)->value);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (int128_compare(sum, int64_to_int128(PG_INT64_MAX)) > 0 ||
		int128_compare(sum, int64_to_int128(PG_INT64_MIN)) < 0)
	{
		if (overflow == NULL)
			report_counter_overflow(def->name);
		*overflow = true;
		return 0;
	}
	return int128_to_int64(sum);
}

/* ----------
 * Compaction
 * ----------
 */

/*
 * Whether the newest version of a shard row was last written before
 * cold_before (a frozen one was written long ago).
 */
static bool
shard_is_cold(HeapTuple tuple, TransactionId cold_before)
{
	HeapTupleHeader htup = tuple->t_data;

	return HeapTupleHeaderXminFrozen(htup) ||
		TransactionIdPrecedes(HeapTupleHeaderGetRawXmin(htup), cold_before);
}

/*
 * Where compaction puts base rows: the lowest page with room for a new row,
 * searched upwards from compact_low_block.  Base rows are what is left
 * once a counter's other rows are folded, so keeping them on the first
 * pages lets VACUUM give the emptied pages at the end of the table back to
 * the file system (it truncates only trailing empty pages).  Dead versions
 * are pruned as the search goes (compact_prune_page).  Pages below compact_low_block were found full earlier in this
 * pass, so a pass reads each page at most once; it is local to the
 * compacting backend and reset by store_compact_begin_pass.
 */
static BlockNumber compact_low_block = 0;

void
store_compact_begin_pass(void)
{
	compact_low_block = 0;
}

/*
 * How many shard rows a page of counter_shards takes when they are
 * inserted afresh, at the table's fillfactor: the compaction worker's
 * measure of how many pages the live rows need.
 */
int
store_shard_rows_per_page(void)
{
	const StoreOids *oids = store_get_oids();
	Relation	rel = table_open(oids->shards, AccessShareLock);
	HeapTuple	model = shard_tuple(rel, 0, 0, 0);
	Size		usable = BLCKSZ - SizeOfPageHeaderData -
		RelationGetTargetPageFreeSpace(rel, HEAP_DEFAULT_FILLFACTOR);
	int			rows = usable / (MAXALIGN(model->t_len) + sizeof(ItemIdData));

	heap_freetuple(model);
	table_close(rel, AccessShareLock);
	return Max(rows, 1);
}

/*
 * Prunes a page whose dead row versions no one can see any more, if it can
 * be had without waiting.  heap_page_prune_opt would not: it prunes only a
 * page with less free room than the fillfactor keeps, and inserts stop
 * just short of that (they need the row's room on top), so a page emptied
 * by deletions would stay full of dead versions until VACUUM.
 */
static void
compact_prune_page(Relation rel, Buffer buffer)
{
	TransactionId prune_xid = ((PageHeader) BufferGetPage(buffer))->pd_prune_xid;
	GlobalVisState *vistest;
	int			nnewlpdead;

	if (!TransactionIdIsValid(prune_xid))
		return;
	vistest = GlobalVisTestFor(rel);
	if (!GlobalVisTestIsRemovableXid(vistest, prune_xid) ||
		!ConditionalLockBufferForCleanup(buffer))
		return;
	heap_page_prune(rel, buffer, InvalidTransactionId, vistest,
					InvalidTransactionId, 0, &nnewlpdead, NULL);
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
}

static BlockNumber
compact_find_low_block(Relation rel, Size len, BlockNumber below)
{
	Size		needed = MAXALIGN(len) + sizeof(ItemIdData) +
		RelationGetTargetPageFreeSpace(rel, HEAP_DEFAULT_FILLFACTOR);

	for (; compact_low_block < below; compact_low_block++)
	{
		Buffer		buffer = ReadBuffer(rel, compact_low_block);
		Size		free;

		compact_prune_page(rel, buffer);
		LockBuffer(buffer, BUFFER_LOCK_SHARE);
		free = PageGetHeapFreeSpace(BufferGetPage(buffer));
		UnlockReleaseBuffer(buffer);
		if (free >= needed)
			return compact_low_block;
	}
	return InvalidBlockNumber;
}

/*
 * Makes sure the counter's base row, shard 0, exists and that no one else
 * can write it before we end: an existing row is locked with a tuple lock
 * (skipped, not waited for), a missing one is inserted with value 0 and is
 * ours until we end.  Increments that prefer shard 0 then find it busy and
 * go to another row, as they do for any row being written.  Returns a copy
 * of the version to update, or NULL when the row is busy.
 */
static HeapTuple
compact_take_base(Relation rel, const CounterDef *def)
{
	for (int attempt = 0; attempt < 2; attempt++)
	{
		TransactionId inserter = InvalidTransactionId;
		Buffer		pin = InvalidBuffer;
		HeapTuple	tuple = shard_fetch_latest(rel, def->id, 0, &inserter, &pin);
		HeapTupleData locked;
		Buffer		buffer;
		TM_FailureData tmfd;
		TM_Result	result;

		if (tuple == NULL)
		{
			HeapTuple	model = shard_tuple(rel, def->id, 0, 0);
			BlockNumber low = compact_find_low_block(rel, model->t_len,
													 RelationGetNumberOfBlocks(rel));

			/* our own insertion: its next lookup finds it, unlocked but ours */
			if (BlockNumberIsValid(low))
				RelationSetTargetBlock(rel, low);
			heap_freetuple(model);
			if (shard_create(rel, def, 0, SHARD_OP_ASSIGN, 0, false, true) !=
				SHARD_WRITTEN)
				return NULL;
			CommandCounterIncrement();
			continue;
		}
		if (TransactionIdIsValid(inserter))
		{
			ReleaseBuffer(pin);
			heap_freetuple(tuple);
			return NULL;
		}
		if (TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(tuple->t_data)))
		{
			ReleaseBuffer(pin);
			return tuple;
		}

		locked.t_self = tuple->t_self;
		result = heap_lock_tuple(rel, &locked, GetCurrentCommandId(true),
								 LockTupleNoKeyExclusive, LockWaitSkip, false,
								 &buffer, &tmfd);
		ReleaseBuffer(buffer);
		ReleaseBuffer(pin);
		if (result != TM_Ok)
		{
			heap_freetuple(tuple);
			return NULL;
		}
		return tuple;
	}
	return NULL;
}

/*
 * Folds the shard rows of counter id that no transaction has written since
 * cold_before into its base row, shard 0, in the caller's transaction, and
 * returns how many rows it folded.  The base row, when it is written, moves
 * to a lower page with room if there is one; so does a base row on page
 * move_above or later (InvalidBlockNumber: none), folded or not.  It never waits: a counter whose locks
 * are taken (set(), drop, another compaction) or whose base row is busy is
 * left for the next pass, and so is a row being written (a transaction in
 * progress, a prepared one included).
 *
 * Exactness: the folded rows' deletions and the base row's new value commit
 * together, so every snapshot sees each increment exactly once, in a folded
 * row or in the base.  An increment that comes to a row after its deletion
 * committed finds no row and creates a new one (shard_create); one that
 * comes while the deletion is in progress finds the row busy and writes
 * another.  The counter lock in COUNTER_LOCK_COMPACT mode keeps set() and
 * drop out (they list rows) but not creators.
 */
int
store_compact_counter(CounterId id, TransactionId cold_before,
					  BlockNumber move_above)
{
	const StoreOids *oids = store_get_oids();
	CommandId	cid;
	CounterDef	def;
	Relation	rel;
	bool	   *present;
	HeapTuple	base;
	int64		total;
	int			folded = 0;

	if (!store_lookup_by_id(id, NULL, &def) || def.shards < 2)
		return 0;
	rel = table_open(oids->shards, RowExclusiveLock);
	if (!counter_lock_if_defined(rel, id, COUNTER_LOCK_COMPACT, false))
	{
		table_close(rel, RowExclusiveLock);
		return 0;
	}

	present = palloc0(def.shards * sizeof(bool));
	shards_listed(rel, &def, present);
	base = NULL;
	for (int32 s = 0; s < def.shards && base == NULL; s++)
		if (present[s] && (s > 0 || BlockNumberIsValid(move_above)))
			base = compact_take_base(rel, &def);
	if (base == NULL)
	{
		pfree(present);
		table_close(rel, RowExclusiveLock);
		return 0;
	}

	/* after compact_take_base's own command, if it inserted the row */
	cid = GetCurrentCommandId(true);
	total = SHARD_ROW(base)->value;
	for (int32 s = 1; s < def.shards; s++)
	{
		TransactionId inserter = InvalidTransactionId;
		Buffer		pin = InvalidBuffer;
		HeapTuple	tuple;
		int64		sum;
		TM_FailureData tmfd;

		if (!present[s])
			continue;
		tuple = shard_fetch_latest(rel, id, s, &inserter, &pin);
		if (tuple == NULL)
			continue;
		if (!TransactionIdIsValid(inserter) &&
			shard_is_cold(tuple, cold_before) &&
			!pg_add_s64_overflow(total, SHARD_ROW(tuple)->value, &sum) &&
			heap_delete(rel, &tuple->t_self, cid, InvalidSnapshot, false,
						&tmfd, false) == TM_Ok)
		{
			total = sum;
			folded++;
		}
		ReleaseBuffer(pin);
		heap_freetuple(tuple);
	}

	if (folded > 0 ||
		(BlockNumberIsValid(move_above) &&
		 ItemPointerGetBlockNumber(&base->t_self) >= move_above))
	{
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		BlockNumber low = compact_find_low_block(rel, base->t_len,
												 ItemPointerGetBlockNumber(&base->t_self));

		/*
		 * We hold the row (tuple lock or own insertion): neither the update
		 * nor the delete can wait.  A base row with room for it on a lower
		 * page moves there (delete, then insert under the same key, which
		 * nobody else can be inserting: the row is ours until we end).
		 */
		SHARD_ROW(base)->value = total;
		if (BlockNumberIsValid(low))
		{
			HeapTuple	moved = shard_tuple(rel, id, 0, total);

			if (heap_delete(rel, &base->t_self, cid, InvalidSnapshot, true,
							&tmfd, false) != TM_Ok)
				elog(ERROR, "could not move the base row of counter %d", id);
			RelationSetTargetBlock(rel, low);
			simple_heap_insert(rel, moved);
			insert_index_entries(rel, moved, false, UNIQUE_CHECK_YES);
			heap_freetuple(moved);
		}
		else
		{
			if (heap_update(rel, &base->t_self, base, cid, InvalidSnapshot, true,
							&tmfd, &lockmode) != TM_Ok)
				elog(ERROR, "could not update the base row of counter %d", id);
			if (!HeapTupleIsHeapOnly(base))
				insert_index_entries(rel, base, true, UNIQUE_CHECK_YES);
		}
	}
	heap_freetuple(base);
	pfree(present);
	table_close(rel, RowExclusiveLock);
	return folded;
}

/*
 * Whether the installed state tables still have the 1.0 layout (each shard
 * row padded to a page of its own), which the compaction worker leaves
 * alone until ALTER EXTENSION event_stats UPDATE.
 */
bool
store_layout_is_1_0(void)
{
	const StoreOids *oids = store_get_oids();
	Relation	rel = table_open(oids->shards, AccessShareLock);
	bool		old = shard_rel_has_filler(rel);

	table_close(rel, AccessShareLock);
	return old;
}
