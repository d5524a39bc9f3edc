/* The socket edge's HTTP listener; see http.h. One libwebsockets context and
 * one service thread. Dynamic endpoints are callback mounts answered in one
 * buffer; everything else under / is a file mount of the web root. */
#define LOG_COMPONENT "http"
#include "http.h"

#include "err.h"
#include "log.h"
#include "metrics.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_server {
	struct lws_context *context;
	pthread_t thread;
	atomic_bool stop;
	http_ready_fn ready;
	void *ready_arg;
	struct lws_http_mount mounts[4];
	struct lws_protocols protocols[2];
};

/* A response being written: LWS_PRE bytes of headroom, then the body. */
struct http_session {
	char *buf;
	size_t len;
	bool head; /* HEAD: headers only */
};

static struct metric_counter m_requests;

static int respond(struct lws *wsi, struct http_session *pss, unsigned status,
		   const char *content_type, const char *body, size_t len)
{
	unsigned char headers[LWS_PRE + 512], *start = headers + LWS_PRE, *p = start,
					      *end = headers + sizeof(headers) - 1;

	pss->buf = malloc(LWS_PRE + len + 1);
	if (pss->buf == NULL)
		return -1;
	memcpy(pss->buf + LWS_PRE, body, len);
	pss->len = len;
	if (lws_add_http_common_headers(wsi, status, content_type, (lws_filepos_t)len, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (pss->head) {
		free(pss->buf);
		pss->buf = NULL;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	lws_callback_on_writable(wsi);
	return 0;
}

static int on_http(struct lws *wsi, struct http_session *pss, const char *path)
{
	struct http_server *s = lws_context_user(lws_get_context(wsi));
	char why[256], body[320];
	int rc;

	metric_add(&m_requests, 1);
	if (strcmp(path, "/healthz") == 0)
		return respond(wsi, pss, HTTP_STATUS_OK, "text/plain", "ok\n", 3);
	if (strcmp(path, "/readyz") == 0) {
		why[0] = '\0';
		if (s->ready(s->ready_arg, why, sizeof(why)))
			return respond(wsi, pss, HTTP_STATUS_OK, "text/plain", "ready\n", 6);
		rc = snprintf(body, sizeof(body), "not ready: %s\n", why);
		return respond(wsi, pss, HTTP_STATUS_SERVICE_UNAVAILABLE, "text/plain", body,
			       (size_t)rc);
	}
	if (strcmp(path, "/metrics") == 0) {
		size_t len;
		char *text = metrics_render(&len);

		if (text == NULL)
			return -1;
		rc = respond(wsi, pss, HTTP_STATUS_OK, "text/plain; version=0.0.4", text, len);
		free(text);
		return rc;
	}
	return respond(wsi, pss, HTTP_STATUS_NOT_FOUND, "text/plain", "not found\n", 10);
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct http_session *pss = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP: {
		/* The mounts are exact names, so the whole URI is the route. */
		char path[128] = "";
		pss->head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
		lws_hdr_copy(wsi, path, sizeof(path),
			     pss->head ? WSI_TOKEN_HEAD_URI : WSI_TOKEN_GET_URI);
		if (on_http(wsi, pss, path) < 0)
			return -1;
		return 0;
	}
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (pss->buf == NULL)
			break;
		if (lws_write(wsi, (unsigned char *)pss->buf + LWS_PRE, pss->len,
			      LWS_WRITE_HTTP_FINAL) != (int)pss->len)
			return -1;
		free(pss->buf);
		pss->buf = NULL;
		if (lws_http_transaction_completed(wsi))
			return -1;
		return 0;
	case LWS_CALLBACK_CLOSED_HTTP:
		free(pss->buf);
		pss->buf = NULL;
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void *service_main(void *arg)
{
	struct http_server *s = arg;

	while (!atomic_load(&s->stop))
		if (lws_service(s->context, 0) < 0)
			break;
	return NULL;
}

static void lws_to_log(int level, const char *line)
{
	char msg[512];
	size_t n = strlen(line);

	/* libwebsockets ends lines with a newline; our records add their own. */
	snprintf(msg, sizeof(msg), "%.*s", (int)(n && line[n - 1] == '\n' ? n - 1 : n), line);
	if (level & LLL_ERR)
		LOG(ERR, "lws: %s", msg);
	else
		LOG(WARN, "lws: %s", msg);
}

struct http_server *http_server_start(const struct http_server_config *cfg, http_ready_fn ready,
				      void *ready_arg)
{
	static const char *const dynamic[] = {"/healthz", "/readyz", "/metrics"};
	struct lws_context_creation_info info;
	struct http_server *s = calloc(1, sizeof(*s));
	static bool metrics_done;

	if (s == NULL)
		return NULL;
	if (!metrics_done) {
		metrics_register_counter("fanout_http_requests_total",
					 "HTTP requests answered by the socket edge.", &m_requests);
		metrics_done = true;
	}
	s->ready = ready;
	s->ready_arg = ready_arg;
	s->protocols[0] = (struct lws_protocols){
	    .name = "fanout-http",
	    .callback = http_callback,
	    .per_session_data_size = sizeof(struct http_session),
	};
	for (int i = 0; i < 3; i++) {
		s->mounts[i] = (struct lws_http_mount){
		    .mount_next = &s->mounts[i + 1],
		    .mountpoint = dynamic[i],
		    .mountpoint_len = (unsigned char)strlen(dynamic[i]),
		    .origin = "fanout-http",
		    .origin_protocol = LWSMPRO_CALLBACK,
		};
	}
	s->mounts[3] = (struct lws_http_mount){
	    .mountpoint = "/",
	    .mountpoint_len = 1,
	    .origin = cfg->web_root,
	    .def = "index.html",
	    .origin_protocol = LWSMPRO_FILE,
	};

	lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_log);
	memset(&info, 0, sizeof(info));
	info.port = cfg->port;
	info.iface = cfg->address;
	info.protocols = s->protocols;
	info.mounts = s->mounts;
	info.user = s;
	info.options = LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
	if (cfg->tls_cert && *cfg->tls_cert && cfg->tls_key && *cfg->tls_key) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
	}
	s->context = lws_create_context(&info);
	if (s->context == NULL) {
		LOG(ERR, "cannot listen on %s:%d (address in use, or TLS files unreadable)",
		    cfg->address, cfg->port);
		free(s);
		return err_null(-EIO);
	}
	if (pthread_create(&s->thread, NULL, service_main, s) != 0) {
		lws_context_destroy(s->context);
		free(s);
		return err_null(-ENOMEM);
	}
	return s;
}

void http_server_stop(struct http_server *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->stop, true);
	lws_cancel_service(s->context);
	pthread_join(s->thread, NULL);
	lws_context_destroy(s->context);
	free(s);
}
