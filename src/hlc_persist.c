/*-------------------------------------------------------------------------
 *
 * hlc_persist.c
 *	  Where the clock's ceiling, and the holds of prepared transactions on
 *	  the closed timestamp (hlc_horizon.c), are made durable: the state
 *	  file, and the WAL records that carry them to standbys.
 *
 * Every change is written to both places because neither is enough alone.
 * WAL reaches standbys, but crash recovery replays it only from the last
 * checkpoint, and PostgreSQL 15 gives extensions no hook to put anything in
 * a checkpoint.  The state file ($PGDATA/event_stats_hlc, replaced with
 * durable_rename, so it is always either the old or the new state)
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
#include <sys/stat.h>
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
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "event_stats.h"

#define EVENT_STATS_RMGR_ID		RM_EXPERIMENTAL_ID

/* record types: the clock's new ceiling; a prepared transaction's hold */
#define XLOG_HLC_CEILING		0x00
#define XLOG_HLC_PREPARED_HOLD	0x10

typedef struct xl_hlc_ceiling
{
	Hlc			ceiling;
} xl_hlc_ceiling;

typedef struct xl_hlc_prepared_hold
{
	TransactionId xid;
	Hlc			holds;
} xl_hlc_prepared_hold;

#define HLC_STATE_TEMP_FILE		"pgsql_tmp_" HLC_STATE_FILE
#define HLC_STATE_MAGIC			0x484C4332	/* "HLC2" */

/*
 * The state file: the ceiling, the holds of prepared transactions
 * (hlc_horizon.c), and a CRC of everything before it.
 */
typedef struct HlcStateHeader
{
	uint32		magic;
	uint32		size;			/* of the whole file */
	Hlc			ceiling;
	uint32		nprepared;
	uint32		padding;
} HlcStateHeader;

#define HLC_STATE_SIZE(n) \
	(sizeof(HlcStateHeader) + (n) * sizeof(HlcPreparedHold) + sizeof(pg_crc32c))

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
hlc_state_crc(const char *buf, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, buf, len);
	FIN_CRC32C(crc);
	return crc;
}

static void
hlc_report_corrupt_state(const char *detail)
{
	ereport(WARNING,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("hybrid logical clock state file \"%s\" is corrupt",
					HLC_STATE_FILE),
			 errdetail("%s The clock hands out no values until the file is restored or removed.",
					   detail)));
}

/*
 * How many holds of prepared transactions the state file says it has, so
 * that shared memory makes room for all of them even when
 * max_prepared_transactions was lowered since the file was written (the
 * holds of finished transactions are pruned once the server runs).  Runs in
 * the postmaster's shmem_request hook, with the data directory as the
 * working directory.  Only the header is checked against the file's size;
 * 0 when there is no file or they disagree, and hlc_persist_read, at
 * shared memory start-up, reports what is wrong with it.
 */
int
hlc_persist_count_holds(void)
{
	HlcStateHeader header;
	struct stat st;
	int			fd;
	int			nread;

	fd = OpenTransientFile(HLC_STATE_FILE, O_RDONLY | PG_BINARY);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) != 0)
	{
		CloseTransientFile(fd);
		return 0;
	}
	nread = read(fd, &header, sizeof(header));
	CloseTransientFile(fd);
	if (nread != (int) sizeof(header) || header.magic != HLC_STATE_MAGIC ||
		header.size != (uint64) st.st_size ||
		header.nprepared > (uint32) (MaxAllocSize / sizeof(HlcPreparedHold)) ||
		HLC_STATE_SIZE(header.nprepared) != (uint64) st.st_size)
		return 0;
	return (int) header.nprepared;
}

/*
 * Read the state file: the ceiling (0 when there is no file: a new server)
 * and up to maxholds holds of prepared transactions.  False, with a
 * WARNING in the log, when it cannot be read or is corrupt.
 */
bool
hlc_persist_read(Hlc *ceiling, HlcPreparedHold *holds, int *nholds,
				 int maxholds)
{
	size_t		maxsize = HLC_STATE_SIZE(maxholds);
	char	   *buf = palloc(maxsize + 1);
	HlcStateHeader header;
	int			fd;
	int			nread;
	pg_crc32c	crc;

	*ceiling = 0;
	*nholds = 0;
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
	nread = read(fd, buf, maxsize + 1);
	CloseTransientFile(fd);
	if (nread < (int) HLC_STATE_SIZE(0))
	{
		hlc_report_corrupt_state("The file is too short.");
		return false;
	}
	memcpy(&header, buf, sizeof(header));
	if (header.magic != HLC_STATE_MAGIC || header.size != (uint32) nread ||
		HLC_STATE_SIZE(header.nprepared) != (size_t) nread)
	{
		hlc_report_corrupt_state(header.size == (uint32) nread &&
								 header.nprepared > (uint32) maxholds ?
								 "It holds more prepared transactions than there was room for when the server started." :
								 "Its header is not valid.");
		return false;
	}
	memcpy(&crc, buf + nread - sizeof(crc), sizeof(crc));
	if (!EQ_CRC32C(crc, hlc_state_crc(buf, nread - sizeof(crc))))
	{
		hlc_report_corrupt_state("Its checksum does not match.");
		return false;
	}
	*ceiling = header.ceiling;
	*nholds = header.nprepared;
	memcpy(holds, buf + sizeof(header), header.nprepared * sizeof(HlcPreparedHold));
	pfree(buf);
	return true;
}

/*
 * Replace the state file with the ceiling and the current holds of prepared
 * transactions.  Callers hold the clock's window lock (or are alone: the
 * postmaster at shutdown).  With elevel below ERROR (at shutdown, whose
 * old file has a higher ceiling, and after COMMIT PREPARED, whose old file
 * only has one hold more), a failure is logged and the old file stays.
 */
void
hlc_persist_write_state_file(Hlc ceiling, int elevel)
{
	int			maxholds = hlc_horizon_max_prepared();
	HlcPreparedHold *holds = palloc(Max(maxholds, 1) * sizeof(HlcPreparedHold));
	int			nholds = hlc_horizon_copy_prepared(holds, maxholds);
	size_t		size = HLC_STATE_SIZE(nholds);
	char	   *buf = palloc0(size);
	HlcStateHeader header = {0};
	pg_crc32c	crc;
	int			fd;

	header.magic = HLC_STATE_MAGIC;
	header.size = size;
	header.ceiling = ceiling;
	header.nprepared = nholds;
	memcpy(buf, &header, sizeof(header));
	memcpy(buf + sizeof(header), holds, nholds * sizeof(HlcPreparedHold));
	crc = hlc_state_crc(buf, size - sizeof(crc));
	memcpy(buf + size - sizeof(crc), &crc, sizeof(crc));

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
	if (write(fd, buf, size) != (ssize_t) size)
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
	pfree(buf);
	pfree(holds);
}

/*
 * Log one record, rewrite the state file with the given ceiling (and every
 * prepared hold), and flush the WAL up to the record.
 */
static XLogRecPtr
hlc_persist_logged(uint8 info, void *rec, int len, Hlc ceiling)
{
	XLogRecPtr	lsn;

	XLogBeginInsert();
	XLogRegisterData((char *) rec, len);
	lsn = XLogInsert(EVENT_STATS_RMGR_ID, info);

	hlc_persist_write_state_file(ceiling, ERROR);
	XLogFlush(lsn);
	return lsn;
}

/*
 * Make a new ceiling durable on this server.  Returns the record's
 * position for hlc_persist_wait_for_standbys.
 */
XLogRecPtr
hlc_persist_window(Hlc ceiling)
{
	xl_hlc_ceiling rec = {.ceiling = ceiling};

	return hlc_persist_logged(XLOG_HLC_CEILING, &rec, sizeof(rec), ceiling);
}

/*
 * Make a prepared transaction's hold durable on this server, with the
 * ceiling as it stands.  The PREPARE record follows, and a synchronous
 * standby confirms it, and so this record, before PREPARE returns.
 */
void
hlc_persist_prepared_hold(TransactionId xid, Hlc holds, Hlc ceiling)
{
	xl_hlc_prepared_hold rec = {.xid = xid, .holds = holds};

	(void) hlc_persist_logged(XLOG_HLC_PREPARED_HOLD, &rec, sizeof(rec), ceiling);
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

	if (info == XLOG_HLC_CEILING)
	{
		xl_hlc_ceiling rec;

		memcpy(&rec, XLogRecGetData(record), sizeof(rec));
		hlc_clock_raise_persisted(rec.ceiling);
	}
	else if (info == XLOG_HLC_PREPARED_HOLD)
	{
		xl_hlc_prepared_hold rec;

		memcpy(&rec, XLogRecGetData(record), sizeof(rec));
		hlc_clock_redo_prepared_hold(rec.xid, rec.holds);
	}
	else
		elog(PANIC, "event_stats redo: unknown op code %u", info);
}

static void
hlc_desc(StringInfo buf, XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;

	if (info == XLOG_HLC_CEILING)
	{
		xl_hlc_ceiling rec;

		memcpy(&rec, XLogRecGetData(record), sizeof(rec));
		appendStringInfo(buf, "ceiling %s", hlc_to_cstring(rec.ceiling));
	}
	else if (info == XLOG_HLC_PREPARED_HOLD)
	{
		xl_hlc_prepared_hold rec;

		memcpy(&rec, XLogRecGetData(record), sizeof(rec));
		appendStringInfo(buf, "xid %u holds %s", rec.xid,
						 hlc_to_cstring(rec.holds));
	}
}

static const char *
hlc_identify(uint8 info)
{
	switch (info & ~XLR_INFO_MASK)
	{
		case XLOG_HLC_CEILING:
			return "HLC_CEILING";
		case XLOG_HLC_PREPARED_HOLD:
			return "HLC_PREPARED_HOLD";
	}
	return NULL;
}
