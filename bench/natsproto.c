/* SPDX-License-Identifier: BSD-3-Clause */
/* The NATS client protocol over a websocket for fanout-bench: see
 * natsproto.h. Only what a publisher and a subscriber need. */
#include "natsproto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void send_proto(struct nats_conn *c, const char *text, size_t len)
{
	ws_send_binary(c->ws, text, len);
}

bool nats_feed(struct nats_conn *c, const char *data, size_t len, nats_msg_fn *on_msg)
{
	bool became_ready = false;
	size_t off = 0;

	if (buf_put(&c->in, data, len) < 0) {
		fprintf(stderr, "fanout-bench: out of memory\n");
		exit(1);
	}
	for (;;) {
		char *line = c->in.data + off, *eol = memmem(line, c->in.len - off, "\r\n", 2);
		size_t line_len;

		if (eol == NULL)
			break;
		line_len = (size_t)(eol - line);
		if (line_len >= 4 && memcmp(line, "MSG ", 4) == 0) {
			/* MSG <subject> <sid> [reply-to] <#bytes> */
			const char *last = memrchr(line, ' ', line_len);
			const char *subject_end = memchr(line + 4, ' ', line_len - 4);
			size_t bytes = last ? strtoul(last + 1, NULL, 10) : 0;
			size_t need = line_len + 2 + bytes + 2;

			if (c->in.len - off < need)
				break; /* the payload is still coming */
			if (subject_end != NULL)
				on_msg(c, line + 4, (size_t)(subject_end - (line + 4)), eol + 2,
				       bytes);
			off += need;
			continue;
		}
		if (line_len >= 4 && memcmp(line, "PING", 4) == 0) {
			send_proto(c, "PONG\r\n", 6);
		} else if (line_len >= 4 && memcmp(line, "PONG", 4) == 0) {
			if (!c->ready)
				c->ready = became_ready = true;
		} else if (line_len >= 4 && memcmp(line, "INFO", 4) == 0) {
			static const char connect[] =
			    "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\n";
			struct buf out = {0};

			if (buf_put(&out, connect, sizeof(connect) - 1) < 0 ||
			    (c->subscribe &&
			     buf_put(&out, c->subscribe, strlen(c->subscribe)) < 0) ||
			    buf_put(&out, "PING\r\n", 6) < 0) {
				fprintf(stderr, "fanout-bench: out of memory\n");
				exit(1);
			}
			send_proto(c, out.data, out.len);
			buf_free(&out);
		} else if (line_len >= 4 && memcmp(line, "-ERR", 4) == 0) {
			c->errors++;
		}
		off += line_len + 2;
	}
	memmove(c->in.data, c->in.data + off, c->in.len - off);
	c->in.len -= off;
	return became_ready;
}

void nats_publish(struct nats_conn *c, const char *subject, const char *payload, size_t len)
{
	char frame[32768 + 256];
	int n = snprintf(frame, sizeof(frame), "PUB %s %zu\r\n", subject, len);

	if (n < 0 || (size_t)n + len + 2 > sizeof(frame)) {
		fprintf(stderr, "fanout-bench: NATS message too large\n");
		exit(1);
	}
	memcpy(frame + n, payload, len);
	memcpy(frame + n + len, "\r\n", 2);
	send_proto(c, frame, (size_t)n + len + 2);
}

void nats_conn_free(struct nats_conn *c)
{
	buf_free(&c->in);
}
