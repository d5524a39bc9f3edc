/* SPDX-License-Identifier: BSD-3-Clause */
/* The socket edge: libwebsockets on kernel sockets. Each service thread owns
 * one lws context and one edge worker; its connections never leave it. Other
 * threads wake it with lws_cancel_service(), and it drains its inbox in
 * EVENT_WAIT_CANCELLED.
 *
 * Debian's libwebsockets is built for one service thread per context, and
 * then never sets SO_REUSEPORT (it does so only for several threads in one
 * context). So each service thread opens its own SO_REUSEPORT listener, its
 * loop watches it as a raw descriptor, and accepted connections are adopted
 * into that thread's context: the kernel spreads connections over threads.
 *
 * Routes on the one port: /ws (websocket, token checked before the upgrade),
 * the web client's files under /, and the plain HTTP of http.c: /api/v1/...
 * (docs/api.md), /healthz, /readyz, /metrics. */
#define LOG_COMPONENT "socket"
#include "server-internal.h"

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "utf8.h"
#include "ws.h"

#include <fcntl.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HTTP_HEADERS_MAX 16384

_Static_assert(LWS_PRE <= FRAME_HEADROOM, "frames need room for the websocket header");

/* Per websocket connection. */
struct ws_session {
	struct session *s;
	char user[JWT_SUBJECT_MAX + 1];
	struct buf rx; /* the fragments of the message being received */
};

static struct metric_counter m_connections_total, m_frames_out, m_bytes_out;
static atomic_int connections_open;

static double connections_gauge(void *arg)
{
	return atomic_load(&connections_open);
}

/* Authentication */

/* Finds the token in "Authorization: Bearer" or ?token=, verifies it. 0 with
 * the user name, or -errno (see jwt_verify; -ENOENT: no token). */
static int authenticate(struct lws *wsi, const char *secret, char user[JWT_SUBJECT_MAX + 1])
{
	char buf[2048], arg[2048];
	const char *token = NULL;
	int64_t exp;

	if (lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_AUTHORIZATION) > 7 &&
	    strncasecmp(buf, "Bearer ", 7) == 0)
		token = buf + 7;
	else if (lws_get_urlarg_by_name(wsi, "token=", arg, sizeof(arg)))
		token = arg + 6;
	if (token == NULL)
		return -ENOENT;
	return jwt_verify(secret, token, (int64_t)time(NULL), user, &exp);
}

/* Answers a refused upgrade as HTTP/1.1 with a JSON error (libwebsockets'
 * own helper answers HTTP/1.0, which strict clients reject as malformed).
 * Returns 1: "answered, close". */
static int refuse_upgrade(struct lws *wsi, unsigned status, const char *code)
{
	char buf[LWS_PRE + 512], *p = buf + LWS_PRE;
	int body = (int)strlen(code) + 21; /* {"error":{"code":"..."}} */
	int n = snprintf(p, sizeof(buf) - LWS_PRE,
			 "HTTP/1.1 %u %s\r\ncontent-type: application/json\r\ncontent-length: "
			 "%d\r\nconnection: close\r\n\r\n{\"error\":{\"code\":\"%s\"}}",
			 status,
			 status == HTTP_STATUS_UNAUTHORIZED ? "Unauthorized"
			 : status == HTTP_STATUS_NOT_FOUND  ? "Not Found"
							    : "Service Unavailable",
			 body, code);

	lws_write(wsi, (unsigned char *)p, (size_t)n, LWS_WRITE_RAW);
	return 1;
}

/* Before any upgrade: the path must be /ws and the token valid, else an HTTP
 * error and no websocket. Returns as LWS_CALLBACK_HTTP_CONFIRM_UPGRADE wants. */
static int confirm_upgrade(struct lws *wsi, struct socket_server *srv)
{
	char path[64] = "", name[JWT_SUBJECT_MAX + 1];
	int rc;

	lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);
	if (strcmp(path, "/ws") != 0)
		return refuse_upgrade(wsi, HTTP_STATUS_NOT_FOUND, "not_found");
	if (atomic_load(&srv->draining))
		return refuse_upgrade(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "shutting_down");
	rc = authenticate(wsi, srv->cfg.jwt_secret, name);
	if (rc < 0) {
		http_count_auth_refused();
		return refuse_upgrade(wsi, HTTP_STATUS_UNAUTHORIZED, jwt_error_code(rc));
	}
	return 0;
}

/* Websockets */

static void ws_want_write(void *ctx)
{
	lws_callback_on_writable(ctx);
}

static void ws_pause_rx(void *ctx, bool off)
{
	lws_rx_flow_control(ctx, off ? 0 : 1);
}

/* Several frames queued for one connection go out as one write (one TCP
 * segment up to the MSS, the rest right behind): without Nagle that is what
 * keeps a busy connection from turning into one packet per frame. The
 * websocket headers (server to client: FIN, text, unmasked) are written here;
 * lws_write() passes the bytes through as they are. Returns the frames
 * written, 0 when there were fewer than two (the plain path handles one). */
#define BATCH_BYTES  16384
#define BATCH_FRAMES 64

static int write_batch(struct lws *wsi, struct ws_session *ws)
{
	static _Thread_local unsigned char buf[LWS_PRE + BATCH_BYTES];
	struct frame *frames[BATCH_FRAMES];
	int n = session_peek_many(ws->s, frames, BATCH_FRAMES), k = 0;
	size_t used = 0, payload = 0;

	if (n < 2)
		return 0;
	for (; k < n; k++) {
		size_t len = frames[k]->len, head = len < 126 ? 2 : len < 65536 ? 4 : 10;
		unsigned char *p = buf + LWS_PRE + used;

		if (used + head + len > BATCH_BYTES)
			break;
		p[0] = 0x81; /* FIN, text */
		if (head == 2) {
			p[1] = (unsigned char)len;
		} else if (head == 4) {
			p[1] = 126;
			p[2] = (unsigned char)(len >> 8);
			p[3] = (unsigned char)len;
		} else {
			p[1] = 127;
			for (int i = 0; i < 8; i++)
				p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		}
		memcpy(p + head, frame_payload(frames[k]), len);
		used += head + len;
		payload += len;
	}
	if (k < 2)
		return 0; /* the first frame alone is large: the plain path */
	if (lws_write(wsi, buf + LWS_PRE, used, LWS_WRITE_RAW) < (int)used)
		return -1;
	metric_add(&m_frames_out, (uint64_t)k);
	metric_add(&m_bytes_out, payload);
	session_sent_many(ws->s, k);
	return k;
}

/* Over 80 lines on purpose: one switch over libwebsockets' callback
 * reasons, each case short and calling out. */
static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	struct ws_session *ws = user;
	struct service *svc = lws_context_user(lws_get_context(wsi));
	struct socket_server *srv = svc ? svc->srv : NULL;

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(wsi, srv);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* The upgrade was confirmed; keep who it is for this session. */
		return authenticate(wsi, srv->cfg.jwt_secret, ws->user) < 0 ? -1 : 0;
	case LWS_CALLBACK_ESTABLISHED: {
		struct session_transport t = {ws_want_write, ws_pause_rx, wsi};
		int open = atomic_fetch_add(&connections_open, 1); /* a place, taken first */
		bool full = srv->cfg.max_connections && open >= srv->cfg.max_connections;

		ws->s = full ? NULL : session_open(svc->worker, ws->user, &t);
		if (ws->s == NULL) {
			const char *why;

			atomic_fetch_sub(&connections_open, 1);
			full = full || errno == ENOSPC;
			why = full ? "server full; try again later" : "cannot open a session";
			lws_close_reason(wsi, full ? 1013 : LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
					 (unsigned char *)why, strlen(why));
			return -1;
		}
		metric_add(&m_connections_total, 1);
		return 0;
	}
	case LWS_CALLBACK_RECEIVE: {
		size_t max = edge_config(srv->edge)->max_message_bytes;

		if (ws->s == NULL)
			return -1;
		if (lws_frame_is_binary(wsi)) {
			static const char why[] = "text frames only";
			lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
					 (unsigned char *)why, sizeof(why) - 1);
			return -1;
		}
		if (ws->rx.len > 0 && lws_is_first_fragment(wsi)) {
			/* a new message while a fragmented one is unfinished */
			static const char why[] = "unfinished fragmented message";
			lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, (unsigned char *)why,
					 sizeof(why) - 1);
			return -1;
		}
		if (ws->rx.len + len + lws_remaining_packet_payload(wsi) > max) {
			static const char why[] = "message too big";
			lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
					 (unsigned char *)why, sizeof(why) - 1);
			return -1;
		}
		if (buf_put(&ws->rx, in, len) < 0)
			return -1;
		if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
			session_on_text(ws->s, ws->rx.data, ws->rx.len);
			buf_reset(&ws->rx);
			if (ws->rx.cap > 65536)
				buf_free(&ws->rx); /* not kept for: a message this large is rare */
		}
		return 0;
	}
	case LWS_CALLBACK_SERVER_WRITEABLE: {
		const char *why;
		int code;
		struct frame *f;

		if (ws->s == NULL)
			return -1;
		int batched = write_batch(wsi, ws);
		if (batched < 0)
			return -1;
		if (batched > 0)
			return 0;
		f = session_peek(ws->s);
		if (f == NULL) {
			code = session_close_code(ws->s, &why);
			if (code) {
				lws_close_reason(wsi, (enum lws_close_status)code,
						 (unsigned char *)why, strlen(why));
				return -1;
			}
			return 0;
		}
		if (lws_write(wsi, frame_payload(f), f->len, LWS_WRITE_TEXT) < (int)f->len) {
			LOG(INFO, "write failed on a websocket; closing it");
			return -1;
		}
		metric_add(&m_frames_out, 1);
		metric_add(&m_bytes_out, f->len);
		session_sent(ws->s); /* releases f */
		return 0;
	}
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
		/* libwebsockets echoes any close; one with a code that may not be
		 * sent, a one-byte payload or a reason that is not UTF-8 is a
		 * protocol error: fail the connection instead (RFC 6455 7.1.7). */
		const unsigned char *p = in;
		int code = len >= 2 ? p[0] << 8 | p[1] : 1005;

		if (len == 1 || (len >= 2 && !ws_close_code_valid(code)) ||
		    (len > 2 && !utf8_valid(p + 2, len - 2)))
			return -1;
		return 0;
	}
	case LWS_CALLBACK_CLOSED:
		if (ws->s) {
			session_closed(ws->s);
			ws->s = NULL;
			atomic_fetch_sub(&connections_open, 1);
		}
		buf_free(&ws->rx);
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (svc && svc->worker)
			edge_worker_drain(svc->worker);
		return 0;
	default:
		/* Plain HTTP on this protocol (file serving) gets the defaults. */
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* Listening */

/* The listener is a raw descriptor in the service loop: on readable, accept
 * everything pending and hand each connection to lws as an HTTP connection. */
static int listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	struct service *svc = lws_context_user(lws_get_context(wsi));

	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	for (;;) {
		int fd = accept4(svc->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				LOG(WARN, "accept: %s", strerror(errno));
			break;
		}
		/* Frames are small and latency matters: no Nagle. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		if (lws_adopt_socket_vhost(lws_get_vhost(wsi), fd) == NULL)
			close(fd); /* lws logged why */
	}
	return 0;
}

/* SO_REUSEPORT would let a second fanoutd (same user) bind the port and
 * share the traffic: a bind without it fails while anyone listens there. */
static int port_free(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* A listening socket on address:port that other threads may share; the
 * first (first) only if nobody listens there yet. */
static int listen_shared(const char *address, int port, bool first)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	char service[16];
	int fd = -1, one = 1, rc;

	snprintf(service, sizeof(service), "%d", port);
	rc = getaddrinfo(address && *address ? address : NULL, service, &hints, &ai);
	if (rc != 0) {
		LOG(ERR, "cannot resolve listen address %s: %s", address, gai_strerror(rc));
		return -EINVAL;
	}
	if (first && (rc = port_free(ai)) < 0) {
		LOG(ERR, "cannot listen on %s:%d: %s%s", address, port, strerror(-rc),
		    rc == -EADDRINUSE ? " (another process, perhaps another fanoutd, serves it)"
				      : "");
		freeaddrinfo(ai);
		return rc;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		rc = -errno;
		LOG(ERR, "cannot listen on %s:%d: %s", address, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Service threads */

static void on_tick(lws_sorted_usec_list_t *sul)
{
	struct service *svc = lws_container_of(sul, struct service, tick);

	edge_worker_tick(svc->worker);
	http_expire_pending(svc);
	lws_sul_schedule(svc->ctx, 0, &svc->tick, on_tick, LWS_US_PER_SEC);
}

/* A thread's share of the descriptors, twice over (SO_REUSEPORT spreads
 * connections by hash, not evenly), and never more than all of them. */
static uint32_t sessions_per_thread(const struct socket_server *srv)
{
	struct rlimit files;
	uint64_t all = 65536, share;

	if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY)
		all = files.rlim_cur;
	if (all > (1u << 22))
		all = 1u << 22;
	share = all * 2 / (uint64_t)(srv->cfg.threads > 0 ? srv->cfg.threads : 1);
	return (uint32_t)(share < all ? share : all);
}

static void wake_service(void *arg)
{
	struct service *svc = arg;
	lws_cancel_service(svc->ctx);
}

static void *service_main(void *arg)
{
	struct service *svc = arg;

	lws_sul_schedule(svc->ctx, 0, &svc->tick, on_tick, LWS_US_PER_SEC);
	while (!atomic_load(&svc->srv->stop))
		if (lws_service(svc->ctx, 0) < 0)
			break;
	return NULL;
}

static void lws_to_log(int level, const char *line)
{
	size_t n = strlen(line);

	/* libwebsockets ends lines with a newline; our records add their own. */
	if (level & LLL_ERR)
		LOG(ERR, "lws: %.*s", (int)(n && line[n - 1] == '\n' ? n - 1 : n), line);
	else
		LOG(WARN, "lws: %.*s", (int)(n && line[n - 1] == '\n' ? n - 1 : n), line);
}

static int service_start(struct socket_server *srv, struct service *svc)
{
	static const char *const dynamic[] = {"/healthz", "/readyz", "/metrics", "/api"};
	struct lws_context_creation_info info;

	svc->srv = srv;
	/* First, so that it serves upgrades naming no subprotocol. */
	svc->protocols[0] = (struct lws_protocols){
	    .name = "fanout.v1",
	    .callback = ws_callback,
	    .per_session_data_size = sizeof(struct ws_session),
	    /* lws's default (4 KiB), allocated per connection: messages larger
	     * than it arrive in pieces, which session assembly handles. */
	    .rx_buffer_size = 0,
	};
	svc->protocols[1] = (struct lws_protocols){
	    .name = "fanout-http",
	    .callback = http_callback,
	    .per_session_data_size = http_session_size(),
	};
	svc->protocols[2] = (struct lws_protocols){
	    .name = "fanout-listen",
	    .callback = listen_callback,
	};
	for (int i = 0; i < 4; i++)
		svc->mounts[i] = (struct lws_http_mount){
		    .mount_next = &svc->mounts[i + 1],
		    .mountpoint = dynamic[i],
		    .mountpoint_len = (unsigned char)strlen(dynamic[i]),
		    .origin = "fanout-http",
		    .origin_protocol = LWSMPRO_CALLBACK,
		};
	svc->mounts[4] = (struct lws_http_mount){
	    .mountpoint = "/",
	    .mountpoint_len = 1,
	    .origin = srv->cfg.web_root,
	    .def = "index.html",
	    .origin_protocol = LWSMPRO_FILE,
	};
	svc->listen_fd = listen_shared(srv->cfg.address, srv->cfg.port, svc->index == 0);
	if (svc->listen_fd < 0)
		return svc->listen_fd;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.vhost_name = "fanout";
	info.protocols = svc->protocols;
	info.mounts = svc->mounts;
	info.user = svc;
	/* Room for every header of a request (lws's default is 4 KiB): a
	 * request past it is closed by lws without an answer, so this is what
	 * lets an oversized header, such as a 10 KB Idempotency-Key, get a
	 * clear 400. Held only while a request's headers are parsed. */
	info.max_http_header_data = HTTP_HEADERS_MAX;
	info.options = LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE |
		       LWS_SERVER_OPTION_VALIDATE_UTF8;
	if (srv->cfg.tls_cert && *srv->cfg.tls_cert && srv->cfg.tls_key && *srv->cfg.tls_key) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = srv->cfg.tls_cert;
		info.ssl_private_key_filepath = srv->cfg.tls_key;
	}
	svc->ctx = lws_create_context(&info);
	if (svc->ctx == NULL)
		return -EIO;
	lws_sock_file_fd_type lfd = {.filefd = svc->listen_fd};
	if (lws_adopt_descriptor_vhost(lws_get_vhost_by_name(svc->ctx, "fanout"),
				       LWS_ADOPT_RAW_FILE_DESC, lfd, "fanout-listen", NULL) == NULL)
		return -EIO;
	svc->worker = edge_worker_create(srv->edge, svc->index, sessions_per_thread(srv));
	if (svc->worker == NULL)
		return -ENOMEM;
	edge_worker_set_transport(svc->worker, svc);
	fanout_set_wake(edge_fanout(srv->edge), svc->index, wake_service, svc);
	return pthread_create(&svc->thread, NULL, service_main, svc) ? -ENOMEM : 0;
}

struct socket_server *socket_server_start(const struct socket_server_config *cfg, struct edge *edge,
					  http_ready_fn ready, void *ready_arg)
{
	struct socket_server *srv = calloc(1, sizeof(*srv));
	static bool registered;

	if (srv == NULL)
		return NULL;
	if (!registered) {
		http_metrics_register();
		metrics_register_counter("fanout_connections_accepted_total",
					 "Websocket connections accepted.", &m_connections_total);
		metrics_register_counter("fanout_frames_out_total",
					 "Websocket frames written to clients.", &m_frames_out);
		metrics_register_counter(
		    "fanout_bytes_out_total",
		    "Payload bytes of the websocket frames written to clients.", &m_bytes_out);
		metrics_register_gauge("fanout_connections", "Open websocket connections.",
				       connections_gauge, NULL);
		registered = true;
	}
	srv->cfg = *cfg;
	if (srv->cfg.api_timeout_ms <= 0)
		srv->cfg.api_timeout_ms = 30000;
	srv->edge = edge;
	srv->ready = ready;
	srv->ready_arg = ready_arg;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_log);
	for (int i = 0; i < cfg->threads; i++) {
		srv->services[i].index = i;
		srv->services[i].listen_fd = -1;
		if (service_start(srv, &srv->services[i]) < 0) {
			LOG(ERR, "cannot listen on %s:%d (address in use, or TLS files unreadable)",
			    cfg->address, cfg->port);
			srv->nservices = i + 1;
			socket_server_stop(srv);
			return err_null(-EIO);
		}
		srv->nservices = i + 1;
	}
	return srv;
}

static void socket_server_post_all(struct socket_server *srv, int code, const char *reason)
{
	for (int i = 0; i < srv->nservices; i++)
		edge_post_close_all(srv->edge, i, code, reason);
}

void socket_server_close_all(struct socket_server *srv, int code, const char *reason, int wait_ms)
{
	uint64_t deadline = time_mono_ns() + (uint64_t)wait_ms * 1000000ull;

	/* Stop accepting: new upgrades and API calls are refused with 503 and
	 * /readyz says so, while open connections are closed with code. */
	atomic_store(&srv->draining, true);
	socket_server_post_all(srv, code, reason);
	while (atomic_load(&connections_open) > 0 && time_mono_ns() < deadline) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
}

void socket_server_stop(struct socket_server *srv)
{
	if (srv == NULL)
		return;
	atomic_store(&srv->stop, true);
	for (int i = 0; i < srv->nservices; i++) {
		struct service *svc = &srv->services[i];
		if (svc->ctx) {
			lws_cancel_service(svc->ctx);
			if (svc->thread)
				pthread_join(svc->thread, NULL);
			lws_context_destroy(svc->ctx);
		}
		/* Whatever was posted before the producers stopped: answered to
		 * no one (the connections are gone), but freed. */
		if (svc->worker)
			edge_worker_drain(svc->worker);
		if (svc->listen_fd >= 0)
			close(svc->listen_fd);
		edge_worker_destroy(svc->worker);
	}
	free(srv);
}
