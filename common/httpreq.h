/* SPDX-License-Identifier: BSD-3-Clause */
/* An HTTP/1.1 request head parser (RFC 9112), shared by both edges: the
 * DPDK edge reads websocket upgrades with it (anything else is refused), the
 * socket edge every request (the API, health, files and upgrades). It never
 * allocates, takes input in any pieces and resumes where the last piece
 * ended; it keeps only the headers the edges read, and refuses what it
 * cannot read safely (a repeated Content-Length, key or token, bare control
 * bytes, obsolete line folding, a head past its limit) with a status. Plain
 * C over bytes: no sockets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_PATH_MAX	  2048
#define HTTP_AUTH_MAX	  2048
#define HTTP_IDEM_MAX	  80   /* an Idempotency-Key's characters kept */
#define HTTP_HEAD_DEFAULT 8192 /* a request head larger than this: 431 */

enum http_result {
	HTTP_MORE,  /* the request head is not complete yet */
	HTTP_DONE,  /* complete (and, unless any, a valid websocket upgrade) */
	HTTP_ERROR, /* see status and reason */
};

struct http_req {
	/* set by the caller after http_req_init() */
	bool any;	   /* any request, not only websocket upgrades */
	uint32_t head_max; /* 0: HTTP_HEAD_DEFAULT */
	/* parser state */
	uint8_t state, field_id;
	uint16_t name_len, field_len, field_cap;
	char name[32];
	bool name_long;
	uint32_t head_bytes;
	/* what the request said */
	char method[8];
	uint16_t method_len, path_len, version_len, auth_len;
	char path[HTTP_PATH_MAX];
	char version[12];
	char upgrade[32], connection[128], key[64], ws_version[8];
	char auth[HTTP_AUTH_MAX]; /* the Authorization header's value */
	char length[24];	  /* the Content-Length header's value */
	char idem[HTTP_IDEM_MAX]; /* the Idempotency-Key header's value */
	char expect[16];	  /* the Expect header's value ("100-continue") */
	uint16_t upgrade_len, connection_len, key_len, ws_version_len, length_len, idem_len,
	    expect_len;
	uint32_t idem_sent; /* the key's length as sent, even when not kept */
	uint16_t seen;	    /* a bit per kept header that appeared */
	bool host, transfer_encoding, length_long, auth_long; /* *_long: too long to keep */
	/* the outcome */
	bool upgrade_wanted; /* HTTP_DONE: a websocket upgrade (always, unless any) */
	int status;	     /* for HTTP_ERROR: 400, 405, 414, 426, 431 or 505 */
	const char *reason;
};

void http_req_init(struct http_req *r);

/* Feeds bytes; *used is how many belong to the request head (the rest, if
 * any, are the body, the next request or the client's first frames). */
enum http_result http_req_feed(struct http_req *r, const uint8_t *data, size_t len, size_t *used);

/* Whether the connection stays open after the answer: HTTP/1.1 unless
 * "Connection: close", HTTP/1.0 only with "Connection: keep-alive". */
bool http_req_keep_alive(const struct http_req *r);

/* Whether the client waits for "100 Continue" before sending its body. */
bool http_req_expects_continue(const struct http_req *r);

/* Whether the request named the Idempotency-Key header at all. */
bool http_req_has_idem(const struct http_req *r);

/* The bearer token of "Authorization: Bearer", else (query_ok) the value of
 * a "token" query argument, NUL-terminated in place; NULL when neither. */
const char *http_req_token(struct http_req *r, bool query_ok);

/* An HTTP error response into out, its body the edges' JSON error
 * ({"error":{"code":...,"message":...}}; code NULL: the status's own, such
 * as "upgrade_required"), with "connection: close". Returns its length (0:
 * out too small). */
size_t http_error_response(int status, const char *code, const char *reason, char *out,
			   size_t size);

/* The value of a hexadecimal digit (a %XX escape's), or -1. */
int http_hex_digit(char c);

/* The reason phrase of a status this project answers. */
const char *http_status_text(int status);
