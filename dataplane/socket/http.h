/* The socket edge's HTTP listener (libwebsockets on kernel sockets): health,
 * readiness and metrics endpoints, and the web client's static files. The
 * websocket endpoint and the HTTP API join it with the messaging core. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct http_server_config {
	const char *address; /* IPv4/IPv6 literal or interface to bind */
	int port;
	const char *web_root; /* directory served at / */
	const char *tls_cert; /* both set: https and wss on the same port */
	const char *tls_key;
};

/* Readiness as the daemon sees it: true, or false with a reason for /readyz.
 * Called on the service thread; must not block. */
typedef bool (*http_ready_fn)(void *arg, char *why, size_t why_size);

struct http_server;

/* Binds and starts the service thread. NULL with errno (EADDRINUSE and the
 * like are reported by libwebsockets as EIO) and a logged reason. */
struct http_server *http_server_start(const struct http_server_config *cfg, http_ready_fn ready,
				      void *ready_arg);

/* Stops serving, closes every connection, joins the thread, frees. */
void http_server_stop(struct http_server *s);
