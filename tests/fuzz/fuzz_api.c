/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer harness: the HTTP API's request path before any handler, as
 * one input (method, path, headers, body) through the real gate (gate.c:
 * framing, token, route, Idempotency-Key), route table (routes.c) and JWT
 * check (common/jwt.c). The input is text:
 *
 *   METHOD SP PATH[?QUERY] LF
 *   Name: value LF ...        (authorization, content-length,
 *   LF                         transfer-encoding, idempotency-key)
 *   body
 *
 * Properties: never a read or write out of bounds; a refused request has no
 * user; an admitted one has a valid user, a route, and ids where its route
 * has them; a body over the limit or without a readable length is never
 * admitted. Tokens are verified against FUZZ_SECRET at a fixed time, so the
 * seed corpus (tests/fuzz/corpus/api) carries tokens that pass. */
#include "gate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_SECRET "fuzz-secret"
#define FUZZ_NOW    1800000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next line of the input, NUL-terminated in place (a copy). */
static char *next_line(char **p, char *end)
{
	char *s = *p, *nl;

	if (s >= end)
		return NULL;
	nl = memchr(s, '\n', (size_t)(end - s));
	if (nl == NULL)
		nl = end;
	*nl = '\0';
	*p = nl + 1;
	return s;
}

static void header(struct http_gate_in *in, char *line)
{
	char *colon = strchr(line, ':'), *v;

	if (colon == NULL)
		return;
	*colon = '\0';
	for (v = colon + 1; *v == ' '; v++)
		;
	if (strcasecmp(line, "authorization") == 0)
		in->authorization = v;
	else if (strcasecmp(line, "content-length") == 0)
		in->content_length = v;
	else if (strcasecmp(line, "transfer-encoding") == 0)
		in->transfer_encoding = true;
	else if (strcasecmp(line, "idempotency-key") == 0) {
		in->idempotency_key = v;
		in->idempotency_key_len = strlen(v);
	}
}

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
	char *copy = malloc(size + 1), *p = copy, *end = copy + size, *line, *sp, *q;
	struct http_gate_in in = {0};
	struct http_gate_out out;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	line = next_line(&p, end);
	if (line == NULL || (sp = strchr(line, ' ')) == NULL) {
		free(copy);
		return 0;
	}
	*sp = '\0';
	in.method = api_method_parse(line);
	in.path = sp + 1;
	q = strchr(sp + 1, '?');
	if (q) {
		*q = '\0';
		in.query_token = strstr(q + 1, "token=") != NULL;
	}
	while ((line = next_line(&p, end)) != NULL && *line)
		header(&in, line);
	http_gate(&in, FUZZ_SECRET, FUZZ_NOW, &out);
	check(&in, &out);
	free(copy);
	return 0;
}
