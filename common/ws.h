/* SPDX-License-Identifier: BSD-3-Clause */
/* The websocket server side (RFC 6455), shared by both edges: the HTTP/1.1
 * upgrade request parser (§4.1-4.2), the frame decoder (§5) and the frame
 * header encoder. Neither parser allocates; both take input in any pieces
 * and resume where the last piece ended. The decoder unmasks in place and
 * validates as it goes: reserved bits, opcodes, masking, control frame
 * rules, fragmentation, the message size limit and incremental UTF-8 of
 * text messages; a violation returns the close code to send. The DPDK edge
 * runs all of it; the socket edge (libwebsockets parses its frames) uses the
 * close-code rule. Plain C over bytes: no DPDK, no sockets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "utf8.h"

/* ---- the upgrade request ---- */

#define HTTP_PATH_MAX 2048
#define HTTP_AUTH_MAX 2048

enum http_result {
	HTTP_MORE,  /* the request head is not complete yet */
	HTTP_DONE,  /* complete and a valid websocket upgrade */
	HTTP_ERROR, /* see status and reason */
};

struct http_req {
	/* parser state */
	uint8_t state;
	uint16_t name_len, field_len, field_cap;
	char name[32];
	char *field; /* where the current header's value goes, or NULL */
	bool name_long;
	uint32_t head_bytes;
	/* what the request said */
	char method[8];
	uint16_t method_len, path_len, version_len, auth_len;
	char path[HTTP_PATH_MAX];
	char version[12];
	char upgrade[32], connection[128], key[64], ws_version[8];
	char auth[HTTP_AUTH_MAX]; /* the Authorization header's value */
	uint16_t upgrade_len, connection_len, key_len, ws_version_len;
	bool host;
	/* the outcome */
	int status; /* for HTTP_ERROR: 400, 405, 414, 426, 431 or 505 */
	const char *reason;
};

void http_req_init(struct http_req *r);

/* Feeds bytes; *used is how many belong to the request head (the rest, if
 * any, are the client's first frames). */
enum http_result http_req_feed(struct http_req *r, const uint8_t *data, size_t len, size_t *used);

/* The Sec-WebSocket-Accept value for the request's key (28 characters and
 * a NUL into out). */
void ws_accept_key(const struct http_req *r, char out[29]);

/* The 101 response into out (at least 160 bytes); returns its length. */
size_t ws_handshake_response(const struct http_req *r, char *out, size_t size);

/* An HTTP error response into out, its body the socket edge's JSON error
 * ({"error":{"code":...,"message":...}}; code NULL: the status's own, such
 * as "upgrade_required"). Returns its length (0: out too small). */
size_t http_error_response(int status, const char *code, const char *reason, char *out,
			   size_t size);

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
	uint8_t mask_off;     /* 0..3 */
	uint32_t max_message; /* (a decoder per connection: kept small) */
	uint64_t remaining;   /* payload bytes of the frame still to come */
	uint64_t msg_len;     /* of the message so far */
	struct utf8_state utf8;
	uint8_t ctl[125];
	uint8_t ctl_len;
	bool closed; /* a close frame was received: nothing more is read */
};

void ws_decoder_init(struct ws_decoder *d, uint64_t max_message);

/* Decodes data (unmasking it in place). Returns 0, or the close code for
 * the first violation (1002 protocol, 1007 invalid UTF-8, 1009 too big);
 * after a violation or a close frame, nothing more is decoded. */
int ws_decode(struct ws_decoder *d, uint8_t *data, size_t len, const struct ws_events *ev,
	      void *ctx);

/* A server frame's header (unmasked, FIN set) for a payload of len bytes:
 * writes 2, 4 or 10 bytes to out and returns how many. */
size_t ws_frame_header(uint8_t *out, enum ws_opcode op, uint64_t len);

/* Whether a close code may be sent in a close frame (RFC 6455 7.4). */
bool ws_close_code_valid(int code);
