/* SPDX-License-Identifier: BSD-3-Clause */
/* The socket edge's shared state between its files: server.c (threads, the
 * event loop, listening), conn.c (a connection's bytes in and out, TLS),
 * http.c (plain HTTP: the API, health, metrics, files.c's web client) and
 * wsconn.c (websockets). Nothing outside dataplane/socket/ includes this. */
#pragma once

#include "server.h"

#include "buf.h"
#include "httpreq.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define OUT_HIGH_WATER 65536 /* past this much unwritten, a connection stops reading */

struct http_conn;
struct ws_conn;
struct sconn;

/* What a connection's mode does with it: conn.c calls up only through
 * this table (HTTP's in http.c, the websocket's in wsconn.c). */
struct conn_ops {
	/* Input; returns how many bytes it took (it may stop early: a request
	 * in progress, or the connection changed mode). */
	size_t (*input)(struct sconn *c, uint8_t *data, size_t len);
	/* The output drained below half its high-water mark; may be NULL. */
	void (*room)(struct sconn *c);
	/* The connection closes: the mode ends its work (a session, a call).
	 * It may be inside the mode's own code (a write that failed under a
	 * handler), so its memory stays until release. */
	void (*closed)(struct sconn *c);
	/* At the end of the loop's turn: the mode frees its memory. */
	void (*release)(struct sconn *c);
};

enum conn_mode {
	CONN_HTTP, /* reading requests */
	CONN_WS,   /* a websocket */
	CONN_DEAD, /* closed; freed at the end of the loop's turn */
};

enum { LIST_TIMED, LIST_WS };

/* One client connection, owned by one service thread. */
struct sconn {
	struct service *svc;
	int fd;
	uint8_t mode; /* enum conn_mode */
	const struct conn_ops *ops;
	bool closing;	 /* close once out is written; read nothing more */
	bool paused;	 /* the session asked to stop reading */
	bool held;	 /* an HTTP request is in progress: input waits in in */
	bool in_writers; /* on svc->writers */
	bool tls_wants_write;
	uint32_t events; /* as registered with epoll */
	SSL *ssl;	 /* NULL for plain TCP */
	struct buf out;	 /* bytes to write, from out_off */
	size_t out_off;
	struct buf in;		   /* bytes read but not consumed yet (HTTP) */
	struct http_conn *http;	   /* in CONN_HTTP: the request's state */
	struct ws_conn *ws;	   /* in CONN_WS: the session and the decoder */
	struct sconn *wnext;	   /* on svc->writers */
	struct sconn *dnext;	   /* on svc->dead */
	bool shut;		   /* our side is shut; reading until the peer ends */
	bool in_read;		   /* conn_read is running (no re-entry) */
	uint8_t list;		   /* which of svc->conns it is on */
	struct sconn *prev, *next; /* on svc->conns[list] */
	uint64_t deadline_ns;	   /* on LIST_TIMED: closed if still there then */
};

struct service {
	struct socket_server *srv;
	int index;
	pthread_t thread;
	struct edge_worker *worker;
	struct persist_driver *lanes; /* writer lanes driven in this loop, or NULL */
	int epfd, listen_fd, wake_fd;
	atomic_bool wake_pending;  /* the wake descriptor is already signalled */
	struct http_conn *pending; /* API calls waiting for their answer */
	uint64_t next_api_id;
	struct sconn *writers;	/* connections with frames to pull */
	struct sconn *dead;	/* closed this turn */
	struct sconn *conns[2]; /* LIST_TIMED (HTTP, closing), LIST_WS */
	uint64_t next_tick_ns;
};

struct socket_server {
	struct socket_server_config cfg;
	struct edge *edge;
	http_ready_fn ready;
	void *ready_arg;
	SSL_CTX *tls; /* NULL: plain HTTP */
	atomic_bool stop;
	atomic_bool draining;
	/* what a reload may change (socket_server_set_limits); read these, not
	 * cfg's */
	atomic_int max_connections, api_timeout_ms, http_idle_ms;
	int nservices;
	struct service services[FANOUT_WORKERS_MAX];
};

/* ---- conn.c: a connection's bytes ---- */

/* A new accepted descriptor: registered with the service's loop, in
 * CONN_HTTP with ops. */
int conn_accept(struct service *svc, int fd, const struct conn_ops *ops);

/* The loop saw events on c. */
void conn_on_events(struct sconn *c, uint32_t events);

/* Appends bytes to c's output and writes what the socket takes now. */
int conn_send(struct sconn *c, const void *data, size_t len);

/* Writes what is queued; arranges to be told when the socket takes more. */
void conn_flush(struct sconn *c);

/* Closes c once what is queued is written (bounded by its deadline). */
void conn_close_after(struct sconn *c);

/* Closes c now: its session and request end, it is freed at the turn's end. */
void conn_close(struct sconn *c);
/* The client's address as "a.b.c.d:port" or "[v6]:port" into out; out. */
const char *conn_peer(struct sconn *c, char *out, size_t n);

/* Now plus http_idle_ms: when a connection waiting on its client is closed. */
uint64_t conn_idle_deadline(const struct sconn *c);

/* Resumes reading (the session's flow control, or a finished request). */
void conn_update_events(struct sconn *c);

/* Feeds input to the mode's parser; what it does not take waits in c->in. */
void conn_input(struct sconn *c, uint8_t *data, size_t len);

/* c becomes a websocket, handled by ops from now on. */
void conn_set_ws(struct sconn *c, const struct conn_ops *ops);

/* Closes the service's HTTP connections past their deadline. */
void conn_expire(struct service *svc, uint64_t now);

/* Closes every connection of svc (it stops). */
void conn_close_every(struct service *svc);

/* Frees the connections closed during this turn. */
void conn_reap(struct service *svc);

/* ---- tls.c ---- */

SSL_CTX *tls_context(const char *cert, const char *key);

/* Reads into buf: bytes, 0 at the end, -EAGAIN, or -EIO. */
ssize_t conn_io_read(struct sconn *c, void *buf, size_t len);
/* Writes from buf: bytes taken, -EAGAIN, or -EIO. */
ssize_t conn_io_write(struct sconn *c, const void *buf, size_t len);

/* ---- http.c: requests ---- */

/* A connection's requests (conn_accept's ops). */
extern const struct conn_ops http_conn_ops;

/* Answers the API calls of svc past their deadline with 503 timeout. */
void http_expire_pending(struct service *svc);

/* Registers the HTTP metrics; once per process. */
void http_metrics_register(void);

/* ---- files.c: the web client ---- */

struct file_answer {
	int status; /* 200, or 404 */
	const char *content_type;
	char *data; /* malloc'd; the caller frees it */
	size_t len;
};

/* The answer to a GET of path (decoded, checked) under root. */
void files_read(const char *root, const char *path, struct file_answer *out);

/* The header lines every file answer carries (CSP, framing, referrer). */
extern const char files_headers[];

/* ---- wsconn.c: websockets ---- */

/* A valid upgrade request for c: checked (path, token, draining), then
 * answered 101 and c becomes a websocket (its mode is CONN_WS: the caller
 * frees its HTTP state), or refused with an HTTP error. */
void ws_upgrade(struct sconn *c, struct http_req *req);

/* Moves queued frames from c's session to its output. */
void ws_pull(struct sconn *c);

/* The websocket connections open (all threads), and their metrics. */
int ws_open_count(void);
void ws_metrics_register(void);

/* Counts an upgrade or API call refused for its token (one metric). */
void ws_count_auth_refused(void);
