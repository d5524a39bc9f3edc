/* SPDX-License-Identifier: BSD-3-Clause */
/* The DPDK edge's network layer below TCP: see net.h. */
#include "net.h"

#include "bytes.h"

#include <stdlib.h>
#include <string.h>

/* ---- checksum ---- */

/* Eight bytes at a time in the host's order, with the carries added back
 * (a 64-bit one's complement sum): by RFC 1071's byte-order independence
 * the folded sum, swapped on a little-endian host, is the sum of the
 * big-endian 16-bit words. Pairs bytes from data's start, aligned or not. */
uint32_t csum_partial(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;
	uint64_t s = csum_swap16(csum_fold16(sum)), q;
	uint32_t w = 0;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&q, p, 8);
		s += q;
		s += s < q;
	}
	s = (s & 0xffffffff) + (s >> 32);
	if (len >= 4) {
		memcpy(&w, p, 4);
		s += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t h;

		memcpy(&h, p, 2);
		s += h;
		p += 2;
		len -= 2;
	}
	if (len)
		s += csum_swap16((uint32_t)p[0] << 8);
	return csum_swap16(csum_fold16(s));
}

/* ---- ARP ---- */

int net_init(struct net *n, const uint8_t mac[6], uint32_t ip, uint32_t netmask, uint32_t gateway,
	     uint32_t arp_size)
{
	memset(n, 0, sizeof(*n));
	if (arp_size == 0 || (arp_size & (arp_size - 1)))
		return -1;
	n->arp = calloc(arp_size, sizeof(*n->arp));
	if (n->arp == NULL)
		return -1;
	memcpy(n->mac, mac, 6);
	n->ip = ip;
	memcpy(n->hdr + 6, mac, 6);
	put16(n->hdr + 12, 0x0800);
	put32(n->hdr + NET_ETH_HLEN, 0x45000000u); /* IPv4, 20 bytes; length per packet */
	put32(n->hdr + NET_ETH_HLEN + 4, 0x4000);  /* don't fragment; ID per packet */
	put32(n->hdr + NET_ETH_HLEN + 8, (64u << 8 | 6u) << 16); /* TTL, TCP; sum per packet */
	put32(n->hdr + NET_ETH_HLEN + 12, ip);
	n->hdr_sum = 0x4500u + 0x4000u + (64u << 8 | 6u) + (ip >> 16) + (ip & 0xffff);
	n->netmask = netmask;
	n->gateway = gateway;
	n->arp_size = arp_size;
	n->arp_ttl_us = 300ull * 1000000; /* five minutes, renewed by every ARP seen */
	n->arp_retry_us = 1000000;
	return 0;
}

void net_fini(struct net *n)
{
	free(n->arp);
	n->arp = NULL;
}

#define ARP_PROBES 8

static uint32_t arp_slot(const struct net *n, uint32_t ip)
{
	return (ip * 2654435761u) & (n->arp_size - 1);
}

/* The entry for ip, or NULL. */
static struct arp_entry *arp_find(struct net *n, uint32_t ip)
{
	for (uint32_t i = 0; i < ARP_PROBES && i < n->arp_size; i++) {
		struct arp_entry *a = &n->arp[(arp_slot(n, ip) + i) & (n->arp_size - 1)];

		if (a->ip == ip && (a->valid || a->asked_us))
			return a;
	}
	return NULL;
}

/* The entry for ip, made if need be: a free or expired slot, else the one
 * that expires first among the probed slots. */
static struct arp_entry *arp_slot_for(struct net *n, uint32_t ip, uint64_t now_us)
{
	struct arp_entry *a = arp_find(n, ip), *victim = NULL;

	if (a)
		return a;
	for (uint32_t i = 0; i < ARP_PROBES && i < n->arp_size; i++) {
		a = &n->arp[(arp_slot(n, ip) + i) & (n->arp_size - 1)];
		if ((!a->valid && !a->asked_us) || (a->valid && a->expires_us <= now_us)) {
			victim = a;
			break;
		}
		if (victim == NULL || a->expires_us < victim->expires_us)
			victim = a;
	}
	memset(victim, 0, sizeof(*victim));
	victim->ip = ip;
	return victim;
}

void net_learn(struct net *n, uint32_t ip, const uint8_t mac[6], uint64_t now_us)
{
	struct arp_entry *a = arp_slot_for(n, ip, now_us);

	memcpy(a->mac, mac, 6);
	a->valid = true;
	a->expires_us = now_us + n->arp_ttl_us;
	a->asked_us = 0;
}

static void arp_frame(const struct net *n, uint8_t *p, uint16_t oper, const uint8_t dst_mac[6],
		      const uint8_t tha[6], uint32_t tpa)
{
	memcpy(p, dst_mac, 6);
	memcpy(p + 6, n->mac, 6);
	put16(p + 12, 0x0806);
	put16(p + 14, 1);      /* Ethernet */
	put16(p + 16, 0x0800); /* IPv4 */
	p[18] = 6;
	p[19] = 4;
	put16(p + 20, oper);
	memcpy(p + 22, n->mac, 6);
	put32(p + 28, n->ip);
	memcpy(p + 32, tha, 6);
	put32(p + 38, tpa);
}

bool net_resolve(struct net *n, uint32_t ip, uint64_t now_us, uint8_t mac[6], uint8_t *req,
		 size_t *req_len)
{
	static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, zero[6] = {0};
	uint32_t hop = (ip & n->netmask) == (n->ip & n->netmask) ? ip : n->gateway;
	struct arp_entry *a;

	*req_len = 0;
	if (hop == 0)
		return false; /* off-link with no gateway */
	a = arp_find(n, hop);
	if (a && a->valid && a->expires_us > now_us) {
		memcpy(mac, a->mac, 6);
		return true;
	}
	a = arp_slot_for(n, hop, now_us);
	if (a->asked_us && now_us - a->asked_us < n->arp_retry_us)
		return false;
	a->asked_us = now_us ? now_us : 1;
	memset(req, 0, 60);
	arp_frame(n, req, 1, broadcast, zero, hop);
	*req_len = 60;
	n->st.arp_requests_sent++;
	return false;
}

/* RFC 826's reception algorithm, answering requests for our address. */
static enum net_verdict arp_rx(struct net *n, uint8_t *p, size_t len, uint64_t now_us,
			       struct net_rx_info *info)
{
	uint32_t spa, tpa;
	uint16_t oper;
	uint8_t sha[6];

	if (len < 42 || get16(p + 14) != 1 || get16(p + 16) != 0x0800 || p[18] != 6 || p[19] != 4) {
		n->st.arp_bad++;
		return NET_DROP;
	}
	oper = get16(p + 20);
	memcpy(sha, p + 22, 6);
	spa = get32(p + 28);
	tpa = get32(p + 38);
	if (tpa != n->ip) {
		struct arp_entry *a = arp_find(n, spa);

		if (a && a->valid) /* the merge step: refresh what we know */
			net_learn(n, spa, sha, now_us);
		n->st.rx_not_for_us++;
		return NET_DROP;
	}
	if (spa != 0)
		net_learn(n, spa, sha, now_us);
	if (oper == 2) {
		n->st.arp_replies_learned++;
		return NET_DROP;
	}
	if (oper != 1) {
		n->st.arp_bad++;
		return NET_DROP;
	}
	arp_frame(n, p, 2, sha, sha, spa);
	n->st.arp_requests_answered++;
	info->reply_len = len;
	return NET_REPLY;
}

/* ---- IPv4 ---- */

static enum net_verdict icmp_rx(struct net *n, uint8_t *p, uint8_t *ip, size_t ihl, size_t total,
				struct net_rx_info *info)
{
	uint8_t *icmp = ip + ihl;
	size_t len = total - ihl;
	uint8_t mac[6];
	uint32_t s;

	if (len < 8 || csum_fold(csum_partial(icmp, len, 0)) != 0) {
		n->st.icmp_bad++;
		return NET_DROP;
	}
	if (icmp[0] != 8 || icmp[1] != 0) {
		n->st.icmp_other++;
		return NET_DROP;
	}
	/* The echo reply: same identifier, sequence and data (RFC 792). */
	icmp[0] = 0;
	put16(icmp + 2, 0);
	put16(icmp + 2, csum_fold(csum_partial(icmp, len, 0)));
	s = get32(ip + 12);
	memcpy(ip + 12, ip + 16, 4);
	put32(ip + 16, s);
	ip[8] = 64;
	put16(ip + 10, 0);
	put16(ip + 10, csum_fold(csum_partial(ip, ihl, 0)));
	memcpy(mac, p, 6);
	memcpy(p, p + 6, 6);
	memcpy(p + 6, mac, 6);
	n->st.icmp_echo_answered++;
	info->reply_len = NET_ETH_HLEN + total;
	return NET_REPLY;
}

enum net_verdict net_rx(struct net *n, uint8_t *p, size_t len, uint64_t now_us,
			struct net_rx_info *info)
{
	uint8_t *ip;
	size_t ihl, total;
	uint16_t type, frag;

	n->st.rx_frames++;
	memset(info, 0, sizeof(*info));
	if (len < NET_ETH_HLEN) {
		n->st.rx_bad_eth++;
		return NET_DROP;
	}
	if (memcmp(p, n->mac, 6) != 0 && (get32(p) != 0xffffffffu || get16(p + 4) != 0xffff)) {
		n->st.rx_not_for_us++;
		return NET_DROP;
	}
	type = get16(p + 12);
	if (type == 0x0806)
		return arp_rx(n, p, len, now_us, info);
	if (type != 0x0800) {
		n->st.rx_not_for_us++;
		return NET_DROP;
	}
	ip = p + NET_ETH_HLEN;
	len -= NET_ETH_HLEN;
	if (len < NET_IP_HLEN || ip[0] >> 4 != 4) {
		n->st.ip_bad_header++;
		return NET_DROP;
	}
	ihl = (size_t)(ip[0] & 15) * 4;
	total = get16(ip + 2);
	if (ihl < NET_IP_HLEN || total < ihl || total > len) {
		n->st.ip_bad_header++;
		return NET_DROP;
	}
	if (!n->rx_csum_checked && csum_fold(csum_partial(ip, ihl, 0)) != 0) {
		n->st.ip_bad_checksum++;
		return NET_DROP;
	}
	frag = get16(ip + 6);
	if (frag & 0x3fff) { /* more fragments, or an offset: not reassembled */
		n->st.ip_fragments++;
		return NET_DROP;
	}
	if (get32(ip + 16) != n->ip) {
		n->st.ip_not_ours++;
		return NET_DROP;
	}
	info->saddr = get32(ip + 12);
	info->daddr = n->ip;
	switch (ip[9]) {
	case 1:
		return icmp_rx(n, p, ip, ihl, total, info);
	case 6:
		info->tcp = ip + ihl;
		info->tcp_len = total - ihl;
		if (info->tcp_len < 20) {
			n->st.ip_bad_header++;
			return NET_DROP;
		}
		if (!n->rx_csum_checked &&
		    csum_fold(csum_partial(
			info->tcp, info->tcp_len,
			csum_pseudo(info->saddr, info->daddr, 6, (uint16_t)info->tcp_len))) != 0) {
			n->st.tcp_bad_checksum++;
			return NET_DROP;
		}
		n->st.tcp_segments++;
		return NET_TCP;
	default:
		n->st.ip_other_proto++;
		return NET_DROP;
	}
}

void net_tcp_checksum(uint8_t *tcp_hdr, size_t hlen, uint32_t saddr, uint32_t daddr,
		      uint32_t payload_sum, size_t payload_len)
{
	net_tcp_checksum_sums(tcp_hdr, hlen, csum_partial(tcp_hdr, hlen, 0), saddr, daddr,
			      payload_sum, payload_len);
}

void net_tcp_checksum_offload(uint8_t *tcp_hdr, uint32_t saddr, uint32_t daddr, size_t tcp_len)
{
	put16(tcp_hdr + 16, (uint16_t)csum_pseudo(saddr, daddr, 6, (uint16_t)tcp_len));
}
