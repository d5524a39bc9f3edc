/* SPDX-License-Identifier: BSD-3-Clause */
/* The socket edge on kernel sockets: N service threads, each with its own
 * epoll loop, its own SO_REUSEPORT listening socket (the kernel spreads
 * connections over the threads) and one edge worker; a connection never
 * leaves the thread that accepted it. Other threads wake a service through
 * an eventfd, signalled once however many frames they post before it runs
 * (wake_pending), and it drains its worker's inbox in one go. A turn of the
 * loop: wait, handle each ready descriptor, pull frames for the connections
 * that have some, and free what closed; once a second, the worker's tick
 * (heartbeats) and the deadlines of API calls and idle HTTP connections.
 *
 * Routes on the one port (http.c): /ws (websocket, token checked before the
 * upgrade, wsconn.c), /api/v1/... (docs/api.md), /healthz, /readyz,
 * /metrics, and the web client's files under / (files.c). With TLS files
 * configured, every connection is TLS (tls.c). */
#define LOG_COMPONENT "socket"
#include "server-internal.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "thread.h"
#include "writer.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EVENTS_MAX 256
#define TICK_NS	   1000000000ull

/* Listening */

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

/* Service threads */

static void accept_all(struct service *svc)
{
	for (int i = 0; i < 256; i++) {
		int fd = accept4(svc->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				LOG(WARN, "accept: %s (raise the descriptor limit)",
				    strerror(errno));
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				LOG(WARN, "accept: %s", strerror(errno));
			return;
		}
		/* Frames are small and latency matters: no Nagle. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		if (conn_accept(svc, fd, &http_conn_ops) < 0)
			close(fd);
	}
}

static void wake_service(void *arg)
{
	struct service *svc = arg;

	/* One write however many posts: the loop clears the flag, then
	 * drains, so a post after the drain started signals again. */
	if (!atomic_exchange(&svc->wake_pending, true)) {
		uint64_t one = 1;
		ssize_t n = write(svc->wake_fd, &one, sizeof(one));
		(void)n;
	}
}

static void drain_inbox(struct service *svc)
{
	uint64_t v;
	ssize_t n = read(svc->wake_fd, &v, sizeof(v));

	(void)n;
	atomic_store(&svc->wake_pending, false);
	edge_worker_drain(svc->worker);
}

/* Moves frames to the connections that were told of some. */
static void pull_writers(struct service *svc)
{
	while (svc->writers) {
		struct sconn *c = svc->writers;

		svc->writers = c->wnext;
		c->in_writers = false;
		if (c->mode == CONN_WS)
			ws_pull(c);
	}
}

static void tick(struct service *svc, uint64_t now)
{
	if (now < svc->next_tick_ns)
		return;
	svc->next_tick_ns = now + TICK_NS;
	edge_worker_tick(svc->worker);
	http_expire_pending(svc);
	conn_expire(svc, now);
}

static void *service_main(void *arg)
{
	struct service *svc = arg;
	struct epoll_event ev[EVENTS_MAX];
	/* The writer lanes this loop drives add their sockets to its set. */
	const struct persist_loop loop = {.epfd = svc->epfd, .wake = wake_service, .ctx = svc};

	svc->lanes =
	    persist_driver_create(svc->srv->cfg.writer, svc->index, svc->srv->cfg.threads, &loop);
	svc->next_tick_ns = time_mono_ns() + TICK_NS;
	while (!atomic_load(&svc->srv->stop)) {
		uint64_t now = time_mono_ns();
		int wait_ms =
		    svc->next_tick_ns > now ? (int)((svc->next_tick_ns - now) / 1000000ull) + 1 : 0;
		int n = epoll_wait(svc->epfd, ev, EVENTS_MAX, wait_ms);

		for (int i = 0; i < n; i++) {
			void *p = ev[i].data.ptr;

			if (p == &svc->listen_fd)
				accept_all(svc);
			else if (p == &svc->wake_fd)
				drain_inbox(svc);
			else if (!persist_driver_ready(
				     svc->lanes, p, ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR),
				     ev[i].events & EPOLLOUT))
				conn_on_events(p, ev[i].events);
		}
		/* The publishes of this turn go to PostgreSQL in one batch. */
		persist_driver_turn(svc->lanes);
		pull_writers(svc);
		tick(svc, time_mono_ns());
		conn_reap(svc);
	}
	persist_driver_destroy(svc->lanes);
	svc->lanes = NULL;
	return NULL;
}

static int watch(struct service *svc, int fd, void *ptr)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};

	return epoll_ctl(svc->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int service_start(struct socket_server *srv, struct service *svc)
{
	svc->srv = srv;
	svc->listen_fd = listen_shared(srv->cfg.address, srv->cfg.port, svc->index == 0);
	if (svc->listen_fd < 0)
		return svc->listen_fd;
	svc->epfd = epoll_create1(EPOLL_CLOEXEC);
	svc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (svc->epfd < 0 || svc->wake_fd < 0 || watch(svc, svc->listen_fd, &svc->listen_fd) < 0 ||
	    watch(svc, svc->wake_fd, &svc->wake_fd) < 0)
		return -EIO;
	svc->worker = edge_worker_create(srv->edge, svc->index, sessions_per_thread(srv));
	if (svc->worker == NULL)
		return -ENOMEM;
	edge_worker_set_transport(svc->worker, svc);
	fanout_set_wake(edge_fanout(srv->edge), svc->index, wake_service, svc);
	if (pthread_create(&svc->thread, NULL, service_main, svc) != 0)
		return -ENOMEM;
	name_thread(svc->thread, "service-%d", svc->index + 1);
	return 0;
}

static void register_metrics(void)
{
	static bool registered;

	if (registered)
		return;
	http_metrics_register();
	ws_metrics_register();
	registered = true;
}

void socket_server_set_limits(struct socket_server *srv, int max_connections, int api_timeout_ms,
			      int http_idle_ms)
{
	atomic_store(&srv->max_connections, max_connections > 0 ? max_connections : 0);
	atomic_store(&srv->api_timeout_ms, api_timeout_ms > 0 ? api_timeout_ms : 30000);
	atomic_store(&srv->http_idle_ms, http_idle_ms > 0 ? http_idle_ms : 30000);
}

struct socket_server *socket_server_start(const struct socket_server_config *cfg, struct edge *edge,
					  http_ready_fn ready, void *ready_arg)
{
	struct socket_server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	register_metrics();
	srv->cfg = *cfg;
	socket_server_set_limits(srv, srv->cfg.max_connections, srv->cfg.api_timeout_ms,
				 srv->cfg.http_idle_ms);
	if (srv->cfg.admins == NULL)
		srv->cfg.admins = "";
	if (srv->cfg.node == NULL)
		srv->cfg.node = "";
	srv->edge = edge;
	srv->ready = ready;
	srv->ready_arg = ready_arg;
	if (cfg->tls_cert && *cfg->tls_cert && cfg->tls_key && *cfg->tls_key) {
		srv->tls = tls_context(cfg->tls_cert, cfg->tls_key);
		if (srv->tls == NULL) {
			free(srv);
			return err_null(-EIO);
		}
	}
	for (int i = 0; i < cfg->threads; i++) {
		srv->services[i] =
		    (struct service){.index = i, .listen_fd = -1, .epfd = -1, .wake_fd = -1};
		srv->nservices = i + 1;
		if (service_start(srv, &srv->services[i]) < 0) {
			LOG(ERR, "cannot serve on %s:%d", cfg->address, cfg->port);
			socket_server_stop(srv);
			return err_null(-EIO);
		}
	}
	return srv;
}

void socket_server_drain(struct socket_server *srv)
{
	atomic_store(&srv->draining, true);
}

void socket_server_close_all(struct socket_server *srv, int code, const char *reason, int wait_ms)
{
	uint64_t deadline = time_mono_ns() + (uint64_t)wait_ms * 1000000ull;

	/* Stop accepting: new upgrades and API calls are refused with 503 and
	 * /readyz says so, while open connections are closed with code. */
	atomic_store(&srv->draining, true);
	for (int i = 0; i < srv->nservices; i++)
		edge_post_close_all(srv->edge, i, code, reason);
	while (ws_open_count() > 0 && time_mono_ns() < deadline) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
}

static void service_stop(struct service *svc)
{
	if (svc->thread) {
		wake_service(svc);
		pthread_join(svc->thread, NULL);
	}
	/* Every connection closes (sessions end before the worker goes). */
	conn_close_every(svc);
	conn_reap(svc);
	/* Whatever was posted before the producers stopped: answered to no
	 * one (the connections are gone), but freed. */
	if (svc->worker)
		edge_worker_drain(svc->worker);
	edge_worker_destroy(svc->worker);
	if (svc->listen_fd >= 0)
		close(svc->listen_fd);
	if (svc->wake_fd >= 0)
		close(svc->wake_fd);
	if (svc->epfd >= 0)
		close(svc->epfd);
}

void socket_server_stop(struct socket_server *srv)
{
	if (srv == NULL)
		return;
	atomic_store(&srv->stop, true);
	for (int i = 0; i < srv->nservices; i++)
		service_stop(&srv->services[i]);
	if (srv->tls)
		SSL_CTX_free(srv->tls);
	free(srv);
}
