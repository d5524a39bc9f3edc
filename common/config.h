/* SPDX-License-Identifier: BSD-3-Clause */
/* Configuration: one INI file (inih) with the sections [server], [postgres],
 * [persist], [dataplane], [auth], [cluster] and [log]. Unknown sections or keys and
 * malformed values are errors reported as "file:line: reason". Secrets and the
 * database DSN may come from the environment instead (FANOUT_PG_DSN,
 * FANOUT_JWT_SECRET, FANOUT_CLUSTER_SECRET), which wins over the file. docs/operations.md lists
 * every key. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

enum dataplane_mode {
	DATAPLANE_MODE_SOCKET = 0,
	DATAPLANE_MODE_DPDK,
};

/* How the DPDK edge hands frames to its port (docs/dataplane.md). */
enum zero_copy {
	ZERO_COPY_AUTO = 0, /* all on ports that copy from virtual addresses, else pooled */
	ZERO_COPY_ALL,	    /* every frame by reference (software ports only) */
	ZERO_COPY_POOLED,   /* frames in DPDK memory by reference, the rest copied */
	ZERO_COPY_OFF,	    /* every byte copied into the packet */
};

/* Whether the DPDK edge leaves IPv4 and TCP checksums to its port. */
enum offload {
	OFFLOAD_AUTO = 0, /* when the port has it and is hardware (software ports
			     compute them the same way, and DPDK's tap driver
			     gets chained packets wrong) */
	OFFLOAD_ON,	  /* whenever the port has it */
	OFFLOAD_OFF,
};

struct config_server {
	char listen_address[64];
	int port;
	int service_threads;
	char web_root[512];
	char tls_cert[512];
	char tls_key[512];
	int heartbeat_ms;      /* clients ping at least this often; 2x silence closes */
	int api_timeout_ms;    /* an API call unanswered this long gets 503 timeout */
	int http_idle_ms;      /* an HTTP connection silent mid-request or between requests */
	int max_connections;   /* websocket connections at once on the socket edge; 0: no cap */
	int max_message_bytes; /* inbound websocket message limit (close 1009) */
	int send_queue_bytes;  /* per connection, before it is lagged */
	int publish_rate;      /* publishes per second per connection */
	int publish_burst;
	int max_text_bytes;	       /* one message's text */
	int broad_mention_interval_ms; /* @channel/@here: one per user and channel per
					  this (per node); 0 unlimited, -1 refused */
	int presence_grace_ms;	       /* offline only after this long with no connection */
	int presence_interval_ms;      /* at most one presence change per user per interval */
};

struct config_postgres {
	char dsn[1024];
	char read_dsn[1024];	  /* standbys for history pages; "": read on the primary */
	bool allow_unsafe_commit; /* start even if commits are not flushed to disk */
	int reader_threads;
	int reconnect_max_ms;
};

struct config_persist {
	int writers;		 /* writer lanes: connections, threads */
	int batch_max;		 /* messages per transaction, at most */
	int batch_window_us;	 /* wait this long for a batch to fill; 0: never wait */
	int queue_max;		 /* publishes waiting for the writer before -EAGAIN */
	int dedup_cache;	 /* recent client_msg_ids remembered in memory */
	int channel_heads;	 /* channel heads held in memory, about; 0: no bound */
	int copy_min_rows;	 /* a batch of this many rows or more goes by COPY; 0: never */
	bool on_service_threads; /* the socket edge's loops drive the lanes (writer.h) */
};

struct config_dataplane {
	enum dataplane_mode mode;
	int workers;
	int idle_sleep_us;
	char eal_args[512];
	int eal_memory_mb;
	int channels; /* capacity of the channel -> workers table */
	/* mode = dpdk: the port, our address on it, and the websocket port */
	char port[64];	     /* a DPDK device name: a PCI address or a vdev's name */
	char address[32];    /* a.b.c.d/len */
	char gateway[16];    /* a.b.c.d, or empty: on-link peers only */
	int listen_port;     /* TCP port of the websocket upgrade */
	int max_connections; /* per worker lcore */
	int upgrade_slots;   /* upgrade requests parsed at once, per worker lcore */
	enum zero_copy zero_copy;
	int frame_memory_mb; /* DPDK memory for frames when frames are pooled */
	int copy_below;	     /* bytes of a frame in a packet copied, not chained, below this */
	enum offload checksum_offload; /* IPv4 and TCP checksums by the port */
};

struct config_auth {
	char jwt_secret[256];
	int token_ttl_s;
	char admins[512]; /* user names that may use the operator's API, "a,b" */
};

/* [cluster]: empty etcd means a node alone (docs/cluster.md). */
struct config_cluster {
	char etcd[512];	     /* etcd endpoints, comma-separated http://host:port */
	char name[64];	     /* this node's id in the cluster, unique */
	char cluster[64];    /* the cluster's name: its keys live under /fanout/<cluster>/ */
	char peer[64];	     /* host:port the peer link listens on */
	char advertise[64];  /* host:port the others dial (a NAT, a proxy); empty: peer */
	char admin[96];	     /* host:port of this node's HTTP API, for fanoutctl */
	char secret[256];    /* the peer link's shared secret (FANOUT_CLUSTER_SECRET) */
	int lease_ttl_s;     /* the membership lease's TTL */
	int lease_margin_ms; /* stop acknowledging this long before the lease may expire */
	int vnodes;	     /* ring points per member */
};

struct config_log {
	enum log_level level;
	enum log_format format;
};

struct config {
	struct config_server server;
	struct config_postgres postgres;
	struct config_persist persist;
	struct config_dataplane dataplane;
	struct config_auth auth;
	struct config_cluster cluster;
	struct config_log log;
};

/* Fills cfg with the built-in defaults (a single node on 127.0.0.1:8080). */
void config_defaults(struct config *cfg);

/* Loads path over the current contents of cfg, then applies the environment.
 * Returns 0; -ENOENT/-EACCES when the file cannot be opened; -EINVAL for a
 * syntax error, unknown section or key, or bad value. On error every mistake
 * of the file is written to err (err_size bytes), each as "path:line: reason",
 * separated by newlines, as many as fit. */
int config_load(struct config *cfg, const char *path, char *err, size_t err_size);

/* Applies FANOUT_PG_DSN, FANOUT_JWT_SECRET and FANOUT_CLUSTER_SECRET when set. Returns 0 or -EINVAL
 * (value too long, message in err). */
int config_apply_env(struct config *cfg, char *err, size_t err_size);

/* Whether name is one of list's comma-separated names (exactly, case
 * included: a token's subject is the user's identity). */
bool config_name_listed(const char *list, const char *name);

/* Calls each(arg, section, key) for every key whose value differs between a
 * and b, in the table's order; returns how many (a reload's report). */
int config_diff(const struct config *a, const struct config *b,
		void (*each)(void *arg, const char *section, const char *key), void *arg);
