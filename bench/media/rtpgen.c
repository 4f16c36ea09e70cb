/*
 * rtpgen: the RTP load generator of bench/media_relay.py (G.711-sized calls on 127.0.0.1).
 *
 * Why C: a relay at 1,000 calls forwards 100,000 packets/s; a Python generator would need
 * more CPU than the relay it measures. This one sends with one sendto per packet and reads
 * with recvmmsg, and the kernel's receive timestamps (SO_TIMESTAMPNS) time the arrival,
 * so its own scheduling delays do not count as relay latency.
 *
 * Usage: rtpgen CALLS SECONDS PPS PT_A PT_B
 *   Opens 2*CALLS UDP sockets on 127.0.0.1 (socket 2i = call i's phone A, 2i+1 = phone B),
 *   prints their ports on one line, then reads 2*CALLS destination ports from stdin (where
 *   each socket sends to). Every socket sends PPS packets/s (172 bytes: RTP header +
 *   160 bytes of payload) for SECONDS, the sends of all sockets spread evenly over each
 *   period; then it drains for 1 s and prints one JSON line of results.
 *
 * The payload carries the sender's sequence number and send time (CLOCK_REALTIME ns) as
 * 96 bits, one bit per byte in the byte's top bit: a large positive (bit 1) or negative
 * (bit 0) G.711 sample. The sign survives PCMA<->PCMU transcoding, so the same decoding
 * works through a transcoder. A-law and mu-law both put the sign of positive samples in
 * the top bit.
 *
 * Figures: latency = kernel receive time - send time; jitter D = |transit(i) -
 * transit(i-1)| for consecutive packets of a flow (RFC 3550's D, so the sender's own
 * irregularity cancels out); lag = how late the generator sent against its schedule.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD 160
#define PACKET (12 + PAYLOAD)
#define BITS 96
#define HIST_US 2000000 /* histograms in 1 us buckets up to 2 s */
#define BATCH 32
#define DRAIN_NS 1000000000LL

/* Large G.711 samples: +/- ~8000 in A-law and mu-law. Top bit = sign (1: positive). */
static const uint8_t ALAW_POS = 0x8A, ALAW_NEG = 0x0A, ULAW_POS = 0xA0, ULAW_NEG = 0x20;

typedef struct {
    int fd;
    uint16_t seq;
    uint32_t ts, ssrc, gen_seq;
    uint8_t pt, pos, neg;
    struct sockaddr_in dst;
    /* receive side: the stream this socket gets from its partner through the target */
    uint64_t received;
    uint32_t last_seq;
    int64_t last_transit;
    int have_last;
} flow_t;

static uint32_t *hist_lat, *hist_jit, *hist_lag;
static uint64_t n_lat, n_jit, n_lag, bad, reordered;
static int64_t max_lat;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void record(uint32_t *hist, uint64_t *n, int64_t ns) {
    int64_t us = ns / 1000;
    if (us < 0) us = 0;
    if (us > HIST_US) us = HIST_US;
    hist[us]++;
    (*n)++;
}

static long pct(const uint32_t *hist, uint64_t n, double p) {
    if (n == 0) return -1;
    uint64_t want = (uint64_t)(p * (double)n), seen = 0;
    if (want >= n) want = n - 1;
    for (long i = 0; i <= HIST_US; i++) {
        seen += hist[i];
        if (seen > want) return i;
    }
    return HIST_US;
}

static void build(flow_t *f, uint8_t *buf, int64_t send_ns) {
    buf[0] = 0x80;
    buf[1] = f->pt;
    buf[2] = f->seq >> 8;
    buf[3] = f->seq & 0xFF;
    for (int i = 0; i < 4; i++) buf[4 + i] = (f->ts >> (24 - 8 * i)) & 0xFF;
    for (int i = 0; i < 4; i++) buf[8 + i] = (f->ssrc >> (24 - 8 * i)) & 0xFF;
    uint8_t *p = buf + 12;
    uint64_t t = (uint64_t)send_ns;
    for (int i = 0; i < 32; i++) p[i] = ((f->gen_seq >> (31 - i)) & 1) ? f->pos : f->neg;
    for (int i = 0; i < 64; i++) p[32 + i] = ((t >> (63 - i)) & 1) ? f->pos : f->neg;
    for (int i = BITS; i < PAYLOAD; i++) p[i] = (i & 1) ? f->pos : f->neg;
}

static void receive(flow_t *f, const uint8_t *buf, ssize_t len, int64_t rx_ns) {
    if (len < PACKET) {
        bad++;
        return;
    }
    const uint8_t *p = buf + 12;
    uint32_t seq = 0;
    uint64_t t = 0;
    for (int i = 0; i < 32; i++) seq = (seq << 1) | (p[i] >> 7);
    for (int i = 0; i < 64; i++) t = (t << 1) | (p[32 + i] >> 7);
    int64_t transit = rx_ns - (int64_t)t;
    if (transit < 0 || transit > 10000000000LL) {
        bad++;
        return;
    }
    f->received++;
    record(hist_lat, &n_lat, transit);
    if (transit > max_lat) max_lat = transit;
    if (f->have_last && seq == f->last_seq + 1) {
        int64_t d = transit - f->last_transit;
        record(hist_jit, &n_jit, d < 0 ? -d : d);
    } else if (f->have_last && seq <= f->last_seq) {
        reordered++;
    }
    if (!f->have_last || seq > f->last_seq) {
        f->last_seq = seq;
        f->last_transit = transit;
        f->have_last = 1;
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: rtpgen CALLS SECONDS PPS PT_A PT_B\n");
        return 2;
    }
    int calls = atoi(argv[1]);
    double seconds = atof(argv[2]);
    int pps = atoi(argv[3]);
    int pt_a = atoi(argv[4]), pt_b = atoi(argv[5]);
    if (calls <= 0 || seconds <= 0 || pps <= 0 || pt_a < 0 || pt_a > 127 || pt_b < 0 ||
        pt_b > 127) {
        fprintf(stderr, "rtpgen: bad arguments\n");
        return 2;
    }
    int n = 2 * calls;
    flow_t *flows = calloc(n, sizeof(flow_t));
    hist_lat = calloc(HIST_US + 1, sizeof(uint32_t));
    hist_jit = calloc(HIST_US + 1, sizeof(uint32_t));
    hist_lag = calloc(HIST_US + 1, sizeof(uint32_t));
    if (!flows || !hist_lat || !hist_jit || !hist_lag) {
        fprintf(stderr, "rtpgen: out of memory\n");
        return 1;
    }
    int ep = epoll_create1(0);
    srand((unsigned)now_ns());
    for (int i = 0; i < n; i++) {
        flow_t *f = &flows[i];
        f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (f->fd < 0) {
            perror("rtpgen: socket");
            return 1;
        }
        int on = 1, buf = 256 * 1024;
        setsockopt(f->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
        setsockopt(f->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(f->fd, (struct sockaddr *)&a, sizeof a) < 0) {
            perror("rtpgen: bind");
            return 1;
        }
        int side_b = i & 1;
        f->pt = side_b ? pt_b : pt_a;
        int ulaw = f->pt == 0;
        f->pos = ulaw ? ULAW_POS : ALAW_POS;
        f->neg = ulaw ? ULAW_NEG : ALAW_NEG;
        f->seq = rand() & 0xFFFF;
        f->ts = (uint32_t)rand();
        f->ssrc = (uint32_t)rand() ^ ((uint32_t)i << 16);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, f->fd, &ev);
    }
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a;
        socklen_t l = sizeof a;
        getsockname(flows[i].fd, (struct sockaddr *)&a, &l);
        printf("%s%d", i ? " " : "", ntohs(a.sin_port));
    }
    printf("\n");
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        int port;
        if (scanf("%d", &port) != 1 || port <= 0 || port > 65535) {
            fprintf(stderr, "rtpgen: expected %d destination ports on stdin\n", n);
            return 2;
        }
        flows[i].dst.sin_family = AF_INET;
        flows[i].dst.sin_port = htons(port);
        flows[i].dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }

    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    uint8_t bufs[BATCH][1500];
    char ctrl[BATCH][64];
    struct epoll_event evs[1024];
    uint8_t out[PACKET];
    int64_t period = 1000000000LL / pps;
    int64_t start = now_ns() + 50000000LL;
    int64_t end_send = start + (int64_t)(seconds * 1e9);
    int64_t round_ = 0;
    int slot = 0;
    int64_t next_due = start;
    uint64_t sent = 0, send_errors = 0;
    for (;;) {
        int64_t t = now_ns();
        int burst = 0;
        while (next_due < end_send && t >= next_due) {
            flow_t *f = &flows[slot];
            int64_t s = now_ns();
            build(f, out, s);
            if (sendto(f->fd, out, PACKET, 0, (struct sockaddr *)&f->dst, sizeof f->dst) == PACKET)
                sent++;
            else
                send_errors++;
            record(hist_lag, &n_lag, s - next_due);
            f->seq++;
            f->ts += 8000 / pps;
            f->gen_seq++;
            if (++slot == n) {
                slot = 0;
                round_++;
            }
            next_due = start + round_ * period + (period * slot) / n;
            if (++burst == 64) break; /* read too, even when behind */
        }
        if (t >= end_send + DRAIN_NS) break;
        int64_t wait = (next_due < end_send ? next_due : end_send + DRAIN_NS) - now_ns();
        int timeout = wait <= 0 ? 0 : (int)((wait + 999999) / 1000000);
        int ready = epoll_wait(ep, evs, 1024, burst == 64 ? 0 : timeout);
        for (int e = 0; e < ready; e++) {
            flow_t *f = &flows[evs[e].data.u32];
            for (;;) {
                for (int k = 0; k < BATCH; k++) {
                    iovs[k].iov_base = bufs[k];
                    iovs[k].iov_len = sizeof bufs[k];
                    memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
                    msgs[k].msg_hdr.msg_iov = &iovs[k];
                    msgs[k].msg_hdr.msg_iovlen = 1;
                    msgs[k].msg_hdr.msg_control = ctrl[k];
                    msgs[k].msg_hdr.msg_controllen = sizeof ctrl[k];
                }
                int got = recvmmsg(f->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
                if (got <= 0) break;
                int64_t fallback = now_ns();
                for (int k = 0; k < got; k++) {
                    int64_t rx = fallback;
                    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[k].msg_hdr); c;
                         c = CMSG_NXTHDR(&msgs[k].msg_hdr, c)) {
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
                            struct timespec ts;
                            memcpy(&ts, CMSG_DATA(c), sizeof ts);
                            rx = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
                        }
                    }
                    receive(f, bufs[k], msgs[k].msg_len, rx);
                }
                if (got < BATCH) break;
            }
        }
    }
    uint64_t received = 0;
    for (int i = 0; i < n; i++) received += flows[i].received;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
                 ru.ru_stime.tv_usec / 1e6;
    printf("{\"sockets\": %d, \"sent\": %llu, \"send_errors\": %llu, \"received\": %llu, "
           "\"bad\": %llu, \"reordered\": %llu, \"lat_p50_us\": %ld, \"lat_p99_us\": %ld, "
           "\"lat_max_us\": %lld, \"jit_p50_us\": %ld, \"jit_p99_us\": %ld, "
           "\"lag_p50_us\": %ld, \"lag_p99_us\": %ld, \"cpu_s\": %.3f}\n",
           n, (unsigned long long)sent, (unsigned long long)send_errors,
           (unsigned long long)received, (unsigned long long)bad, (unsigned long long)reordered,
           pct(hist_lat, n_lat, 0.5), pct(hist_lat, n_lat, 0.99), (long long)(max_lat / 1000),
           pct(hist_jit, n_jit, 0.5), pct(hist_jit, n_jit, 0.99), pct(hist_lag, n_lag, 0.5),
           pct(hist_lag, n_lag, 0.99), cpu);
    return 0;
}
