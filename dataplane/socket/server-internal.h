/* SPDX-License-Identifier: BSD-3-Clause */
/* The socket edge's shared state between its files: server.c (threads,
 * listening, websockets) and http.c (plain HTTP: the API, health, metrics).
 * Nothing outside dataplane/socket/ includes this. */
#pragma once

#include "server.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct http_session;

struct service {
	struct socket_server *srv;
	int index;
	struct lws_context *ctx;
	pthread_t thread;
	struct edge_worker *worker;
	lws_sorted_usec_list_t tick;
	struct http_session *pending; /* API calls waiting for their answer */
	uint64_t next_api_id;
	struct lws_protocols protocols[4];
	int listen_fd;
	struct lws_http_mount mounts[5];
};

struct socket_server {
	struct socket_server_config cfg;
	struct edge *edge;
	http_ready_fn ready;
	void *ready_arg;
	atomic_bool stop;
	atomic_bool draining;
	int nservices;
	struct service services[FANOUT_WORKERS_MAX];
};

/* libwebsockets' callback for the "fanout-http" protocol (http.c). */
int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len);

/* Bytes of per-connection state http_callback needs. */
size_t http_session_size(void);

/* Answers the API calls of svc past their deadline with 503 timeout. The
 * service thread, on its tick. */
void http_expire_pending(struct service *svc);

/* Counts an upgrade refused for its token (the metric API refusals share). */
void http_count_auth_refused(void);

/* Registers the HTTP metrics; once per process. */
void http_metrics_register(void);
