/* SPDX-License-Identifier: BSD-3-Clause */
/* A socket edge connection's bytes: reading while the connection may take
 * more (not paused by its session, no HTTP request in progress, not too much
 * unwritten), writing what is queued and asking epoll for more room when the
 * socket is full, and closing: after the last byte is written our side is
 * shut and the connection is read until the peer ends it (or a deadline),
 * so that an answer is not lost to a reset for input left unread.
 * Registered level-triggered; the mask changes only when the wish does. */
#define LOG_COMPONENT "socket"
#include "server-internal.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 16384
#define READS_MAX  8		 /* per event, for fairness between connections */
#define LINGER_NS  2000000000ull /* reading after our side is shut */
#define OUT_KEEP   1024		 /* output memory kept once everything is written */

static void list_add(struct sconn **head, struct sconn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

static void list_remove(struct sconn **head, struct sconn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (*head == c)
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

int conn_accept(struct service *svc, int fd, const struct conn_ops *ops)
{
	struct sconn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

	if (c == NULL)
		return -1;
	c->svc = svc;
	c->fd = fd;
	c->mode = CONN_HTTP;
	c->ops = ops;
	c->events = EPOLLIN;
	c->deadline_ns = conn_idle_deadline(c);
	if (svc->srv->tls) {
		c->ssl = SSL_new(svc->srv->tls);
		if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
			SSL_free(c->ssl);
			free(c);
			return -1;
		}
		SSL_set_accept_state(c->ssl);
	}
	if (epoll_ctl(svc->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		SSL_free(c->ssl);
		free(c);
		return -1;
	}
	c->list = LIST_TIMED;
	list_add(&svc->conns[LIST_TIMED], c);
	return 0;
}

uint64_t conn_idle_deadline(const struct sconn *c)
{
	return time_mono_ns() +
	       (uint64_t)atomic_load_explicit(&c->svc->srv->http_idle_ms, memory_order_relaxed) *
		   1000000ull;
}

static bool can_read(const struct sconn *c)
{
	if (c->shut)
		return true; /* to see the peer's end */
	return !c->closing && !c->paused && !c->held && c->out.len - c->out_off < OUT_HIGH_WATER;
}

static void read_some(struct sconn *c)
{
	static _Thread_local uint8_t chunk[READ_CHUNK];

	/* TLS may hold the rest of a record it decrypted: read it too, or
	 * the socket, already empty, would not say there is more. */
	for (int i = 0; (i < READS_MAX || (c->ssl && SSL_pending(c->ssl) > 0)) &&
			c->mode != CONN_DEAD && can_read(c);
	     i++) {
		ssize_t n = conn_io_read(c, chunk, sizeof(chunk));

		if (n == -EAGAIN)
			return;
		if (n == 0 && !c->shut && c->out_off < c->out.len) {
			conn_close_after(c); /* the peer is done sending: finish ours */
			return;
		}
		if (n <= 0) {
			conn_close(c);
			return;
		}
		if (!c->shut) /* else: input after our end, dropped */
			conn_input(c, chunk, (size_t)n);
		if (c->ssl == NULL && (size_t)n < sizeof(chunk))
			return; /* the socket is empty; TLS may hold decrypted bytes */
	}
}

static void conn_read(struct sconn *c)
{
	if (c->in_read)
		return;
	c->in_read = true;
	read_some(c);
	c->in_read = false;
}

void conn_input(struct sconn *c, uint8_t *data, size_t len)
{
	while (len > 0 && c->mode != CONN_DEAD && !c->closing) {
		const struct conn_ops *ops = c->ops;
		size_t used;

		if (c->held || c->in.len) { /* behind what waits: keep the order */
			if (buf_put(&c->in, data, len) < 0)
				conn_close(c);
			return;
		}
		used = ops->input(c, data, len);
		data += used;
		len -= used;
		if (len > 0 && c->ops == ops && c->mode != CONN_DEAD && !c->closing && !c->held) {
			conn_close(c); /* a mode that neither took input nor held it */
			return;
		}
	}
}

/* Our side is done: shut it, then read until the peer ends (or LINGER). */
static void conn_shut(struct sconn *c)
{
	if (c->ssl)
		SSL_shutdown(c->ssl); /* close_notify, best effort */
	shutdown(c->fd, SHUT_WR);
	c->shut = true;
	c->deadline_ns = time_mono_ns() + LINGER_NS;
	conn_update_events(c);
}

void conn_flush(struct sconn *c)
{
	while (c->mode != CONN_DEAD && c->out_off < c->out.len) {
		ssize_t n = conn_io_write(c, c->out.data + c->out_off, c->out.len - c->out_off);

		if (n == -EAGAIN)
			break;
		if (n < 0) {
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->mode == CONN_DEAD)
		return;
	if (c->out_off == c->out.len) {
		c->out_off = 0;
		/* An idle connection keeps no output memory beyond a small
		 * buffer that a busy one reuses for its next few frames. */
		if (c->out.cap > OUT_KEEP)
			buf_free(&c->out);
		else
			buf_reset(&c->out);
		if (c->closing && !c->shut) {
			conn_shut(c);
			return;
		}
	}
	conn_update_events(c);
}

int conn_send(struct sconn *c, const void *data, size_t len)
{
	if (c->mode == CONN_DEAD || c->shut)
		return -1;
	if (buf_put(&c->out, data, len) < 0) {
		conn_close(c);
		return -1;
	}
	conn_flush(c);
	return 0;
}

void conn_close_after(struct sconn *c)
{
	if (c->mode == CONN_DEAD || c->closing)
		return;
	c->closing = true;
	c->deadline_ns = conn_idle_deadline(c);
	if (c->list == LIST_WS) { /* onto the list with deadlines */
		list_remove(&c->svc->conns[LIST_WS], c);
		list_add(&c->svc->conns[LIST_TIMED], c);
		c->list = LIST_TIMED;
	}
	conn_flush(c);
}

/* Input that waited behind a finished request. */
static void resume_held(struct sconn *c)
{
	struct buf held = c->in;

	c->in = (struct buf){0};
	conn_input(c, (uint8_t *)held.data, held.len);
	buf_free(&held);
}

void conn_update_events(struct sconn *c)
{
	uint32_t want = 0;

	if (c->mode == CONN_DEAD)
		return;
	if (c->mode == CONN_HTTP && !c->held && !c->closing && c->in.len)
		resume_held(c);
	if (c->mode == CONN_DEAD)
		return;
	if (can_read(c))
		want |= EPOLLIN;
	if (c->out_off < c->out.len || c->tls_wants_write)
		want |= EPOLLOUT;
	if (want != c->events) {
		struct epoll_event ev = {.events = want, .data.ptr = c};

		if (epoll_ctl(c->svc->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
			c->events = want;
	}
	/* TLS may hold decrypted bytes the socket no longer signals. */
	if ((want & EPOLLIN) && c->ssl && SSL_pending(c->ssl) > 0)
		conn_read(c);
}

void conn_on_events(struct sconn *c, uint32_t events)
{
	if (c->mode == CONN_DEAD)
		return;
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	if (events & EPOLLOUT) {
		if (c->tls_wants_write) { /* a read needed to write first */
			c->tls_wants_write = false;
			conn_read(c);
		}
		conn_flush(c);
		/* room again: the mode's next bytes */
		if (c->ops->room && c->mode != CONN_DEAD &&
		    c->out.len - c->out_off < OUT_HIGH_WATER / 2)
			c->ops->room(c);
	}
	if (c->mode != CONN_DEAD && (events & (EPOLLIN | EPOLLHUP))) {
		conn_read(c);
		if (c->mode != CONN_DEAD && c->out_off < c->out.len)
			conn_flush(c); /* TLS: a write that waited for a read */
	}
}

void conn_set_ws(struct sconn *c, const struct conn_ops *ops)
{
	list_remove(&c->svc->conns[LIST_TIMED], c);
	list_add(&c->svc->conns[LIST_WS], c);
	c->list = LIST_WS;
	c->mode = CONN_WS;
	c->ops = ops;
	buf_free(&c->in);
}

const char *conn_peer(struct sconn *c, char *out, size_t n)
{
	struct sockaddr_storage ss = {0};
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";

	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0)
		ss.ss_family = AF_UNSPEC;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(out, n, "%s:%d", host, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(out, n, "[%s]:%d", host, ntohs(a->sin6_port));
	} else {
		snprintf(out, n, "?");
	}
	return out;
}

void conn_close(struct sconn *c)
{
	struct service *svc = c->svc;

	if (c->mode == CONN_DEAD)
		return;
	c->ops->closed(c);
	list_remove(&svc->conns[c->list], c);
	if (c->in_writers) /* rare: closed while told of frames */
		for (struct sconn **pp = &svc->writers; *pp; pp = &(*pp)->wnext)
			if (*pp == c) {
				*pp = c->wnext;
				break;
			}
	c->in_writers = false;
	c->mode = CONN_DEAD;
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd); /* leaves the epoll set with it */
	c->dnext = svc->dead;
	svc->dead = c;
}

void conn_expire(struct service *svc, uint64_t now)
{
	struct sconn *c = svc->conns[LIST_TIMED], *next;

	for (; c; c = next) {
		next = c->next;
		if (c->deadline_ns <= now)
			conn_close(c);
	}
}

void conn_close_every(struct service *svc)
{
	for (int m = 0; m < 2; m++)
		while (svc->conns[m])
			conn_close(svc->conns[m]);
}

void conn_reap(struct service *svc)
{
	while (svc->dead) {
		struct sconn *c = svc->dead;

		svc->dead = c->dnext;
		c->ops->release(c);
		buf_free(&c->in);
		buf_free(&c->out);
		free(c);
	}
}
