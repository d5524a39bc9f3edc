/* SPDX-License-Identifier: BSD-3-Clause */
/* What the persist tier's integration tests share (persist_fixture.h): SQL
 * against the test server, a channel to write into, a collector of the
 * writer's callbacks, and the check that a channel's seqs are dense. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "persist_fixture.h"

#include "clock.h"
#include "metrics.h"
#include "migrate.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

const char *dsn;
PGconn *db;

int fixture_setup(void **state)
{
	(void)state;
	dsn = getenv("FANOUT_TEST_PG_DSN");
	if (dsn == NULL) {
		fprintf(stderr, "FANOUT_TEST_PG_DSN must be set (deploy/test sets it)\n");
		return -1;
	}
	return fixture_connect();
}

int fixture_connect(void)
{
	char err[512];

	db = pg_connect(dsn, false, err, sizeof(err));
	if (db == NULL || migrate_apply(db, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

int fixture_teardown(void **state)
{
	PQfinish(db);
	return 0;
}

PGresult *sql(const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	PGresult *res;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	res = PQexec(db, text);
	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", text, PQresultErrorMessage(res));
	return res;
}

PGresult *sql_try(const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return PQexec(db, text);
}

long sql_long(const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	PGresult *res;
	long v;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	res = sql("%s", text);
	assert_int_equal(PQntuples(res), 1);
	v = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

int64_t new_channel(const char *prefix)
{
	static int counter;
	char name[96];
	snprintf(name, sizeof(name), "%s-%d-%d-%ld", prefix, (int)getpid(), ++counter,
		 (long)time_real_us());
	return sql_long("INSERT INTO channels (name, kind) VALUES ('%s', 'public') RETURNING id",
			name);
}

void collect(void *arg, enum persist_outcome outcome, int error, const struct persist_message *m,
	     void *cookie)
{
	struct collector *c = arg;

	pthread_mutex_lock(&c->lock);
	if (c->n < c->cap) {
		struct outcome *o = &c->got[c->n++];
		o->outcome = outcome;
		o->error = error;
		o->channel = m->channel_id;
		o->seq = m->seq;
		o->created_at_us = m->created_at_us;
		o->cookie = (uintptr_t)cookie;
		o->thread = pthread_self();
		snprintf(o->id, sizeof(o->id), "%s", m->client_msg_id);
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

struct collector *collector_new(int cap)
{
	struct collector *c = calloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->got = calloc((size_t)cap, sizeof(*c->got));
	c->cap = cap;
	return c;
}

void collector_free(struct collector *c)
{
	free(c->got);
	free(c);
}

void wait_for(struct collector *c, int n)
{
	uint64_t deadline = time_mono_ns() + 60ull * 1000000000ull;

	pthread_mutex_lock(&c->lock);
	while (c->n < n && time_mono_ns() < deadline) {
		pthread_mutex_unlock(&c->lock);
		usleep(2000);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	if (c->n < n)
		fail_msg("only %d of %d outcomes arrived within 60 s", c->n, n);
}

int fixture_copy_min_rows(void)
{
	const char *v = getenv("FANOUT_TEST_COPY_MIN_ROWS");

	return v ? atoi(v) : 0;
}

bool fixture_loop(void)
{
	const char *v = getenv("FANOUT_TEST_LOOP");

	return v && strcmp(v, "1") == 0;
}

/* An event loop of the test's own driving a writer's lanes. */
struct test_loop {
	struct persist_writer *w;
	pthread_t thread;
	int epfd, evfd;
	atomic_bool stop;
};

#define LOOPS_MAX 4
static struct test_loop *loops[LOOPS_MAX];

static void loop_wake(void *ctx)
{
	struct test_loop *l = ctx;
	uint64_t one = 1;

	if (write(l->evfd, &one, sizeof(one)) < 0)
		perror("loop_wake");
}

static void *loop_main(void *arg)
{
	struct test_loop *l = arg;
	const struct persist_loop loop = {.epfd = l->epfd, .wake = loop_wake, .ctx = l};
	struct persist_driver *d = persist_driver_create(l->w, 0, 1, &loop);
	struct epoll_event ev[16];

	if (d == NULL)
		fprintf(stderr, "fixture: no lane for the loop to drive (batch_window_us)\n");
	while (!atomic_load(&l->stop)) {
		int n = epoll_wait(l->epfd, ev, 16, 100);
		uint64_t v;

		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == l) {
				if (read(l->evfd, &v, sizeof(v)) < 0)
					perror("loop read");
			} else if (!persist_driver_ready(d, ev[i].data.ptr,
							 ev[i].events &
							     (EPOLLIN | EPOLLHUP | EPOLLERR),
							 ev[i].events & EPOLLOUT)) {
				fprintf(stderr, "fixture: an event for no lane\n");
			}
		}
		persist_driver_turn(d);
	}
	persist_driver_destroy(d);
	return NULL;
}

struct persist_writer *fixture_writer_create(const struct persist_writer_config *cfg,
					     persist_commit_fn fn, void *arg)
{
	struct persist_writer *w = persist_writer_create(cfg, fn, arg);
	struct epoll_event ev = {.events = EPOLLIN};
	struct test_loop *l;
	int slot = 0;

	if (w == NULL || !fixture_loop())
		return w;
	while (slot < LOOPS_MAX && loops[slot])
		slot++;
	assert_true(slot < LOOPS_MAX);
	l = calloc(1, sizeof(*l));
	assert_non_null(l);
	l->w = w;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ev.data.ptr = l;
	assert_int_equal(epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev), 0);
	assert_int_equal(pthread_create(&l->thread, NULL, loop_main, l), 0);
	loops[slot] = l;
	return w;
}

void fixture_loop_stop(struct persist_writer *w)
{
	for (int i = 0; w && i < LOOPS_MAX; i++) {
		struct test_loop *l = loops[i];

		if (l == NULL || l->w != w)
			continue;
		atomic_store(&l->stop, true);
		loop_wake(l);
		pthread_join(l->thread, NULL);
		close(l->epfd);
		close(l->evfd);
		free(l);
		loops[i] = NULL;
	}
}

void fixture_writer_destroy(struct persist_writer *w)
{
	persist_writer_destroy(w);
	fixture_loop_stop(w);
}

long fixture_metric(const char *name)
{
	size_t len, n = strlen(name);
	char *text = metrics_render(&len), *at = text;
	long v = -1;

	assert_non_null(text);
	while ((at = strstr(at, name)) != NULL) {
		if ((at == text || at[-1] == '\n') && at[n] == ' ') {
			v = atol(at + n + 1);
			break;
		}
		at += n;
	}
	free(text);
	return v;
}

struct persist_writer *writer_new(struct collector *c, int batch_max, int dedup)
{
	struct persist_writer_config cfg = {
	    .dsn = dsn,
	    .copy_min_rows = fixture_copy_min_rows(),
	    .batch_max = batch_max,
	    .queue_max = 100000,
	    .dedup_cache = dedup,
	    .reconnect_max_ms = 200,
	    .drain_timeout_ms = 2000,
	};
	struct persist_writer *w = fixture_writer_create(&cfg, collect, c);
	assert_non_null(w);
	return w;
}

int publish(struct persist_writer *w, int64_t channel, int64_t author, const char *id,
	    const char *body, uintptr_t cookie)
{
	struct persist_publish p = {
	    .channel_id = channel,
	    .author_id = author,
	    .client_msg_id = id,
	    .body = body,
	    .body_len = strlen(body),
	};
	return persist_writer_submit(w, &p, (void *)cookie);
}

/* Checks the channel's rows are exactly seqs 1..n with distinct ids and the
 * head at n. */
void assert_dense(int64_t channel, long n)
{
	assert_int_equal(
	    sql_long("SELECT count(*) FROM messages WHERE channel_id = %ld", (long)channel), n);
	assert_int_equal(sql_long("SELECT coalesce(max(seq), 0) FROM messages WHERE channel_id = "
				  "%ld",
				  (long)channel),
			 n);
	assert_int_equal(sql_long("SELECT count(DISTINCT seq) FROM messages WHERE channel_id = %ld",
				  (long)channel),
			 n);
	assert_int_equal(sql_long("SELECT last_seq FROM channels WHERE id = %ld", (long)channel),
			 n);
}

void assert_all_failed(struct collector *c, int n, int error)
{
	assert_int_equal(c->n, n);
	for (int i = 0; i < c->n; i++) {
		assert_int_equal(c->got[i].outcome, PERSIST_FAILED);
		assert_int_equal(c->got[i].error, error);
	}
}
