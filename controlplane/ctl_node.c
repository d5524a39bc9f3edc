/* SPDX-License-Identifier: BSD-3-Clause */
/* fanoutctl's view of one node, through the node's operator API
 * (docs/api.md, "Operator API"):
 *
 *   fanoutctl status                 [node options] [-o table|json]
 *   fanoutctl connections list       [--user NAME] [--channel ID] [--limit N]
 *   fanoutctl connections kill ID
 *   fanoutctl channel info ID
 *
 * Node options: --node HOST:PORT or URL, -c FILE, --as NAME. The node, the
 * token secret and the admin to act as are found the way the quickstart and
 * the package set them up (ctl_find_config), so a printed command works as
 * printed. The token is minted here for a minute and never printed. */
#include "config.h"
#include "ctl.h"
#include "jwt.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PACKAGE_CONFIG	"/etc/fanout/fanout.ini"
#define PACKAGE_SECRETS "/etc/default/fanout"

struct node_opts {
	const char *node, *config, *as, *user;
	long long channel, limit;
	enum ctl_output output;
	struct config cfg;
	char url[256];
	char token[512];
};

/* FANOUT_JWT_SECRET from the package's secrets file (KEY=VALUE lines),
 * when the environment has none and the file is readable. */
static void secret_from_file(struct config *cfg)
{
	FILE *f;
	char line[512];

	if (cfg->auth.jwt_secret[0] || (f = fopen(PACKAGE_SECRETS, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, "FANOUT_JWT_SECRET=", 18) == 0)
			snprintf(cfg->auth.jwt_secret, sizeof(cfg->auth.jwt_secret), "%.255s",
				 line + 18);
	}
	fclose(f);
}

int ctl_find_config(const char *path, struct config *cfg)
{
	char err[1024];
	int rc;

	config_defaults(cfg);
	if (path == NULL && getenv("FANOUT_CONFIG") && getenv("FANOUT_CONFIG")[0])
		path = getenv("FANOUT_CONFIG");
	if (path == NULL && access(PACKAGE_CONFIG, R_OK) == 0)
		path = PACKAGE_CONFIG;
	rc = path ? config_load(cfg, path, err, sizeof(err))
		  : config_apply_env(cfg, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "fanoutctl: %s\n", err);
		return CTL_USAGE;
	}
	secret_from_file(cfg);
	return CTL_OK;
}

/* The node's base URL: --node, FANOUT_NODE, [cluster] admin, or [server]
 * listen_address:port (a wildcard address is asked on loopback). */
static void node_url(struct node_opts *o)
{
	const char *node = o->node ? o->node : getenv("FANOUT_NODE");
	const char *scheme = o->cfg.server.tls_cert[0] ? "https" : "http";
	const char *host = o->cfg.server.listen_address;

	if (node && node[0]) {
		snprintf(o->url, sizeof(o->url), "%s%s", strstr(node, "://") ? "" : "http://",
			 node);
	} else if (o->cfg.cluster.admin[0]) {
		snprintf(o->url, sizeof(o->url), "%s://%s", scheme, o->cfg.cluster.admin);
	} else {
		if (!host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
			host = "127.0.0.1";
		snprintf(o->url, sizeof(o->url), strchr(host, ':') ? "%s://[%s]:%d" : "%s://%s:%d",
			 scheme, host, o->cfg.server.port);
	}
	if (o->url[strlen(o->url) - 1] == '/')
		o->url[strlen(o->url) - 1] = '\0';
}

/* A one-minute token for the admin to act as: --as, or the first of
 * [auth] admins. */
static int mint(struct node_opts *o)
{
	char as[65] = "";

	if (o->as)
		snprintf(as, sizeof(as), "%s", o->as);
	else
		snprintf(as, sizeof(as), "%.*s", (int)strcspn(o->cfg.auth.admins, ","),
			 o->cfg.auth.admins);
	if (!as[0]) {
		fprintf(stderr, "fanoutctl: no admin to act as: set [auth] admins in the "
				"node's configuration (-c FILE) or pass --as NAME\n");
		return CTL_USAGE;
	}
	if (!o->cfg.auth.jwt_secret[0]) {
		fprintf(stderr, "fanoutctl: no secret: set FANOUT_JWT_SECRET or [auth] jwt_secret, "
				"or run as a member of group fanout to read " PACKAGE_SECRETS "\n");
		return CTL_USAGE;
	}
	if (jwt_sign(o->cfg.auth.jwt_secret, as, (int64_t)time(NULL), 60, o->token,
		     sizeof(o->token)) < 0) {
		fprintf(stderr, "fanoutctl: '%s' is not a user name\n", as);
		return CTL_USAGE;
	}
	return CTL_OK;
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	FILE *out = arg;

	return fwrite(p, size, n, out);
}

/* Calls method path on the node; *reply is its JSON. An exit code: 3 when
 * the node cannot be reached, 4 for a 404, 1 for any other refusal (said
 * why). */
static int call(struct node_opts *o, const char *method, const char *path, json_t **reply)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *headers = NULL;
	char url[512], auth[600], *body = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&body, &len);
	long status = 0;
	CURLcode rc;

	*reply = NULL;
	if (curl == NULL || out == NULL) {
		if (out)
			fclose(out);
		free(body);
		curl_easy_cleanup(curl);
		return CTL_FAILED;
	}
	snprintf(url, sizeof(url), "%s%s", o->url, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
	headers = curl_slist_append(headers, auth);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
	if (o->cfg.server.tls_cert[0]) /* a node's own certificate, often self-signed */
		curl_easy_setopt(curl, CURLOPT_CAINFO, o->cfg.server.tls_cert);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	fclose(out);
	if (rc != CURLE_OK) {
		fprintf(stderr, "fanoutctl: %s: %s\n", o->url, curl_easy_strerror(rc));
		free(body);
		return CTL_UNREACHABLE;
	}
	*reply = json_loadb(body ? body : "", len, 0, NULL);
	free(body);
	if (status == 200 && *reply)
		return CTL_OK;
	json_t *err = json_object_get(*reply, "error");
	fprintf(stderr, "fanoutctl: %s %s: %ld %s: %s\n", method, url, status,
		json_string_value(json_object_get(err, "code")) ?: "error",
		json_string_value(json_object_get(err, "message")) ?: "no answer");
	json_decref(*reply);
	*reply = NULL;
	return status == 404 ? CTL_NOT_FOUND : CTL_FAILED;
}

static int print_json(json_t *o)
{
	json_dumpf(o, stdout, JSON_INDENT(2));
	printf("\n");
	json_decref(o);
	return CTL_OK;
}

static double num(json_t *m, const char *name)
{
	return json_number_value(json_object_get(m, name));
}

static void print_latency(json_t *m, const char *label, const char *name)
{
	json_t *h = json_object_get(m, name);

	if (json_integer_value(json_object_get(h, "count")) == 0)
		printf("%-13s none yet\n", label);
	else
		printf("%-13s p50 <= %g ms, p99 <= %g ms (%lld)\n", label,
		       num(h, "p50_seconds") * 1e3, num(h, "p99_seconds") * 1e3,
		       (long long)json_integer_value(json_object_get(h, "count")));
}

static int status(struct node_opts *o)
{
	json_t *r, *m, *build, *load;
	int rc = call(o, "GET", "/api/v1/admin/status", &r);
	long up;

	if (rc != CTL_OK || o->output == CTL_JSON)
		return rc != CTL_OK ? rc : print_json(r);
	m = json_object_get(r, "metrics");
	build = json_object_get(m, "fanout_build_info");
	up = (long)num(m, "fanout_uptime_seconds");
	printf("%-13s %s (%s)\n", "node", json_string_value(json_object_get(r, "node")), o->url);
	printf("%-13s fanout %s, commit %s, %s\n", "version",
	       json_string_value(json_object_get(build, "version")),
	       json_string_value(json_object_get(build, "commit")),
	       json_string_value(json_object_get(build, "dpdk")));
	printf("%-13s %ldd %02ldh %02ldm %02lds\n", "uptime", up / 86400, up / 3600 % 24,
	       up / 60 % 60, up % 60);
	printf("%-13s %.0f (socket edge %.0f, DPDK edge %.0f)\n", "connections",
	       num(m, "fanout_connections") + num(m, "fanout_dpdk_connections"),
	       num(m, "fanout_connections"), num(m, "fanout_dpdk_connections"));
	if (json_object_get(m, "fanout_cluster_ring_share"))
		printf("%-13s %.1f %% of the ring (%.0f members), lease %s\n", "channels",
		       num(m, "fanout_cluster_ring_share") * 100,
		       num(m, "fanout_cluster_ring_members"),
		       num(m, "fanout_cluster_lease_held") ? "held" : "NOT held");
	else
		printf("%-13s all (a node alone)\n", "channels");
	printf("%-13s %s, queue %.0f, %lld committed, %lld failed\n", "persist",
	       num(m, "fanout_persist_connected") ? "connected" : "DISCONNECTED",
	       num(m, "fanout_persist_queue_depth"),
	       (long long)num(m, "fanout_persist_messages_committed_total"),
	       (long long)num(m, "fanout_persist_failed_total"));
	print_latency(m, "commit", "fanout_persist_commit_seconds");
	print_latency(m, "fan-out", "fanout_fanout_seconds");
	printf("%-13s %lld\n", "deliveries", (long long)num(m, "fanout_deliveries_total"));
	load = json_object_get(m, "fanout_dpdk_worker_load");
	for (size_t i = 0; i < json_array_size(load); i++)
		printf("%-13s worker %zu: %.0f %% busy\n", i ? "" : "lcores", i,
		       json_number_value(json_array_get(load, i)) * 100);
	json_decref(r);
	return CTL_OK;
}

static int connections_list(struct node_opts *o)
{
	char path[256], user[100] = "";
	json_t *r, *c;
	size_t i;
	int rc;

	if (o->user)
		snprintf(user, sizeof(user), "&user=%s", o->user);
	snprintf(path, sizeof(path), "/api/v1/admin/connections?limit=%lld&channel=%lld%s",
		 o->limit, o->channel, user);
	rc = call(o, "GET", path, &r);
	if (rc != CTL_OK || o->output == CTL_JSON)
		return rc != CTL_OK ? rc : print_json(r);
	printf("%-16s %-20s %-22s %-20s %-8s %5s %8s\n", "ID", "USER", "PEER", "OPENED", "STATE",
	       "SUBS", "QUEUED");
	json_array_foreach(json_object_get(r, "connections"), i, c)
	{
		printf("%-16lld %-20s %-22s %-20.19s %-8s %5lld %8lld\n",
		       (long long)json_integer_value(json_object_get(c, "id")),
		       json_string_value(json_object_get(c, "user")),
		       json_string_value(json_object_get(c, "peer")),
		       json_string_value(json_object_get(c, "opened")),
		       json_string_value(json_object_get(c, "state")),
		       (long long)json_integer_value(json_object_get(c, "subscriptions")),
		       (long long)json_integer_value(json_object_get(c, "queued_bytes")));
	}
	printf("%lld connection(s)%s\n", (long long)json_integer_value(json_object_get(r, "total")),
	       json_is_true(json_object_get(r, "truncated")) ? ", the list cut at --limit" : "");
	json_decref(r);
	return CTL_OK;
}

static int connections_kill(struct node_opts *o, const char *id)
{
	char path[128], *end;
	json_t *r;
	long long v = strtoll(id, &end, 10);
	int rc;

	if (*end || v <= 0) {
		fprintf(stderr, "fanoutctl: a connection id is a positive number (connections "
				"list shows them)\n");
		return CTL_USAGE;
	}
	snprintf(path, sizeof(path), "/api/v1/admin/connections/%lld", v);
	rc = call(o, "DELETE", path, &r);
	if (rc != CTL_OK || o->output == CTL_JSON)
		return rc != CTL_OK ? rc : print_json(r);
	printf("connection %lld closed (%lld)\n", v,
	       (long long)json_integer_value(json_object_get(r, "code")));
	json_decref(r);
	return CTL_OK;
}

static int channel_info(struct node_opts *o, const char *id)
{
	char path[128], *end;
	json_t *r, *node;
	long long v = strtoll(id, &end, 10);
	int rc;

	if (*end || v <= 0) {
		fprintf(stderr, "fanoutctl: a channel id is a positive number\n");
		return CTL_USAGE;
	}
	snprintf(path, sizeof(path), "/api/v1/admin/channels/%lld", v);
	rc = call(o, "GET", path, &r);
	if (rc != CTL_OK || o->output == CTL_JSON)
		return rc != CTL_OK ? rc : print_json(r);
	node = json_object_get(r, "node");
	printf("channel %lld: %s (%s), created %s\n", v,
	       json_string_value(json_object_get(r, "name")),
	       json_string_value(json_object_get(r, "kind")),
	       json_string_value(json_object_get(r, "created_at")));
	printf("  last seq %lld, owner epoch %lld, %lld members\n",
	       (long long)json_integer_value(json_object_get(r, "last_seq")),
	       (long long)json_integer_value(json_object_get(r, "owner_epoch")),
	       (long long)json_integer_value(json_object_get(r, "members")));
	printf("  on %s: %lld subscribed connections; %s\n",
	       json_string_value(json_object_get(node, "name")),
	       (long long)json_integer_value(json_object_get(node, "subscribers")),
	       json_is_true(json_object_get(node, "owner")) ? "the owner" : "not the owner");
	json_decref(r);
	return CTL_OK;
}

static void node_usage(FILE *out)
{
	fprintf(out, "usage: fanoutctl status [-o table|json]\n"
		     "       fanoutctl connections list [--user NAME] [--channel ID] [--limit N]\n"
		     "       fanoutctl connections kill ID\n"
		     "       fanoutctl channel info ID\n"
		     "  node options: [--node HOST:PORT|URL] [-c FILE] [--as ADMIN]\n"
		     "  The node: --node, FANOUT_NODE, or the configuration's address\n"
		     "  (-c, FANOUT_CONFIG, " PACKAGE_CONFIG "); the secret: FANOUT_JWT_SECRET,\n"
		     "  [auth] jwt_secret or " PACKAGE_SECRETS "; the admin: --as or the first\n"
		     "  of [auth] admins.\n");
}

static int parse(int argc, char **argv, struct node_opts *o)
{
	static const struct option options[] = {
	    {"node", required_argument, NULL, 'n'},    {"config", required_argument, NULL, 'c'},
	    {"as", required_argument, NULL, 'a'},      {"user", required_argument, NULL, 'u'},
	    {"channel", required_argument, NULL, 'C'}, {"limit", required_argument, NULL, 'l'},
	    {"output", required_argument, NULL, 'o'},  {NULL, 0, NULL, 0},
	};
	int opt;

	o->limit = 1000;
	while ((opt = getopt_long(argc, argv, "n:c:a:u:C:l:o:", options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			o->node = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 'a':
			o->as = optarg;
			break;
		case 'u':
			o->user = optarg;
			if (!jwt_subject_valid(optarg))
				return -1;
			break;
		case 'C':
			o->channel = atoll(optarg);
			if (o->channel <= 0)
				return -1;
			break;
		case 'l':
			o->limit = atoll(optarg);
			if (o->limit <= 0 || o->limit > 100000)
				return -1;
			break;
		default:
			if (opt != 'o' || ctl_output_parse(optarg, &o->output) < 0)
				return -1;
		}
	}
	return 0;
}

/* The command once the options are read: rest holds its n arguments. */
static int run(struct node_opts *o, const char *noun, const char *verb, char **rest, int n)
{
	if (strcmp(noun, "status") == 0 && n == 0)
		return status(o);
	if (strcmp(noun, "connections") == 0 && strcmp(verb, "list") == 0 && n == 0)
		return connections_list(o);
	if (strcmp(noun, "connections") == 0 && strcmp(verb, "kill") == 0 && n == 1)
		return connections_kill(o, rest[0]);
	if (strcmp(noun, "channel") == 0 && strcmp(verb, "info") == 0 && n == 1)
		return channel_info(o, rest[0]);
	node_usage(stderr);
	return CTL_USAGE;
}

int ctl_node(int argc, char **argv)
{
	struct node_opts *o = calloc(1, sizeof(*o));
	int skip = strcmp(argv[0], "status") == 0 ? 0 : 1, rc;

	if (o == NULL)
		return CTL_FAILED;
	optind = 1;
	if (argc <= skip || parse(argc - skip, argv + skip, o) < 0) {
		node_usage(stderr);
		free(o);
		return CTL_USAGE;
	}
	rc = ctl_find_config(o->config, &o->cfg);
	if (rc == CTL_OK)
		rc = mint(o);
	if (rc == CTL_OK) {
		node_url(o);
		rc = run(o, argv[0], skip ? argv[1] : "", argv + skip + optind,
			 argc - skip - optind);
	}
	free(o);
	return rc;
}
