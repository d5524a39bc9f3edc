/* SPDX-License-Identifier: BSD-3-Clause */
/* The search indexer: writes the words of committed messages into the
 * search index (migration 0013) after their commit, not inside it, so a
 * durable publish waits for its row and keys alone. The writer notes each
 * channel and the highest seq it committed there; a thread of the indexer's
 * own, on a connection of its own, indexes the noted channels from their
 * search_heads up to that seq in one statement per round, as many channels
 * as were noted meanwhile. Every minute (and at its start) it also looks for
 * channels whose head is behind their last seq, committed by a node that
 * stopped before indexing them. Indexing is idempotent and may run on
 * several nodes at once; losing a round (a crash, a failover) loses nothing
 * the next sweep does not find again, so its commits do not wait for the
 * disk (synchronous_commit off). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct search_indexer;

/* Starts the thread, which connects (with retries) on its own. NULL with
 * errno on failure. sweep_ms: how often to look for channels left behind
 * (0: a minute). */
struct search_indexer *search_indexer_create(const char *dsn, bool allow_unsafe,
					     int reconnect_max_ms, int sweep_ms);

/* The channel's messages up to seq are committed: index them. Thread-safe,
 * never blocks on PostgreSQL. */
void search_indexer_note(struct search_indexer *ix, int64_t channel, int64_t seq);

/* A writer lane has more queued than one batch takes: the indexer's rounds
 * wait for it (up to 2 s from their first note) so that the commits have
 * PostgreSQL's CPU. Thread-safe, lock-free. */
void search_indexer_writer_behind(struct search_indexer *ix);

/* Waits until everything noted before the call is in the index, at most
 * timeout_ms (no waiting for a writer behind meanwhile): 0 or -ETIMEDOUT. */
int search_indexer_flush(struct search_indexer *ix, int timeout_ms);

/* Indexes what is noted (at most drain_ms while PostgreSQL answers; what
 * is left is found by a later sweep), stops the thread and frees. */
void search_indexer_destroy(struct search_indexer *ix, int drain_ms);

/* Registers fanout_search_* metrics (once per process). */
int search_indexer_register_metrics(struct search_indexer *ix);
