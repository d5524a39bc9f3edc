/* SPDX-License-Identifier: BSD-3-Clause */
/* The TCP engine's wire format: segments parsed and checked, headers and
 * options built, and SipHash-2-4 for initial sequence numbers and SYN
 * cookies. */
#include "tcp-internal.h"

/* ---- SipHash-2-4 (Aumasson and Bernstein), for ISNs and SYN cookies ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

/* SipHash-2-4 of three 64-bit words (24 bytes, little-endian message). */
uint64_t tcp_siphash3(const uint64_t k[2], uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
	uint64_t m[4] = {a, b, c, (uint64_t)24 << 56};

	for (int i = 0; i < 4; i++) {
		v3 ^= m[i];
		SIPROUND;
		SIPROUND;
		v0 ^= m[i];
	}
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t tcp_tuple_word(const struct tcp_tuple *t)
{
	return (uint64_t)t->raddr << 32 | (uint64_t)t->rport << 16 | t->lport;
}

/* ---- parsing and header building ---- */

int tcp_parse(const uint8_t *p, size_t len, uint32_t saddr, uint32_t daddr, struct tcp_seg *seg)
{
	size_t hlen, off;

	if (len < 20)
		return -1;
	hlen = (size_t)(p[12] >> 4) * 4;
	if (hlen < 20 || hlen > len)
		return -1;
	memset(seg, 0, sizeof(*seg));
	seg->t.raddr = saddr;
	seg->t.laddr = daddr;
	seg->t.rport = get16(p);
	seg->t.lport = get16(p + 2);
	seg->seq = get32(p + 4);
	seg->ack = get32(p + 8);
	seg->flags = p[13] & 0x3f;
	seg->wnd = get16(p + 14);
	seg->data = p + hlen;
	seg->len = (uint32_t)(len - hlen);
	for (off = 20; off < hlen;) {
		uint8_t kind = p[off], olen;

		if (kind == 0) /* end of options */
			break;
		if (kind == 1) { /* NOP */
			off++;
			continue;
		}
		if (off + 2 > hlen)
			return -1;
		olen = p[off + 1];
		if (olen < 2 || off + olen > hlen)
			return -1;
		switch (kind) {
		case 2:
			if (olen != 4)
				return -1;
			seg->has_mss = true;
			seg->mss = get16(p + off + 2);
			break;
		case 3:
			if (olen != 3)
				return -1;
			seg->has_ws = true;
			seg->ws = p[off + 2] > 14 ? 14 : p[off + 2]; /* RFC 7323 2.3 */
			break;
		case 4:
			seg->sack_ok = olen == 2;
			break;
		case 5: /* SACK blocks; ill-formed ones are ignored */
			if (olen >= 10 && (olen - 2) % 8 == 0 && olen <= 34) {
				seg->nsack = (uint8_t)((olen - 2) / 8);
				for (int b = 0; b < seg->nsack; b++) {
					seg->sack_l[b] = get32(p + off + 2 + 8 * b);
					seg->sack_r[b] = get32(p + off + 6 + 8 * b);
				}
			}
			break;
		case 8:
			if (olen != 10)
				return -1;
			seg->has_ts = true;
			seg->tsval = get32(p + off + 2);
			seg->tsecr = get32(p + off + 6);
			break;
		default: /* ignored, as RFC 9293 3.1 asks */
			break;
		}
		off += olen;
	}
	return 0;
}

void tcp_out_walk(const struct tcp_out *o,
		  void (*fn)(void *arg, const uint8_t *data, uint32_t len, void *ref), void *arg)
{
	const struct tcp_conn *c = o->conn;
	uint32_t skip = o->skip, left = o->len;

	if (c == NULL)
		return;
	for (uint32_t i = o->first; left > 0 && i != c->q_tail; i++) {
		const struct tcp_chunk *k = &c->q[i & c->q_mask];
		uint32_t take;

		take = min_u32(k->len - skip, left);
		fn(arg, k->data + skip, take, k->ref);
		left -= take;
		skip = 0;
	}
}
