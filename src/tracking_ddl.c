/*-------------------------------------------------------------------------
 *
 * tracking_ddl.c
 *	  Hooks that let tracking.c see, before it is too late, the commands
 *	  that change which rows a tracked table has without inserting or
 *	  deleting them one by one.
 *
 *	 TRUNCATE			(ProcessUtility, before it runs) locks the truncated
 *						tables as TRUNCATE itself would, and records each
 *						tracked leaf while its old rows can still be counted.
 *	 ATTACH / DETACH PARTITION, INHERIT / NO INHERIT
 *						(ProcessUtility, after it ran) records every leaf of
 *						the moved tree with the counters it counted toward
 *						before the command.
 *	 DROP				(object access hook, before each relation goes)
 *						drops the tracking of a tracked table, and records a
 *						dropped leaf of a tracked tree unless the tracked
 *						table itself is dropped by the same statement.
 *	 track_counts = off	(ExecutorStart, COPY FROM, TRUNCATE) refuses a write
 *						to a tracked table that heapam would not count.
 *	 CREATE [FOREIGN | TEMP | UNLOGGED] TABLE ... PARTITION OF / INHERITS
 *						a tracked tree, ALTER TABLE ... SET UNLOGGED
 *						are refused: those rows cannot be counted.
 *	 CREATE RULE "_RETURN" AS ON SELECT
 *						(ProcessUtility, after it ran) refuses to turn a
 *						tracked table into a view, whose rows are no table's.
 *	 COPY into tracked_tables
 *						(pg_restore, after it ran) starts tracking the
 *						restored tables again; see tracking_restore().
 *
 * State: drop_dying is the list of counters whose tracked table the current
 * DROP statement names; it is set and restored around that statement only.
 * The previous hook values are written once, in _PG_init.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/heap.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parsetree.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"

#include "event_stats.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static object_access_hook_type prev_object_access = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;

/* counters whose tracked table the running DROP statement drops */
static List *drop_dying = NIL;

/* Leaves (tables with storage) of relid's tree; just relid without inh. */
static List *
tree_leaves(Oid relid, bool inh, LOCKMODE lockmode)
{
	List	   *tree = inh ? find_all_inheritors(relid, lockmode, NULL) :
	list_make1_oid(relid);
	List	   *leaves = NIL;
	ListCell   *lc;

	foreach(lc, tree)
		if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_RELATION)
			leaves = lappend_oid(leaves, lfirst_oid(lc));
	return leaves;
}

static bool
any_tracked_leaf(List *relids)
{
	ListCell   *lc;

	foreach(lc, relids)
		if (tracking_is_leaf(lfirst_oid(lc)))
			return true;
	return false;
}

static Oid
relation_if_exists(RangeVar *rv)
{
	return rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
}

/* ----------
 * TRUNCATE
 * ----------
 */

/*
 * Locks and records one truncated table's tracked leaves.  Tables the user
 * may not truncate are left for TRUNCATE itself to refuse, unlocked.
 */
static void
truncate_record(Oid relid, bool inh, List **seen)
{
	List	   *leaves = tree_leaves(relid, inh, NoLock);
	ListCell   *lc;

	*seen = list_append_unique_oid(*seen, relid);
	if (!any_tracked_leaf(leaves))
		return;
	if (!pgstat_track_counts)
		tracking_report_counts_off(relid);
	if (pg_class_aclcheck(relid, GetUserId(), ACL_TRUNCATE) != ACLCHECK_OK)
		return;

	LockRelationOid(relid, AccessExclusiveLock);
	leaves = tree_leaves(relid, inh, AccessExclusiveLock);
	foreach(lc, leaves)
	{
		*seen = list_append_unique_oid(*seen, lfirst_oid(lc));
		if (tracking_is_leaf(lfirst_oid(lc)))
			tracking_record_leaf_now(lfirst_oid(lc));
	}
}

static void
truncate_prepare(TruncateStmt *stmt)
{
	List	   *seen = NIL;
	ListCell   *lc;

	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst(lc);
		Oid			relid = relation_if_exists(rv);

		if (OidIsValid(relid))
			truncate_record(relid, rv->inh, &seen);
	}

	/* CASCADE also empties every table referencing a truncated one */
	if (stmt->behavior == DROP_CASCADE)
	{
		List	   *more;

		while ((more = heap_truncate_find_FKs(seen)) != NIL)
		{
			foreach(lc, more)
				truncate_record(lfirst_oid(lc), true, &seen);
		}
	}
}

/* ----------
 * ATTACH / DETACH PARTITION, INHERIT / NO INHERIT
 * ----------
 */

typedef struct TreeMove
{
	Oid			parent;
	RangeVar   *child;
	bool		joins;			/* child joins parent's tree (else leaves it) */
	List	   *leaves;			/* the child tree's leaves before the command */
	List	   *befores;		/* ... and for each, the counters it counted
								 * toward then (a List of int) */
} TreeMove;

static bool
tree_move_of(AlterTableStmt *stmt, AlterTableCmd *cmd, TreeMove *move)
{
	switch (cmd->subtype)
	{
		case AT_AttachPartition:
		case AT_DetachPartition:
		case AT_DetachPartitionFinalize:
			move->parent = relation_if_exists(stmt->relation);
			move->child = ((PartitionCmd *) cmd->def)->name;
			move->joins = (cmd->subtype == AT_AttachPartition);
			if (cmd->subtype == AT_DetachPartition &&
				((PartitionCmd *) cmd->def)->concurrent &&
				tracking_counters_at_or_above(move->parent) != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot detach partitions of a tracked table concurrently"),
						 errhint("Use DETACH PARTITION without CONCURRENTLY.")));
			return true;
		case AT_AddInherit:
		case AT_DropInherit:
			move->parent = relation_if_exists((RangeVar *) cmd->def);
			move->child = stmt->relation;
			move->joins = (cmd->subtype == AT_AddInherit);
			return true;
		default:
			return false;
	}
}

/*
 * Before the command: what each leaf of the child's tree counts toward,
 * taken before any subcommand of the statement runs.  Deriving it after
 * the command instead ("now, minus the parent's counters") is wrong when
 * one ALTER TABLE moves the child twice (INHERIT a, INHERIT b; NO INHERIT
 * a, INHERIT b): "now" already holds the other move.
 */
static void
tree_move_prepare(TreeMove *move)
{
	Oid			child = relation_if_exists(move->child);
	ListCell   *lc;

	move->leaves = NIL;
	move->befores = NIL;
	if (!OidIsValid(child))
		return;
	foreach(lc, tree_leaves(child, true, NoLock))
	{
		move->leaves = lappend_oid(move->leaves, lfirst_oid(lc));
		move->befores = lappend(move->befores,
								tracking_counters_of_leaf(lfirst_oid(lc)));
	}
}

/*
 * After the command: a record of each leaf of the moved tree, with the
 * counters it counted toward before the statement.  (The first record of a
 * leaf in a transaction wins, so an earlier statement's move of the same
 * leaf keeps its own, older "before".)
 */
static void
tree_move_record(const TreeMove *move)
{
	Oid			child = relation_if_exists(move->child);
	List	   *above;
	ListCell   *leaf;
	ListCell   *before;

	if (!OidIsValid(child))
		return;
	above = tracking_counters_at_or_above(move->parent);
	if (above == NIL)
		return;
	if (move->joins)
		tracking_check_tree(tracking_table_of(linitial_int(above)),
							find_all_inheritors(child, NoLock, NULL));

	forboth(leaf, move->leaves, before, move->befores)
		tracking_record_leaf(lfirst_oid(leaf), lfirst(before), 0);
}

static List *
alter_prepare(AlterTableStmt *stmt)
{
	List	   *moves = NIL;
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		TreeMove	move;

		if (tree_move_of(stmt, lfirst(lc), &move) && OidIsValid(move.parent))
		{
			TreeMove   *copy = palloc(sizeof(TreeMove));

			tree_move_prepare(&move);
			*copy = move;
			moves = lappend(moves, copy);
		}
	}
	return moves;
}

/* ----------
 * DROP
 * ----------
 */

static List *
drop_dying_counters(DropStmt *stmt)
{
	List	   *dying = NIL;
	ListCell   *lc;

	if (stmt->removeType != OBJECT_TABLE)
		return NIL;
	foreach(lc, stmt->objects)
	{
		Oid			relid = relation_if_exists(makeRangeVarFromNameList(lfirst(lc)));
		CounterId	id = OidIsValid(relid) ? tracking_counter_of(relid) : 0;

		if (id != 0)
			dying = lappend_int(dying, id);
	}
	return dying;
}

static void
drop_relation(Oid relid)
{
	CounterId	tracked_by = tracking_counter_of(relid);
	List	   *counters;

	if (tracking_is_leaf(relid))
	{
		counters = tracking_counters_of_leaf(relid);
		if (list_difference_int(counters, drop_dying) != NIL)
			tracking_record_leaf_now(relid);
	}
	if (tracked_by != 0)
		tracking_forget_dropped(relid, tracked_by);
}

static void
es_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				 int subId, void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);

	if (access == OAT_DROP && classId == RelationRelationId && subId == 0 &&
		tracking_is_member(objectId))
		drop_relation(objectId);
}

/* ----------
 * ProcessUtility
 * ----------
 */

static void
copy_check_counts(CopyStmt *stmt)
{
	Oid			relid;

	if (pgstat_track_counts || !stmt->is_from)
		return;
	relid = relation_if_exists(stmt->relation);
	if (OidIsValid(relid) && tracking_is_member(relid))
		tracking_report_counts_off(relid);
}

/*
 * A table created as a partition or child of a tracked tree must be one
 * whose rows can be counted (see tracking_check_tree).
 */
static void
created_child_check(CreateStmt *stmt)
{
	ListCell   *lc;
	Oid			child;

	if (stmt->inhRelations == NIL)
		return;
	child = relation_if_exists(stmt->relation);
	foreach(lc, stmt->inhRelations)
	{
		Oid			parent = relation_if_exists(lfirst(lc));
		List	   *above;

		if (!OidIsValid(parent) || !OidIsValid(child))
			continue;
		above = tracking_counters_at_or_above(parent);
		if (above != NIL)
			tracking_check_tree(tracking_table_of(linitial_int(above)),
								list_make1_oid(child));
	}
}

/* SET UNLOGGED on a table of a tracked tree */
static void
alter_refuse_unlogged(AlterTableStmt *stmt)
{
	ListCell   *lc;
	Oid			relid = relation_if_exists(stmt->relation);

	if (!OidIsValid(relid) || !tracking_is_member(relid))
		return;
	foreach(lc, stmt->cmds)
		if (((AlterTableCmd *) lfirst(lc))->subtype == AT_SetUnLogged)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot make table \"%s\" of a tracked table unlogged",
							get_rel_name(relid)),
					 errdetail("Crash recovery empties unlogged tables, and their counter would keep its value.")));
}

/*
 * PostgreSQL 15 turns an empty table into a view when it gets an ON SELECT
 * rule.  Checked after the command ran, so that PostgreSQL's own refusals
 * (partitions, children, indexes, rows) keep their messages, under the
 * AccessExclusiveLock the rule took, so that no track() can slip in between.
 */
static void
rule_refuse_view(RuleStmt *stmt)
{
	Oid			relid;

	if (stmt->event != CMD_SELECT)
		return;
	/* make the command's own change of pg_class visible to the lookup */
	CommandCounterIncrement();
	relid = relation_if_exists(stmt->relation);
	if (OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_VIEW &&
		tracking_counter_of(relid) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot convert tracked table \"%s\" to a view",
						get_rel_name(relid)),
				 errdetail("A view has no rows of its own to count."),
				 errhint("Stop tracking it first with event_stats.untrack().")));
}

/* pg_restore loading tracked_tables */
static bool
copy_restores_tracking(CopyStmt *stmt)
{
	Oid			relid;

	if (!stmt->is_from || stmt->relation == NULL)
		return false;
	relid = relation_if_exists(stmt->relation);
	return OidIsValid(relid) && relid == store_tracked_tables_relid();
}

/* Runs the command with drop_dying extended for its duration only. */
static void
run_utility(List *dying, PlannedStmt *pstmt, const char *queryString,
			bool readOnlyTree, ProcessUtilityContext context,
			ParamListInfo params, QueryEnvironment *queryEnv,
			DestReceiver *dest, QueryCompletion *qc)
{
	List	   *saved_dying = drop_dying;

	drop_dying = list_concat_copy(drop_dying, dying);
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		drop_dying = saved_dying;
	}
	PG_END_TRY();
}

static void
es_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	List	   *moves = NIL;
	List	   *dying = NIL;
	bool		restores = false;
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_TruncateStmt:
			truncate_prepare((TruncateStmt *) parsetree);
			break;
		case T_AlterTableStmt:
			alter_refuse_unlogged((AlterTableStmt *) parsetree);
			moves = alter_prepare((AlterTableStmt *) parsetree);
			break;
		case T_DropStmt:
			dying = drop_dying_counters((DropStmt *) parsetree);
			break;
		case T_CopyStmt:
			copy_check_counts((CopyStmt *) parsetree);
			restores = copy_restores_tracking((CopyStmt *) parsetree);
			break;
		default:
			break;
	}

	run_utility(dying, pstmt, queryString, readOnlyTree, context, params,
				queryEnv, dest, qc);

	if (IsA(parsetree, CreateStmt))
		created_child_check((CreateStmt *) parsetree);
	else if (IsA(parsetree, CreateForeignTableStmt))
		created_child_check(&((CreateForeignTableStmt *) parsetree)->base);
	else if (IsA(parsetree, RuleStmt))
		rule_refuse_view((RuleStmt *) parsetree);
	foreach(lc, moves)
		tree_move_record(lfirst(lc));
	if (restores)
		tracking_restore();
}

/* ----------
 * ExecutorStart: writes that heapam would not count
 * ----------
 */

static void
executor_check_counts(QueryDesc *queryDesc)
{
	PlannedStmt *stmt = queryDesc->plannedstmt;
	ListCell   *lc;

	if (stmt->commandType == CMD_SELECT && !stmt->hasModifyingCTE)
		return;
	foreach(lc, stmt->resultRelations)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), stmt->rtable);

		if (tracking_is_member(rte->relid))
			tracking_report_counts_off(rte->relid);
	}
}

static void
es_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (!pgstat_track_counts)
		executor_check_counts(queryDesc);

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

void
tracking_register_hooks(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = es_ProcessUtility;
	prev_object_access = object_access_hook;
	object_access_hook = es_object_access;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = es_ExecutorStart;
}
