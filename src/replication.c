/*-------------------------------------------------------------------------
 *
 * replication.c
 *	  What a logical replication subscriber does with event_stats' own state
 *	  tables when a publication carries them.
 *
 * A publication FOR ALL TABLES (the usual migration recipe: a schema-only
 * dump on the subscriber, then a subscription) also publishes
 * counter_definitions, counter_shards and tracked_tables, and PostgreSQL 15
 * cannot leave tables out of such a publication.  Applied on a subscriber
 * that has the extension, those rows would be added to the subscriber's own
 * state: a tracked table counted twice (the publisher's shard rows plus the
 * subscriber's own counting of the rows the apply worker writes), counters
 * and tracking rows the subscriber never made.  A server's event_stats
 * state describes that server's rows and commits, so the subscriber keeps
 * its own: the trigger below, on each state table, drops every row change
 * that a logical replication worker (apply or table synchronisation) would
 * make, and refuses a replicated TRUNCATE, which it cannot drop.  Anything
 * else that writes the tables through the executor -- only superusers can,
 * e.g. a data-only restore -- passes unchanged.  The extension's own C code
 * writes through the heap directly and never fires it.
 *
 * The triggers are ENABLE ALWAYS (apply workers run with
 * session_replication_role = replica, where ordinary triggers stay quiet).
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "replication/logicalworker.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "event_stats.h"

PG_FUNCTION_INFO_V1(es_replicated_state_trigger);

Datum
es_replicated_state_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("event_stats.replicated_state_trigger() must be a BEFORE trigger")));

	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		if (IsLogicalWorker())
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot apply a replicated TRUNCATE of \"%s.%s\"",
							get_namespace_name(RelationGetNamespace(trigdata->tg_relation)),
							RelationGetRelationName(trigdata->tg_relation)),
					 errdetail("event_stats keeps its own state on each server; the publisher's is not applied."),
					 errhint("Publish the tables of your application, not those of schema event_stats.")));
		return PointerGetDatum(NULL);
	}

	/* a row change of a logical replication worker: dropped */
	if (IsLogicalWorker())
		return PointerGetDatum(NULL);

	/* anyone else's: unchanged */
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(trigdata->tg_trigtuple);
}
