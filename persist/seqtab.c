/* SPDX-License-Identifier: BSD-3-Clause */
/* Channel heads and the dedup cache; see seqtab.h for the contract.
 *
 * The dedup cache is a fixed pool of entries used as a FIFO ring: inserting
 * takes the next slot, evicting whatever lived there. Entries are chained into
 * a power-of-two bucket array by index. Tentative entries of the batch being
 * planned are listed so that an abort can unlink them. Nothing here allocates
 * after creation except the channel table, which grows with active channels
 * up to heads_max; beyond it a clock hand walks the table's buckets and
 * evicts a head whose plan_gen is older than the hand's last full turn
 * (pass_gen). Reading or setting a head stamps it with the current plan_gen,
 * as planning does. */
#include "seqtab.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dedup_entry {
	int64_t channel, author, seq;
	int32_t next; /* bucket chain, -1 ends */
	int32_t item; /* batch item index while tentative */
	bool live;
	bool tentative;
	char client_msg_id[SEQTAB_CLIENT_MSG_ID_MAX + 1];
};

struct channel_head {
	struct channel_head *next;
	int64_t channel;
	int64_t head;
	int64_t epoch;	  /* the owner epoch claimed */
	int64_t next_seq; /* tentative, valid while plan_gen matches */
	uint64_t plan_gen;
};

struct seqtab {
	struct dedup_entry *pool;
	int32_t *buckets;
	uint32_t capacity, bucket_mask, ring_pos;
	int32_t *tentative;
	uint32_t ntentative;
	struct channel_head **channels;
	uint32_t channel_mask, nchannels;
	uint64_t plan_gen;
	size_t heads_max;  /* 0: no bound */
	uint32_t hand;	   /* the next bucket the eviction looks at */
	uint64_t pass_gen; /* plan_gen when the hand last came round */
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static uint64_t id_hash(int64_t channel, int64_t author, const char *id)
{
	uint64_t h = mix64((uint64_t)channel) ^ mix64((uint64_t)author * 31 + 7);

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ull;
	return mix64(h);
}

struct seqtab *seqtab_create(size_t dedup_capacity, size_t heads_max)
{
	struct seqtab *t = calloc(1, sizeof(*t));
	uint32_t nbuckets = 1;

	if (t == NULL)
		return NULL;
	if (dedup_capacity < 1024)
		dedup_capacity = 1024;
	if (dedup_capacity > (1u << 30))
		dedup_capacity = 1u << 30;
	while (nbuckets < dedup_capacity)
		nbuckets <<= 1;
	t->capacity = (uint32_t)dedup_capacity;
	t->heads_max = heads_max;
	t->bucket_mask = nbuckets - 1;
	t->pool = calloc(dedup_capacity, sizeof(*t->pool));
	t->buckets = malloc(nbuckets * sizeof(*t->buckets));
	t->tentative = malloc(dedup_capacity * sizeof(*t->tentative));
	t->channel_mask = 1023;
	t->channels = calloc(t->channel_mask + 1, sizeof(*t->channels));
	if (!t->pool || !t->buckets || !t->tentative || !t->channels) {
		seqtab_destroy(t);
		return err_null(-ENOMEM);
	}
	memset(t->buckets, 0xff, nbuckets * sizeof(*t->buckets));
	return t;
}

void seqtab_destroy(struct seqtab *t)
{
	if (t == NULL)
		return;
	for (uint32_t i = 0; t->channels && i <= t->channel_mask; i++) {
		struct channel_head *c = t->channels[i], *next;
		for (; c; c = next) {
			next = c->next;
			free(c);
		}
	}
	free(t->channels);
	free(t->pool);
	free(t->buckets);
	free(t->tentative);
	free(t);
}

/* Channel table */

static struct channel_head *channel_find(struct seqtab *t, int64_t channel)
{
	struct channel_head *c = t->channels[mix64((uint64_t)channel) & t->channel_mask];

	while (c && c->channel != channel)
		c = c->next;
	return c;
}

static int channel_grow(struct seqtab *t)
{
	uint32_t mask = t->channel_mask * 2 + 1;
	struct channel_head **table = calloc((size_t)mask + 1, sizeof(*table));

	if (table == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i <= t->channel_mask; i++) {
		struct channel_head *c = t->channels[i], *next;
		for (; c; c = next) {
			uint32_t b = (uint32_t)(mix64((uint64_t)c->channel) & mask);
			next = c->next;
			c->next = table[b];
			table[b] = c;
		}
	}
	free(t->channels);
	t->channels = table;
	t->channel_mask = mask;
	return 0;
}

/* Evicts one head not in use since the hand's last turn, looking at no more
 * than EVICT_SCAN buckets (the bound is soft: when all it saw are in use,
 * the table holds one more). True when one was evicted. */
#define EVICT_SCAN 64
static bool evict_one(struct seqtab *t)
{
	for (int n = 0; n < EVICT_SCAN; n++) {
		struct channel_head **pp = &t->channels[t->hand & t->channel_mask];

		for (; *pp; pp = &(*pp)->next) {
			if ((*pp)->plan_gen < t->pass_gen) {
				struct channel_head *c = *pp;

				*pp = c->next;
				free(c);
				t->nchannels--;
				return true;
			}
		}
		t->hand = (t->hand + 1) & t->channel_mask;
		if (t->hand == 0)
			t->pass_gen = t->plan_gen;
	}
	return false;
}

bool seqtab_head(struct seqtab *t, int64_t channel, int64_t *head)
{
	struct channel_head *c = channel_find(t, channel);

	if (c == NULL)
		return false;
	*head = c->head;
	/* In use now; the next plan starts a newer generation, so next_seq
	 * stays unused until planned. */
	c->plan_gen = t->plan_gen;
	return true;
}

size_t seqtab_heads(const struct seqtab *t)
{
	return t->nchannels;
}

int seqtab_set_head(struct seqtab *t, int64_t channel, int64_t head)
{
	struct channel_head *c = channel_find(t, channel);
	int evicted = 0;
	uint32_t b;

	if (c == NULL) {
		/* One to make room, and one more while above the bound (after
		 * the hand found only heads in use), so the table comes back. */
		for (int k = 0; k < 2 && t->heads_max && t->nchannels >= t->heads_max; k++)
			evicted += evict_one(t);
		if (t->nchannels > 2 * (t->channel_mask + 1) && channel_grow(t) < 0)
			return -ENOMEM;
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			return -ENOMEM;
		c->channel = channel;
		b = (uint32_t)(mix64((uint64_t)channel) & t->channel_mask);
		c->next = t->channels[b];
		t->channels[b] = c;
		t->nchannels++;
	}
	c->head = head;
	c->plan_gen = t->plan_gen; /* in use; next_seq unused until planned */
	return evicted;
}

int64_t seqtab_epoch(struct seqtab *t, int64_t channel)
{
	struct channel_head *c = channel_find(t, channel);

	return c ? c->epoch : 0;
}

void seqtab_set_epoch(struct seqtab *t, int64_t channel, int64_t epoch)
{
	struct channel_head *c = channel_find(t, channel);

	if (c)
		c->epoch = epoch;
}

void seqtab_forget(struct seqtab *t, int64_t channel)
{
	struct channel_head **pp = &t->channels[mix64((uint64_t)channel) & t->channel_mask];

	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->channel == channel) {
			struct channel_head *c = *pp;
			*pp = c->next;
			free(c);
			t->nchannels--;
			return;
		}
	}
}

/* Dedup cache */

static int32_t entry_find(struct seqtab *t, int64_t channel, int64_t author, const char *id)
{
	int32_t i = t->buckets[id_hash(channel, author, id) & t->bucket_mask];

	while (i >= 0) {
		struct dedup_entry *e = &t->pool[i];
		if (e->channel == channel && e->author == author &&
		    strcmp(e->client_msg_id, id) == 0)
			return i;
		i = e->next;
	}
	return -1;
}

static void entry_unlink(struct seqtab *t, int32_t idx)
{
	struct dedup_entry *e = &t->pool[idx];
	int32_t *pp =
	    &t->buckets[id_hash(e->channel, e->author, e->client_msg_id) & t->bucket_mask];

	while (*pp >= 0 && *pp != idx)
		pp = &t->pool[*pp].next;
	if (*pp == idx)
		*pp = e->next;
	e->live = false;
}

static int32_t entry_insert(struct seqtab *t, int64_t channel, int64_t author, const char *id,
			    int64_t seq)
{
	int32_t idx = (int32_t)t->ring_pos;
	struct dedup_entry *e = &t->pool[idx];
	uint64_t b;

	t->ring_pos = (t->ring_pos + 1) % t->capacity;
	if (e->live)
		entry_unlink(t, idx);
	e->channel = channel;
	e->author = author;
	e->seq = seq;
	e->tentative = false;
	e->live = true;
	snprintf(e->client_msg_id, sizeof(e->client_msg_id), "%s", id);
	b = id_hash(channel, author, e->client_msg_id) & t->bucket_mask;
	e->next = t->buckets[b];
	t->buckets[b] = idx;
	return idx;
}

void seqtab_remember(struct seqtab *t, int64_t channel, int64_t author, const char *client_msg_id,
		     int64_t seq)
{
	int32_t idx = entry_find(t, channel, author, client_msg_id);

	if (idx >= 0)
		t->pool[idx].seq = seq;
	else
		entry_insert(t, channel, author, client_msg_id, seq);
}

int64_t seqtab_lookup(struct seqtab *t, int64_t channel, int64_t author, const char *client_msg_id)
{
	int32_t idx = entry_find(t, channel, author, client_msg_id);

	return idx >= 0 && !t->pool[idx].tentative ? t->pool[idx].seq : 0;
}

/* Planning */

int seqtab_plan(struct seqtab *t, struct seq_item *items, int n)
{
	int fresh = 0;

	seqtab_abort(t);
	t->plan_gen++;
	for (int i = 0; i < n; i++) {
		struct seq_item *it = &items[i];
		struct channel_head *c;
		int32_t idx;

		it->entry = -1;
		it->dup_of = -1;
		if (it->state == SEQ_DONE)
			continue;
		c = channel_find(t, it->channel);
		if (c == NULL) {
			it->state = SEQ_NO_HEAD;
			it->seq = 0;
			continue;
		}
		if (c->plan_gen != t->plan_gen) {
			c->plan_gen = t->plan_gen;
			c->next_seq = c->head;
		}
		idx = entry_find(t, it->channel, it->author, it->client_msg_id);
		if (idx >= 0) {
			struct dedup_entry *e = &t->pool[idx];
			it->seq = e->seq;
			if (e->tentative) {
				it->state = SEQ_DUPLICATE_IN_BATCH;
				it->dup_of = e->item;
			} else {
				it->state = SEQ_DUPLICATE;
			}
			continue;
		}
		/* A batch larger than the cache would evict its own tentative
		 * entries; the writer caps batches well below capacity. */
		if (t->ntentative == t->capacity)
			return -ENOSPC;
		it->state = SEQ_NEW;
		it->seq = ++c->next_seq;
		idx = entry_insert(t, it->channel, it->author, it->client_msg_id, it->seq);
		t->pool[idx].tentative = true;
		t->pool[idx].item = i;
		t->tentative[t->ntentative++] = idx;
		it->entry = idx;
		fresh++;
	}
	return fresh;
}

void seqtab_commit(struct seqtab *t, const struct seq_item *items, int n)
{
	for (int i = 0; i < n; i++) {
		const struct seq_item *it = &items[i];
		struct channel_head *c;

		if (it->state != SEQ_NEW || it->entry < 0)
			continue;
		t->pool[it->entry].tentative = false;
		c = channel_find(t, it->channel);
		if (c && it->seq > c->head)
			c->head = it->seq;
	}
	seqtab_abort(t);
}

void seqtab_abort(struct seqtab *t)
{
	for (uint32_t i = 0; i < t->ntentative; i++) {
		struct dedup_entry *e = &t->pool[t->tentative[i]];
		if (e->live && e->tentative)
			entry_unlink(t, t->tentative[i]);
		e->tentative = false;
	}
	t->ntentative = 0;
	t->plan_gen++;
}
