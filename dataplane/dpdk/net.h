/* SPDX-License-Identifier: BSD-3-Clause */
/* The network layer of the DPDK edge below TCP: Ethernet, ARP (answer,
 * resolve, a cache with expiry), IPv4 (fragments and bad headers dropped and
 * counted) and ICMP echo, plus the Internet checksum in the pieces the
 * zero-copy send path needs (a payload's partial sum computed once, folded
 * into each recipient's TCP checksum). Plain C on byte buffers, like tcp.c:
 * the lcore glue hands frames in and sends what comes out. Addresses are in
 * host byte order except inside frames. */
#pragma once

#include "bytes.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NET_ETH_HLEN 14
#define NET_IP_HLEN  20

/* ---- the Internet checksum (RFC 1071) ---- */

/* The 32-bit one's-complement partial sum of data added to sum, as if data
 * started at an even offset. */
uint32_t csum_partial(const void *data, size_t len, uint32_t sum);

/* The helpers below (and bytes.h's csum_fold16 and csum_swap16), and the
 * header writers under "send", are inline: every segment the edge sends
 * goes through them (tx.c). */

/* Adds a block's partial sum that sits at offset off of the summed whole
 * (an odd offset swaps its bytes) to a wide sum, not folded: a segment's
 * pieces are added up and the whole folded once (net_tcp_checksum_sums). */
static inline uint64_t csum_add_wide(uint64_t sum, uint64_t block, size_t off)
{
	if (off & 1) {
		uint32_t b = csum_fold16(block);

		block = ((b & 0xff) << 8) | (b >> 8);
	}
	return sum + block;
}

/* Folds a partial sum to 16 bits and complements it (network order value
 * as a host integer: store it with the high byte first). */
static inline uint16_t csum_fold(uint32_t sum)
{
	return (uint16_t)~csum_fold16(sum);
}

/* The TCP pseudo-header's partial sum (RFC 9293 3.1). */
static inline uint32_t csum_pseudo(uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t len)
{
	return csum_fold16((uint64_t)(saddr >> 16) + (saddr & 0xffff) + (daddr >> 16) +
			   (daddr & 0xffff) + proto + len);
}

/* ---- ARP cache ---- */

struct arp_entry {
	uint32_t ip;
	uint8_t mac[6];
	bool valid;
	uint64_t expires_us;
	uint64_t asked_us; /* when we last sent a request for it */
};

struct net_stats {
	uint64_t rx_frames, rx_not_for_us, rx_bad_eth;
	uint64_t arp_requests_answered, arp_replies_learned, arp_requests_sent, arp_bad;
	uint64_t ip_bad_header, ip_bad_checksum, ip_fragments, ip_not_ours, ip_other_proto;
	uint64_t icmp_echo_answered, icmp_bad, icmp_other;
	uint64_t tcp_bad_checksum, tcp_segments;
};

struct net {
	uint8_t mac[6];
	uint32_t ip, netmask, gateway; /* gateway 0: on-link peers only */
	uint64_t arp_ttl_us;	       /* how long a learned entry lives */
	uint64_t arp_retry_us;	       /* at most one request per address per this */
	bool rx_csum_checked;	       /* the NIC verified IP and TCP checksums */
	bool tx_csum_offload;	       /* the NIC fills in IPv4 and TCP checksums */
	struct arp_entry *arp;	       /* arp_size entries, open addressing */
	uint32_t arp_size;	       /* a power of two */
	struct net_stats st;
	/* what the Ethernet and IPv4 headers of every segment sent share (our
	 * MAC, the type, version, don't-fragment, TTL, protocol, our address),
	 * with the sum of those IPv4 words: net_ip_headers patches the rest */
	uint8_t hdr[NET_ETH_HLEN + NET_IP_HLEN];
	uint32_t hdr_sum;
};

/* Sets n up with an ARP table of arp_size entries (a power of two) it
 * allocates; 0 or -1. */
int net_init(struct net *n, const uint8_t mac[6], uint32_t ip, uint32_t netmask, uint32_t gateway,
	     uint32_t arp_size);
void net_fini(struct net *n);

/* The MAC to send to ip (through the gateway when off-link). Returns true
 * and fills mac, or false: then, if a request is due, req (60 bytes) holds
 * an ARP request to send and *req_len its length (else 0). */
bool net_resolve(struct net *n, uint32_t ip, uint64_t now_us, uint8_t mac[6], uint8_t *req,
		 size_t *req_len);

/* Records ip -> mac (from ARP, or a TCP segment's source). */
void net_learn(struct net *n, uint32_t ip, const uint8_t mac[6], uint64_t now_us);

/* ---- receive ---- */

enum net_verdict {
	NET_DROP,  /* counted in st */
	NET_REPLY, /* the frame was rewritten in place into a reply: send it */
	NET_TCP,   /* a TCP segment for us: see the info */
};

struct net_rx_info {
	uint32_t saddr, daddr;
	const uint8_t *tcp; /* the TCP header */
	size_t tcp_len;	    /* header and payload */
	size_t reply_len;   /* NET_REPLY: the reply's length */
};

/* Classifies one received Ethernet frame. ARP requests for our address and
 * ICMP echo requests become replies in place; TCP to our address is checked
 * (lengths, checksums unless rx_csum_checked) and handed up. */
enum net_verdict net_rx(struct net *n, uint8_t *frame, size_t len, uint64_t now_us,
			struct net_rx_info *info);

/* ---- send ---- */

/* Writes the Ethernet and IPv4 headers of a TCP segment of tcp_len bytes
 * (header and payload) to dst (its MAC already resolved) into p (34
 * bytes): n's shared bytes (net_init), then the destination, length, ID
 * and sum. ip_id is the caller's counter. The IPv4 checksum is left 0 when
 * tx_csum_offload; else it is the sum of the words, from their values
 * (reading them back would wait for the stores). */
static inline void net_ip_headers(const struct net *n, uint8_t *p, const uint8_t dst_mac[6],
				  uint32_t daddr, uint16_t tcp_len, uint16_t ip_id)
{
	uint8_t *ip = p + NET_ETH_HLEN;
	uint16_t total = (uint16_t)(NET_IP_HLEN + tcp_len);

	memcpy(p, n->hdr, sizeof(n->hdr));
	memcpy(p, dst_mac, 6);
	put16(ip + 2, total);
	put16(ip + 4, ip_id);
	if (!n->tx_csum_offload)
		put16(ip + 10,
		      csum_fold(n->hdr_sum + total + ip_id + (daddr >> 16) + (daddr & 0xffff)));
	put32(ip + 16, daddr);
}

/* Completes the TCP checksum of a segment whose header is tcp_hdr (hlen
 * bytes, checksum field zero) followed by a payload of payload_len bytes
 * whose partial sum is payload_sum. */
void net_tcp_checksum(uint8_t *tcp_hdr, size_t hlen, uint32_t saddr, uint32_t daddr,
		      uint32_t payload_sum, size_t payload_len);

/* The same, from the header's sum (tcp_out_header's) instead of its bytes.
 * The pseudo-header, the header and the payload are added unfolded and
 * the whole folded once (one's complement addition is associative). */
static inline void net_tcp_checksum_sums(uint8_t *tcp_hdr, size_t hlen, uint32_t header_sum,
					 uint32_t saddr, uint32_t daddr, uint64_t payload_sum,
					 size_t payload_len)
{
	uint64_t s = (uint64_t)(saddr >> 16) + (saddr & 0xffff) + (daddr >> 16) + (daddr & 0xffff) +
		     6 + (uint16_t)(hlen + payload_len) + header_sum;

	put16(tcp_hdr + 16, (uint16_t)~csum_fold16(csum_add_wide(s, payload_sum, hlen)));
}

/* For a NIC that completes the TCP checksum (tx_csum_offload): the sum of
 * the pseudo-header for a segment of tcp_len bytes, not complemented, in
 * the checksum field; the NIC adds header and payload and complements. */
void net_tcp_checksum_offload(uint8_t *tcp_hdr, uint32_t saddr, uint32_t daddr, size_t tcp_len);
