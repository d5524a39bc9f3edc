/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the sequencer's pure logic: dense tentative seqs per channel,
 * duplicates from the cache and within a batch, commit, abort, partial commit
 * (a fenced channel), eviction and forgetting a channel, and the bound on
 * the heads held: kept near it, never evicting a head in use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "seqtab.h"

#include <stdio.h>

static struct seq_item item(int64_t channel, int64_t author, const char *id)
{
	return (struct seq_item){.channel = channel, .author = author, .client_msg_id = id};
}

static void test_dense_per_channel(void **state)
{
	struct seqtab *t = seqtab_create(1024, 0);
	struct seq_item b[5] = {item(1, 7, "a"), item(2, 7, "a"), item(1, 7, "b"), item(1, 8, "a"),
				item(2, 7, "b")};
	int64_t head;

	assert_int_equal(seqtab_set_head(t, 1, 10), 0);
	assert_int_equal(seqtab_set_head(t, 2, 0), 0);
	assert_int_equal(seqtab_plan(t, b, 5), 5);
	assert_int_equal(b[0].seq, 11);
	assert_int_equal(b[2].seq, 12);
	assert_int_equal(b[3].seq, 13); /* same id, other author: not a duplicate */
	assert_int_equal(b[1].seq, 1);
	assert_int_equal(b[4].seq, 2);
	/* Nothing is durable until commit. */
	assert_true(seqtab_head(t, 1, &head));
	assert_int_equal(head, 10);
	seqtab_commit(t, b, 5);
	assert_true(seqtab_head(t, 1, &head));
	assert_int_equal(head, 13);
	assert_int_equal(seqtab_lookup(t, 1, 8, "a"), 13);
	seqtab_destroy(t);
}

static void test_duplicates(void **state)
{
	struct seqtab *t = seqtab_create(1024, 0);
	struct seq_item b1[1] = {item(1, 7, "x")};
	struct seq_item b2[3] = {item(1, 7, "x"), item(1, 7, "y"), item(1, 7, "y")};

	seqtab_set_head(t, 1, 0);
	seqtab_plan(t, b1, 1);
	seqtab_commit(t, b1, 1);
	assert_int_equal(seqtab_plan(t, b2, 3), 1);
	assert_int_equal(b2[0].state, SEQ_DUPLICATE);
	assert_int_equal(b2[0].seq, 1);
	assert_int_equal(b2[1].state, SEQ_NEW);
	assert_int_equal(b2[1].seq, 2);
	assert_int_equal(b2[2].state, SEQ_DUPLICATE_IN_BATCH);
	assert_int_equal(b2[2].dup_of, 1);
	assert_int_equal(b2[2].seq, 2);
	seqtab_destroy(t);
}

static void test_abort_undoes_everything(void **state)
{
	struct seqtab *t = seqtab_create(1024, 0);
	struct seq_item b[2] = {item(1, 7, "x"), item(1, 7, "y")};
	int64_t head;

	seqtab_set_head(t, 1, 5);
	seqtab_plan(t, b, 2);
	seqtab_abort(t);
	assert_int_equal(seqtab_lookup(t, 1, 7, "x"), 0);
	assert_true(seqtab_head(t, 1, &head));
	assert_int_equal(head, 5);
	/* Planned again, the same seqs come out: no gap after a failure. */
	assert_int_equal(seqtab_plan(t, b, 2), 2);
	assert_int_equal(b[0].seq, 6);
	assert_int_equal(b[1].seq, 7);
	seqtab_destroy(t);
}

static void test_partial_commit(void **state)
{
	struct seqtab *t = seqtab_create(1024, 0);
	struct seq_item b[2] = {item(1, 7, "x"), item(2, 7, "x")};
	int64_t head;

	seqtab_set_head(t, 1, 0);
	seqtab_set_head(t, 2, 0);
	seqtab_plan(t, b, 2);
	b[1].state = SEQ_DONE; /* channel 2 was fenced */
	seqtab_commit(t, b, 2);
	assert_int_equal(seqtab_lookup(t, 1, 7, "x"), 1);
	assert_int_equal(seqtab_lookup(t, 2, 7, "x"), 0);
	assert_true(seqtab_head(t, 2, &head));
	assert_int_equal(head, 0);
	seqtab_forget(t, 2);
	assert_false(seqtab_head(t, 2, &head));
	seqtab_destroy(t);
}

static void test_no_head(void **state)
{
	struct seqtab *t = seqtab_create(1024, 0);
	struct seq_item b[1] = {item(99, 1, "x")};

	assert_int_equal(seqtab_plan(t, b, 1), 0);
	assert_int_equal(b[0].state, SEQ_NO_HEAD);
	seqtab_destroy(t);
}

static void test_eviction_is_fifo(void **state)
{
	struct seqtab *t = seqtab_create(1024, 0);
	char id[32];

	seqtab_set_head(t, 1, 0);
	for (int i = 1; i <= 1500; i++) {
		snprintf(id, sizeof(id), "m%d", i);
		seqtab_remember(t, 1, 1, id, i);
	}
	assert_int_equal(seqtab_lookup(t, 1, 1, "m1"), 0);     /* evicted */
	assert_int_equal(seqtab_lookup(t, 1, 1, "m476"), 0);   /* evicted */
	assert_int_equal(seqtab_lookup(t, 1, 1, "m477"), 477); /* the oldest kept */
	assert_int_equal(seqtab_lookup(t, 1, 1, "m1500"), 1500);
	seqtab_destroy(t);
}

static void test_many_channels(void **state)
{
	struct seqtab *t = seqtab_create(1024, 0);
	int64_t head;

	for (int64_t c = 1; c <= 20000; c++)
		assert_int_equal(seqtab_set_head(t, c, c * 2), 0);
	for (int64_t c = 1; c <= 20000; c++) {
		assert_true(seqtab_head(t, c, &head));
		assert_int_equal(head, c * 2);
	}
	seqtab_destroy(t);
}

/* Publishes one message to channel c, its head loaded first, as a lane
 * does for a channel it does not hold. */
static void publish_one(struct seqtab *t, int64_t c, int *evicted)
{
	static int n;
	char id[32];
	struct seq_item b[1];
	int64_t head;
	int rc;

	snprintf(id, sizeof(id), "m%d", n++);
	b[0] = item(c, 1, id);
	if (!seqtab_head(t, c, &head)) {
		rc = seqtab_set_head(t, c, 100);
		assert_true(rc >= 0 && rc <= 2);
		*evicted += rc;
	}
	assert_int_equal(seqtab_plan(t, b, 1), 1);
	seqtab_commit(t, b, 1);
}

static void test_heads_bounded(void **state)
{
	struct seqtab *t = seqtab_create(1024, 256);
	int evicted = 0;
	int64_t head;

	for (int64_t c = 1; c <= 20000; c++) {
		publish_one(t, c, &evicted);
		/* a few channels stay busy all along */
		publish_one(t, 1 + c % 4, &evicted);
		assert_true(seqtab_heads(t) <= 256 + 32);
	}
	assert_true(seqtab_heads(t) <= 257);
	assert_int_equal((int)seqtab_heads(t) + evicted, 20000);
	assert_true(seqtab_head(t, 20000, &head)); /* the newest is held */
	assert_int_equal(head, 101);
	for (int64_t c = 1; c <= 4; c++) /* and the busy ones */
		assert_true(seqtab_head(t, c, &head));
	assert_false(seqtab_head(t, 5000, &head)); /* one long idle is not */
	seqtab_destroy(t);
}

static void test_heads_in_use_kept(void **state)
{
	struct seqtab *t = seqtab_create(1024, 64);
	int evicted = 0, left = 0;
	int64_t head;

	for (int64_t c = 1; c <= 64; c++)
		publish_one(t, c, &evicted);
	assert_int_equal(evicted, 0);
	/* A batch for channels 1-8 looks up their heads, then loads those of
	 * 500 channels it has not got: none of the eight may go. */
	for (int64_t c = 1; c <= 8; c++)
		assert_true(seqtab_head(t, c, &head));
	for (int64_t c = 1000; c < 1500; c++)
		assert_true(seqtab_set_head(t, c, 0) >= 0);
	for (int64_t c = 1; c <= 8; c++) {
		assert_true(seqtab_head(t, c, &head));
		assert_int_equal(head, 101);
	}
	for (int64_t c = 9; c <= 64; c++)
		left += seqtab_head(t, c, &head);
	assert_int_equal(left, 0);	      /* the rest were free to go, and went */
	for (int64_t c = 1000; c < 1500; c++) /* nor the heads just loaded */
		assert_true(seqtab_head(t, c, &head));
	/* Once planned, committed and idle a while, the table comes back near its
	 * bound. */
	for (int64_t c = 2000; c < 4000; c++)
		publish_one(t, c, &evicted);
	assert_true(seqtab_heads(t) <= 64 + 32);
	seqtab_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dense_per_channel),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_abort_undoes_everything),
	    cmocka_unit_test(test_partial_commit),
	    cmocka_unit_test(test_no_head),
	    cmocka_unit_test(test_eviction_is_fifo),
	    cmocka_unit_test(test_many_channels),
	    cmocka_unit_test(test_heads_bounded),
	    cmocka_unit_test(test_heads_in_use_kept),
	};
	return cmocka_run_group_tests_name("seqtab", tests, NULL, NULL);
}
