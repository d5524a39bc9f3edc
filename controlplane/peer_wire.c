/* SPDX-License-Identifier: BSD-3-Clause */
/* The peer link's frames (peer_wire.h): a writer that appends fields to a
 * buffer and a reader that takes them from a bounded span, failing on the
 * first field that would run past the frame. */
#include "peer_wire.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <string.h>

/* ---- writing ---- */

static int put_u8(struct buf *b, uint8_t v)
{
	return buf_put(b, &v, 1);
}

static int put_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {v >> 24, v >> 16, v >> 8, v};

	return buf_put(b, x, 4);
}

static int put_u64(struct buf *b, uint64_t v)
{
	return put_u32(b, (uint32_t)(v >> 32)) ?: put_u32(b, (uint32_t)v);
}

static int put_bytes(struct buf *b, const void *p, size_t n)
{
	return put_u32(b, (uint32_t)n) ?: buf_put(b, p, n);
}

static int put_str(struct buf *b, const char *s)
{
	return put_bytes(b, s, strlen(s));
}

static int encode_payload(struct buf *b, const struct peer_msg *m)
{
	switch (m->type) {
	case PEER_HELLO:
		return put_str(b, m->name) ?: buf_put(b, m->nonce, PEER_NONCE);
	case PEER_CHALLENGE:
		return put_str(b, m->name) ?: buf_put(b, m->nonce, PEER_NONCE)
						  ?: buf_put(b, m->mac, PEER_MAC);
	case PEER_AUTH:
		return buf_put(b, m->mac, PEER_MAC);
	case PEER_WELCOME:
		return 0;
	case PEER_PUBLISH:
		return put_u64(b, m->req) ?: put_u8(b, m->live) ?: put_u64(b, (uint64_t)m->channel)
		    ?: put_u64(b, (uint64_t)m->author) ?: put_u64(b, (uint64_t)m->parent)
		    ?: put_str(b, m->kind) ?: put_str(b, m->client_msg_id)
		    ?: put_str(b, m->author_name) ?: put_bytes(b, m->payload, m->payload_len);
	case PEER_ACK:
		return put_u64(b, m->req) ?: put_u8(b, m->outcome) ?: put_u32(b, (uint32_t)m->error)
		    ?: put_u64(b, (uint64_t)m->seq) ?: put_u64(b, (uint64_t)m->created_at_us);
	case PEER_INTEREST:
		return put_u64(b, (uint64_t)m->channel) ?: put_u8(b, m->on);
	case PEER_BROADCAST:
	case PEER_RELAY:
		return put_u64(b, (uint64_t)m->channel) ?: put_u64(b, (uint64_t)m->seq)
		    ?: put_u8(b, m->frame_kind) ?: put_bytes(b, m->payload, m->payload_len);
	case PEER_USER:
		return put_u8(b, m->user_kind) ?: put_u64(b, (uint64_t)m->user)
		    ?: put_u64(b, (uint64_t)m->channel) ?: put_u64(b, (uint64_t)m->seq)
		    ?: put_u8(b, m->live);
	case PEER_PRESENCE:
		return put_u8(b, m->user_kind) ?: put_u8(b, m->outcome)
		    ?: put_str(b, m->author_name);
	}
	return -EINVAL;
}

int peer_encode(struct buf *out, const struct peer_msg *m)
{
	size_t start = out->len;
	uint32_t len;
	int rc;

	if (m->type < PEER_HELLO || m->type > PEER_TYPE_MAX || strlen(m->name) > PEER_NAME_MAX)
		return -EINVAL;
	rc = put_u32(out, 0) ?: put_u8(out, PEER_VERSION) ?: put_u8(out, (uint8_t)m->type)
	    ?: encode_payload(out, m);
	if (rc == 0 && out->len - start - 4 > PEER_FRAME_MAX)
		rc = -EINVAL;
	if (rc < 0) {
		out->len = start;
		return rc;
	}
	len = (uint32_t)(out->len - start - 4);
	out->data[start] = (char)(len >> 24);
	out->data[start + 1] = (char)(len >> 16);
	out->data[start + 2] = (char)(len >> 8);
	out->data[start + 3] = (char)len;
	return 0;
}

/* ---- reading ---- */

struct reader {
	const uint8_t *p, *end;
	bool bad;
};

static const uint8_t *take(struct reader *r, size_t n)
{
	const uint8_t *at = r->p;

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	return at;
}

static uint8_t get_u8(struct reader *r)
{
	const uint8_t *x = take(r, 1);

	return x ? x[0] : 0;
}

/* A flag is 0 or 1; anything else is malformed (one encoding per frame). */
static bool get_bool(struct reader *r)
{
	uint8_t v = get_u8(r);

	if (v > 1)
		r->bad = true;
	return v == 1;
}

static uint32_t get_u32(struct reader *r)
{
	const uint8_t *x = take(r, 4);

	return x ? (uint32_t)x[0] << 24 | (uint32_t)x[1] << 16 | (uint32_t)x[2] << 8 | x[3] : 0;
}

static uint64_t get_u64(struct reader *r)
{
	uint64_t hi = get_u32(r);

	return hi << 32 | get_u32(r);
}

static const uint8_t *get_bytes(struct reader *r, uint32_t *len)
{
	*len = get_u32(r);
	return take(r, *len);
}

/* A string into out (size bytes with its NUL); too long or with a NUL
 * inside is malformed. */
static void get_str(struct reader *r, char *out, size_t size)
{
	uint32_t n;
	const uint8_t *s = get_bytes(r, &n);

	out[0] = 0;
	if (s == NULL)
		return;
	if (n >= size || memchr(s, 0, n)) {
		r->bad = true;
		return;
	}
	memcpy(out, s, n);
	out[n] = 0;
}

static void get_fixed(struct reader *r, uint8_t *out, size_t n)
{
	const uint8_t *x = take(r, n);

	if (x)
		memcpy(out, x, n);
}

static void decode_payload(struct reader *r, struct peer_msg *m)
{
	switch (m->type) {
	case PEER_HELLO:
	case PEER_CHALLENGE:
		get_str(r, m->name, sizeof(m->name));
		get_fixed(r, m->nonce, PEER_NONCE);
		if (m->type == PEER_CHALLENGE)
			get_fixed(r, m->mac, PEER_MAC);
		break;
	case PEER_AUTH:
		get_fixed(r, m->mac, PEER_MAC);
		break;
	case PEER_WELCOME:
		break;
	case PEER_PUBLISH:
		m->req = get_u64(r);
		m->live = get_bool(r);
		m->channel = (int64_t)get_u64(r);
		m->author = (int64_t)get_u64(r);
		m->parent = (int64_t)get_u64(r);
		get_str(r, m->kind, sizeof(m->kind));
		get_str(r, m->client_msg_id, sizeof(m->client_msg_id));
		get_str(r, m->author_name, sizeof(m->author_name));
		m->payload = get_bytes(r, &m->payload_len);
		break;
	case PEER_ACK:
		m->req = get_u64(r);
		m->outcome = get_u8(r);
		m->error = (int32_t)get_u32(r);
		m->seq = (int64_t)get_u64(r);
		m->created_at_us = (int64_t)get_u64(r);
		break;
	case PEER_INTEREST:
		m->channel = (int64_t)get_u64(r);
		m->on = get_bool(r);
		break;
	case PEER_BROADCAST:
	case PEER_RELAY:
		m->channel = (int64_t)get_u64(r);
		m->seq = (int64_t)get_u64(r);
		m->frame_kind = get_u8(r);
		m->payload = get_bytes(r, &m->payload_len);
		break;
	case PEER_USER:
		m->user_kind = get_u8(r);
		m->user = (int64_t)get_u64(r);
		m->channel = (int64_t)get_u64(r);
		m->seq = (int64_t)get_u64(r);
		m->live = get_bool(r);
		break;
	case PEER_PRESENCE:
		m->user_kind = get_u8(r);
		m->outcome = get_u8(r);
		get_str(r, m->author_name, sizeof(m->author_name));
		break;
	}
}

int peer_decode(const uint8_t *data, size_t avail, struct peer_msg *m, size_t *used)
{
	struct reader r;
	uint32_t len;

	if (avail < 4)
		return 0;
	len = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
	if (len > PEER_FRAME_MAX)
		return -EMSGSIZE;
	if (len < 2)
		return -EPROTO;
	/* The version is checked before the whole frame is in: a peer of
	 * another version is refused at its first bytes. */
	if (avail >= 5 && data[4] != PEER_VERSION)
		return -EPROTONOSUPPORT;
	if (avail - 4 < len)
		return 0;
	memset(m, 0, sizeof(*m));
	m->type = data[5];
	if (m->type < PEER_HELLO || m->type > PEER_TYPE_MAX)
		return -EPROTO;
	r = (struct reader){data + 6, data + 4 + len, false};
	decode_payload(&r, m);
	if (r.bad || r.p != r.end)
		return -EPROTO;
	*used = 4 + (size_t)len;
	return 1;
}

/* ---- the handshake's proof ---- */

void peer_mac(const char *secret, char role, const uint8_t *nonce_a, const uint8_t *nonce_b,
	      const char *name_a, const char *name_b, uint8_t out[PEER_MAC])
{
	uint8_t text[1 + 2 * PEER_NONCE + 2 * (PEER_NAME_MAX + 1)];
	size_t n = 0, la = strlen(name_a), lb = strlen(name_b);
	unsigned int outlen = PEER_MAC;

	text[n++] = (uint8_t)role;
	memcpy(text + n, nonce_a, PEER_NONCE);
	n += PEER_NONCE;
	memcpy(text + n, nonce_b, PEER_NONCE);
	n += PEER_NONCE;
	/* Each name with its NUL, so "ab"+"c" differs from "a"+"bc". */
	memcpy(text + n, name_a, la + 1);
	n += la + 1;
	memcpy(text + n, name_b, lb + 1);
	n += lb + 1;
	HMAC(EVP_sha256(), secret, (int)strlen(secret), text, n, out, &outlen);
}

bool peer_mac_equal(const uint8_t *a, const uint8_t *b)
{
	return CRYPTO_memcmp(a, b, PEER_MAC) == 0;
}
