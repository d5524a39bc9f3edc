/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers of the persist tier's integration tests (test_persist.c,
 * test_lanes.c) against the real PostgreSQL deploy/test starts: include
 * after cmocka.h. dsn and db are the test's to set in its group setup. */
#pragma once

#include "pg.h"
#include "writer.h"

#include <pthread.h>
#include <stdint.h>

extern const char *dsn;
extern PGconn *db;

/* Group setup's common part: connects db to dsn and applies the
 * migrations; 0, or -1 with the reason on stderr. Teardown closes db. */
int fixture_connect(void);
int fixture_teardown(void **state);
/* A whole group setup: dsn from FANOUT_TEST_PG_DSN (missing it fails the
 * group, not skips it), then fixture_connect(). */
int fixture_setup(void **state);

/* The writers' copy_min_rows in these suites: FANOUT_TEST_COPY_MIN_ROWS (the
 * suite run a second time with 1: every batch by COPY), else 0 (never). */
int fixture_copy_min_rows(void);
/* Whether the writers of these suites are driven by an event loop:
 * FANOUT_TEST_LOOP=1 (the suite run a third time, as the socket edge's
 * service threads drive fanoutd's lanes: writer.h, persist_driver_*). */
bool fixture_loop(void);
/* persist_writer_create and _destroy, with, under fixture_loop(), a thread
 * of the test's own running an epoll loop that drives the writer's lanes
 * from create to destroy (destroyed as fanoutd does: the writer first,
 * then the loop). */
struct persist_writer *fixture_writer_create(const struct persist_writer_config *cfg,
					     persist_commit_fn fn, void *arg);
void fixture_writer_destroy(struct persist_writer *w);
/* Ends w's loop, if it has one, before w: its lanes go back to their
 * threads, a batch in flight with them. */
void fixture_loop_stop(struct persist_writer *w);
/* A counter's value in metrics_render()'s text; -1 when it is missing. */
long fixture_metric(const char *name);

PGresult *sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like sql(), but a statement that fails is returned, not failed on. */
PGresult *sql_try(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
long sql_long(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t new_channel(const char *prefix);

/* Collects every callback; wait_for() blocks until n arrived or 60 s. */
struct outcome {
	enum persist_outcome outcome;
	int error;
	int64_t channel, seq, created_at_us;
	char id[72];
	uintptr_t cookie;
	pthread_t thread; /* that ran the callback */
};

struct collector {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct outcome *got;
	int n, cap;
};

void collect(void *arg, enum persist_outcome outcome, int error, const struct persist_message *m,
	     void *cookie);
struct collector *collector_new(int cap);
void collector_free(struct collector *c);
void wait_for(struct collector *c, int n);
struct persist_writer *writer_new(struct collector *c, int batch_max, int dedup);
int publish(struct persist_writer *w, int64_t channel, int64_t author, const char *id,
	    const char *body, uintptr_t cookie);
void assert_dense(int64_t channel, long n);
/* Exactly n outcomes arrived, each a failure with error. */
void assert_all_failed(struct collector *c, int n, int error);
