/* SPDX-License-Identifier: BSD-3-Clause */
/* The etcd v3 JSON gateway client (etcd.h). Each call is one POST of a JSON
 * body to /v3/...; int64 fields come back as strings and bytes as base64,
 * which is all the translation there is. The watch is the same POST held
 * open: etcd writes one JSON object a line as changes happen. */
#include "etcd.h"

#include "buf.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ETCD_MAX_ENDPOINTS 8
#define ETCD_MAX_ANSWER	   (16 << 20)

struct etcd {
	char *endpoints[ETCD_MAX_ENDPOINTS];
	int nendpoints, current, timeout_ms;
	CURL *curl;
	/* The answer being read, or the watch's unfinished line. */
	struct buf answer;
	/* The watch's consumer. */
	void (*each)(void *arg, const struct etcd_kv *kv, int64_t revision);
	bool (*stop)(void *arg);
	void *arg;
	int watch_error;
};

static int etcd_global_init(void)
{
	static int done;

	if (!__atomic_exchange_n(&done, 1, __ATOMIC_ACQ_REL))
		return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -ENOMEM;
	return 0;
}

struct etcd *etcd_open(const char *endpoints, int timeout_ms)
{
	struct etcd *e;
	char *copy, *save = NULL, *tok;

	if (endpoints == NULL || !*endpoints || etcd_global_init() < 0) {
		errno = EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	copy = strdup(endpoints);
	if (e == NULL || copy == NULL)
		goto fail;
	for (tok = strtok_r(copy, ",", &save); tok && e->nendpoints < ETCD_MAX_ENDPOINTS;
	     tok = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(tok);

		while (n && tok[n - 1] == '/')
			tok[--n] = 0;
		if ((e->endpoints[e->nendpoints++] = strdup(tok)) == NULL)
			goto fail;
	}
	free(copy);
	copy = NULL;
	e->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
	if (e->nendpoints == 0 || (e->curl = curl_easy_init()) == NULL)
		goto fail;
	return e;
fail:
	free(copy);
	etcd_close(e);
	errno = errno ? errno : ENOMEM;
	return NULL;
}

void etcd_close(struct etcd *e)
{
	if (e == NULL)
		return;
	for (int i = 0; i < e->nendpoints; i++)
		free(e->endpoints[i]);
	if (e->curl)
		curl_easy_cleanup(e->curl);
	buf_free(&e->answer);
	free(e);
}

/* ---- base64 and the prefix's range end ---- */

static char *b64_encode(const char *s, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

/* Decodes text into a NUL-terminated string; NULL when it is not base64. */
static char *b64_decode(const char *text)
{
	size_t n = strlen(text);
	char *out = malloc(3 * (n / 4) + 1);
	int len;

	if (out == NULL || n % 4)
		goto bad;
	len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)text, (int)n);
	if (len < 0)
		goto bad;
	/* EVP_DecodeBlock counts the padding's zero bytes too. */
	for (size_t i = n; i > 0 && text[i - 1] == '='; i--)
		len--;
	out[len] = 0;
	return out;
bad:
	free(out);
	return NULL;
}

static json_t *b64_json(const char *s, size_t n)
{
	char *b = b64_encode(s, n);
	json_t *j = b ? json_string(b) : NULL;

	free(b);
	return j;
}

/* etcd's end of a prefix range: the prefix with its last byte plus one. */
static json_t *prefix_end_json(const char *prefix)
{
	size_t n = strlen(prefix);
	char *end = strdup(prefix);
	json_t *j;

	if (end == NULL || n == 0) {
		free(end);
		return NULL;
	}
	end[n - 1]++;
	j = b64_json(end, n);
	free(end);
	return j;
}

/* An int64 the gateway writes as a string (or omits when zero). */
static int64_t json_i64(const json_t *obj, const char *field)
{
	const json_t *v = json_object_get(obj, field);

	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return json_integer_value(v);
	return 0;
}

static int64_t header_revision(const json_t *answer)
{
	return json_i64(json_object_get(answer, "header"), "revision");
}

/* ---- one call ---- */

static size_t on_answer(char *data, size_t size, size_t n, void *arg)
{
	struct etcd *e = arg;
	size_t add = size * n;

	if (e->answer.len + add > ETCD_MAX_ANSWER || buf_put(&e->answer, data, add) < 0)
		return 0;
	return add;
}

static void etcd_prepare(struct etcd *e, int endpoint, const char *path, const char *body,
			 struct curl_slist *headers)
{
	char url[512];

	snprintf(url, sizeof(url), "%s%s", e->endpoints[endpoint], path);
	curl_easy_reset(e->curl);
	curl_easy_setopt(e->curl, CURLOPT_URL, url);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, e);
	buf_reset(&e->answer);
}

static int curl_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -ECONNREFUSED;
	}
}

/* POSTs request to path on the first endpoint that answers and parses the
 * answer. Takes request. 0 or -errno. */
static int etcd_call(struct etcd *e, const char *path, json_t *request, json_t **answer)
{
	char *body = request ? json_dumps(request, JSON_COMPACT) : NULL;
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	int rc = body && headers ? -ECONNREFUSED : -ENOMEM;

	json_decref(request);
	*answer = NULL;
	for (int i = 0; body && headers && i < e->nendpoints; i++) {
		int at = (e->current + i) % e->nendpoints;
		long status = 0;

		etcd_prepare(e, at, path, body, headers);
		curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
		rc = curl_errno(curl_easy_perform(e->curl));
		if (rc < 0)
			continue;
		e->current = at;
		curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
		*answer = e->answer.len ? json_loadb(e->answer.data, e->answer.len, 0, NULL) : NULL;
		rc = status == 200 && json_is_object(*answer) ? 0 : -EPROTO;
		break;
	}
	if (rc < 0) {
		json_decref(*answer);
		*answer = NULL;
	}
	curl_slist_free_all(headers);
	free(body);
	return rc;
}

int etcd_status(struct etcd *e, char *out, size_t n, int64_t *revision)
{
	json_t *answer;
	const char *id;
	int rc = etcd_call(e, "/v3/maintenance/status", json_object(), &answer);

	if (rc < 0)
		return rc;
	id = json_string_value(json_object_get(json_object_get(answer, "header"), "cluster_id"));
	rc = id && *id ? 0 : -EPROTO;
	if (rc == 0)
		snprintf(out, n, "%s", id);
	*revision = header_revision(answer);
	json_decref(answer);
	return rc;
}

/* ---- leases ---- */

int etcd_lease_grant(struct etcd *e, int ttl_s, int64_t *id, int *granted)
{
	json_t *answer;
	int rc = etcd_call(e, "/v3/lease/grant", json_pack("{s:i}", "TTL", ttl_s), &answer);

	if (rc < 0)
		return rc;
	*id = json_i64(answer, "ID");
	*granted = (int)json_i64(answer, "TTL");
	rc = *id && *granted > 0 ? 0 : -EPROTO;
	json_decref(answer);
	return rc;
}

int etcd_lease_keepalive(struct etcd *e, int64_t id, int *ttl)
{
	char sid[24];
	json_t *answer;
	int rc;

	snprintf(sid, sizeof(sid), "%lld", (long long)id);
	rc = etcd_call(e, "/v3/lease/keepalive", json_pack("{s:s}", "ID", sid), &answer);
	if (rc < 0)
		return rc;
	/* A lease that is gone answers with no TTL (zero). */
	*ttl = (int)json_i64(json_object_get(answer, "result"), "TTL");
	json_decref(answer);
	return *ttl > 0 ? 0 : -ENOENT;
}

int etcd_lease_revoke(struct etcd *e, int64_t id)
{
	char sid[24];
	json_t *answer;
	int rc;

	snprintf(sid, sizeof(sid), "%lld", (long long)id);
	rc = etcd_call(e, "/v3/lease/revoke", json_pack("{s:s}", "ID", sid), &answer);
	json_decref(answer);
	return rc == -EPROTO ? -ENOENT : rc;
}

/* ---- keys ---- */

static json_t *put_request(const char *key, const char *value, int64_t lease)
{
	char slease[24];

	snprintf(slease, sizeof(slease), "%lld", (long long)lease);
	return json_pack("{s:o, s:o, s:s}", "key", b64_json(key, strlen(key)), "value",
			 b64_json(value, strlen(value)), "lease", slease);
}

int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, int64_t *revision)
{
	json_t *answer;
	int rc = etcd_call(e, "/v3/kv/put", put_request(key, value, lease), &answer);

	if (rc == 0 && revision)
		*revision = header_revision(answer);
	json_decref(answer);
	return rc;
}

int etcd_create(struct etcd *e, const char *key, const char *value, int64_t lease,
		int64_t *revision)
{
	json_t *compare = json_pack("[{s:s, s:s, s:s, s:o}]", "target", "CREATE", "result", "EQUAL",
				    "create_revision", "0", "key", b64_json(key, strlen(key)));
	json_t *success = json_pack("[{s:o}]", "request_put", put_request(key, value, lease));
	json_t *answer;
	int rc =
	    etcd_call(e, "/v3/kv/txn",
		      json_pack("{s:o, s:o}", "compare", compare, "success", success), &answer);

	if (rc == 0 && !json_is_true(json_object_get(answer, "succeeded")))
		rc = -EEXIST;
	if (rc == 0 && revision)
		*revision = header_revision(answer);
	json_decref(answer);
	return rc;
}

int etcd_delete(struct etcd *e, const char *key)
{
	json_t *answer;
	int rc = etcd_call(e, "/v3/kv/deleterange",
			   json_pack("{s:o}", "key", b64_json(key, strlen(key))), &answer);

	json_decref(answer);
	return rc;
}

/* Decodes one kv object of a range or an event. 0 or -EPROTO. */
static int kv_decode(const json_t *kv, struct etcd_kv *out, char **key, char **value)
{
	const char *k = json_string_value(json_object_get(kv, "key"));
	const char *v = json_string_value(json_object_get(kv, "value"));

	*key = k ? b64_decode(k) : NULL;
	*value = b64_decode(v ? v : "");
	if (*key == NULL || *value == NULL) {
		free(*key);
		free(*value);
		return -EPROTO;
	}
	out->key = *key;
	out->value = *value;
	out->mod_revision = json_i64(kv, "mod_revision");
	out->lease = json_i64(kv, "lease");
	out->deleted = false;
	return 0;
}

int etcd_range(struct etcd *e, const char *prefix,
	       void (*each)(void *arg, const struct etcd_kv *kv), void *arg, int64_t *revision)
{
	json_t *answer, *kvs, *kv;
	size_t i;
	int rc = etcd_call(e, "/v3/kv/range",
			   json_pack("{s:o, s:o}", "key", b64_json(prefix, strlen(prefix)),
				     "range_end", prefix_end_json(prefix)),
			   &answer);

	if (rc < 0)
		return rc;
	kvs = json_object_get(answer, "kvs");
	json_array_foreach(kvs, i, kv)
	{
		struct etcd_kv out;
		char *key, *value;

		if (kv_decode(kv, &out, &key, &value) < 0) {
			rc = -EPROTO;
			continue;
		}
		each(arg, &out);
		free(key);
		free(value);
	}
	if (revision)
		*revision = header_revision(answer);
	json_decref(answer);
	return rc;
}

/* ---- the watch ---- */

/* One line of the watch stream: {"result": {"events": [...]}}. */
static void watch_line(struct etcd *e, const char *line, size_t n)
{
	json_t *msg = json_loadb(line, n, 0, NULL), *result, *events, *ev;
	int64_t revision;
	size_t i;

	result = json_object_get(msg, "result");
	if (!json_is_object(result)) {
		e->watch_error = -EPROTO;
		json_decref(msg);
		return;
	}
	if (json_is_true(json_object_get(result, "canceled")))
		e->watch_error = -ESTALE; /* compacted past `from`: re-read */
	revision = header_revision(result);
	events = json_object_get(result, "events");
	json_array_foreach(events, i, ev)
	{
		struct etcd_kv kv;
		char *key, *value;

		if (kv_decode(json_object_get(ev, "kv"), &kv, &key, &value) < 0)
			continue;
		kv.deleted = json_is_string(json_object_get(ev, "type")) &&
			     strcmp(json_string_value(json_object_get(ev, "type")), "DELETE") == 0;
		e->each(e->arg, &kv, revision);
		free(key);
		free(value);
	}
	json_decref(msg);
}

static size_t on_watch(char *data, size_t size, size_t n, void *arg)
{
	struct etcd *e = arg;
	struct buf *b = &e->answer;
	size_t add = size * n, start = 0;
	char *nl;

	if (on_answer(data, size, n, e) != add)
		return 0;
	while ((nl = memchr(b->data + start, '\n', b->len - start)) != NULL) {
		watch_line(e, b->data + start, (size_t)(nl - (b->data + start)));
		start = (size_t)(nl - b->data) + 1;
	}
	memmove(b->data, b->data + start, b->len - start);
	b->len -= start;
	return e->watch_error ? 0 : add;
}

static int on_watch_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct etcd *e = arg;

	return e->stop(e->arg) ? 1 : 0;
}

int etcd_watch(struct etcd *e, const char *prefix, int64_t from,
	       void (*each)(void *arg, const struct etcd_kv *kv, int64_t revision),
	       bool (*stop)(void *arg), void *arg)
{
	char sfrom[24];
	json_t *req;
	char *body;
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	CURLcode rc;

	snprintf(sfrom, sizeof(sfrom), "%lld", (long long)from);
	req = json_pack("{s:{s:o, s:o, s:s}}", "create_request", "key",
			b64_json(prefix, strlen(prefix)), "range_end", prefix_end_json(prefix),
			"start_revision", sfrom);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL || headers == NULL) {
		free(body);
		curl_slist_free_all(headers);
		return -ENOMEM;
	}
	e->each = each;
	e->stop = stop;
	e->arg = arg;
	e->watch_error = 0;
	etcd_prepare(e, e->current, "/v3/watch", body, headers);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_watch);
	curl_easy_setopt(e->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e->curl, CURLOPT_XFERINFOFUNCTION, on_watch_progress);
	curl_easy_setopt(e->curl, CURLOPT_XFERINFODATA, e);
	rc = curl_easy_perform(e->curl);
	curl_slist_free_all(headers);
	free(body);
	if (stop(arg))
		return 0;
	if (e->watch_error)
		return e->watch_error;
	/* The stream ended without a stop: try the next endpoint next time. */
	e->current = (e->current + 1) % e->nendpoints;
	return rc == CURLE_OK ? -ECONNRESET : curl_errno(rc);
}
