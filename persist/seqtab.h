/* SPDX-License-Identifier: BSD-3-Clause */
/* The sequencer's memory: each channel's durable head, and a bounded cache of
 * recent (channel, author, client_msg_id) -> seq for deduplicating retries.
 * Pure logic with no I/O, owned by one writer lane: its thread or the
 * loop driving it, never both at once (not thread-safe).
 *
 * A batch is planned, then committed or aborted:
 *   seqtab_plan()   assigns tentative seqs (head+1, head+2, ... per channel,
 *                   in batch order) and marks duplicates of cached ids or of
 *                   earlier items in the same batch;
 *   seqtab_commit() after COMMIT: heads advance, tentative ids become cached;
 *   seqtab_abort()  after a failure: every tentative assignment is undone.
 * The cache is only a fast path. PostgreSQL's unique key is the truth, so an
 * id evicted from the cache is still caught (by the writer's resolve step).
 *
 * The heads are bounded too (heads_max, a soft bound): a new head evicts one
 * not planned or read since the clock hand last went round the table. A
 * head read (seqtab_head) or set is in use until the next plan, so loading
 * a batch's missing heads never evicts another of the same batch. An
 * evicted head is loaded again from PostgreSQL when next needed, as after
 * seqtab_forget. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEQTAB_CLIENT_MSG_ID_MAX 64

enum seq_state {
	SEQ_NEW,		/* seq is the tentative new seq */
	SEQ_DUPLICATE,		/* seq is the original, already durable */
	SEQ_DUPLICATE_IN_BATCH, /* same id as item dup_of earlier in this batch */
	SEQ_NO_HEAD,		/* the channel's head is not loaded; nothing assigned */
	SEQ_DONE,		/* set by the caller: settled outside the plan */
};

struct seq_item {
	int64_t channel;
	int64_t author;
	const char *client_msg_id; /* 1..64 bytes, NUL-terminated */
	/* Outputs of seqtab_plan(). */
	enum seq_state state;
	int64_t seq;
	int dup_of;
	int32_t entry; /* internal: the tentative cache entry */
};

struct seqtab;

/* dedup_capacity ids are remembered (at least 1024), about heads_max
 * channel heads (0: no bound). NULL/ENOMEM on failure. */
struct seqtab *seqtab_create(size_t dedup_capacity, size_t heads_max);
void seqtab_destroy(struct seqtab *t);

/* The durable head of a channel; false when not loaded. The head is then in
 * use (not evicted) until the next plan. */
bool seqtab_head(struct seqtab *t, int64_t channel, int64_t *head);
/* Records a head read from PostgreSQL: how many other channels' heads were
 * evicted to make room (0 to 2), or -ENOMEM. */
int seqtab_set_head(struct seqtab *t, int64_t channel, int64_t head);
/* How many channel heads are held. */
size_t seqtab_heads(const struct seqtab *t);
/* The owner epoch this writer claimed the channel at (0 until claimed, or
 * when alone), and setting it; the head must be loaded. */
int64_t seqtab_epoch(struct seqtab *t, int64_t channel);
void seqtab_set_epoch(struct seqtab *t, int64_t channel, int64_t epoch);
/* Forgets a channel's head (after a failed fence: another writer owns it). */
void seqtab_forget(struct seqtab *t, int64_t channel);

/* Remembers a durable id found in PostgreSQL. */
void seqtab_remember(struct seqtab *t, int64_t channel, int64_t author, const char *client_msg_id,
		     int64_t seq);
/* The durable seq of an id, or 0 when not cached. */
int64_t seqtab_lookup(struct seqtab *t, int64_t channel, int64_t author, const char *client_msg_id);

/* Plans a batch (see the file comment). Returns the number of SEQ_NEW items.
 * The plan stays tentative until seqtab_commit() or seqtab_abort(). */
int seqtab_plan(struct seqtab *t, struct seq_item *items, int n);

/* Makes durable every item still in state SEQ_NEW, in order, then aborts what
 * remains tentative (items the caller moved out of SEQ_NEW, e.g. fenced). */
void seqtab_commit(struct seqtab *t, const struct seq_item *items, int n);

/* Undoes every tentative assignment of the current plan. */
void seqtab_abort(struct seqtab *t);
