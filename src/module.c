/*-------------------------------------------------------------------------
 *
 * module.c
 *	  Library load and the shared_preload_libraries requirement.
 *
 * The extension keeps per-backend state that must be hooked into every
 * transaction of every backend before the first one starts, and the clock
 * lives in shared memory and logs its own WAL records, so the library has
 * to be preloaded.  When it is merely loaded (CREATE EXTENSION in a
 * server that does not preload it, or an explicit LOAD), nothing is
 * registered and every SQL-callable function refuses to run.
 *
 * Preloading also registers the compaction launcher (compaction.c), and
 * the settings of every part are defined before the event_stats prefix is
 * reserved, here, so that none of them is taken for a typo.
 *
 * State: es_preloaded is written once, in _PG_init, before any backend can
 * call into the library, and only read afterwards.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "event_stats.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* true when loaded through shared_preload_libraries */
static bool es_preloaded = false;

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	es_preloaded = true;
	xact_dispatch_register();
	tracking_register_hooks();
	hlc_clock_init();
	hlc_horizon_register_hooks();
	compaction_init();

	/*
	 * Last, once every part has defined its settings: this drops the
	 * placeholders of any other event_stats.* name (a typo in
	 * postgresql.conf) with a warning, and refuses new ones.
	 */
	MarkGUCPrefixReserved("event_stats");
}

/*
 * Every SQL-callable function starts here, so that a missing preload is a
 * clear error instead of silently uncounted increments.
 */
void
es_require_preload(void)
{
	if (!es_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event_stats must be loaded via shared_preload_libraries"),
				 errhint("Add event_stats to shared_preload_libraries in postgresql.conf and restart the server.")));
}
