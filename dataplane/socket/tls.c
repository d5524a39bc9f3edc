/* SPDX-License-Identifier: BSD-3-Clause */
/* TLS on the socket edge (OpenSSL): the server context from the configured
 * certificate chain and key, and a connection's reads and writes, plain or
 * through its SSL object on a non-blocking socket. The handshake happens
 * inside the first reads; a read that needs to write first (or a write that
 * needs a read) is retried when the socket allows. TLS 1.2 and later. */
#define LOG_COMPONENT "socket"
#include "server-internal.h"

#include "log.h"

#include <errno.h>
#include <openssl/err.h>
#include <sys/socket.h>

static void log_tls_error(const char *what, const char *file)
{
	char msg[256];

	ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
	LOG(ERR, "TLS: %s %s: %s", what, file, msg);
}

SSL_CTX *tls_context(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		log_tls_error("cannot create a context for", cert);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Our output buffer may grow (move) between a partial write and its
	 * retry, which is always for the bytes that were not taken. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		log_tls_error("cannot load the certificate", cert);
	} else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		log_tls_error("cannot load the private key", key);
	} else if (SSL_CTX_check_private_key(ctx) != 1) {
		log_tls_error("the private key does not match the certificate", key);
	} else {
		return ctx;
	}
	SSL_CTX_free(ctx);
	return NULL;
}

/* What an SSL call's failure means for the loop. */
static ssize_t tls_result(struct sconn *c, int n)
{
	switch (SSL_get_error(c->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->tls_wants_write = true;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		ERR_clear_error();
		return -EIO;
	}
}

ssize_t conn_io_read(struct sconn *c, void *buf, size_t len)
{
	int n;

	if (c->ssl == NULL) {
		ssize_t r = recv(c->fd, buf, len, 0);

		if (r >= 0)
			return r;
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -EIO;
	}
	ERR_clear_error();
	n = SSL_read(c->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
	return n > 0 ? n : tls_result(c, n);
}

ssize_t conn_io_write(struct sconn *c, const void *buf, size_t len)
{
	ssize_t r;
	int n;

	if (c->ssl == NULL) {
		r = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -EIO;
	}
	ERR_clear_error();
	n = SSL_write(c->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
	if (n > 0)
		return n;
	r = tls_result(c, n);
	return r == 0 ? -EIO : r;
}
