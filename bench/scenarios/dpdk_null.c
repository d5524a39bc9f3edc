/* SPDX-License-Identifier: BSD-3-Clause */
/* fanout-bench dpdk-null: deliveries per second of one DPDK worker lcore,
 * the DPDK edge's whole send path (frame to TCP send queue by reference,
 * segment, header mbuf per recipient chained to the shared frame, checksum
 * from the frame's sum, tx burst) into DPDK's net_null port, which drops
 * what it is given. N connections made by synthetic handshakes, then
 * messages fanned out to all of them, for each payload size and each way of
 * handing frames to the port (--zero-copy: all, by reference from the heap;
 * pooled, by reference from DPDK memory, as on a PCI NIC; off, copied);
 * printed beside the line rate of 10 and 25 GbE for the same frames (one
 * message per segment: every segment is a whole Ethernet frame on the
 * wire). */
#include "bench.h"
#include "dpdk_edge.h"
#include "fanout.h"
#include "load.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes on the wire per message: the websocket frame in a TCP segment with
 * timestamps, IPv4, Ethernet, FCS, preamble and inter-frame gap. */
static double wire_bytes(unsigned payload)
{
	unsigned ws = payload + (payload < 126 ? 2 : payload < 65536 ? 4 : 10);
	unsigned frame = 14 + 20 + 32 + ws + 4;

	return (frame < 64 ? 64 : frame) + 8 + 12;
}

int bench_dpdk_null(int argc, char **argv)
{
	static const struct option options[] = {
	    {"connections", required_argument, NULL, 'n'},
	    {"messages", required_argument, NULL, 'm'},
	    {"payload", required_argument, NULL, 'p'},
	    {"ack-every", required_argument, NULL, 'a'},
	    {"json", required_argument, NULL, 'j'},
	    {"zero-copy", required_argument, NULL, 'z'},
	    {"copy-below", required_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const mode_names[] = {"auto", "all", "pooled", "off"};
	unsigned connections = 1000, messages = 2000, ack_every = 8, payloads[8], npayloads = 0;
	enum zero_copy modes[4];
	unsigned nmodes = 0;
	int copy_below = 512; /* fanoutd's default */
	const char *json_path = NULL;
	json_t *runs = json_array();
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			connections = (unsigned)atoi(optarg);
			break;
		case 'm':
			messages = (unsigned)atoi(optarg);
			break;
		case 'p':
			if (npayloads < 8)
				payloads[npayloads++] = (unsigned)atoi(optarg);
			break;
		case 'a':
			ack_every = (unsigned)atoi(optarg);
			break;
		case 'j':
			json_path = optarg;
			break;
		case 'c':
			copy_below = atoi(optarg);
			break;
		case 'z':
			for (int m = 1; m < 4; m++)
				if (strcmp(optarg, mode_names[m]) == 0 && nmodes < 4)
					modes[nmodes++] = (enum zero_copy)m;
			if (nmodes == 0 || strcmp(optarg, mode_names[modes[nmodes - 1]]) != 0)
				connections = 0;
			break;
		default:
			connections = 0;
		}
	}
	if (npayloads == 0) {
		payloads[npayloads++] = 64;
		payloads[npayloads++] = 1024;
	}
	if (nmodes == 0) {
		modes[nmodes++] = ZERO_COPY_ALL;
		modes[nmodes++] = ZERO_COPY_POOLED;
		modes[nmodes++] = ZERO_COPY_OFF;
	}
	if (copy_below < 0 || copy_below > 65536 || connections < 1 || connections > 1000000 ||
	    messages < 1 || ack_every < 1 || ack_every > 32) {
		fprintf(stderr, "usage: fanout-bench dpdk-null [--connections N] [--messages N] "
				"[--payload BYTES]... [--ack-every 1..32] "
				"[--zero-copy all|pooled|off]... [--copy-below BYTES] "
				"[--json FILE]\n");
		return 2;
	}
	/* One lcore, no hugepages, one of DPDK's null ports per run (a run
	 * closes its port): no NIC and no root. */
	char eal[512];
	int n = snprintf(eal, sizeof(eal), "--no-huge --no-pci --no-shconf -m 1024");
	for (unsigned k = 0; k < npayloads * nmodes; k++)
		n += snprintf(eal + n, sizeof(eal) - (size_t)n, " --vdev=net_null%u,no-rx=1", k);
	if (fanout_eal_init_dpdk(0, 1024, eal) < 0)
		return 1;
	printf("fanout-bench dpdk-null: %u connections, %u messages each, acknowledged every %u, "
	       "frames under %d bytes copied, one worker lcore into net_null\n",
	       connections, messages, ack_every, copy_below);
	size_t slot_bytes = 0;

	printf("%8s %7s %14s %12s %10s %16s %16s\n", "payload", "send", "deliveries/s", "packets/s",
	       "seconds", "10GbE ceiling/s", "25GbE ceiling/s");
	for (unsigned k = 0; k < npayloads * nmodes; k++) {
		unsigned payload = payloads[k / nmodes];
		enum zero_copy mode = modes[k % nmodes];
		struct dpdk_null_bench b = {.connections = connections,
					    .payload = payload,
					    .messages = messages,
					    .ack_every = ack_every,
					    .zero_copy = mode,
					    .copy_below = (uint32_t)copy_below};
		double rate, c10 = 10e9 / 8 / wire_bytes(payload),
			     c25 = 25e9 / 8 / wire_bytes(payload);
		char port[24];

		snprintf(port, sizeof(port), "net_null%u", k);
		if (dpdk_edge_bench_null(port, &b) < 0) {
			fprintf(stderr, "fanout-bench: the net_null run failed\n");
			return 1;
		}
		rate = (double)b.deliveries / b.seconds;
		printf("%8u %7s %14.0f %12.0f %10.2f %16.0f %16.0f\n", payload, mode_names[mode],
		       rate, (double)b.tx_packets / b.seconds, b.seconds, c10, c25);
		slot_bytes = b.conn_slot_bytes;
		if (k == 0)
			printf("per connection: %zu bytes of TCP state and edge slot, allocated "
			       "at start; a %zu-byte send queue while sending\n",
			       b.conn_slot_bytes, b.queue_bytes);
		json_array_append_new(
		    runs,
		    json_pack("{s:i, s:s, s:s, s:f, s:f, s:I, s:I, s:I, s:I, s:f, s:f}", "payload",
			      payload, "zero_copy", mode_names[mode], "send", b.send_mode,
			      "deliveries_per_s", rate, "seconds", b.seconds, "deliveries",
			      (json_int_t)b.deliveries, "tx_dropped", (json_int_t)b.tx_dropped,
			      "bytes_by_reference", (json_int_t)b.tx_by_ref, "bytes_copied",
			      (json_int_t)b.tx_copied, "line_rate_10gbe_per_s", c10,
			      "line_rate_25gbe_per_s", c25));
		if (b.tx_dropped)
			printf("  (%lu segments not taken by the port)\n",
			       (unsigned long)b.tx_dropped);
	}
	load_write_json(json_path,
			json_pack("{s:s, s:i, s:i, s:i, s:i, s:I, s:o}", "scenario", "dpdk-null",
				  "connections", connections, "messages", messages, "ack_every",
				  ack_every, "copy_below", copy_below, "conn_slot_bytes",
				  (json_int_t)slot_bytes, "runs", runs));
	return 0;
}
