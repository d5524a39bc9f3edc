/* SPDX-License-Identifier: BSD-3-Clause */
/* The websocket server side (RFC 6455), shared by both edges: the answer to
 * an upgrade request (§4.2; the request itself is httpreq.h's), the frame
 * decoder (§5) and the frame header encoder. The decoder does not allocate,
 * takes input in any pieces, resumes where the last piece ended, unmasks in
 * place and validates as it goes: reserved bits, opcodes, masking, control
 * frame rules, fragmentation, the message size limit and incremental UTF-8
 * of text messages; a violation returns the close code to send. Both edges
 * run all of it. Plain C over bytes: no DPDK, no sockets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "httpreq.h"
#include "utf8.h"

/* ---- the upgrade ---- */

/* The Sec-WebSocket-Accept value for the request's key (28 characters and
 * a NUL into out). */
void ws_accept_key(const struct http_req *r, char out[29]);

/* The 101 response into out (at least 160 bytes); returns its length. */
size_t ws_handshake_response(const struct http_req *r, char *out, size_t size);

/* ---- frames ---- */

enum ws_opcode {
	WS_CONT = 0x0,
	WS_TEXT = 0x1,
	WS_BINARY = 0x2,
	WS_CLOSE = 0x8,
	WS_PING = 0x9,
	WS_PONG = 0xa,
};

struct ws_events {
	/* A piece of a text or binary message, unmasked; last on its final
	 * piece (len may be 0 there). */
	void (*on_data)(void *ctx, enum ws_opcode op, const uint8_t *data, size_t len, bool last);
	/* A whole control frame: ping, pong, or close (code 1005 when the
	 * close had no payload; reason not NUL-terminated). */
	void (*on_control)(void *ctx, enum ws_opcode op, const uint8_t *data, size_t len, int code);
};

struct ws_decoder {
	uint8_t state;
	uint8_t hdr[14], hdr_len, hdr_need;
	uint8_t opcode;	    /* of the frame being read */
	uint8_t msg_opcode; /* of the message in progress (text or binary), or 0 */
	bool fin;
	uint8_t mask[4];
	uint8_t mask_off; /* 0..3 */
	uint8_t ctl_len;
	bool closed;	      /* a close frame was received: nothing more is read */
	uint32_t max_message; /* (a decoder per connection: kept small, 64 bytes) */
	uint32_t remaining;   /* payload bytes of the frame still to come (a frame
			       * longer than max_message is refused first) */
	uint32_t msg_len;     /* of the message so far, at most max_message */
	struct utf8_state utf8;
	/* a control frame's payload (at most 125 bytes) split between inputs,
	 * gathered in a buffer taken for it alone; NULL otherwise, so an idle
	 * decoder holds none */
	uint8_t *ctl;
};

void ws_decoder_init(struct ws_decoder *d, uint64_t max_message);

/* Frees what d holds (a split control frame's bytes); init may follow. */
void ws_decoder_release(struct ws_decoder *d);

/* Decodes data (unmasking it in place). Returns 0, or the close code for
 * the first violation (1002 protocol, 1007 invalid UTF-8, 1009 too big);
 * after a violation or a close frame, nothing more is decoded. */
int ws_decode(struct ws_decoder *d, uint8_t *data, size_t len, const struct ws_events *ev,
	      void *ctx);

/* A server frame's header (unmasked, FIN set) for a payload of len bytes:
 * writes 2, 4 or 10 bytes to out and returns how many. */
size_t ws_frame_header(uint8_t *out, enum ws_opcode op, uint64_t len);

/* ---- messages ---- */

/* Gathers a text message from the decoder's pieces (on_data's arguments)
 * in rx. Returns 1 with the whole message in *msg, *msg_len (data itself
 * when it came in one piece, else rx's bytes; call ws_message_done() once
 * it is used), 0 while pieces are missing, or the close code to send: 1003
 * for a binary message, 1011 when rx cannot grow. */
int ws_message_piece(struct buf *rx, enum ws_opcode op, const uint8_t *data, size_t len, bool last,
		     const char **msg, size_t *msg_len);

/* The gathered message was used: rx lets its memory go. */
void ws_message_done(struct buf *rx);

/* A close frame's payload (the code, big-endian, then as much of reason as
 * fits in 125 bytes) into out; returns its length. */
size_t ws_close_payload(uint8_t out[125], int code, const char *reason);

/* The reason sent with a close code this codec chose. */
const char *ws_close_reason(int code);

/* Whether a close code may be sent in a close frame (RFC 6455 7.4). */
bool ws_close_code_valid(int code);
