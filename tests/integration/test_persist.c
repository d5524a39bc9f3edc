/* SPDX-License-Identifier: BSD-3-Clause */
/* Integration tests of the persist tier against a real PostgreSQL started by
 * deploy/test: migrations, dense seqs under concurrent publishers, duplicates
 * (in memory, within a batch, and only known to PostgreSQL), the fence, bad
 * input, a PostgreSQL restart in the middle of a stream, and history paging.
 *
 * Needs FANOUT_TEST_PG_DSN, and FANOUT_TEST_PG_RESTART (a shell command that
 * restarts that server). Missing either is a failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "metrics.h"
#include "migrate.h"
#include "pg.h"
#include "reader.h"
#include "store.h"
#include "writer.h"

#include "persist_fixture.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Setup */

static int group_setup(void **state)
{
	dsn = getenv("FANOUT_TEST_PG_DSN");
	if (dsn == NULL || getenv("FANOUT_TEST_PG_RESTART") == NULL) {
		fprintf(stderr, "FANOUT_TEST_PG_DSN and FANOUT_TEST_PG_RESTART must be set "
				"(deploy/test sets them)\n");
		return -1;
	}
	return fixture_connect();
}

/* Tests */

static void test_migrations_idempotent_and_checked(void **state)
{
	char err[512];
	PGresult *res;

	assert_int_equal(migrate_apply(db, err, sizeof(err)), 0);
	assert_int_equal(migrate_check(db), 0);
	assert_int_equal(sql_long("SELECT count(*) FROM schema_migrations"), migrations_count);
	/* A recorded checksum that no longer matches the embedded text stops
	 * start-up, naming the migration. */
	PQclear(sql("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1"));
	assert_int_equal(migrate_apply(db, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, migrations[0].name));
	assert_non_null(strstr(err, "different text"));
	char checksum[17];
	migrate_checksum(migrations[0].sql, checksum);
	res = sql("UPDATE schema_migrations SET checksum = '%s' WHERE version = 1", checksum);
	PQclear(res);
	assert_int_equal(migrate_apply(db, err, sizeof(err)), 0);
}

static void test_durability_refused(void **state)
{
	char unsafe[1200], err[512];
	PGconn *conn;

	snprintf(unsafe, sizeof(unsafe), "%s options='-c synchronous_commit=off'", dsn);
	conn = pg_connect(unsafe, false, err, sizeof(err));
	assert_null(conn);
	assert_non_null(strstr(err, "synchronous_commit=off"));
	assert_non_null(strstr(err, "allow_unsafe_commit"));
	conn = pg_connect(unsafe, true, err, sizeof(err));
	assert_non_null(conn);
	PQfinish(conn);
}

/* A connection says what it is in pg_stat_activity: "fanout " and its
 * name, unless the DSN names it itself; a writer's lanes by number. */
static void test_connections_are_named(void **state)
{
	char own[1200], name[80];
	struct collector *c = collector_new(4);
	struct persist_writer_config cfg = {
	    .dsn = dsn, .batch_max = 16, .queue_max = 100, .dedup_cache = 4096, .writers = 5};
	struct persist_writer *w;
	PGconn *conn = pg_connect_named(dsn, "probe");
	PGresult *res;

	assert_int_equal(PQstatus(conn), CONNECTION_OK);
	res = PQexec(conn, "SHOW application_name");
	assert_string_equal(PQgetvalue(res, 0, 0), "fanout probe");
	PQclear(res);
	PQfinish(conn);
	snprintf(own, sizeof(own), "%s application_name=mine", dsn);
	conn = pg_connect_named(own, "probe");
	res = PQexec(conn, "SHOW application_name");
	assert_string_equal(PQgetvalue(res, 0, 0), "mine");
	PQclear(res);
	PQfinish(conn);

	/* Five lanes: no other test's writer has a fifth. */
	w = fixture_writer_create(&cfg, collect, c);
	assert_non_null(w);
	for (int i = 0; i < 500 && !persist_writer_connected(w); i++)
		usleep(10000);
	assert_true(persist_writer_connected(w));
	for (int lane = 1; lane <= 5; lane++) {
		snprintf(name, sizeof(name), "fanout writer lane %d", lane);
		assert_true(sql_long("SELECT count(*) FROM pg_stat_activity WHERE application_name "
				     "= '%s'",
				     name) >= 1);
	}
	fixture_writer_destroy(w);
	/* A backend leaves pg_stat_activity a moment after its client. */
	for (int i = 0; i < 500 && sql_long("SELECT count(*) FROM pg_stat_activity WHERE "
					    "application_name = 'fanout writer lane 5'") > 0;
	     i++)
		usleep(10000);
	assert_int_equal(sql_long("SELECT count(*) FROM pg_stat_activity WHERE application_name "
				  "= 'fanout writer lane 5'"),
			 0);
	collector_free(c);
}

#define PUBLISHERS    8
#define PER_PUBLISHER 500

struct publisher_arg {
	struct persist_writer *w;
	int64_t channel;
	int index;
};

static void *publisher_main(void *arg)
{
	struct publisher_arg *a = arg;
	char id[32], body[64];

	for (int i = 0; i < PER_PUBLISHER; i++) {
		snprintf(id, sizeof(id), "p%d-%d", a->index, i);
		snprintf(body, sizeof(body), "message %d from publisher %d", i, a->index);
		while (publish(a->w, a->channel, 100 + a->index, id, body,
			       (uintptr_t)(a->index * PER_PUBLISHER + i)) == -EAGAIN)
			usleep(1000);
	}
	return NULL;
}

static void test_dense_under_concurrent_publishers(void **state)
{
	const int total = PUBLISHERS * PER_PUBLISHER;
	struct collector *c = collector_new(total);
	struct persist_writer *w = writer_new(c, 256, 65536);
	int64_t channel = new_channel("dense");
	struct publisher_arg args[PUBLISHERS];
	pthread_t threads[PUBLISHERS];
	int64_t last_seen[PUBLISHERS] = {0};
	char *seen = calloc((size_t)total + 1, 1);

	for (int i = 0; i < PUBLISHERS; i++) {
		args[i] = (struct publisher_arg){w, channel, i};
		pthread_create(&threads[i], NULL, publisher_main, &args[i]);
	}
	for (int i = 0; i < PUBLISHERS; i++)
		pthread_join(threads[i], NULL);
	wait_for(c, total);
	fixture_writer_destroy(w);

	int64_t prev = 0;
	for (int i = 0; i < total; i++) {
		struct outcome *o = &c->got[i];
		int pub = (int)(o->cookie / PER_PUBLISHER);

		assert_int_equal(o->outcome, PERSIST_COMMITTED);
		assert_true(o->seq >= 1 && o->seq <= total);
		assert_false(seen[o->seq]);
		seen[o->seq] = 1;
		/* Handed on in seq order. */
		assert_true(o->seq == prev + 1);
		prev = o->seq;
		/* Each publisher's own messages keep their submit order. */
		assert_true(o->seq > last_seen[pub]);
		last_seen[pub] = o->seq;
	}
	assert_dense(channel, total);
	free(seen);
	collector_free(c);
}

/* A writer for the loop's cases, connected, its counters registered with
 * it alone (metrics_reset() before it goes); the two counters now. */
static struct persist_writer *loop_writer(struct collector *c, long *batches, long *handbacks)
{
	struct persist_writer *w = writer_new(c, 16, 1024);

	metrics_reset();
	assert_int_equal(persist_writer_register_metrics(w), 0);
	for (int i = 0; i < 500 && !persist_writer_connected(w); i++)
		usleep(10000);
	*batches = fixture_metric("fanout_persist_loop_batches_total");
	*handbacks = fixture_metric("fanout_persist_loop_handbacks_total");
	return w;
}

/* Under FANOUT_TEST_LOOP the fixture's loop drives the lane: after the
 * first batch (the channel's head to load: the lane's thread) the batches
 * are sent and committed on the loop's thread; otherwise none is. */
static void test_loop_drives_where_asked(void **state)
{
	struct collector *c = collector_new(300);
	long batches, handbacks;
	struct persist_writer *w = loop_writer(c, &batches, &handbacks);
	int64_t ch = new_channel("loop");
	char id[32];

	(void)state;
	/* Groups of ten, each answered before the next: the lane idle in
	 * between, when its thread gives it to the loop. */
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "loop-%d", i);
		assert_int_equal(publish(w, ch, 1, id, "x", (uintptr_t)i), 0);
		if (i % 10 == 9)
			wait_for(c, i + 1);
	}
	wait_for(c, 200);
	/* Read while w lives: its gauges are rendered with the counters. */
	batches = fixture_metric("fanout_persist_loop_batches_total") - batches;
	handbacks = fixture_metric("fanout_persist_loop_handbacks_total") - handbacks;
	metrics_reset(); /* nothing renders w's gauges once it is gone */
	fixture_writer_destroy(w);
	for (int i = 0; i < 200; i++)
		assert_int_equal(c->got[i].outcome, PERSIST_COMMITTED);
	assert_dense(ch, 200);
	if (fixture_loop() && fixture_copy_min_rows() == 0) {
		/* 20 groups: the first with the head for the thread to load */
		assert_true(batches >= 10);
		assert_true(handbacks >= 1);
	} else if (fixture_loop()) {
		assert_int_equal(batches, 0); /* every batch by COPY: the thread's */
		assert_true(handbacks >= 1);
	} else {
		assert_int_equal(batches, 0);
		assert_int_equal(handbacks, 0);
	}
	collector_free(c);
}

/* A loop that ends with a batch in flight hands it to the lane's thread,
 * which reads its answer: the message commits once. The append is held in
 * flight by a lock on the channel's row. */
static void test_loop_ends_with_a_batch_in_flight(void **state)
{
	struct collector *c = collector_new(4);
	long batches, handbacks;
	struct persist_writer *w = loop_writer(c, &batches, &handbacks);
	int64_t ch = new_channel("inflight");

	(void)state;
	assert_int_equal(publish(w, ch, 1, "first", "x", 1), 0);
	wait_for(c, 1); /* the head loaded: the lane idle, the loop's if any */
	usleep(100000);
	batches = fixture_metric("fanout_persist_loop_batches_total");
	handbacks = fixture_metric("fanout_persist_loop_handbacks_total");
	PQclear(sql("BEGIN"));
	PQclear(sql("SELECT 1 FROM channels WHERE id = %ld FOR UPDATE", (long)ch));
	assert_int_equal(publish(w, ch, 1, "second", "y", 2), 0);
	usleep(200000); /* sent, and waiting for the row */
	fixture_loop_stop(w);
	assert_int_equal(c->n, 1);
	PQclear(sql("COMMIT"));
	wait_for(c, 2);
	batches = fixture_metric("fanout_persist_loop_batches_total") - batches;
	handbacks = fixture_metric("fanout_persist_loop_handbacks_total") - handbacks;
	metrics_reset(); /* nothing renders w's gauges once it is gone */
	fixture_writer_destroy(w);
	assert_int_equal(c->got[1].outcome, PERSIST_COMMITTED);
	assert_int_equal(c->got[1].seq, 2);
	assert_dense(ch, 2);
	assert_int_equal(batches, 0);			     /* the thread finished it */
	assert_int_equal(handbacks, fixture_loop() ? 1 : 0); /* in flight, or a COPY */
	collector_free(c);
}

static void test_duplicate_gets_same_seq(void **state)
{
	struct collector *c = collector_new(16);
	struct persist_writer *w = writer_new(c, 64, 4096);
	int64_t channel = new_channel("dup");

	assert_int_equal(publish(w, channel, 1, "same", "first", 1), 0);
	wait_for(c, 1);
	assert_int_equal(c->got[0].outcome, PERSIST_COMMITTED);
	assert_int_equal(c->got[0].seq, 1);
	/* The ack's timestamp is the stored one, to the microsecond. */
	assert_int_equal(c->got[0].created_at_us,
			 sql_long("SELECT (extract(epoch FROM created_at) * 1000000)::int8 FROM "
				  "messages WHERE channel_id = %ld AND seq = 1",
				  (long)channel));
	/* A retry answered from the cache. */
	assert_int_equal(publish(w, channel, 1, "same", "retry", 2), 0);
	wait_for(c, 2);
	assert_int_equal(c->got[1].outcome, PERSIST_DUPLICATE);
	assert_int_equal(c->got[1].seq, 1);
	/* The same id from another author is another message. */
	assert_int_equal(publish(w, channel, 2, "same", "other author", 3), 0);
	wait_for(c, 3);
	assert_int_equal(c->got[2].outcome, PERSIST_COMMITTED);
	assert_int_equal(c->got[2].seq, 2);
	fixture_writer_destroy(w);

	/* A fresh writer (a restarted node) knows nothing in memory: the unique
	 * key in PostgreSQL answers, and the batch around it still commits. */
	w = writer_new(c, 64, 4096);
	assert_int_equal(publish(w, channel, 3, "new-a", "a", 4), 0);
	assert_int_equal(publish(w, channel, 1, "same", "retry after restart", 5), 0);
	assert_int_equal(publish(w, channel, 3, "new-b", "b", 6), 0);
	wait_for(c, 6);
	fixture_writer_destroy(w);
	for (int i = 3; i < 6; i++) {
		struct outcome *o = &c->got[i];
		if (o->cookie == 5) {
			assert_int_equal(o->outcome, PERSIST_DUPLICATE);
			assert_int_equal(o->seq, 1);
		} else {
			assert_int_equal(o->outcome, PERSIST_COMMITTED);
		}
	}
	assert_dense(channel, 4);
	assert_int_equal(sql_long("SELECT count(*) FROM messages WHERE channel_id = %ld AND "
				  "client_msg_id = 'same' AND author_id = 1",
				  (long)channel),
			 1);
	collector_free(c);
}

static void test_duplicate_within_one_batch(void **state)
{
	struct collector *c = collector_new(64);
	struct persist_writer *w;
	int64_t channel = new_channel("dupbatch");
	char id[16];

	/* A 100 ms window gathers all of these into one transaction. */
	struct persist_writer_config cfg = {.dsn = dsn,
					    .copy_min_rows = fixture_copy_min_rows(),
					    .batch_max = 64,
					    .batch_window_us = 100000,
					    .queue_max = 100,
					    .dedup_cache = 4096};
	w = fixture_writer_create(&cfg, collect, c);
	assert_non_null(w);
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "id%d", i % 5);
		assert_int_equal(publish(w, channel, 1, id, "x", (uintptr_t)i), 0);
	}
	wait_for(c, 10);
	fixture_writer_destroy(w);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(c->got[i].outcome, i < 5 ? PERSIST_COMMITTED : PERSIST_DUPLICATE);
		assert_int_equal(c->got[i].seq, (i % 5) + 1);
	}
	assert_dense(channel, 5);
	collector_free(c);
}

static void test_evicted_id_found_in_postgres(void **state)
{
	struct collector *c = collector_new(3000);
	struct persist_writer *w = writer_new(c, 16, 1024); /* cache of 1024 ids */
	int64_t channel = new_channel("evict");
	char id[16];

	for (int i = 0; i < 2000; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		assert_int_equal(publish(w, channel, 1, id, "x", (uintptr_t)i), 0);
	}
	wait_for(c, 2000);
	assert_int_equal(publish(w, channel, 1, "e0", "retry", 9999), 0);
	assert_int_equal(publish(w, channel, 1, "after", "y", 10000), 0);
	wait_for(c, 2002);
	fixture_writer_destroy(w);
	assert_int_equal(c->got[2000].outcome, PERSIST_DUPLICATE);
	assert_int_equal(c->got[2000].seq, 1);
	assert_int_equal(c->got[2001].outcome, PERSIST_COMMITTED);
	assert_int_equal(c->got[2001].seq, 2001);
	assert_dense(channel, 2001);
	collector_free(c);
}

/* With fewer channel heads held than channels publishing ([persist]
 * channel_heads), heads are dropped and loaded again from PostgreSQL: every
 * message still commits once, in order, each channel dense. */
static void test_heads_evicted_and_loaded_again(void **state)
{
	enum { CHANNELS = 200, ROUNDS = 3 };
	struct collector *c = collector_new(CHANNELS * ROUNDS);
	struct persist_writer_config cfg = {
	    .dsn = dsn,
	    .copy_min_rows = fixture_copy_min_rows(),
	    .batch_max = 16,
	    .queue_max = 100000,
	    .dedup_cache = 4096,
	    .channel_heads = 64, /* a lane's least: 4 x batch_max */
	    .reconnect_max_ms = 200,
	    .drain_timeout_ms = 2000,
	};
	struct persist_writer *w = fixture_writer_create(&cfg, collect, c);
	int64_t ch[CHANNELS];
	long evicted;
	char id[32];

	(void)state;
	assert_non_null(w);
	metrics_reset();
	assert_int_equal(persist_writer_register_metrics(w), 0);
	evicted = fixture_metric("fanout_persist_heads_evicted_total");
	for (int i = 0; i < CHANNELS; i++)
		ch[i] = new_channel("heads");
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < CHANNELS; i++) {
			snprintf(id, sizeof(id), "heads-%d-%d", r, i);
			assert_int_equal(
			    publish(w, ch[i], 1, id, "x", (uintptr_t)(r * CHANNELS + i)), 0);
		}
		wait_for(c, (r + 1) * CHANNELS);
	}
	evicted = fixture_metric("fanout_persist_heads_evicted_total") - evicted;
	metrics_reset(); /* nothing renders w's gauges once it is gone */
	fixture_writer_destroy(w);
	for (int k = 0; k < CHANNELS * ROUNDS; k++) {
		assert_int_equal(c->got[k].outcome, PERSIST_COMMITTED);
		assert_int_equal(c->got[k].seq, (int64_t)(c->got[k].cookie / CHANNELS) + 1);
	}
	for (int i = 0; i < CHANNELS; i++)
		assert_dense(ch[i], ROUNDS);
	/* Each round after the first meets at least 136 of the 200 dropped. */
	assert_true(evicted >= (ROUNDS - 1) * (CHANNELS - 64));
	collector_free(c);
}

static void test_fence_violation_detected(void **state)
{
	struct collector *c = collector_new(16);
	struct persist_writer *w = writer_new(c, 64, 4096);
	int64_t channel = new_channel("fence"), other = new_channel("fence-other");

	assert_int_equal(publish(w, channel, 1, "a", "a", 1), 0);
	wait_for(c, 1);
	assert_int_equal(c->got[0].seq, 1);
	/* Another writer takes the channel over and commits seq 2. */
	PQclear(
	    sql("BEGIN; UPDATE channels SET last_seq = 2 WHERE id = %ld;"
		"INSERT INTO messages (channel_id, seq, author_id, client_msg_id, body, "
		"created_at, mentions) VALUES (%ld, 2, 9, 'intruder', 'x', now(), '{}'); COMMIT",
		(long)channel, (long)channel));
	/* This writer still believes the head is 1: its commit must be refused,
	 * while a message for another channel in the same batch commits. */
	assert_int_equal(publish(w, channel, 1, "b", "b", 2), 0);
	assert_int_equal(publish(w, other, 1, "c", "c", 3), 0);
	wait_for(c, 3);
	for (int i = 1; i < 3; i++) {
		if (c->got[i].cookie == 2) {
			assert_int_equal(c->got[i].outcome, PERSIST_FAILED);
			assert_int_equal(c->got[i].error, -ESTALE);
		} else {
			assert_int_equal(c->got[i].outcome, PERSIST_COMMITTED);
			assert_int_equal(c->got[i].seq, 1);
		}
	}
	assert_int_equal(sql_long("SELECT count(*) FROM messages WHERE channel_id = %ld AND "
				  "client_msg_id = 'b'",
				  (long)channel),
			 0);
	assert_dense(channel, 2);
	/* Having stepped down, the writer reloads the head on the next publish. */
	assert_int_equal(publish(w, channel, 1, "d", "d", 4), 0);
	wait_for(c, 4);
	assert_int_equal(c->got[3].outcome, PERSIST_COMMITTED);
	assert_int_equal(c->got[3].seq, 3);
	fixture_writer_destroy(w);
	assert_dense(channel, 3);
	collector_free(c);
}

static int publish_at(struct persist_writer *w, int64_t channel, int64_t epoch, const char *id,
		      uintptr_t cookie)
{
	struct persist_publish p = {
	    .channel_id = channel,
	    .author_id = 1,
	    .client_msg_id = id,
	    .body = id,
	    .body_len = strlen(id),
	    .epoch = epoch,
	};
	return persist_writer_submit(w, &p, (void *)cookie);
}

/* The owner epoch (docs/cluster.md, "Ownership"): a writer claims a channel
 * at its epoch; once a newer owner has claimed it, the old one commits
 * nothing, neither with its cached claim nor by claiming again. */
static void test_owner_epoch_fences_a_stale_owner(void **state)
{
	struct collector *ca = collector_new(16), *cb = collector_new(16);
	struct persist_writer *a = writer_new(ca, 64, 4096), *b = writer_new(cb, 64, 4096);
	int64_t channel = new_channel("epoch");

	assert_int_equal(publish_at(a, channel, 5, "a1", 1), 0);
	wait_for(ca, 1);
	assert_int_equal(ca->got[0].outcome, PERSIST_COMMITTED);
	assert_int_equal(sql_long("SELECT owner_epoch FROM channels WHERE id = %ld", (long)channel),
			 5);
	/* A new owner's claim at 6 lands before its first commit: the old
	 * owner's head is still right, only the epoch fences it. */
	PQclear(sql("UPDATE channels SET owner_epoch = 6 WHERE id = %ld", (long)channel));
	assert_int_equal(publish_at(a, channel, 5, "a0", 9), 0);
	wait_for(ca, 1 + 1);
	assert_int_equal(ca->got[1].outcome, PERSIST_FAILED);
	assert_int_equal(ca->got[1].error, -ESTALE);
	/* The new owner, at 6, goes on from the durable head. */
	assert_int_equal(publish_at(b, channel, 6, "b1", 1), 0);
	wait_for(cb, 1);
	assert_int_equal(cb->got[0].outcome, PERSIST_COMMITTED);
	assert_int_equal(cb->got[0].seq, 2);
	assert_int_equal(sql_long("SELECT owner_epoch FROM channels WHERE id = %ld", (long)channel),
			 6);
	/* Stepped down, the old owner claims again at 5: refused. */
	assert_int_equal(publish_at(a, channel, 5, "a2", 2), 0);
	wait_for(ca, 3);
	assert_int_equal(ca->got[2].outcome, PERSIST_FAILED);
	assert_int_equal(ca->got[2].error, -ESTALE);
	/* An older epoch routed to the newer owner is served under its claim. */
	assert_int_equal(publish_at(b, channel, 4, "b2", 2), 0);
	wait_for(cb, 2);
	assert_int_equal(cb->got[1].seq, 3);
	assert_int_equal(sql_long("SELECT count(*) FROM messages WHERE channel_id = %ld AND "
				  "client_msg_id LIKE 'a_' AND seq > 1",
				  (long)channel),
			 0);
	assert_dense(channel, 3);
	/* A node alone (epoch 0) adopts the row's epoch: it serves a channel a
	 * cluster used, and a later claim still fences it. */
	struct collector *cs = collector_new(16);
	struct persist_writer *alone = writer_new(cs, 64, 4096);
	assert_int_equal(publish_at(alone, channel, 0, "s1", 1), 0);
	wait_for(cs, 1);
	assert_int_equal(cs->got[0].outcome, PERSIST_COMMITTED);
	assert_int_equal(cs->got[0].seq, 4);
	/* Each row keeps the epoch it was committed under: the first owner's
	 * 5, then the new owner's claim, 6, which the node alone adopted. */
	assert_int_equal(sql_long("SELECT count(*) FROM messages WHERE channel_id = %ld AND "
				  "owner_epoch = CASE WHEN seq = 1 THEN 5 ELSE 6 END",
				  (long)channel),
			 4);
	PQclear(sql("UPDATE channels SET owner_epoch = 7 WHERE id = %ld", (long)channel));
	assert_int_equal(publish_at(alone, channel, 0, "s2", 2), 0);
	wait_for(cs, 2);
	assert_int_equal(cs->got[1].error, -ESTALE);
	fixture_writer_destroy(alone);
	collector_free(cs);
	fixture_writer_destroy(a);
	fixture_writer_destroy(b);
	collector_free(ca);
	collector_free(cb);
}

/* Each etcd cluster met gets the next generation, and keeps it: epochs of a
 * replaced etcd (whose revisions start again) stay above the old ones. */
static void test_etcd_generations(void **state)
{
	char a[64], b[64], err[256];
	int64_t ga, gb, gr, channel = new_channel("generation");

	snprintf(a, sizeof(a), "etcd-a-%d", (int)getpid());
	snprintf(b, sizeof(b), "etcd-b-%d", (int)getpid());
	ga = store_etcd_generation(dsn, a, 10, err, sizeof(err));
	assert_true(ga > 0);
	assert_int_equal(store_etcd_generation(dsn, a, 20, err, sizeof(err)), ga);
	gb = store_etcd_generation(dsn, b, 10, err, sizeof(err));
	assert_true(gb > ga);
	/* a's revisions went on to 1000 and a channel was claimed there; then
	 * a came back (same id) at revision 5: it was reset, a new number. */
	PQclear(sql("UPDATE channels SET owner_epoch = (%lld::int8 << 40) + 1000 WHERE id = %ld",
		    (long long)gb, (long)channel));
	assert_int_equal(store_etcd_generation(dsn, b, 1000, err, sizeof(err)), gb);
	gr = store_etcd_generation(dsn, b, 5, err, sizeof(err));
	assert_true(gr > gb);
	assert_true((gr << 40) + 5 > (gb << 40) + 1000);
	assert_int_equal(store_etcd_generation(dsn, b, 6, err, sizeof(err)), gr);
	PQclear(sql("UPDATE channels SET owner_epoch = 0 WHERE id = %ld", (long)channel));
	assert_true(store_etcd_generation("host=127.0.0.1 port=1 connect_timeout=1", a, 1, err,
					  sizeof(err)) < 0);
	assert_true(strlen(err) > 0);
}

static bool lease_holds(void *arg)
{
	return *(bool *)arg;
}

/* A node whose lease may have expired commits nothing: may_commit. */
static void test_may_commit_refuses_without_a_lease(void **state)
{
	struct collector *c = collector_new(16);
	bool lease_held = false;
	struct persist_writer_config cfg = {
	    .dsn = dsn,
	    .copy_min_rows = fixture_copy_min_rows(),
	    .batch_max = 64,
	    .queue_max = 1000,
	    .dedup_cache = 1024,
	    .reconnect_max_ms = 200,
	    .drain_timeout_ms = 2000,
	    .may_commit = lease_holds,
	    .may_commit_arg = &lease_held,
	};
	struct persist_writer *w;
	int64_t channel = new_channel("lease");

	w = fixture_writer_create(&cfg, collect, c);
	assert_non_null(w);
	assert_int_equal(publish_at(w, channel, 1, "x", 1), 0);
	wait_for(c, 1);
	assert_int_equal(c->got[0].outcome, PERSIST_FAILED);
	assert_int_equal(c->got[0].error, -ESTALE);
	assert_int_equal(
	    sql_long("SELECT count(*) FROM messages WHERE channel_id = %ld", (long)channel), 0);
	lease_held = true;
	assert_int_equal(publish_at(w, channel, 1, "y", 2), 0);
	wait_for(c, 2);
	assert_int_equal(c->got[1].outcome, PERSIST_COMMITTED);
	fixture_writer_destroy(w);
	collector_free(c);
}

static void test_bad_input(void **state)
{
	struct collector *c = collector_new(16);
	struct persist_writer *w = writer_new(c, 64, 4096);
	int64_t channel = new_channel("bad");
	struct persist_publish p = {.channel_id = channel,
				    .author_id = 1,
				    .client_msg_id = "x",
				    .body = "\xc3\x28",
				    .body_len = 2};
	char long_id[80];

	assert_int_equal(persist_writer_submit(w, &p, NULL), -EILSEQ);
	/* The same answers without a writer, for a node that forwards. */
	assert_int_equal(persist_publish_validate(&p), -EILSEQ);
	p.body = "nul\0inside";
	p.body_len = 10;
	assert_int_equal(persist_writer_submit(w, &p, NULL), -EILSEQ);
	p.body = "ok";
	p.body_len = 2;
	p.client_msg_id = "";
	assert_int_equal(persist_writer_submit(w, &p, NULL), -EINVAL);
	memset(long_id, 'i', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	p.client_msg_id = long_id;
	assert_int_equal(persist_writer_submit(w, &p, NULL), -EINVAL);
	assert_int_equal(persist_publish_validate(&p), -EINVAL);
	p.client_msg_id = "x";
	p.author_name = long_id; /* over 64 bytes */
	assert_int_equal(persist_publish_validate(&p), -EINVAL);
	assert_int_equal(persist_writer_submit(w, &p, NULL), -EINVAL);
	p.author_name = NULL;
	assert_int_equal(persist_publish_validate(&p), 0);
	p.kind = "Bad Kind";
	assert_int_equal(persist_writer_submit(w, &p, NULL), -EINVAL);
	p.kind = NULL;
	p.body_len = PERSIST_BODY_MAX + 1;
	assert_int_equal(persist_writer_submit(w, &p, NULL), -EMSGSIZE);

	/* Accepted, then refused by what the database knows. */
	assert_int_equal(publish(w, 999999999, 1, "nochan", "x", 1), 0);
	wait_for(c, 1);
	assert_int_equal(c->got[0].outcome, PERSIST_FAILED);
	assert_int_equal(c->got[0].error, -ENOENT);
	p = (struct persist_publish){.channel_id = channel,
				     .author_id = 1,
				     .client_msg_id = "reply",
				     .parent_seq = 5,
				     .body = "r",
				     .body_len = 1};
	assert_int_equal(persist_writer_submit(w, &p, (void *)2), 0);
	wait_for(c, 2);
	assert_int_equal(c->got[1].outcome, PERSIST_FAILED);
	assert_int_equal(c->got[1].error, -EINVAL);
	/* A valid reply after its parent exists. */
	assert_int_equal(publish(w, channel, 1, "parent", "p", 3), 0);
	wait_for(c, 3);
	p.parent_seq = 1;
	assert_int_equal(persist_writer_submit(w, &p, (void *)4), 0);
	wait_for(c, 4);
	assert_int_equal(c->got[3].outcome, PERSIST_COMMITTED);
	assert_int_equal(c->got[3].seq, 2);
	fixture_writer_destroy(w);
	assert_dense(channel, 2);
	collector_free(c);
}

static void test_backpressure_and_shutdown(void **state)
{
	struct collector *c = collector_new(16);
	/* Nothing listens on port 1: the writer can never connect. */
	struct persist_writer_config cfg = {.dsn = "host=127.0.0.1 port=1 connect_timeout=1",
					    .batch_max = 4,
					    .queue_max = 4,
					    .dedup_cache = 1024,
					    .reconnect_max_ms = 100,
					    .drain_timeout_ms = 300};
	struct persist_writer *w = fixture_writer_create(&cfg, collect, c);
	int accepted = 0, refused = 0;
	char id[16];

	assert_non_null(w);
	assert_false(persist_writer_connected(w));
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "q%d", i);
		int rc = publish(w, 1, 1, id, "x", (uintptr_t)i);
		if (rc == 0)
			accepted++;
		else if (rc == -EAGAIN)
			refused++;
		else
			fail_msg("unexpected %d", rc);
	}
	/* The queue (4) plus at most one batch (4) taken by the writer thread. */
	assert_true(accepted >= 4 && accepted <= 8);
	assert_int_equal(accepted + refused, 20);
	fixture_writer_destroy(w);
	assert_all_failed(c, accepted, -ECANCELED);
	collector_free(c);
}

struct stream_arg {
	struct persist_writer *w;
	int64_t channel;
	int count;
};

static void *stream_main(void *arg)
{
	struct stream_arg *a = arg;
	char id[32];

	for (int i = 0; i < a->count; i++) {
		snprintf(id, sizeof(id), "s%d", i);
		while (publish(a->w, a->channel, 5, id, "streamed", (uintptr_t)i) == -EAGAIN)
			usleep(1000);
		usleep(200); /* about 5,000/s: the restart lands mid-stream */
	}
	return NULL;
}

static void test_postgres_restart_mid_stream(void **state)
{
	const int total = 6000;
	struct collector *c = collector_new(total);
	struct persist_writer *w = writer_new(c, 128, 65536);
	struct stream_arg arg = {w, new_channel("restart"), total};
	size_t len;
	char *text, *line, err[256];
	pthread_t thread;
	char *seen = calloc(total + 1, 1);
	int committed_before;

	metrics_reset();
	assert_int_equal(persist_writer_register_metrics(w), 0);
	pthread_create(&thread, NULL, stream_main, &arg);
	wait_for(c, 500);
	pthread_mutex_lock(&c->lock);
	committed_before = c->n;
	pthread_mutex_unlock(&c->lock);
	assert_int_equal(system(getenv("FANOUT_TEST_PG_RESTART")), 0);
	pthread_join(thread, NULL);
	wait_for(c, total);
	/* The connection really was lost and re-established. */
	text = metrics_render(&len);
	line = strstr(text, "\nfanout_persist_reconnects_total ");
	assert_non_null(line);
	assert_true(atol(line + strlen("\nfanout_persist_reconnects_total ")) >= 1);
	free(text);
	metrics_reset();
	fixture_writer_destroy(w);
	assert_true(committed_before < total); /* the restart really was mid-stream */
	/* The test's own connection was cut by the restart too. */
	PQfinish(db);
	db = pg_connect(dsn, false, err, sizeof(err));
	assert_non_null(db);

	for (int i = 0; i < total; i++) {
		struct outcome *o = &c->got[i];
		if (o->outcome != PERSIST_COMMITTED)
			fail_msg("message %s: outcome %d error %d", o->id, o->outcome, o->error);
		assert_true(o->seq >= 1 && o->seq <= total);
		assert_false(seen[o->seq]); /* handed on once: one broadcast */
		seen[o->seq] = 1;
		assert_int_equal(o->seq, i + 1); /* in seq order */
	}
	assert_dense(arg.channel, total);
	assert_int_equal(sql_long("SELECT count(DISTINCT client_msg_id) FROM messages WHERE "
				  "channel_id = %ld",
				  (long)arg.channel),
			 total);
	free(seen);
	collector_free(c);
}

/* A reader job after PostgreSQL restarted: the thread's connection died
 * while idle, and the job must get a fresh one, not fail on the dead one
 * (after a failover every first hello would otherwise be refused 1011). */
struct job_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int answer; /* 0 pending, 1 the query ran, -1 it failed */
};

static void select_one(void *arg, struct pg_conn *conn)
{
	struct job_wait *jw = arg;
	PGresult *res = conn ? PQexec(conn, "SELECT 1") : NULL;
	int answer = PQresultStatus(res) == PGRES_TUPLES_OK ? 1 : -1;

	PQclear(res);
	pthread_mutex_lock(&jw->lock);
	jw->answer = answer;
	pthread_cond_signal(&jw->cond);
	pthread_mutex_unlock(&jw->lock);
}

static int run_select_one(struct persist_reader *r)
{
	struct job_wait jw = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

	assert_int_equal(persist_reader_run(r, select_one, &jw), 0);
	pthread_mutex_lock(&jw.lock);
	while (jw.answer == 0)
		pthread_cond_wait(&jw.cond, &jw.lock);
	pthread_mutex_unlock(&jw.lock);
	return jw.answer;
}

static void test_reader_job_after_a_restart(void **state)
{
	struct persist_reader *r = persist_reader_create(dsn, NULL, 1, 200);
	char err[512];

	(void)state;
	assert_non_null(r);
	assert_int_equal(run_select_one(r), 1); /* the thread holds a connection now */
	assert_int_equal(system(getenv("FANOUT_TEST_PG_RESTART")), 0);
	assert_int_equal(run_select_one(r), 1);
	persist_reader_destroy(r);
	PQfinish(db); /* the test's own connection was cut too */
	db = pg_connect(dsn, false, err, sizeof(err));
	assert_non_null(db);
}

/* History */

struct page_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct persist_history *page;
};

static void on_page(void *arg, struct persist_history *page)
{
	struct page_wait *pw = arg;
	pthread_mutex_lock(&pw->lock);
	pw->page = page;
	pthread_cond_signal(&pw->cond);
	pthread_mutex_unlock(&pw->lock);
}

static struct persist_history *fetch(struct persist_reader *r, struct persist_history_query q)
{
	struct page_wait pw = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL};

	assert_int_equal(persist_reader_submit(r, &q, on_page, &pw), 0);
	pthread_mutex_lock(&pw.lock);
	while (pw.page == NULL)
		pthread_cond_wait(&pw.cond, &pw.lock);
	pthread_mutex_unlock(&pw.lock);
	assert_int_equal(pw.page->error, 0);
	return pw.page;
}

static void assert_page(struct persist_history *p, int64_t first, int count, bool more)
{
	assert_int_equal(p->count, count);
	assert_int_equal(p->has_more, more);
	for (int i = 0; i < count; i++)
		assert_int_equal(p->messages[i].seq, first + i);
	persist_history_free(p);
}

/* The paging checks, with history read on the primary (read_dsn NULL) or
 * through the standby path: read_dsn naming the primary itself (its
 * freshness check always passes there, so every mode's standby query and
 * its row layout answer) or nothing that listens (every page falls back). */
static void history_paging(const char *read_dsn)
{
	struct collector *c = collector_new(300);
	struct persist_writer *w = writer_new(c, 64, 4096);
	struct persist_reader *r = persist_reader_create(dsn, read_dsn, 2, 200);
	int64_t channel = new_channel("history");
	struct persist_publish p = {.channel_id = channel, .author_id = 42};
	char id[16], body[32];
	struct persist_history *page;

	assert_non_null(r);
	for (int i = 1; i <= 250; i++) {
		snprintf(id, sizeof(id), "h%d", i);
		snprintf(body, sizeof(body), "body %d", i);
		p.client_msg_id = id;
		p.body = body;
		p.body_len = strlen(body);
		/* Seqs 10, 20, 30 will be replies to seq 5. */
		p.parent_seq = (i % 10 == 0 && i <= 30) ? 5 : 0;
		assert_int_equal(persist_writer_submit(w, &p, NULL), 0);
		if (i == 5)
			wait_for(c, 5); /* the parent is durable before its replies */
	}
	wait_for(c, 250);
	fixture_writer_destroy(w);

	struct persist_history_query q = {
	    .mode = PERSIST_HISTORY_AFTER, .channel_id = channel, .limit = 100};
	page = fetch(r, q);
	assert_string_equal(page->messages[6].body, "body 7");
	assert_string_equal(page->messages[6].client_msg_id, "h7");
	assert_int_equal(page->messages[6].author_id, 42);
	assert_int_equal(page->messages[9].parent_seq, 5);
	assert_true(page->messages[0].created_at_us > 0);
	assert_page(page, 1, 100, true);
	q.after_seq = 100;
	assert_page(fetch(r, q), 101, 100, true);
	q.after_seq = 200;
	assert_page(fetch(r, q), 201, 50, false);
	q.after_seq = 250;
	page = fetch(r, q);
	assert_int_equal(page->head, 250); /* an empty catch-up page tells the head */
	assert_page(page, 0, 0, false);
	q.after_seq = 200;
	q.min_head = 250; /* what a session that has seen 250 asks with */
	assert_page(fetch(r, q), 201, 50, false);
	q.min_head = 0;

	q = (struct persist_history_query){
	    .mode = PERSIST_HISTORY_BEFORE, .channel_id = channel, .limit = 100};
	assert_page(fetch(r, q), 151, 100, true);
	q.before_seq = 151;
	assert_page(fetch(r, q), 51, 100, true);
	q.before_seq = 51;
	assert_page(fetch(r, q), 1, 50, false);

	q = (struct persist_history_query){
	    .mode = PERSIST_HISTORY_THREAD, .channel_id = channel, .parent_seq = 5, .limit = 2};
	page = fetch(r, q);
	assert_int_equal(page->count, 2);
	assert_true(page->has_more);
	assert_int_equal(page->messages[0].seq, 5);
	assert_int_equal(page->messages[1].seq, 10);
	persist_history_free(page);
	q.after_seq = 10;
	page = fetch(r, q);
	assert_int_equal(page->count, 2);
	assert_false(page->has_more);
	assert_int_equal(page->messages[0].seq, 20);
	assert_int_equal(page->messages[1].seq, 30);
	persist_history_free(page);

	q.limit = 0;
	assert_int_equal(persist_reader_submit(r, &q, on_page, NULL), -EINVAL);
	q.limit = PERSIST_HISTORY_LIMIT_MAX + 1;
	assert_int_equal(persist_reader_submit(r, &q, on_page, NULL), -EINVAL);
	persist_reader_destroy(r);
	collector_free(c);
}

static void test_history_paging_exact(void **state)
{
	(void)state;
	history_paging(NULL);
}

static void test_history_paging_through_the_standby_path(void **state)
{
	char self[1100];

	(void)state;
	snprintf(self, sizeof(self), "%s target_session_attrs=prefer-standby", dsn);
	history_paging(self);
	history_paging("host=127.0.0.1 port=1 dbname=fanout connect_timeout=1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_migrations_idempotent_and_checked),
	    cmocka_unit_test(test_durability_refused),
	    cmocka_unit_test(test_connections_are_named),
	    cmocka_unit_test(test_dense_under_concurrent_publishers),
	    cmocka_unit_test(test_loop_drives_where_asked),
	    cmocka_unit_test(test_loop_ends_with_a_batch_in_flight),
	    cmocka_unit_test(test_duplicate_gets_same_seq),
	    cmocka_unit_test(test_duplicate_within_one_batch),
	    cmocka_unit_test(test_evicted_id_found_in_postgres),
	    cmocka_unit_test(test_heads_evicted_and_loaded_again),
	    cmocka_unit_test(test_fence_violation_detected),
	    cmocka_unit_test(test_owner_epoch_fences_a_stale_owner),
	    cmocka_unit_test(test_may_commit_refuses_without_a_lease),
	    cmocka_unit_test(test_etcd_generations),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_backpressure_and_shutdown),
	    cmocka_unit_test(test_history_paging_exact),
	    cmocka_unit_test(test_history_paging_through_the_standby_path),
	    cmocka_unit_test(test_postgres_restart_mid_stream),
	    cmocka_unit_test(test_reader_job_after_a_restart),
	};
	return cmocka_run_group_tests_name("persist", tests, group_setup, fixture_teardown);
}
