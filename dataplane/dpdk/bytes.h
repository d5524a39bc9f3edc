/* SPDX-License-Identifier: BSD-3-Clause */
/* Big-endian (network order) loads and stores for the DPDK edge's packet
 * code, on unaligned byte pointers, and the folding of one's complement
 * sums that both the TCP engine and the network layer do. */
#pragma once

#include <stdint.h>

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A partial sum folded to 16 bits, not complemented. */
static inline uint32_t csum_fold16(uint64_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

/* A 16-bit sum of words in the host's order as the sum of the same words
 * big-endian (RFC 1071's byte-order independence), and back. */
static inline uint32_t csum_swap16(uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return ((v & 0xff) << 8) | (v >> 8);
#else
	return v;
#endif
}
