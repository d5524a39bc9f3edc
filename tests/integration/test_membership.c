/* SPDX-License-Identifier: BSD-3-Clause */
/* Integration tests of membership (controlplane/membership.c) and its etcd
 * client against a real etcd started by deploy/test: nodes join and agree on
 * one ring, a duplicate name is refused, a leaving or drained node leaves
 * the ring, and a node that cannot renew its lease stops acknowledging
 * before the lease could have expired, then joins again.
 *
 * Needs FANOUT_TEST_ETCD (its client address), FANOUT_TEST_ETCD_CTL (the
 * deploy/etcd script) and FANOUT_TEST_ETCD_DIR (the directory it started
 * etcd in). Missing any is a failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "etcd.h"
#include "membership.h"
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *endpoint;
static char cluster_name[64];

/* Each test its own cluster, so a failed one leaves nothing in the next. */
static void new_cluster(void)
{
	static int n;

	snprintf(cluster_name, sizeof(cluster_name), "test-%d-%d", (int)getpid(), ++n);
}

static void config_of(struct config_cluster *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->etcd, sizeof(c->etcd), "%s", endpoint);
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->cluster, sizeof(c->cluster), "%s", cluster_name);
	snprintf(c->peer, sizeof(c->peer), "127.0.0.1:%d", 7000 + (int)strlen(name));
	snprintf(c->admin, sizeof(c->admin), "127.0.0.1:8080");
	c->lease_ttl_s = 1;
	c->lease_margin_ms = 300;
	c->vnodes = 64;
}

static enum route_owner owner_of(struct membership *m, int64_t channel)
{
	char owner[RING_ID_MAX + 1];
	int64_t epoch;
	enum route_owner o =
	    membership_owns(m, channel, owner, &epoch) ? ROUTE_OWNER_LOCAL : ROUTE_OWNER_REMOTE;

	assert_int_equal(epoch, ring_epoch(membership_ring(m)));
	return o;
}

/* Waits up to ms for m's ring to have n members. */
static bool wait_members(struct membership *m, int n, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (ring_members(membership_ring(m)) == n)
			return true;
		usleep(10000);
	}
	return ring_members(membership_ring(m)) == n;
}

static void test_etcd_client(void **state)
{
	struct etcd *e = etcd_open(endpoint, 1000);
	int64_t lease, rev;
	int ttl;

	assert_non_null(e);
	assert_int_equal(etcd_lease_grant(e, 5, &lease, &ttl), 0);
	assert_int_equal(ttl, 5);
	assert_int_equal(etcd_put(e, "/t/client/a", "one", lease, &rev), 0);
	assert_true(rev > 0);
	assert_int_equal(etcd_create(e, "/t/client/a", "two", 0, NULL), -EEXIST);
	assert_int_equal(etcd_create(e, "/t/client/b", "bee", 0, NULL), 0);
	assert_int_equal(etcd_lease_keepalive(e, lease, &ttl), 0);
	assert_int_equal(etcd_lease_revoke(e, lease), 0);
	/* The revoked lease took its key; a gone lease cannot be renewed. */
	assert_int_equal(etcd_lease_keepalive(e, lease, &ttl), -ENOENT);
	assert_int_equal(etcd_delete(e, "/t/client/b"), 0);
	etcd_close(e);

	e = etcd_open("http://127.0.0.1:1", 300);
	assert_non_null(e);
	assert_int_equal(etcd_lease_grant(e, 5, &lease, &ttl), -ECONNREFUSED);
	etcd_close(e);
}

static void test_join_agree_leave(void **state)
{
	struct config_cluster ca, cb;
	struct membership *a, *b, *dup;
	struct member_info info;

	new_cluster();
	config_of(&ca, "alpha");
	config_of(&cb, "bravo");
	a = membership_start(&ca, 0, NULL, NULL);
	assert_non_null(a);
	b = membership_start(&cb, 0, NULL, NULL);
	assert_non_null(b);
	assert_true(wait_members(a, 2, 3000));
	assert_true(wait_members(b, 2, 3000));
	/* One ring: same epoch, same owner of every channel. */
	for (int i = 0; i < 300 && ring_epoch(membership_ring(a)) != ring_epoch(membership_ring(b));
	     i++)
		usleep(10000);
	assert_int_equal(ring_epoch(membership_ring(a)), ring_epoch(membership_ring(b)));
	int local_a = 0, local_b = 0;
	for (int64_t c = 1; c <= 1000; c++) {
		enum route_owner oa = owner_of(a, c);
		enum route_owner ob = owner_of(b, c);

		assert_true(oa != ob);
		local_a += oa == ROUTE_OWNER_LOCAL;
		local_b += ob == ROUTE_OWNER_LOCAL;
	}
	assert_true(local_a > 300 && local_b > 300);
	assert_int_equal(membership_member(a, "bravo", &info), 0);
	assert_string_equal(info.peer, cb.peer);
	assert_true(membership_may_ack(a));

	/* A second node with a live name is refused. */
	errno = 0;
	dup = membership_start(&cb, 0, NULL, NULL);
	assert_null(dup);
	assert_int_equal(errno, EEXIST);
	assert_true(wait_members(a, 2, 100));

	/* Leaving revokes the lease: the other sees it at once, not a TTL later. */
	uint64_t t0 = time_mono_ns();
	membership_stop(b);
	assert_true(wait_members(a, 1, 900));
	assert_true(time_mono_ns() - t0 < 900000000ull);
	for (int64_t c = 1; c <= 100; c++)
		assert_int_equal(owner_of(a, c), ROUTE_OWNER_LOCAL);
	membership_stop(a);
}

static void test_drain_leaves_the_ring(void **state)
{
	struct config_cluster ca, cb;
	struct membership *a, *b;
	struct etcd *e = etcd_open(endpoint, 1000);
	char key[200];

	new_cluster();
	config_of(&ca, "charlie");
	config_of(&cb, "delta");
	a = membership_start(&ca, 0, NULL, NULL);
	b = membership_start(&cb, 0, NULL, NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(wait_members(a, 2, 3000));
	membership_drain_key(cluster_name, "delta", key, sizeof(key));
	assert_int_equal(etcd_put(e, key, "", 0, NULL), 0);
	assert_true(wait_members(a, 1, 3000));
	assert_true(wait_members(b, 1, 3000));
	assert_string_equal(ring_member_id(membership_ring(b), 0), "charlie");
	/* Drained, the node owns nothing but stays a member. */
	for (int64_t c = 1; c <= 100; c++)
		assert_int_equal(owner_of(b, c), ROUTE_OWNER_REMOTE);
	assert_int_equal(etcd_delete(e, key), 0);
	assert_true(wait_members(a, 2, 3000));
	membership_stop(b);
	membership_stop(a);
	etcd_close(e);
}

/* etcd killed: may_ack turns false within the lease's TTL less the margin,
 * never after the lease could have expired; etcd back: the node holds a
 * lease again and acknowledges. */
static void test_fail_closed_without_etcd(void **state)
{
	const char *ctl = getenv("FANOUT_TEST_ETCD_CTL"), *dir = getenv("FANOUT_TEST_ETCD_DIR");
	const char *port = strrchr(endpoint, ':') + 1;
	struct config_cluster ca;
	struct membership *a;
	char cmd[600];
	uint64_t killed, closed;

	new_cluster();
	config_of(&ca, "echo");
	a = membership_start(&ca, 0, NULL, NULL);
	assert_non_null(a);
	usleep(400000); /* a renewal or two */
	assert_true(membership_may_ack(a));
	snprintf(cmd, sizeof(cmd), "%s kill %s >/dev/null", ctl, dir);
	assert_int_equal(system(cmd), 0);
	killed = time_mono_ns();
	while (membership_may_ack(a) && time_mono_ns() - killed < 3000000000ull)
		usleep(5000);
	closed = time_mono_ns();
	assert_false(membership_may_ack(a));
	/* The last renewal that succeeded was sent before the kill, so its lease
	 * runs out at most TTL after the kill; we stopped a margin before. */
	assert_true(closed - killed < 1000000000ull - 250000000ull);
	snprintf(cmd, sizeof(cmd), "%s start %s %s >/dev/null", ctl, dir, port);
	assert_int_equal(system(cmd), 0);
	for (int i = 0; i < 500 && !membership_may_ack(a); i++)
		usleep(10000);
	assert_true(membership_may_ack(a));
	assert_true(wait_members(a, 1, 3000));
	membership_stop(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_etcd_client),
	    cmocka_unit_test(test_join_agree_leave),
	    cmocka_unit_test(test_drain_leaves_the_ring),
	    cmocka_unit_test(test_fail_closed_without_etcd),
	};

	endpoint = getenv("FANOUT_TEST_ETCD");
	if (endpoint == NULL || getenv("FANOUT_TEST_ETCD_CTL") == NULL ||
	    getenv("FANOUT_TEST_ETCD_DIR") == NULL) {
		fprintf(stderr, "test_membership: set FANOUT_TEST_ETCD, FANOUT_TEST_ETCD_CTL and "
				"FANOUT_TEST_ETCD_DIR (deploy/test does)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
