/*-------------------------------------------------------------------------
 *
 * hlc_persist.c
 *	  Where the clock's ceiling is made durable: the state file, and the WAL
 *	  record that carries it to standbys.
 *
 * Every ceiling is written to both places because neither is enough alone.
 * WAL reaches standbys, but crash recovery replays it only from the last
 * checkpoint, and PostgreSQL 15 gives extensions no hook to put anything in
 * a checkpoint.  The state file ($PGDATA/event_stats_hlc, replaced with
 * durable_rename, so it is always either the old or the new ceiling)
 * survives checkpoints and is copied by base backups; the WAL records
 * after a backup's start bring the copy up to date, and redo on a standby
 * writes the standby's own file.
 *
 * The record is logged by the resource manager RM_EXPERIMENTAL_ID (128),
 * the id PostgreSQL reserves for extensions that have not registered one.
 * Every server that replays this WAL, standbys included, must preload the
 * library, and no other extension using that id can be loaded alongside.
 *
 * With synchronous standbys configured (synchronous_standby_names), a new
 * ceiling is used only once a synchronous standby has flushed it, whatever
 * the session's synchronous_commit, so that a promoted standby never
 * repeats a value the old primary handed out.  With asynchronous standbys
 * that holds only for what the standby received before the failover, as
 * for committed data.
 *
 * No state of its own; writers hold the clock's window lock (hlc_clock.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "replication/syncrep.h"
#include "replication/walsender_private.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/wait_event.h"

#include "event_stats.h"

#define EVENT_STATS_RMGR_ID		RM_EXPERIMENTAL_ID

/* the only record type: the clock's new ceiling */
#define XLOG_HLC_CEILING		0x00

typedef struct xl_hlc_ceiling
{
	Hlc			ceiling;
} xl_hlc_ceiling;

#define HLC_STATE_TEMP_FILE		"pgsql_tmp_" HLC_STATE_FILE
#define HLC_STATE_MAGIC			0x484C4331	/* "HLC1" */

typedef struct HlcStateFile
{
	uint32		magic;
	uint32		size;
	Hlc			ceiling;
	pg_crc32c	crc;			/* of the fields above */
} HlcStateFile;

static void hlc_redo(XLogReaderState *record);
static void hlc_desc(StringInfo buf, XLogReaderState *record);
static const char *hlc_identify(uint8 info);

static RmgrData hlc_rmgr = {
	.rm_name = "event_stats",
	.rm_redo = hlc_redo,
	.rm_desc = hlc_desc,
	.rm_identify = hlc_identify,
};

void
hlc_persist_register_rmgr(void)
{
	RegisterCustomRmgr(EVENT_STATS_RMGR_ID, &hlc_rmgr);
}

static pg_crc32c
hlc_state_crc(const HlcStateFile *state)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, state, offsetof(HlcStateFile, crc));
	FIN_CRC32C(crc);
	return crc;
}

/*
 * Read the ceiling from the state file: 0 when there is none (a new
 * server).  False, with a WARNING in the log, when it cannot be read or is
 * corrupt.
 */
bool
hlc_persist_read(Hlc *ceiling)
{
	HlcStateFile state;
	int			fd;
	int			nread;

	*ceiling = 0;
	fd = OpenTransientFile(HLC_STATE_FILE, O_RDONLY | PG_BINARY);
	if (fd < 0 && errno == ENOENT)
		return true;
	if (fd < 0)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", HLC_STATE_FILE)));
		return false;
	}
	nread = read(fd, &state, sizeof(state));
	CloseTransientFile(fd);
	if (nread != sizeof(state) || state.magic != HLC_STATE_MAGIC ||
		state.size != sizeof(state) ||
		!EQ_CRC32C(state.crc, hlc_state_crc(&state)))
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("hybrid logical clock state file \"%s\" is corrupt",
						HLC_STATE_FILE),
				 errdetail("The clock hands out no values until the file is restored or removed.")));
		return false;
	}
	*ceiling = state.ceiling;
	return true;
}

/*
 * Replace the state file.  With elevel below ERROR (at shutdown), a failure
 * is logged and the old file, whose ceiling is higher, stays.
 */
void
hlc_persist_write_state_file(Hlc ceiling, int elevel)
{
	HlcStateFile state;
	int			fd;

	memset(&state, 0, sizeof(state));
	state.magic = HLC_STATE_MAGIC;
	state.size = sizeof(state);
	state.ceiling = ceiling;
	state.crc = hlc_state_crc(&state);

	fd = OpenTransientFile(HLC_STATE_TEMP_FILE,
						   O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m",
						HLC_STATE_TEMP_FILE)));
		return;
	}
	errno = 0;
	if (write(fd, &state, sizeof(state)) != sizeof(state))
	{
		int			save_errno = errno;

		CloseTransientFile(fd);
		errno = save_errno ? save_errno : ENOSPC;
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m",
						HLC_STATE_TEMP_FILE)));
		return;
	}
	if (CloseTransientFile(fd) != 0)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m",
						HLC_STATE_TEMP_FILE)));
		return;
	}
	/* fsyncs the file, renames it, fsyncs the directory */
	(void) durable_rename(HLC_STATE_TEMP_FILE, HLC_STATE_FILE, elevel);
}

/*
 * Make a new ceiling durable on this server: WAL record, state file, WAL
 * flushed.  Returns the record's position for hlc_persist_wait_for_standbys.
 */
XLogRecPtr
hlc_persist_window(Hlc ceiling)
{
	xl_hlc_ceiling rec;
	XLogRecPtr	lsn;

	rec.ceiling = ceiling;
	XLogBeginInsert();
	XLogRegisterData((char *) &rec, sizeof(rec));
	lsn = XLogInsert(EVENT_STATS_RMGR_ID, XLOG_HLC_CEILING);

	hlc_persist_write_state_file(ceiling, ERROR);
	XLogFlush(lsn);
	return lsn;
}

static bool
hlc_sync_standbys_configured(void)
{
	return SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0';
}

/*
 * Wait until the synchronous standbys have flushed WAL up to lsn, when
 * there are any.  SyncRepWaitForLSN would follow the session's
 * synchronous_commit and return quietly when cancelled; here a cancel is
 * an error, so that the caller never uses a ceiling a standby may lack.
 * Like a waiting commit, the wait lasts until a synchronous standby
 * confirms or the statement is cancelled (statement_timeout applies); a
 * waiting session sees a changed synchronous_standby_names only after it.
 */
void
hlc_persist_wait_for_standbys(XLogRecPtr lsn)
{
	for (;;)
	{
		XLogRecPtr	flushed;

		if (XLogRecPtrIsInvalid(lsn) || !hlc_sync_standbys_configured())
			return;
		LWLockAcquire(SyncRepLock, LW_SHARED);
		flushed = WalSndCtl->lsn[SYNC_REP_WAIT_FLUSH];
		LWLockRelease(SyncRepLock);
		if (flushed >= lsn)
			return;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static void
hlc_redo(XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;
	xl_hlc_ceiling rec;

	if (info != XLOG_HLC_CEILING)
		elog(PANIC, "event_stats redo: unknown op code %u", info);
	memcpy(&rec, XLogRecGetData(record), sizeof(rec));
	hlc_clock_raise_persisted(rec.ceiling);
}

static void
hlc_desc(StringInfo buf, XLogReaderState *record)
{
	xl_hlc_ceiling rec;

	memcpy(&rec, XLogRecGetData(record), sizeof(rec));
	appendStringInfo(buf, "ceiling %s", hlc_to_cstring(rec.ceiling));
}

static const char *
hlc_identify(uint8 info)
{
	if ((info & ~XLR_INFO_MASK) == XLOG_HLC_CEILING)
		return "HLC_CEILING";
	return NULL;
}
