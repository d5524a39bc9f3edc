/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of presence (core/presence.c) with its real thread and a fake
 * worker inbox: several connections of a user are one presence, a closed
 * last connection turns the user offline only after the grace period, and a
 * flapping user is announced at most once per interval. Times are short
 * but every wait is bounded and generous (sanitizer builds are slow). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "presence.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GRACE_MS    300
#define INTERVAL_MS 300

/* The fake inbox: events are queued by the presence thread and run here. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fanout_event *queued;

void fanout_post_event(struct fanout *f, int w, struct fanout_event *ev)
{
	pthread_mutex_lock(&lock);
	ev->next = queued;
	queued = ev;
	pthread_mutex_unlock(&lock);
}

/* What reached sessions, as "type:user:status" lines, and to which. */
static char seen[64][64];
static uint64_t seen_session[64];
static int nseen;

static void deliver(void *worker_arg, uint64_t session, const char *json)
{
	char type[32] = "", user[16] = "", status[16] = "";
	const char *t = strstr(json, "\"type\":\""), *u = strstr(json, "\"user\":\""),
		   *s = strstr(json, "\"status\":\"");

	if (t)
		sscanf(t + 8, "%31[^\"]", type);
	if (u)
		sscanf(u + 8, "%15[^\"]", user);
	if (s)
		sscanf(s + 10, "%15[^\"]", status);
	if (nseen < 64) {
		seen_session[nseen] = session;
		snprintf(seen[nseen++], sizeof(seen[0]), "%s:%s:%s", type, user, status);
	}
}

static void run_queued(void)
{
	struct fanout_event *list, *next, *rev = NULL;

	pthread_mutex_lock(&lock);
	list = queued;
	queued = NULL;
	pthread_mutex_unlock(&lock);
	for (; list; list = next) { /* oldest first */
		next = list->next;
		list->next = rev;
		rev = list;
	}
	for (; rev; rev = next) {
		next = rev->next;
		rev->run(NULL, rev);
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Runs the inbox for up to ms; returns when a line starting with `want` was
 * seen (true) or not. */
static bool wait_for(const char *want, int ms)
{
	for (int t = 0; t <= ms; t += 10) {
		run_queued();
		for (int i = 0; i < nseen; i++)
			if (strncmp(seen[i], want, strlen(want)) == 0)
				return true;
		sleep_ms(10);
	}
	return false;
}

static int count(const char *prefix)
{
	int n = 0;

	run_queued();
	for (int i = 0; i < nseen; i++)
		n += strncmp(seen[i], prefix, strlen(prefix)) == 0;
	return n;
}

static struct presence *p;

static int setup(void **state)
{
	nseen = 0;
	p = presence_create(NULL, GRACE_MS, INTERVAL_MS, deliver);
	return p ? 0 : -1;
}

static int teardown(void **state)
{
	presence_stop(p);
	run_queued();
	presence_destroy(p);
	return 0;
}

static void watch_bob(void)
{
	const char *users[] = {"bob"};

	assert_int_equal(presence_watch(p, 0, 1, "r1", users, NULL, 1), 0);
	assert_true(wait_for("presence_subscribed:", 2000));
}

static void test_devices_are_one_presence_and_grace_holds(void **state)
{
	watch_bob();
	presence_connect(p, "bob");
	presence_connect(p, "bob"); /* a second device */
	assert_true(wait_for("presence:bob:online", 3000));
	presence_disconnect(p, "bob");
	sleep_ms(GRACE_MS + INTERVAL_MS + 200);
	assert_int_equal(count("presence:bob:offline"), 0); /* one device is still there */
	presence_disconnect(p, "bob");
	/* Not before the grace period is out... */
	sleep_ms(GRACE_MS / 3);
	assert_int_equal(count("presence:bob:offline"), 0);
	/* ...and then, surely. */
	assert_true(wait_for("presence:bob:offline", 5000));
}

static void test_flapping_is_announced_at_most_once_per_interval(void **state)
{
	int changes;

	watch_bob();
	presence_connect(p, "bob");
	assert_true(wait_for("presence:bob:online", 3000));
	/* Away and back 30 times in 600 ms: two intervals' worth. */
	for (int i = 0; i < 30; i++) {
		presence_set_away(p, "bob", i % 2 == 0);
		sleep_ms(20);
		run_queued();
	}
	presence_set_away(p, "bob", true); /* where it ends */
	changes = count("presence:bob:");
	/* The first announcement, then at most one per interval of the 600 ms
	 * and one more for the last wanted status. */
	assert_true(changes <= 1 + 600 / INTERVAL_MS + 1);
	assert_true(wait_for("presence:bob:away", 3000));
	/* It settles on what is true last. */
	sleep_ms(2 * INTERVAL_MS);
	run_queued();
	assert_string_equal(seen[nseen - 1], "presence:bob:away");
}

static void test_unwatched_sessions_hear_nothing(void **state)
{
	const char *users[] = {"carol"};

	assert_int_equal(presence_watch(p, 0, 1, "r2", users, NULL, 1), 0);
	assert_true(wait_for("presence_subscribed:", 2000));
	presence_connect(p, "bob"); /* not watched by session 1 */
	presence_connect(p, "carol");
	assert_true(wait_for("presence:carol:online", 3000));
	assert_int_equal(count("presence:bob:"), 0);
	presence_unwatch(p, 0, 1);
	sleep_ms(50);
	presence_disconnect(p, "carol");
	sleep_ms(GRACE_MS + INTERVAL_MS + 300);
	assert_int_equal(count("presence:carol:offline"), 0);
}

/* ---- two nodes of a cluster, joined by a fake route ---- */

struct node {
	const char *name;
	struct presence *p;
};
static struct node nodes[2] = {{"a", NULL}, {"b", NULL}};
static int messages;

/* A user lives at the node named by its first letter. */
static bool fake_home(void *ctx, const char *user, char home[65])
{
	const struct node *self = ctx;

	snprintf(home, 65, "%c", user[0]);
	return user[0] == self->name[0];
}

static void fake_send(void *ctx, const char *node, const struct route_presence *m)
{
	const struct node *self = ctx;

	__atomic_add_fetch(&messages, 1, __ATOMIC_RELAXED);
	presence_remote(nodes[node[0] == 'b'].p, self->name, m);
}

static bool seen_by(uint64_t session, const char *want, int ms)
{
	for (int t = 0; t <= ms; t += 10) {
		run_queued();
		for (int i = 0; i < nseen; i++)
			if (seen_session[i] == session && strcmp(seen[i], want) == 0)
				return true;
		sleep_ms(10);
	}
	return false;
}

static int count_by(uint64_t session, const char *want)
{
	int n = 0;

	run_queued();
	for (int i = 0; i < nseen; i++)
		n += seen_session[i] == session && strcmp(seen[i], want) == 0;
	return n;
}

static int setup_two(void **state)
{
	nseen = 0;
	for (int i = 0; i < 2; i++) {
		struct route r = {
		    .presence_home = fake_home, .presence_send = fake_send, .ctx = &nodes[i]};

		nodes[i].p = presence_create(NULL, GRACE_MS, INTERVAL_MS, deliver);
		if (nodes[i].p == NULL)
			return -1;
		presence_set_route(nodes[i].p, &r);
	}
	return 0;
}

static int teardown_two(void **state)
{
	for (int i = 0; i < 2; i++)
		presence_stop(nodes[i].p);
	run_queued();
	for (int i = 0; i < 2; i++)
		presence_destroy(nodes[i].p);
	return 0;
}

/* "bob" lives at b, connects at a; sessions 1 (at a) and 2 (at b) watch:
 * both hear him online, and offline once his grace at a is out. */
static void test_a_user_homed_elsewhere_is_seen_from_every_node(void **state)
{
	const char *users[] = {"bob"};

	assert_int_equal(presence_watch(nodes[0].p, 0, 1, "r", users, NULL, 1), 0);
	assert_int_equal(presence_watch(nodes[1].p, 0, 2, "r", users, NULL, 1), 0);
	presence_connect(nodes[0].p, "bob");
	assert_true(seen_by(1, "presence:bob:online", 3000));
	assert_true(seen_by(2, "presence:bob:online", 3000));
	assert_true(messages > 0); /* it went through the home */
	presence_disconnect(nodes[0].p, "bob");
	sleep_ms(GRACE_MS / 3);
	assert_int_equal(count_by(2, "presence:bob:offline"), 0);
	assert_true(seen_by(1, "presence:bob:offline", 5000));
	assert_true(seen_by(2, "presence:bob:offline", 5000));
}

/* A ring change: the homes forget and hear again; "amy" (at home at a,
 * connected at b) is not announced offline meanwhile. */
static void test_a_ring_change_announces_no_false_departure(void **state)
{
	const char *users[] = {"amy"};

	assert_int_equal(presence_watch(nodes[0].p, 0, 3, "r", users, NULL, 1), 0);
	presence_connect(nodes[1].p, "amy");
	assert_true(seen_by(3, "presence:amy:online", 3000));
	for (int round = 0; round < 3; round++) {
		presence_resync(nodes[0].p, true);
		presence_resync(nodes[1].p, true);
		sleep_ms(GRACE_MS + INTERVAL_MS);
	}
	assert_int_equal(count_by(3, "presence:amy:offline"), 0);
	presence_disconnect(nodes[1].p, "amy");
	assert_true(seen_by(3, "presence:amy:offline", 5000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_devices_are_one_presence_and_grace_holds, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_flapping_is_announced_at_most_once_per_interval,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unwatched_sessions_hear_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_user_homed_elsewhere_is_seen_from_every_node,
					    setup_two, teardown_two),
	    cmocka_unit_test_setup_teardown(test_a_ring_change_announces_no_false_departure,
					    setup_two, teardown_two),
	};
	return cmocka_run_group_tests_name("presence", tests, NULL, NULL);
}
