/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer harness: the websocket frame decoder. The first byte picks the
 * message limit and where to split the rest; decoding whole and in two
 * pieces must give the same messages and the same verdict. */
#include "ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct tally {
	uint64_t bytes, messages, controls;
	uint32_t sum;
};

static void on_data(void *ctx, enum ws_opcode op, const uint8_t *d, size_t n, bool last)
{
	struct tally *t = ctx;

	for (size_t i = 0; i < n; i++)
		t->sum = t->sum * 31 + d[i];
	t->bytes += n;
	t->messages += last;
}

static void on_control(void *ctx, enum ws_opcode op, const uint8_t *d, size_t n, int code)
{
	struct tally *t = ctx;

	if (n > 125)
		abort();
	t->controls++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ws_events ev = {on_data, on_control};
	struct ws_decoder d1, d2;
	struct tally t1 = {0}, t2 = {0};
	uint8_t *a, *b;
	size_t cut;
	int r1, r2;

	if (size < 1)
		return 0;
	a = malloc(size);
	b = malloc(size);
	memcpy(a, data + 1, size - 1);
	memcpy(b, data + 1, size - 1);
	ws_decoder_init(&d1, (uint64_t)(data[0] & 0x7f) * 64 + 1);
	ws_decoder_init(&d2, (uint64_t)(data[0] & 0x7f) * 64 + 1);
	r1 = ws_decode(&d1, a, size - 1, &ev, &t1);
	cut = (size - 1) ? data[0] % size : 0;
	r2 = ws_decode(&d2, b, cut, &ev, &t2);
	if (r2 == 0)
		r2 = ws_decode(&d2, b + cut, size - 1 - cut, &ev, &t2);
	if (r1 != r2 || t1.messages != t2.messages || t1.controls != t2.controls ||
	    (r1 == 0 && (t1.bytes != t2.bytes || t1.sum != t2.sum)))
		abort();
	/* the connection ends here, as an edge ends it: a control frame cut
	 * short leaves its gathered bytes to release */
	ws_decoder_release(&d1);
	ws_decoder_release(&d2);
	free(a);
	free(b);
	return 0;
}
