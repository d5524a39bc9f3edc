/* SPDX-License-Identifier: BSD-3-Clause */
/* The socket edge's listener: websockets at /ws, the HTTP API, health,
 * readiness, metrics and the web client, on one port, served by N threads.
 * See server.c for the threading. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "edge.h"

struct persist_writer;

struct socket_server_config {
	const char *address;
	int port;
	int threads;	      /* service threads = edge workers, 1..64 */
	const char *web_root; /* directory served at / */
	const char *tls_cert; /* both set: https and wss on the same port */
	const char *tls_key;
	const char *jwt_secret;
	int api_timeout_ms;  /* an API call unanswered this long gets 503 timeout */
	int http_idle_ms;    /* a request's head and body, or the next request, within this */
	int max_connections; /* websocket connections at once; past them close 1013; 0: no cap */
	const char *admins;  /* user names that may call the operator's API, "a,b" */
	const char *node;    /* this node's name, as the operator's API reports it */
	/* The cluster's members as JSON for the operator's API (a new
	 * reference), or NULL for a node alone; any thread. */
	struct json_t *(*nodes)(void *arg);
	void *nodes_arg;
	/* The persist writer whose lanes the service threads drive in their
	 * loops (writer.h, persist_driver_create), or NULL: none. */
	struct persist_writer *writer;
};

/* Readiness as the daemon sees it; called on service threads, must not block. */
typedef bool (*http_ready_fn)(void *arg, char *why, size_t why_size);

struct socket_server;

/* Binds (each thread its own context on the shared port) and starts serving.
 * The fan-out engine must have room for cfg->threads workers. NULL with errno
 * EIO (cannot listen; logged) or ENOMEM. */
struct socket_server *socket_server_start(const struct socket_server_config *cfg, struct edge *edge,
					  http_ready_fn ready, void *ready_arg);

/* Changes the limits a reload may change while serving: websocket
 * connections at once (0: no cap), an API call's deadline, an HTTP
 * connection's idle time. They apply to what comes next; a call already
 * waiting keeps its deadline. Any thread. */
void socket_server_set_limits(struct socket_server *srv, int max_connections, int api_timeout_ms,
			      int http_idle_ms);

/* Stops accepting: new upgrades and API calls are refused with 503 and
 * /readyz says so; open connections stay. */
void socket_server_drain(struct socket_server *srv);

/* Stops accepting and asks every connection to close with code (after what
 * is queued for it), waiting up to wait_ms for them to go. */
void socket_server_close_all(struct socket_server *srv, int code, const char *reason, int wait_ms);

/* Stops the threads and frees everything. Call after every producer of
 * worker events (the persist writer and readers) has stopped. */
void socket_server_stop(struct socket_server *srv);
