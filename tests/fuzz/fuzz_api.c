/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer harness: the HTTP API's request path before any handler, as
 * one input (request line, headers, body) through the real code fanoutd
 * runs: the request head parser (common/httpreq.c, reading any request as
 * the socket edge does), the gate's input from it and the gate (gate.c:
 * framing, token, route, Idempotency-Key), the route table (routes.c) and
 * the JWT check (common/jwt.c). The input is the bytes a client sends:
 *
 *   METHOD SP TARGET SP HTTP/1.1 CRLF (header CRLF)* CRLF body
 *
 * Properties: never a read or write out of bounds; a refused request has no
 * user; an admitted one has a valid user, a route, and ids where its route
 * has them; a body over the limit, chunked or without a readable length, or
 * a token in the URL, is never admitted. Tokens are verified against
 * FUZZ_SECRET at a fixed time, so the seed corpus (tests/fuzz/corpus/api)
 * carries tokens that pass. */
#include "gate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_SECRET "fuzz-secret"
#define FUZZ_NOW    1800000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct http_gate_in *in, const struct http_gate_out *out)
{
	if (out->status != 0) {
		if (out->user[0] != '\0' || out->code == NULL || out->message == NULL ||
		    out->status < 400 || out->status > 599)
			abort();
		return;
	}
	if (!jwt_subject_valid(out->user) || in->transfer_encoding || in->query_token ||
	    out->body_len > GATE_BODY_MAX ||
	    (in->content_length && out->body_len == 0 &&
	     strspn(in->content_length, "0") != strlen(in->content_length)))
		abort();
	if (out->route.id != ROUTE_CHANNELS && out->route.id != ROUTE_DMS &&
	    out->route.channel <= 0)
		abort();
	if ((out->route.id == ROUTE_THREAD || out->route.id == ROUTE_MESSAGE_EDIT ||
	     out->route.id == ROUTE_MESSAGE_DELETE || out->route.id == ROUTE_REACTIONS) &&
	    out->route.seq <= 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_req req;
	struct http_gate_in in;
	struct http_gate_out out;
	char path[HTTP_PATH_MAX], key[HTTP_IDEM_MAX];
	size_t used;

	http_req_init(&req);
	req.any = true;
	req.head_max = GATE_HEAD_MAX;
	if (http_req_feed(&req, data, size, &used) != HTTP_DONE || req.upgrade_wanted)
		return 0;
	if (used > size)
		abort();
	http_gate_input(&req, path, sizeof(path), key, &in);
	if (in.path[0] != '/' || strchr(in.path, '?'))
		abort();
	http_gate(&in, FUZZ_SECRET, FUZZ_NOW, &out);
	check(&in, &out);
	return 0;
}
