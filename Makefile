# event_stats -- PGXS build.  See README.md for the two commands that build,
# install and test it on a fresh Debian 12 machine.

EXTENSION = event_stats
MODULE_big = event_stats
OBJS = \
	src/module.o \
	src/xact_dispatch.o \
	src/counter_store.o \
	src/counter_pending.o \
	src/counter_type.o \
	src/counter_api.o \
	src/counter_acl.o \
	src/tracking.o \
	src/tracking_ddl.o \
	src/tracking_api.o \
	src/replication.o \
	src/hlc_type.o \
	src/hlc_clock.o \
	src/hlc_persist.o \
	src/hlc_horizon.o \
	src/hlc_api.o \
	src/compaction.o
# Install scripts: 1.0 and 1.1 in full (CREATE EXTENSION ... VERSION), and
# the update from 1.0 to 1.1 (ALTER EXTENSION event_stats UPDATE).
DATA = sql/event_stats--1.0.sql sql/event_stats--1.1.sql sql/event_stats--1.0--1.1.sql
PGFILEDESC = "event_stats - sharded counters, row counts and a hybrid logical clock"

# -Wextra's unused-parameter fires inside PostgreSQL's own headers (and on
# every callback signature), so it is the one -Wextra warning turned off.
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter

# pg_regress (sql/, expected/), against a server that preloads the library
REGRESS = counter_api counter_xact counter_privileges stale_handles tracking tracking_trees parallel_value hlc hlc_horizon

# (no_preload runs separately, against a server without the preload)

ISOLATION = counter_concurrent_increments counter_snapshot_reader counter_set_race \
	counter_set_first_insert counter_drop_first_insert \
	tracking_track_during_writes tracking_untrack_race tracking_truncate_race \
	tracking_serializable_ddl counter_serializable_no_siread \
	hlc_horizon_late_commit
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = test/isolation/output

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
