/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the DPDK edge's network layer: the Internet checksum in
 * pieces, ARP (answering, resolving, the cache's expiry and rate limit),
 * IPv4 validation with every drop counted, ICMP echo, and TCP hand-up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bytes.h"
#include "net.h"

#include <string.h>

static const uint8_t OUR_MAC[6] = {0x02, 0, 0, 0, 0, 1}, PEER_MAC[6] = {0x02, 0, 0, 0, 0, 2};
#define OUR_IP	0x0a000001u /* 10.0.0.1 */
#define PEER_IP 0x0a000002u /* 10.0.0.2 */
#define MASK	0xffffff00u
#define GW	0x0a0000feu

static struct net N;

static int setup(void **state)
{
	assert_int_equal(net_init(&N, OUR_MAC, OUR_IP, MASK, GW, 64), 0);
	return 0;
}

static int teardown(void **state)
{
	net_fini(&N);
	return 0;
}

/* An IPv4 frame from the peer to us: proto, payload, a valid checksum. */
static size_t ip_frame(uint8_t *f, uint8_t proto, const uint8_t *payload, size_t len)
{
	uint8_t *ip = f + 14;

	memset(f, 0, 14 + 20);
	memcpy(f, OUR_MAC, 6);
	memcpy(f + 6, PEER_MAC, 6);
	put16(f + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + len));
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, PEER_IP);
	put32(ip + 16, OUR_IP);
	put16(ip + 10, csum_fold(csum_partial(ip, 20, 0)));
	memcpy(ip + 20, payload, len);
	return 14 + 20 + len;
}

static void refresh_ip_checksum(uint8_t *f)
{
	put16(f + 24, 0);
	put16(f + 24, csum_fold(csum_partial(f + 14, 20, 0)));
}

/* RFC 1071's example, and sums of pieces at odd offsets equal the whole. */
static void test_checksum_pieces(void **state)
{
	static const uint8_t v[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
	uint8_t data[301];
	uint32_t whole, pieces;

	assert_int_equal(csum_partial(v, 8, 0), 0xddf2);
	assert_int_equal(csum_fold(csum_partial(v, 8, 0)), 0x220d);
	for (int i = 0; i < 301; i++)
		data[i] = (uint8_t)(i * 37 + 11);
	whole = csum_partial(data, 301, 0);
	for (size_t cut = 0; cut <= 301; cut += 7) {
		uint64_t wide = 0;

		pieces = csum_fold16(csum_add_wide(csum_partial(data, cut, 0),
						   csum_partial(data + cut, 301 - cut, 0), cut));
		assert_int_equal(csum_fold(pieces), csum_fold(whole));
		/* the same in three pieces added wide, folded once */
		wide = csum_add_wide(wide, csum_partial(data, cut / 2, 0), 0);
		wide = csum_add_wide(wide, csum_partial(data + cut / 2, cut - cut / 2, 0), cut / 2);
		wide = csum_add_wide(wide, csum_partial(data + cut, 301 - cut, 0), cut);
		assert_int_equal(csum_fold16(wide), csum_fold16(whole));
	}
}

/* The byte at a time sum of big-endian words, as RFC 1071 writes it. */
static uint32_t slow_sum(const uint8_t *p, size_t len, uint32_t sum)
{
	uint64_t s = sum;

	for (size_t i = 0; i < len; i += 2)
		s += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

/* The word at a time sum equals it at every length and alignment, from any
 * starting sum, on bytes that make carries (0xff runs) and on zeros. */
static void test_checksum_against_bytewise(void **state)
{
	uint8_t data[1600];
	uint32_t seed = 12345;

	for (size_t i = 0; i < sizeof(data); i++) {
		seed = seed * 1103515245u + 12345u;
		data[i] = i % 97 < 40 ? 0xff : (uint8_t)(seed >> 16);
	}
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len + off <= sizeof(data); len += len < 80 ? 1 : 37)
			for (uint32_t start = 0; start < 0x30000; start += 0xfff1)
				assert_int_equal(csum_partial(data + off, len, start),
						 slow_sum(data + off, len, start));
	memset(data, 0, sizeof(data));
	assert_int_equal(csum_partial(data, 1500, 0), 0);
	memset(data, 0xff, sizeof(data));
	assert_int_equal(csum_partial(data, 1500, 0), 0xffff);
	assert_int_equal(csum_partial(data, 1499, 0), slow_sum(data, 1499, 0));
}

/* A header's checksum completed from a payload's sum taken once verifies
 * as a whole segment. */
static void test_tcp_checksum_from_payload_sum(void **state)
{
	uint8_t seg[20 + 12 + 333];

	for (size_t i = 0; i < sizeof(seg); i++)
		seg[i] = (uint8_t)(i * 13 + 5);
	put16(seg + 16, 0);
	net_tcp_checksum(seg, 32, OUR_IP, PEER_IP, csum_partial(seg + 32, 333, 0), 333);
	assert_int_equal(
	    csum_fold(csum_partial(seg, sizeof(seg), csum_pseudo(OUR_IP, PEER_IP, 6, sizeof(seg)))),
	    0);
	/* and one flipped bit does not */
	seg[100] ^= 4;
	assert_int_not_equal(
	    csum_fold(csum_partial(seg, sizeof(seg), csum_pseudo(OUR_IP, PEER_IP, 6, sizeof(seg)))),
	    0);
}

/* With the NIC completing checksums: the pseudo-header's sum in the field,
 * and a NIC's work (sum header and payload from there, complement) gives
 * the checksum software would have written. */
static void test_tcp_checksum_offload(void **state)
{
	uint8_t seg[32 + 333], nic[sizeof(seg)];
	struct net n = {.ip = OUR_IP, .tx_csum_offload = true};
	uint8_t f[34];

	(void)state;
	for (size_t i = 0; i < sizeof(seg); i++)
		seg[i] = (uint8_t)(i * 7 + 3);
	put16(seg + 16, 0);
	memcpy(nic, seg, sizeof(seg));
	net_tcp_checksum(seg, 32, OUR_IP, PEER_IP, csum_partial(seg + 32, 333, 0), 333);
	net_tcp_checksum_offload(nic, OUR_IP, PEER_IP, sizeof(nic));
	assert_int_not_equal(get16(nic + 16), get16(seg + 16));
	put16(nic + 16, csum_fold(csum_partial(nic, sizeof(nic), 0)));
	assert_int_equal(get16(nic + 16), get16(seg + 16));
	/* the IPv4 header's checksum is the NIC's too */
	net_ip_headers(&n, f, PEER_MAC, PEER_IP, sizeof(seg), 9);
	assert_int_equal(get16(f + 24), 0);
	n.tx_csum_offload = false;
	net_ip_headers(&n, f, PEER_MAC, PEER_IP, sizeof(seg), 9);
	assert_int_not_equal(get16(f + 24), 0);
	assert_int_equal(csum_fold(csum_partial(f + 14, 20, 0)), 0);
}

static size_t arp_request(uint8_t *f, uint32_t spa, uint32_t tpa, uint16_t oper)
{
	memset(f, 0, 60);
	memset(f, 0xff, 6);
	memcpy(f + 6, PEER_MAC, 6);
	put16(f + 12, 0x0806);
	put16(f + 14, 1);
	put16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, oper);
	memcpy(f + 22, PEER_MAC, 6);
	put32(f + 28, spa);
	put32(f + 38, tpa);
	return 60;
}

/* RFC 826: a request for our address is answered and its sender learned;
 * one for another address is not answered. */
static void test_arp_answer(void **state)
{
	uint8_t f[64], mac[6], req[60];
	struct net_rx_info info;
	size_t req_len;

	assert_int_equal(net_rx(&N, f, arp_request(f, PEER_IP, OUR_IP, 1), 0, &info), NET_REPLY);
	assert_int_equal(info.reply_len, 60);
	assert_memory_equal(f, PEER_MAC, 6);
	assert_memory_equal(f + 6, OUR_MAC, 6);
	assert_int_equal(get16(f + 20), 2);
	assert_memory_equal(f + 22, OUR_MAC, 6);
	assert_int_equal(get32(f + 28), OUR_IP);
	assert_memory_equal(f + 32, PEER_MAC, 6);
	assert_int_equal(get32(f + 38), PEER_IP);
	assert_true(net_resolve(&N, PEER_IP, 1, mac, req, &req_len));
	assert_memory_equal(mac, PEER_MAC, 6);
	assert_int_equal(net_rx(&N, f, arp_request(f, PEER_IP, 0x0a000009, 1), 0, &info), NET_DROP);
	assert_int_equal(N.st.arp_requests_answered, 1);
	/* truncated or not Ethernet/IPv4 */
	assert_int_equal(net_rx(&N, f, 30, 0, &info), NET_DROP);
	arp_request(f, PEER_IP, OUR_IP, 1);
	f[19] = 16;
	assert_int_equal(net_rx(&N, f, 60, 0, &info), NET_DROP);
	assert_int_equal(N.st.arp_bad, 2);
}

/* Resolving: a miss sends one request (rate limited), a reply fills the
 * cache, entries expire, off-link goes through the gateway. */
static void test_arp_resolve_and_expiry(void **state)
{
	uint8_t mac[6], req[60], f[64];
	struct net_rx_info info;
	size_t req_len;
	uint64_t t = 5000000;

	assert_false(net_resolve(&N, PEER_IP, t, mac, req, &req_len));
	assert_int_equal(req_len, 60);
	assert_int_equal(get16(req + 12), 0x0806);
	assert_int_equal(get16(req + 20), 1);
	assert_int_equal(get32(req + 38), PEER_IP);
	assert_memory_equal(req, "\xff\xff\xff\xff\xff\xff", 6);
	assert_false(net_resolve(&N, PEER_IP, t + 1000, mac, req, &req_len));
	assert_int_equal(req_len, 0); /* asked already */
	assert_false(net_resolve(&N, PEER_IP, t + 1100000, mac, req, &req_len));
	assert_int_equal(req_len, 60); /* asked again after a second */
	/* the reply */
	arp_request(f, PEER_IP, OUR_IP, 2);
	memcpy(f, OUR_MAC, 6);
	assert_int_equal(net_rx(&N, f, 60, t + 1200000, &info), NET_DROP);
	assert_int_equal(N.st.arp_replies_learned, 1);
	assert_true(net_resolve(&N, PEER_IP, t + 1300000, mac, req, &req_len));
	assert_memory_equal(mac, PEER_MAC, 6);
	/* expiry */
	assert_false(net_resolve(&N, PEER_IP, t + 1200000 + N.arp_ttl_us, mac, req, &req_len));
	assert_int_equal(req_len, 60);
	/* off-link: the gateway is asked for */
	assert_false(net_resolve(&N, 0x08080808, t, mac, req, &req_len));
	assert_int_equal(get32(req + 38), GW);
	N.gateway = 0;
	assert_false(net_resolve(&N, 0x08080808, t, mac, req, &req_len));
	assert_int_equal(req_len, 0);
	assert_int_equal(N.st.arp_requests_sent, 4);
}

/* Every malformed or foreign IPv4 packet is dropped and counted. */
static void test_ipv4_drops(void **state)
{
	uint8_t f[128], tcp[20] = {0};
	struct net_rx_info info;
	size_t len;

	len = ip_frame(f, 6, tcp, 20);
	f[14] = 0x65; /* version 6 */
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	len = ip_frame(f, 6, tcp, 20);
	f[14] = 0x44; /* ihl 16 bytes */
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	len = ip_frame(f, 6, tcp, 20);
	put16(f + 16, 200); /* total beyond the frame */
	refresh_ip_checksum(f);
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	assert_int_equal(N.st.ip_bad_header, 3);
	len = ip_frame(f, 6, tcp, 20);
	f[22] ^= 1; /* TTL changed, checksum not */
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	assert_int_equal(N.st.ip_bad_checksum, 1);
	len = ip_frame(f, 6, tcp, 20);
	put16(f + 20, 0x2000); /* more fragments */
	refresh_ip_checksum(f);
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	put16(f + 20, 0x0010); /* an offset */
	refresh_ip_checksum(f);
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	assert_int_equal(N.st.ip_fragments, 2);
	len = ip_frame(f, 6, tcp, 20);
	put32(f + 30, 0x0a000003); /* someone else's */
	refresh_ip_checksum(f);
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	assert_int_equal(N.st.ip_not_ours, 1);
	len = ip_frame(f, 17, tcp, 20); /* UDP */
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	assert_int_equal(N.st.ip_other_proto, 1);
	len = ip_frame(f, 6, tcp, 20);
	f[0] = 0x04; /* another host's MAC */
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	assert_int_equal(N.st.rx_not_for_us, 1);
}

/* ICMP echo request -> reply with addresses swapped and checksums valid. */
static void test_icmp_echo(void **state)
{
	uint8_t f[128], icmp[16] = {8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g', 0, 1, 2, 3};
	struct net_rx_info info;
	size_t len;

	put16(icmp + 2, csum_fold(csum_partial(icmp, 16, 0)));
	len = ip_frame(f, 1, icmp, 16);
	assert_int_equal(net_rx(&N, f, len + 10 /* padding */, 0, &info), NET_REPLY);
	assert_int_equal(info.reply_len, len);
	assert_memory_equal(f, PEER_MAC, 6);
	assert_int_equal(get32(f + 26), OUR_IP);
	assert_int_equal(get32(f + 30), PEER_IP);
	assert_int_equal(csum_fold(csum_partial(f + 14, 20, 0)), 0);
	assert_int_equal(f[34], 0);
	assert_int_equal(csum_fold(csum_partial(f + 34, 16, 0)), 0);
	assert_memory_equal(f + 38, "\x12\x34\x00\x01ping", 8);
	/* a bad ICMP checksum, and a type we do not answer */
	len = ip_frame(f, 1, icmp, 16);
	f[40] ^= 1;
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	icmp[0] = 13; /* timestamp request */
	put16(icmp + 2, 0);
	put16(icmp + 2, csum_fold(csum_partial(icmp, 16, 0)));
	len = ip_frame(f, 1, icmp, 16);
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	assert_int_equal(N.st.icmp_bad, 1);
	assert_int_equal(N.st.icmp_other, 1);
}

/* TCP is handed up with its length from the IP header (not the padded
 * frame), after its checksum; a bad one is dropped unless the NIC checked. */
static void test_tcp_hand_up(void **state)
{
	uint8_t f[128], tcp[24] = {0};
	struct net_rx_info info;
	size_t len;

	tcp[12] = 5 << 4;
	memcpy(tcp + 20, "abcd", 4);
	net_tcp_checksum(tcp, 20, PEER_IP, OUR_IP, csum_partial(tcp + 20, 4, 0), 4);
	len = ip_frame(f, 6, tcp, 24);
	assert_int_equal(net_rx(&N, f, len + 8, 0, &info), NET_TCP);
	assert_int_equal(info.saddr, PEER_IP);
	assert_int_equal(info.daddr, OUR_IP);
	assert_int_equal(info.tcp_len, 24);
	assert_ptr_equal(info.tcp, f + 34);
	f[len - 1] ^= 0x40;
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_DROP);
	assert_int_equal(N.st.tcp_bad_checksum, 1);
	N.rx_csum_checked = true;
	assert_int_equal(net_rx(&N, f, len, 0, &info), NET_TCP);
	/* the headers we build for sending verify */
	net_ip_headers(&N, f, PEER_MAC, PEER_IP, 24, 7);
	assert_int_equal(csum_fold(csum_partial(f + 14, 20, 0)), 0);
	assert_int_equal(get16(f + 16), 44);
	assert_int_equal(get32(f + 30), PEER_IP);
	assert_memory_equal(f, PEER_MAC, 6);
	/* and the bytes every segment shares, from net_init's template */
	assert_memory_equal(f + 6, OUR_MAC, 6);
	assert_int_equal(get16(f + 12), 0x0800);
	assert_int_equal(f[14], 0x45);			/* IPv4, 20-byte header */
	assert_int_equal(get16(f + 18), 7);		/* the ID given */
	assert_int_equal(get16(f + 20), 0x4000);	/* don't fragment */
	assert_int_equal(get16(f + 22), 64u << 8 | 6u); /* TTL 64, TCP */
	assert_int_equal(get32(f + 26), OUR_IP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checksum_pieces),
	    cmocka_unit_test(test_checksum_against_bytewise),
	    cmocka_unit_test(test_tcp_checksum_from_payload_sum),
	    cmocka_unit_test(test_tcp_checksum_offload),
	    cmocka_unit_test_setup_teardown(test_arp_answer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_arp_resolve_and_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ipv4_drops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_icmp_echo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tcp_hand_up, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
