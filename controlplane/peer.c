/* SPDX-License-Identifier: BSD-3-Clause */
/* The peer link (peer.h): one epoll thread, the links it dials and accepts,
 * their handshake, and the bounded queues other threads append to.
 *
 *   dialer                              listener
 *     HELLO(name_c, nonce_c)      ->
 *                                 <-    CHALLENGE(name_s, nonce_s, mac_s)
 *     AUTH(mac_c)                 ->
 *                                 <-    WELCOME (a member now: the link is up)
 *
 * mac_s proves the listener knows the secret and binds both nonces and both
 * names; mac_c the same for the dialer. The listener closes on a dialer that
 * is not a member yet (it joined a moment ago: it dials again); the dialer
 * refuses a listener that is not who it dialled.
 * A link that has not finished its handshake in two seconds is closed. */
#define LOG_COMPONENT "peer"
#include "peer.h"

#include "clock.h"
#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define HANDSHAKE_NS (2 * 1000000000ull)
#define READ_CHUNK   65536
#define TICK_MS	     50

enum conn_state {
	C_CONNECTING,
	C_WAIT_CHALLENGE, /* dialer: HELLO sent */
	C_WAIT_WELCOME,	  /* dialer: AUTH sent */
	C_WAIT_HELLO,	  /* listener: accepted */
	C_WAIT_AUTH,	  /* listener: CHALLENGE sent */
	C_UP,
};

struct conn {
	struct conn *next;
	int fd;
	bool outbound, closing, want_out;
	enum conn_state state;
	char name[PEER_NAME_MAX + 1]; /* the peer: dialled, or named in its HELLO */
	char addr[64];
	uint8_t my_nonce[PEER_NONCE], their_nonce[PEER_NONCE];
	struct buf in, out; /* out under the link's lock */
	size_t out_sent;
	uint64_t deadline_ns;
};

struct want {
	struct want *next;
	char name[PEER_NAME_MAX + 1], addr[64];
	struct conn *conn;
	uint64_t next_dial_ns;
	int backoff_ms;
};

struct peer_link {
	char self[PEER_NAME_MAX + 1], secret[256];
	struct peer_link_ops ops;
	void *arg;
	int listen_fd, epfd, wake_fd;
	pthread_t thread;
	bool stopping;
	pthread_mutex_t lock; /* conns, wants, every out buffer */
	struct conn *conns;
	struct want *wants;
};

static struct metric_counter m_sent, m_received, m_refused, m_dials;

static void register_metrics(void)
{
	static bool done;

	if (__atomic_exchange_n(&done, true, __ATOMIC_ACQ_REL))
		return;
	metrics_register_counter("fanout_peer_bytes_sent_total", "Bytes sent over the peer link.",
				 &m_sent);
	metrics_register_counter("fanout_peer_bytes_received_total",
				 "Bytes received over the peer link.", &m_received);
	metrics_register_counter("fanout_peer_frames_refused_total",
				 "Peer frames refused (bad version, length or type, a failed "
				 "handshake, a non-member); each closes its link.",
				 &m_refused);
	metrics_register_counter("fanout_peer_dials_total", "Outbound peer links dialled.",
				 &m_dials);
}

/* ---- addresses and sockets ---- */

static int parse_addr(const char *text, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	long port;

	if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = 0;
	port = strtol(colon + 1, NULL, 10);
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	if (port < 1 || port > 65535 || inet_pton(AF_INET, host, &out->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

static void epoll_watch(struct peer_link *l, struct conn *c, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};

	c->want_out = out;
	epoll_ctl(l->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static struct conn *conn_new(struct peer_link *l, int fd, bool outbound, const char *addr)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = {.events = EPOLLIN | (outbound ? EPOLLOUT : 0)};
	int one = 1;

	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->outbound = outbound;
	c->want_out = outbound;
	c->state = outbound ? C_CONNECTING : C_WAIT_HELLO;
	c->deadline_ns = time_mono_ns() + HANDSHAKE_NS;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev.data.ptr = c;
	epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
	pthread_mutex_lock(&l->lock);
	c->next = l->conns;
	l->conns = c;
	pthread_mutex_unlock(&l->lock);
	return c;
}

/* Closes c and frees it; tells the owner of an outbound link that was up. */
static void conn_close(struct peer_link *l, struct conn *c)
{
	bool was_up = c->state == C_UP && c->outbound;
	char name[PEER_NAME_MAX + 1];

	snprintf(name, sizeof(name), "%s", c->name);
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	pthread_mutex_lock(&l->lock);
	for (struct conn **pp = &l->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	for (struct want *w = l->wants; w; w = w->next)
		if (w->conn == c) {
			w->conn = NULL;
			w->next_dial_ns = time_mono_ns() + (uint64_t)w->backoff_ms * 1000000ull;
			w->backoff_ms = w->backoff_ms * 2 > 2000 ? 2000 : w->backoff_ms * 2;
		}
	pthread_mutex_unlock(&l->lock);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
	if (was_up && l->ops.on_down)
		l->ops.on_down(l->arg, name);
}

static void refuse(struct peer_link *l, struct conn *c, const char *why)
{
	LOG(WARN, "refused %s peer link %s (%s): %s", c->outbound ? "outbound" : "inbound",
	    c->name[0] ? c->name : "?", c->addr, why);
	metric_add(&m_refused, 1);
	c->closing = true;
}

/* ---- sending ---- */

/* Appends m to c's queue. Caller holds the lock. */
static int conn_queue(struct peer_link *l, struct conn *c, const struct peer_msg *m)
{
	if (c->out.len - c->out_sent > PEER_QUEUE_MAX)
		return -EAGAIN;
	return peer_encode(&c->out, m);
}

static void wake(struct peer_link *l)
{
	uint64_t one = 1;

	if (write(l->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		LOG(ERR, "cannot wake the peer link: %s", strerror(errno));
}

int peer_link_send(struct peer_link *l, const char *peer, bool outbound, const struct peer_msg *m)
{
	int rc = -ENOTCONN;

	pthread_mutex_lock(&l->lock);
	for (struct conn *c = l->conns; c; c = c->next) {
		if (c->outbound != outbound || c->state != C_UP || c->closing ||
		    strcmp(c->name, peer) != 0)
			continue;
		rc = conn_queue(l, c, m);
		if (rc == -EAGAIN && m->type == PEER_BROADCAST) {
			/* A gateway too slow for its broadcasts: cut it loose; it
			 * resynchronises from PostgreSQL when it dials again. */
			LOG(WARN, "peer %s: %u bytes queued; closing its link", peer,
			    PEER_QUEUE_MAX);
			c->closing = true;
		}
		break;
	}
	pthread_mutex_unlock(&l->lock);
	if (rc == 0)
		wake(l);
	return rc;
}

/* Writes what c has queued. Link thread; takes the lock. */
static void conn_flush(struct peer_link *l, struct conn *c)
{
	bool pending;

	pthread_mutex_lock(&l->lock);
	while (c->out_sent < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				c->closing = true;
			break;
		}
		c->out_sent += (size_t)n;
		metric_add(&m_sent, (uint64_t)n);
	}
	if (c->out_sent == c->out.len) {
		buf_reset(&c->out);
		c->out_sent = 0;
	} else if (c->out_sent > (1u << 20)) {
		memmove(c->out.data, c->out.data + c->out_sent, c->out.len - c->out_sent);
		c->out.len -= c->out_sent;
		c->out_sent = 0;
	}
	pending = c->out.len > 0;
	pthread_mutex_unlock(&l->lock);
	if (pending != c->want_out && c->state != C_CONNECTING)
		epoll_watch(l, c, pending);
}

static void send_now(struct peer_link *l, struct conn *c, const struct peer_msg *m)
{
	pthread_mutex_lock(&l->lock);
	if (conn_queue(l, c, m) < 0)
		c->closing = true;
	pthread_mutex_unlock(&l->lock);
	conn_flush(l, c);
}

/* ---- the handshake ---- */

static void handshake_hello(struct peer_link *l, struct conn *c, const struct peer_msg *m)
{
	struct peer_msg reply = {.type = PEER_CHALLENGE};

	if (strcmp(m->name, l->self) == 0) {
		snprintf(c->name, sizeof(c->name), "%s", m->name);
		refuse(l, c, "it claims this node's own name");
		return;
	}
	snprintf(c->name, sizeof(c->name), "%s", m->name);
	memcpy(c->their_nonce, m->nonce, PEER_NONCE);
	RAND_bytes(c->my_nonce, PEER_NONCE);
	snprintf(reply.name, sizeof(reply.name), "%s", l->self);
	memcpy(reply.nonce, c->my_nonce, PEER_NONCE);
	peer_mac(l->secret, 's', c->their_nonce, c->my_nonce, l->self, c->name, reply.mac);
	c->state = C_WAIT_AUTH;
	send_now(l, c, &reply);
}

static void handshake_auth(struct peer_link *l, struct conn *c, const struct peer_msg *m)
{
	uint8_t want[PEER_MAC];

	peer_mac(l->secret, 'c', c->my_nonce, c->their_nonce, c->name, l->self, want);
	if (!peer_mac_equal(want, m->mac)) {
		refuse(l, c, "wrong proof of the cluster secret");
		return;
	}
	/* It knows the secret; a node that joins dials before every member has
	 * seen its key, so this is a race, not an attack: no count, and it
	 * dials again in 100 ms. */
	if (!l->ops.is_member(l->arg, c->name)) {
		LOG(INFO, "peer %s (%s) is not a member yet; it will dial again", c->name, c->addr);
		c->closing = true;
		return;
	}
	c->state = C_UP;
	send_now(l, c, &(struct peer_msg){.type = PEER_WELCOME});
	/* A peer that dialled again replaces its older link. */
	pthread_mutex_lock(&l->lock);
	for (struct conn *o = l->conns; o; o = o->next)
		if (o != c && !o->outbound && strcmp(o->name, c->name) == 0)
			o->closing = true;
	pthread_mutex_unlock(&l->lock);
	LOG(INFO, "peer %s dialled in from %s", c->name, c->addr);
}

static void handshake_challenge(struct peer_link *l, struct conn *c, const struct peer_msg *m)
{
	struct peer_msg reply = {.type = PEER_AUTH};
	uint8_t want[PEER_MAC];

	peer_mac(l->secret, 's', c->my_nonce, m->nonce, c->name, l->self, want);
	if (strcmp(m->name, c->name) != 0) {
		refuse(l, c, "answered by another node than the one dialled");
		return;
	}
	if (!peer_mac_equal(want, m->mac)) {
		refuse(l, c, "wrong proof of the cluster secret");
		return;
	}
	peer_mac(l->secret, 'c', m->nonce, c->my_nonce, l->self, c->name, reply.mac);
	c->state = C_WAIT_WELCOME;
	send_now(l, c, &reply);
}

/* The listener took us in: the link is up. */
static void handshake_welcome(struct peer_link *l, struct conn *c)
{
	c->state = C_UP;
	pthread_mutex_lock(&l->lock);
	for (struct want *w = l->wants; w; w = w->next)
		if (w->conn == c)
			w->backoff_ms = 100;
	pthread_mutex_unlock(&l->lock);
	LOG(INFO, "peer link to %s (%s) is up", c->name, c->addr);
	if (l->ops.on_up)
		l->ops.on_up(l->arg, c->name);
}

static void conn_message(struct peer_link *l, struct conn *c, const struct peer_msg *m)
{
	bool handshake = m->type <= PEER_AUTH || m->type == PEER_WELCOME;

	if (c->state == C_UP && !handshake)
		l->ops.on_message(l->arg, c->name, c->outbound, m);
	else if (c->state == C_WAIT_HELLO && m->type == PEER_HELLO)
		handshake_hello(l, c, m);
	else if (c->state == C_WAIT_AUTH && m->type == PEER_AUTH)
		handshake_auth(l, c, m);
	else if (c->state == C_WAIT_CHALLENGE && m->type == PEER_CHALLENGE)
		handshake_challenge(l, c, m);
	else if (c->state == C_WAIT_WELCOME && m->type == PEER_WELCOME)
		handshake_welcome(l, c);
	else
		refuse(l, c, "a frame out of turn in the handshake");
}

/* ---- reading ---- */

static void conn_read(struct peer_link *l, struct conn *c)
{
	char chunk[READ_CHUNK];
	ssize_t n = recv(c->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
	size_t at = 0, used;
	struct peer_msg m;
	int rc;

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		c->closing = true;
		return;
	}
	if (n < 0)
		return;
	metric_add(&m_received, (uint64_t)n);
	if (buf_put(&c->in, chunk, (size_t)n) < 0) {
		c->closing = true;
		return;
	}
	while (!c->closing &&
	       (rc = peer_decode((uint8_t *)c->in.data + at, c->in.len - at, &m, &used)) == 1) {
		conn_message(l, c, &m);
		at += used;
	}
	if (!c->closing && rc < 0)
		refuse(l, c,
		       rc == -EMSGSIZE		? "a frame longer than the limit"
		       : rc == -EPROTONOSUPPORT ? "another version of the peer protocol"
						: "a malformed frame");
	memmove(c->in.data, c->in.data + at, c->in.len - at);
	c->in.len -= at;
}

static void conn_connected(struct peer_link *l, struct conn *c)
{
	struct peer_msg hello = {.type = PEER_HELLO};
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		c->closing = true;
		return;
	}
	RAND_bytes(c->my_nonce, PEER_NONCE);
	snprintf(hello.name, sizeof(hello.name), "%s", l->self);
	memcpy(hello.nonce, c->my_nonce, PEER_NONCE);
	c->state = C_WAIT_CHALLENGE;
	epoll_watch(l, c, false);
	send_now(l, c, &hello);
}

/* ---- dialling ---- */

/* Dials name at addr; the want's conn is set once the socket exists. Link
 * thread, without the lock. */
static void dial(struct peer_link *l, const char *name, const char *addr)
{
	struct sockaddr_in sa;
	struct conn *c = NULL;
	int fd = -1;

	if (parse_addr(addr, &sa) < 0)
		LOG(ERR, "peer %s: bad address '%s'", name, addr);
	else
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0) {
		metric_add(&m_dials, 1);
		c = conn_new(l, fd, true, addr);
	}
	pthread_mutex_lock(&l->lock);
	if (c)
		snprintf(c->name, sizeof(c->name), "%s", name);
	for (struct want *w = l->wants; w; w = w->next) {
		if (strcmp(w->name, name) != 0)
			continue;
		if (c) {
			w->conn = c;
		} else {
			w->next_dial_ns = time_mono_ns() + (uint64_t)w->backoff_ms * 1000000ull;
			w->backoff_ms = w->backoff_ms * 2 > 2000 ? 2000 : w->backoff_ms * 2;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

void peer_link_want(struct peer_link *l, const char *name, const char *addr)
{
	struct want **pp, *w;

	pthread_mutex_lock(&l->lock);
	for (pp = &l->wants; *pp && strcmp((*pp)->name, name) != 0; pp = &(*pp)->next)
		;
	w = *pp;
	if (addr == NULL && w) {
		*pp = w->next;
		if (w->conn)
			w->conn->closing = true;
		free(w);
	} else if (addr && w == NULL && (w = calloc(1, sizeof(*w))) != NULL) {
		snprintf(w->name, sizeof(w->name), "%s", name);
		snprintf(w->addr, sizeof(w->addr), "%s", addr);
		w->backoff_ms = 100;
		w->next = l->wants;
		l->wants = w;
	} else if (addr && w && strcmp(w->addr, addr) != 0) {
		snprintf(w->addr, sizeof(w->addr), "%s", addr);
		if (w->conn)
			w->conn->closing = true;
	}
	pthread_mutex_unlock(&l->lock);
	wake(l);
}

/* ---- the thread ---- */

static void accept_all(struct peer_link *l)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char addr[64], ip[INET_ADDRSTRLEN];
	int fd;

	while ((fd = accept4(l->listen_fd, (struct sockaddr *)&sa, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
		snprintf(addr, sizeof(addr), "%s:%u", ip, ntohs(sa.sin_port));
		conn_new(l, fd, false, addr);
		len = sizeof(sa);
	}
}

/* The next want due for a dial, copied out; false when none is. */
static bool next_due(struct peer_link *l, char *name, char *addr)
{
	uint64_t now = time_mono_ns();
	bool due = false;

	pthread_mutex_lock(&l->lock);
	for (struct want *w = l->wants; w && !due; w = w->next)
		if (w->conn == NULL && now >= w->next_dial_ns) {
			snprintf(name, PEER_NAME_MAX + 1, "%s", w->name);
			snprintf(addr, 64, "%s", w->addr);
			/* Not again until this dial has settled. */
			w->next_dial_ns = now + 1000000000ull;
			due = true;
		}
	pthread_mutex_unlock(&l->lock);
	return due;
}

/* Dials what is due, flushes every queue, closes what must go. The link
 * thread alone adds and removes links, so it walks them without the lock. */
static void housekeeping(struct peer_link *l)
{
	char name[PEER_NAME_MAX + 1], addr[64];
	uint64_t now = time_mono_ns();
	struct conn *c, *next;

	while (next_due(l, name, addr))
		dial(l, name, addr);
	for (c = l->conns; c; c = c->next)
		if (c->state != C_CONNECTING)
			conn_flush(l, c);
	for (c = l->conns; c; c = next) {
		next = c->next;
		if (!c->closing && c->state != C_UP && now > c->deadline_ns) {
			if (c->state == C_CONNECTING)
				c->closing = true;
			else
				refuse(l, c, "no handshake within two seconds");
		}
		if (c->closing)
			conn_close(l, c);
	}
}

static void *link_main(void *arg)
{
	struct peer_link *l = arg;
	struct epoll_event evs[64];
	uint64_t next_tick = time_mono_ns();

	pthread_setname_np(pthread_self(), "peer-link");
	while (!__atomic_load_n(&l->stopping, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(l->epfd, evs, 64, TICK_MS);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			uint64_t drain;

			if (c == NULL) {
				accept_all(l);
			} else if (c == (struct conn *)l) {
				if (read(l->wake_fd, &drain, sizeof(drain)) < 0 && errno != EAGAIN)
					LOG(ERR, "peer link wake: %s", strerror(errno));
			} else if (c->state == C_CONNECTING) {
				conn_connected(l, c);
			} else {
				if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
					conn_read(l, c);
				if (evs[i].events & EPOLLOUT)
					conn_flush(l, c);
			}
		}
		housekeeping(l);
		if (time_mono_ns() >= next_tick) {
			next_tick = time_mono_ns() + TICK_MS * 1000000ull;
			if (l->ops.on_tick)
				l->ops.on_tick(l->arg);
		}
	}
	return NULL;
}

static int listen_on(const char *addr)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	if (parse_addr(addr, &sa) < 0)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

/* What peer_link_start() made before it failed. */
static void link_free_partial(struct peer_link *l)
{
	if (l == NULL)
		return;
	if (l->listen_fd >= 0)
		close(l->listen_fd);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	free(l);
}

struct peer_link *peer_link_start(const char *self, const char *listen, const char *secret,
				  const struct peer_link_ops *ops, void *arg)
{
	struct peer_link *l = calloc(1, sizeof(*l));
	struct epoll_event ev = {.events = EPOLLIN};
	int rc = -ENOMEM;

	if (l == NULL)
		goto fail;
	l->listen_fd = l->epfd = l->wake_fd = -1;
	if (!secret || !*secret || strlen(secret) >= sizeof(l->secret) ||
	    strlen(self) > PEER_NAME_MAX) {
		LOG(ERR, "the peer link needs a cluster secret: set FANOUT_CLUSTER_SECRET");
		rc = -EINVAL;
		goto fail;
	}
	register_metrics();
	snprintf(l->self, sizeof(l->self), "%s", self);
	snprintf(l->secret, sizeof(l->secret), "%s", secret);
	l->ops = *ops;
	l->arg = arg;
	pthread_mutex_init(&l->lock, NULL);
	l->listen_fd = listen_on(listen);
	if (l->listen_fd < 0) {
		rc = l->listen_fd;
		LOG(ERR, "the peer link cannot listen on %s: %s", listen, strerror(-rc));
		goto fail;
	}
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->epfd < 0 || l->wake_fd < 0) {
		rc = -errno;
		goto fail;
	}
	ev.data.ptr = NULL;
	epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->listen_fd, &ev);
	ev.data.ptr = l;
	epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev);
	if (pthread_create(&l->thread, NULL, link_main, l) != 0) {
		rc = -EAGAIN;
		goto fail;
	}
	LOG(INFO, "peer link listening on %s", listen);
	return l;
fail:
	link_free_partial(l);
	errno = -rc;
	return NULL;
}

void peer_link_stop(struct peer_link *l)
{
	if (l == NULL)
		return;
	__atomic_store_n(&l->stopping, true, __ATOMIC_RELEASE);
	wake(l);
	pthread_join(l->thread, NULL);
	while (l->conns) {
		l->conns->state = C_WAIT_HELLO; /* no on_down at shutdown */
		conn_close(l, l->conns);
	}
	while (l->wants) {
		struct want *w = l->wants;

		l->wants = w->next;
		free(w);
	}
	close(l->listen_fd);
	close(l->epfd);
	close(l->wake_fd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

uint64_t peer_link_bytes_sent(struct peer_link *l)
{
	return metric_read(&m_sent);
}

uint64_t peer_link_bytes_received(struct peer_link *l)
{
	return metric_read(&m_received);
}

uint64_t peer_link_refused(struct peer_link *l)
{
	return metric_read(&m_refused);
}
