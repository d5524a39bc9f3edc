/* SPDX-License-Identifier: BSD-3-Clause */
/* Tests of the peer link: its wire format (every frame type round trips;
 * truncation, another version, an unknown type, a length past the limit and
 * trailing bytes are refused) and the link itself on loopback (the mutual
 * handshake, a wrong secret, a non-member, a bad frame from a raw socket:
 * each refused, counted and closed; frames flow both ways once up). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "peer.h"
#include "peer_wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct peer_msg roundtrip(const struct peer_msg *in)
{
	struct buf b = {0};
	struct peer_msg out;
	size_t used = 0;

	assert_int_equal(peer_encode(&b, in), 0);
	/* Every proper prefix asks for more. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(peer_decode((uint8_t *)b.data, n, &out, &used), 0);
	assert_int_equal(peer_decode((uint8_t *)b.data, b.len, &out, &used), 1);
	assert_int_equal(used, b.len);
	assert_int_equal(out.type, in->type);
	buf_free(&b);
	return out;
}

static void test_wire_round_trips(void **state)
{
	struct peer_msg m = {.type = PEER_PUBLISH,
			     .req = 77,
			     .live = true,
			     .channel = 5,
			     .author = 9,
			     .parent = 3,
			     .payload = (const uint8_t *)"hello",
			     .payload_len = 5};
	struct peer_msg out;

	snprintf(m.kind, sizeof(m.kind), "message");
	snprintf(m.client_msg_id, sizeof(m.client_msg_id), "c-1");
	snprintf(m.author_name, sizeof(m.author_name), "alice");
	out = roundtrip(&m);
	assert_true(out.req == 77 && out.live && out.channel == 5 && out.author == 9);
	assert_int_equal(out.parent, 3);
	assert_string_equal(out.kind, "message");
	assert_string_equal(out.client_msg_id, "c-1");
	assert_string_equal(out.author_name, "alice");
	assert_int_equal(out.payload_len, 5);

	m = (struct peer_msg){.type = PEER_ACK,
			      .req = 1ull << 40,
			      .outcome = 2,
			      .error = -116,
			      .seq = 123456789012ll,
			      .created_at_us = -5};
	out = roundtrip(&m);
	assert_true(out.req == 1ull << 40 && out.seq == 123456789012ll);
	assert_int_equal(out.error, -116);
	assert_int_equal(out.created_at_us, -5);

	m = (struct peer_msg){.type = PEER_INTEREST, .channel = -1, .on = true};
	out = roundtrip(&m);
	assert_true(out.on && out.channel == -1);

	m = (struct peer_msg){.type = PEER_BROADCAST,
			      .channel = 8,
			      .seq = 4,
			      .frame_kind = 1,
			      .payload = (const uint8_t *)"{}",
			      .payload_len = 2};
	out = roundtrip(&m);
	assert_int_equal(out.frame_kind, 1);
	assert_memory_equal(out.payload, "{}", 2);

	m = (struct peer_msg){.type = PEER_PRESENCE, .user_kind = 3, .outcome = 2};
	snprintf(m.author_name, sizeof(m.author_name), "bob.smith");
	out = roundtrip(&m);
	assert_int_equal(out.user_kind, 3);
	assert_int_equal(out.outcome, 2);
	assert_string_equal(out.author_name, "bob.smith");

	m = (struct peer_msg){.type = PEER_CHALLENGE};
	snprintf(m.name, sizeof(m.name), "node-b");
	memset(m.nonce, 7, sizeof(m.nonce));
	memset(m.mac, 9, sizeof(m.mac));
	out = roundtrip(&m);
	assert_string_equal(out.name, "node-b");
	assert_memory_equal(out.mac, m.mac, PEER_MAC);
}

static void test_wire_refusals(void **state)
{
	struct peer_msg m = {.type = PEER_INTEREST, .channel = 1, .on = true}, out;
	struct buf b = {0};
	size_t used;
	uint8_t bad[16];

	assert_int_equal(peer_encode(&b, &m), 0);
	memcpy(bad, b.data, b.len);
	bad[4] = 2; /* another version */
	assert_int_equal(peer_decode(bad, b.len, &out, &used), -EPROTONOSUPPORT);
	assert_int_equal(peer_decode(bad, 5, &out, &used), -EPROTONOSUPPORT);
	memcpy(bad, b.data, b.len);
	bad[5] = 99; /* no such type */
	assert_int_equal(peer_decode(bad, b.len, &out, &used), -EPROTO);
	memcpy(bad, b.data, b.len);
	bad[3] += 1; /* a byte more than the payload: trailing garbage */
	bad[b.len] = 0;
	assert_int_equal(peer_decode(bad, b.len + 1, &out, &used), -EPROTO);
	memcpy(bad, b.data, b.len);
	bad[3] -= 1; /* a byte short: the payload does not parse */
	assert_int_equal(peer_decode(bad, b.len - 1, &out, &used), -EPROTO);
	bad[0] = 0x7f; /* far past the limit */
	assert_int_equal(peer_decode(bad, 4, &out, &used), -EMSGSIZE);
	/* A string with a NUL inside. */
	buf_reset(&b);
	m = (struct peer_msg){.type = PEER_HELLO};
	snprintf(m.name, sizeof(m.name), "ab");
	assert_int_equal(peer_encode(&b, &m), 0);
	b.data[10] = 0;
	assert_int_equal(peer_decode((uint8_t *)b.data, b.len, &out, &used), -EPROTO);
	buf_free(&b);
}

static void test_mac_binds_everything(void **state)
{
	uint8_t na[PEER_NONCE] = {1}, nb[PEER_NONCE] = {2}, x[PEER_MAC], y[PEER_MAC];

	peer_mac("s", 's', na, nb, "a", "b", x);
	peer_mac("s", 's', na, nb, "a", "b", y);
	assert_true(peer_mac_equal(x, y));
	peer_mac("t", 's', na, nb, "a", "b", y);
	assert_false(peer_mac_equal(x, y));
	peer_mac("s", 'c', na, nb, "a", "b", y);
	assert_false(peer_mac_equal(x, y));
	peer_mac("s", 's', nb, na, "a", "b", y);
	assert_false(peer_mac_equal(x, y));
	peer_mac("s", 's', na, nb, "ab", "", y);
	assert_false(peer_mac_equal(x, y));
}

/* ---- the link on loopback ---- */

struct node {
	struct peer_link *link;
	const char *members;
	int up, down, got;
	struct peer_msg last;
	char last_from[64];
	bool last_outbound;
};

static void on_message(void *arg, const char *peer, bool outbound, const struct peer_msg *m)
{
	struct node *n = arg;

	n->last = *m;
	n->last.payload = NULL;
	snprintf(n->last_from, sizeof(n->last_from), "%s", peer);
	n->last_outbound = outbound;
	__atomic_add_fetch(&n->got, 1, __ATOMIC_RELEASE);
}

static void on_up(void *arg, const char *peer)
{
	__atomic_add_fetch(&((struct node *)arg)->up, 1, __ATOMIC_RELEASE);
}

static void on_down(void *arg, const char *peer)
{
	__atomic_add_fetch(&((struct node *)arg)->down, 1, __ATOMIC_RELEASE);
}

static bool is_member(void *arg, const char *name)
{
	return strstr(((struct node *)arg)->members, name) != NULL;
}

static const struct peer_link_ops ops = {on_message, on_up, on_down, NULL, is_member};

static bool wait_int(int *v, int want, int ms)
{
	for (int i = 0; i < ms / 5; i++) {
		if (__atomic_load_n(v, __ATOMIC_ACQUIRE) >= want)
			return true;
		usleep(5000);
	}
	return false;
}

/* n loopback ports no one listens on, chosen by the kernel (held together
 * so that they differ). A port made from the pid could be one a server of
 * the suite holds (CI once drew the test etcd's). */
static void free_ports(int *port, int n)
{
	int fd[8];

	assert_true(n <= 8);
	for (int i = 0; i < n; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t len = sizeof(sa);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fd[i] >= 0);
		assert_int_equal(bind(fd[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(getsockname(fd[i], (struct sockaddr *)&sa, &len), 0);
		port[i] = ntohs(sa.sin_port);
	}
	for (int i = 0; i < n; i++)
		close(fd[i]);
}

static void test_link_handshake_and_traffic(void **state)
{
	struct node a = {.members = "a b"}, b = {.members = "a b"};
	char pa[32], pb[32];
	struct peer_msg m = {.type = PEER_INTEREST, .channel = 42, .on = true};
	uint64_t refused = 0;
	int port[2];

	free_ports(port, 2);
	snprintf(pa, sizeof(pa), "127.0.0.1:%d", port[0]);
	snprintf(pb, sizeof(pb), "127.0.0.1:%d", port[1]);
	a.link = peer_link_start("a", pa, "secret", &ops, &a);
	b.link = peer_link_start("b", pb, "secret", &ops, &b);
	assert_non_null(a.link);
	assert_non_null(b.link);
	refused = peer_link_refused(a.link);
	assert_int_equal(peer_link_send(a.link, "b", true, &m), -ENOTCONN);
	peer_link_want(a.link, "b", pb);
	assert_true(wait_int(&a.up, 1, 3000));
	/* a's request reaches b on b's inbound link; b answers on it. */
	for (int i = 0; i < 100 && peer_link_send(a.link, "b", true, &m) != 0; i++)
		usleep(10000);
	assert_true(wait_int(&b.got, 1, 3000));
	assert_string_equal(b.last_from, "a");
	assert_false(b.last_outbound);
	assert_int_equal(b.last.type, PEER_INTEREST);
	assert_int_equal(b.last.channel, 42);
	m = (struct peer_msg){.type = PEER_ACK, .req = 5, .seq = 6};
	assert_int_equal(peer_link_send(b.link, "a", false, &m), 0);
	assert_true(wait_int(&a.got, 1, 3000));
	assert_true(a.last_outbound);
	assert_int_equal(a.last.seq, 6);
	assert_int_equal(peer_link_refused(a.link), refused);

	/* b goes away: a sees its link drop and dials again when b is back. */
	peer_link_stop(b.link);
	assert_true(wait_int(&a.down, 1, 3000));
	b.link = peer_link_start("b", pb, "secret", &ops, &b);
	assert_non_null(b.link);
	assert_true(wait_int(&a.up, 2, 5000));
	peer_link_stop(a.link);
	peer_link_stop(b.link);
}

static void test_link_refusals(void **state)
{
	struct node a = {.members = "a b"}, b = {.members = "a b"}, c = {.members = "a b c"};
	char pa[32], pb[32], pc[32];
	uint64_t before;
	int port[3];

	free_ports(port, 3);
	snprintf(pa, sizeof(pa), "127.0.0.1:%d", port[0]);
	snprintf(pb, sizeof(pb), "127.0.0.1:%d", port[1]);
	snprintf(pc, sizeof(pc), "127.0.0.1:%d", port[2]);
	a.link = peer_link_start("a", pa, "secret", &ops, &a);
	b.link = peer_link_start("b", pb, "other", &ops, &b);
	c.link = peer_link_start("c", pc, "secret", &ops, &c);
	assert_non_null(a.link);
	before = peer_link_refused(a.link);
	/* A wrong secret: never up, refused. */
	peer_link_want(a.link, "b", pb);
	assert_false(wait_int(&a.up, 1, 600));
	assert_true(peer_link_refused(a.link) > before);
	/* A dialer that is not a member: a never lets it up, and nothing it
	 * sends reaches a. */
	peer_link_want(c.link, "a", pa);
	assert_false(wait_int(&c.up, 1, 600));
	struct peer_msg probe = {.type = PEER_INTEREST, .channel = 1, .on = true};
	assert_int_equal(peer_link_send(c.link, "a", true, &probe), -ENOTCONN);
	assert_int_equal(b.got + a.got, 0);

	/* Raw bytes: a frame of another version is refused and the link closed. */
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port[0])};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint8_t junk[] = {0, 0, 0, 3, 9, 1, 0};
	char byte;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	before = peer_link_refused(a.link);
	assert_int_equal(send(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	assert_int_equal(recv(fd, &byte, 1, 0), 0); /* closed on us */
	close(fd);
	assert_true(peer_link_refused(a.link) > before);
	/* Silence: closed after the handshake's two seconds. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(recv(fd, &byte, 1, 0), 0);
	close(fd);
	peer_link_stop(a.link);
	peer_link_stop(b.link);
	peer_link_stop(c.link);
	assert_null(peer_link_start("d", "127.0.0.1:1", "", &ops, &a));
	assert_int_equal(errno, EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wire_round_trips),
	    cmocka_unit_test(test_wire_refusals),
	    cmocka_unit_test(test_mac_binds_everything),
	    cmocka_unit_test(test_link_handshake_and_traffic),
	    cmocka_unit_test(test_link_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
