/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer harness: the DPDK edge's input path, Ethernet to TCP. The input
 * is a series of records: 2 bytes of length, 1 byte of time step, then a
 * frame. Frames that carry IPv4 to us get a valid IP and TCP checksum (so
 * the fuzzer reaches TCP; an ACK field whose top byte is 0xAA becomes the
 * last sequence number we sent plus its low 16 bits, so that handshakes
 * complete without guessing our ISS), go through net_rx, and TCP segments through
 * tcp_parse and tcp_input; the application echoes, closes and aborts on
 * data, and the clock, flushes and timers run between records. No input may
 * crash the engine or lose a chunk: once the clock has run out, every chunk
 * queued was released (acknowledged, or its connection ended). */
#include "net.h"
#include "tcp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUR_IP 0x0a000001u

static struct tcp_engine *E;
static long outstanding; /* chunks queued and not yet released */
static const uint8_t REPLY[3000];
static uint32_t last_seq; /* of the last segment we sent */

static void output(void *ctx, const struct tcp_out *o)
{
	uint8_t hdr[64];
	uint32_t sum;

	if (tcp_out_header(o, hdr, &sum) > sizeof(hdr))
		abort();
	last_seq = o->seq;
}

static bool on_accept(void *ctx, struct tcp_conn *c)
{
	return true;
}

static void on_data(void *ctx, struct tcp_conn *c, void *app, const uint8_t *d, uint32_t n)
{
	switch (d[0] % 4) {
	case 0:
		if (tcp_send(E, c, REPLY, n < sizeof(REPLY) ? n : sizeof(REPLY), (void *)REPLY) ==
		    0)
			outstanding++;
		break;
	case 1:
		tcp_close(E, c);
		break;
	case 2:
		tcp_abort(E, c);
		break;
	default:
		break;
	}
}

static void on_peer_fin(void *ctx, struct tcp_conn *c, void *app)
{
	tcp_close(E, c);
}

static void on_closed(void *ctx, struct tcp_conn *c, void *app, enum tcp_close_reason why)
{
}

static void on_release(void *ctx, void *ref)
{
	outstanding--;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
	struct tcp_callbacks cb = {NULL,	output,	   on_accept, on_data,
				   on_peer_fin, on_closed, on_release};
	struct tcp_config cfg;
	struct net n;
	uint64_t now = 1000000;
	uint8_t frame[2048];

	tcp_config_defaults(&cfg);
	cfg.max_conns = 8;
	cfg.max_half_open = 2;
	cfg.sndq_chunks = 4;
	E = tcp_engine_create(&cfg, &cb);
	tcp_listen(E, 80);
	net_init(&n, mac, OUR_IP, 0xffffff00u, 0, 16);
	outstanding = 0;
	while (size >= 3) {
		size_t len = (size_t)(data[0] << 8 | data[1]) % sizeof(frame);
		struct net_rx_info info;
		struct tcp_seg seg;

		now += (uint64_t)data[2] * data[2] * 1000;
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		memcpy(frame, data, len);
		data += len;
		size -= len;
		/* make IPv4 to us checksum-valid so the search reaches TCP */
		if (len >= 54 && frame[12] == 8 && frame[13] == 0 && (frame[14] >> 4) == 4 &&
		    (frame[14] & 15) == 5) {
			uint16_t total = (uint16_t)(len - 14);
			frame[16] = (uint8_t)(total >> 8);
			frame[17] = (uint8_t)total;
			frame[20] &= 0x80; /* not a fragment */
			frame[21] = 0;
			frame[24] = frame[25] = 0;
			uint16_t s = csum_fold(csum_partial(frame + 14, 20, 0));
			frame[24] = (uint8_t)(s >> 8);
			frame[25] = (uint8_t)s;
			if (frame[23] == 6 && frame[42] == 0xaa) {
				uint32_t ack = last_seq + (uint32_t)(frame[44] << 8 | frame[45]);
				frame[42] = (uint8_t)(ack >> 24);
				frame[43] = (uint8_t)(ack >> 16);
				frame[44] = (uint8_t)(ack >> 8);
				frame[45] = (uint8_t)ack;
			}
			if (frame[23] == 6) {
				uint32_t src = (uint32_t)frame[26] << 24 | frame[27] << 16 |
					       frame[28] << 8 | frame[29];
				uint32_t dst = (uint32_t)frame[30] << 24 | frame[31] << 16 |
					       frame[32] << 8 | frame[33];
				frame[50] = frame[51] = 0;
				s = csum_fold(csum_partial(frame + 34, total - 20u,
							   csum_pseudo(src, dst, 6, total - 20)));
				frame[50] = (uint8_t)(s >> 8);
				frame[51] = (uint8_t)s;
			}
		}
		if (net_rx(&n, frame, len, now, &info) == NET_TCP &&
		    tcp_parse(info.tcp, info.tcp_len, info.saddr, info.daddr, &seg) == 0)
			tcp_input(E, &seg, now);
		tcp_flush(E, now);
		tcp_timers(E, now);
	}
	/* run the clock out: half-open entries expire, and data nobody
	 * acknowledges times out with its connection (idle established
	 * connections stay: there is no keepalive) */
	for (uint32_t i = 0; i < cfg.max_retries + 4; i++) /* a timer fires once per step */
		tcp_timers(E, now += 300ull * 1000000);
	struct tcp_stats st;
	tcp_engine_stats(E, &st);
	if (st.conns > cfg.max_conns || st.half_open != 0 || outstanding != 0)
		abort();
	tcp_engine_destroy(E);
	net_fini(&n);
	return 0;
}
