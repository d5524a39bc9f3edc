/* SPDX-License-Identifier: BSD-3-Clause */
/* The websocket server side: the upgrade's answer, the frame decoder and
 * the header encoder (see ws.h). */
#include "ws.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the upgrade's answer ---- */

void ws_accept_key(const struct http_req *r, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char in[24 + sizeof(guid)], digest[SHA_DIGEST_LENGTH];

	memcpy(in, r->key, 24);
	memcpy(in + 24, guid, sizeof(guid) - 1);
	SHA1(in, 24 + sizeof(guid) - 1, digest);
	EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
}

size_t ws_handshake_response(const struct http_req *r, char *out, size_t size)
{
	char accept[29];
	int n;

	ws_accept_key(r, accept);
	n = snprintf(out, size,
		     "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: "
		     "Upgrade\r\nsec-websocket-accept: %s\r\n\r\n",
		     accept);
	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

/* ---- frames ---- */

enum {
	D_HEADER,
	D_PAYLOAD,
	D_DONE, /* closed or failed */
};

/* The decoder waits for the next frame's header. */
static void await_header(struct ws_decoder *d)
{
	d->state = D_HEADER;
	d->hdr_len = 0;
	d->hdr_need = 2;
}

void ws_decoder_init(struct ws_decoder *d, uint64_t max_message)
{
	memset(d, 0, sizeof(*d));
	await_header(d);
	d->max_message = max_message > UINT32_MAX ? UINT32_MAX : (uint32_t)max_message;
}

void ws_decoder_release(struct ws_decoder *d)
{
	free(d->ctl);
	d->ctl = NULL;
	d->ctl_len = 0;
}

bool ws_close_code_valid(int code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
	       (code >= 3000 && code <= 4999);
}

static int violation(struct ws_decoder *d, int code)
{
	d->state = D_DONE;
	return code;
}

/* The first two header bytes are in: check them and size the rest. */
static int check_start(struct ws_decoder *d)
{
	uint8_t b0 = d->hdr[0], b1 = d->hdr[1], op = b0 & 0x0f, len7 = b1 & 0x7f;
	bool fin = b0 & 0x80;

	if (b0 & 0x70)
		return violation(d, 1002); /* reserved bits: no extension was agreed */
	if (!(b1 & 0x80))
		return violation(d, 1002); /* a client must mask (5.1) */
	switch (op) {
	case WS_CONT:
		if (d->msg_opcode == 0)
			return violation(d, 1002);
		break;
	case WS_TEXT:
	case WS_BINARY:
		if (d->msg_opcode != 0)
			return violation(d, 1002); /* a new message inside a fragmented one */
		break;
	case WS_CLOSE:
	case WS_PING:
	case WS_PONG:
		if (!fin || len7 > 125)
			return violation(d, 1002); /* 5.5 */
		break;
	default:
		return violation(d, 1002);
	}
	d->opcode = op;
	d->fin = fin;
	d->hdr_need = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
	return 0;
}

/* The frame's whole header is in. */
static int begin_payload(struct ws_decoder *d, const struct ws_events *ev, void *ctx)
{
	uint8_t len7 = d->hdr[1] & 0x7f, off = 2;
	uint64_t len = len7;

	if (len7 == 126) {
		len = (uint64_t)d->hdr[2] << 8 | d->hdr[3];
		off = 4;
	} else if (len7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | d->hdr[2 + i];
		if (len >> 63)
			return violation(d, 1002);
		off = 10;
	}
	memcpy(d->mask, d->hdr + off, 4);
	d->mask_off = 0;
	if (d->opcode < WS_CLOSE) {
		if (len > d->max_message || d->msg_len + len > d->max_message)
			return violation(d, 1009);
		if (d->opcode != WS_CONT) {
			d->msg_opcode = d->opcode;
			d->msg_len = 0;
			d->utf8 = (struct utf8_state)UTF8_STATE_INIT;
		}
	}
	d->remaining = (uint32_t)len; /* a control frame's is at most 125 */
	d->state = D_PAYLOAD;
	return 0;
}

static int end_frame(struct ws_decoder *d, const struct ws_events *ev, void *ctx)
{
	await_header(d);
	if (!d->fin)
		return 0;
	if (d->msg_opcode == WS_TEXT && !utf8_complete(&d->utf8))
		return violation(d, 1007);
	ev->on_data(ctx, (enum ws_opcode)d->msg_opcode, NULL, 0, true);
	d->msg_opcode = 0;
	d->msg_len = 0;
	return 0;
}

/* A whole control frame, its payload p (n bytes, unmasked). */
static int end_control(struct ws_decoder *d, const struct ws_events *ev, void *ctx,
		       const uint8_t *p, size_t n)
{
	int code = 1005;

	await_header(d);
	if (d->opcode != WS_CLOSE) {
		ev->on_control(ctx, (enum ws_opcode)d->opcode, p, n, 0);
		return 0;
	}
	if (n == 1)
		return violation(d, 1002);
	if (n >= 2) {
		code = p[0] << 8 | p[1];
		if (!ws_close_code_valid(code))
			return violation(d, 1002);
		if (!utf8_valid(p + 2, n - 2u))
			return violation(d, 1007);
	}
	d->state = D_DONE;
	d->closed = true;
	ev->on_control(ctx, WS_CLOSE, n >= 2 ? p + 2 : p, n >= 2 ? n - 2u : 0, code);
	return 0;
}

/* n bytes of a control frame's payload: handed over from the input when
 * the whole payload is there, else gathered until it is. */
static int control_bytes(struct ws_decoder *d, const struct ws_events *ev, void *ctx,
			 const uint8_t *data, size_t n)
{
	int rc;

	if (d->ctl == NULL && d->remaining == 0)
		return end_control(d, ev, ctx, data, n);
	if (d->ctl == NULL && (d->ctl = malloc(125)) == NULL)
		return violation(d, 1011);
	memcpy(d->ctl + d->ctl_len, data, n);
	d->ctl_len = (uint8_t)(d->ctl_len + n);
	if (d->remaining > 0)
		return 0;
	rc = end_control(d, ev, ctx, d->ctl, d->ctl_len);
	ws_decoder_release(d);
	return rc;
}

int ws_decode(struct ws_decoder *d, uint8_t *data, size_t len, const struct ws_events *ev,
	      void *ctx)
{
	int rc;

	while (len > 0 || (d->state == D_PAYLOAD && d->remaining == 0)) {
		if (d->state == D_DONE)
			return 0;
		if (d->state == D_HEADER) {
			while (len > 0 && d->hdr_len < d->hdr_need) {
				d->hdr[d->hdr_len++] = *data++;
				len--;
				if (d->hdr_len == 2 && (rc = check_start(d)) != 0)
					return rc;
			}
			if (d->hdr_len < d->hdr_need)
				return 0; /* the rest of the header is still coming */
			if ((rc = begin_payload(d, ev, ctx)) != 0)
				return rc;
			continue;
		}
		/* D_PAYLOAD */
		size_t n = len < d->remaining ? len : (size_t)d->remaining;

		for (size_t i = 0; i < n; i++)
			data[i] ^= d->mask[(d->mask_off + i) & 3];
		d->mask_off = (uint8_t)((d->mask_off + n) & 3);
		d->remaining -= (uint32_t)n;
		if (d->opcode >= WS_CLOSE) {
			if ((rc = control_bytes(d, ev, ctx, data, n)) != 0)
				return rc;
			data += n;
			len -= n;
			continue;
		}
		if (n > 0) {
			if (d->msg_opcode == WS_TEXT && !utf8_feed(&d->utf8, data, n))
				return violation(d, 1007); /* fail fast (8.1) */
			d->msg_len += (uint32_t)n;
			ev->on_data(ctx, (enum ws_opcode)d->msg_opcode, data, n, false);
		}
		data += n;
		len -= n;
		if (d->remaining == 0 && (rc = end_frame(d, ev, ctx)) != 0)
			return rc;
	}
	return 0;
}

size_t ws_frame_header(uint8_t *out, enum ws_opcode op, uint64_t len)
{
	out[0] = (uint8_t)(0x80 | op);
	if (len < 126) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	return 10;
}

/* ---- messages ---- */

int ws_message_piece(struct buf *rx, enum ws_opcode op, const uint8_t *data, size_t len, bool last,
		     const char **msg, size_t *msg_len)
{
	if (op == WS_BINARY)
		return 1003;
	if (last && rx->len == 0) { /* whole in one piece: read where it is */
		*msg = len ? (const char *)data : "";
		*msg_len = len;
		return 1;
	}
	if (len && buf_put(rx, data, len) < 0)
		return 1011;
	if (!last)
		return 0;
	*msg = rx->data ? rx->data : "";
	*msg_len = rx->len;
	return 1;
}

void ws_message_done(struct buf *rx)
{
	buf_free(rx);
}

size_t ws_close_payload(uint8_t out[125], int code, const char *reason)
{
	size_t n = strlen(reason);

	if (n > 123)
		n = 123;
	out[0] = (uint8_t)(code >> 8);
	out[1] = (uint8_t)code;
	memcpy(out + 2, reason, n);
	return n + 2;
}

const char *ws_close_reason(int code)
{
	switch (code) {
	case 1003:
		return "text frames only";
	case 1007:
		return "invalid UTF-8";
	case 1009:
		return "message too big";
	case 1011:
		return "out of memory";
	default:
		return "protocol error";
	}
}
