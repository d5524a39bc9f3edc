/* SPDX-License-Identifier: BSD-3-Clause */
/* A small websocket client for load generation: non-blocking sockets driven
 * by one epoll loop, enough of RFC 6455 for fanout's text frames (masking,
 * 7/16/64-bit lengths, ping, close). Not a general client: no extensions, no
 * fragmentation on send, and server fragments are not expected. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ws;
struct ws_loop;

struct ws_handlers {
	void (*on_open)(struct ws *ws, void *user);
	void (*on_text)(struct ws *ws, void *user, const char *data, size_t len); /* or binary */
	void (*on_close)(struct ws *ws, void *user, int code); /* code 0: no close frame */
};

struct ws_loop *ws_loop_create(const struct ws_handlers *h);
void ws_loop_destroy(struct ws_loop *l);

/* Starts connecting to host:port and upgrading at path (which may carry a
 * query), from source (an IPv4 address to bind, or NULL): spreading
 * connections over 127.0.0.0/8 keeps the ephemeral ports of one source
 * address from running out. NULL with errno. */
struct ws *ws_connect(struct ws_loop *l, const char *host, int port, const char *path,
		      const char *source, void *user);

/* Queues a binary frame (for peers such as NATS). 0 or -errno. */
int ws_send_binary(struct ws *ws, const char *data, size_t len);

/* Queues a text frame. 0 or -errno (-ENOTCONN before open). */
int ws_send_text(struct ws *ws, const char *data, size_t len);

/* Runs the loop for at most timeout_ms. Returns events handled or -errno. */
int ws_loop_run(struct ws_loop *l, int timeout_ms);

/* How a closed ws ended, in words ("close frame 1008", "upgrade refused:
 * HTTP/1.1 503 ...", "Connection reset by peer while in the handshake"). */
const char *ws_why(const struct ws *ws);

/* Closes (if open) and frees ws; no callback. on_close does not free: a
 * closed ws stays valid until ws_close(). */
void ws_close(struct ws *ws);

/* Stops (or resumes) reading from ws: a slow consumer, for W5. What the
 * server sends meanwhile waits in the kernel's buffers, then in its queue. */
void ws_pause(struct ws *ws, bool paused);

/* Bytes waiting to be written on ws (for pacing). */
size_t ws_pending(const struct ws *ws);
