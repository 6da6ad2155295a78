/* The far ends of many calls for benchmarks/media_relay.py: real G.711 RTP from both legs.

   rtp_load SOCKETS SECONDS WARMUP
   prints "PORTS p0 p1 ..." (the UDP ports it bound on 127.0.0.1, one per leg), then reads
   one line "TARGETS t0 t1 ..." (where each leg sends: the server's port for that leg).
   Every leg sends a 172-byte PCMU packet each 20 ms on an absolute schedule, the legs'
   phases spread evenly over the 20 ms; the first 8 payload bytes carry the send time
   (CLOCK_MONOTONIC ns), so the leg that receives it knows the delay the server added.
   After WARMUP seconds it measures for SECONDS more, then waits 300 ms for stragglers and
   prints one JSON line: packets sent and received while measuring, lost (per receiving leg:
   sent by its peer minus received), the added delay p50/p99 and the p99 deviation of the
   arrival interval from 20 ms at the receiving leg.

   Legs 2k and 2k+1 are one call; in conference mode every leg's packets reach every other
   member mixed, so only arrival intervals and counts are meaningful there. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_NS 20000000LL
#define PAYLOAD 160
#define MAX_SAMPLES 4000000

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(int64_t *v, long n, double p) {
    if (n == 0) return 0.0;
    qsort(v, n, sizeof *v, cmp64);
    long i = (long)(p / 100.0 * (n - 1));
    return v[i] / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    int n = atoi(argv[1]);
    double seconds = atof(argv[2]), warmup = atof(argv[3]);
    int *fd = calloc(n, sizeof *fd);
    struct sockaddr_in *to = calloc(n, sizeof *to);
    uint16_t *seq = calloc(n, sizeof *seq);
    long *sent = calloc(n, sizeof *sent), *recvd = calloc(n, sizeof *recvd);
    int64_t *last_arrival = calloc(n, sizeof *last_arrival);
    int64_t *delays = malloc(sizeof(int64_t) * MAX_SAMPLES);
    int64_t *devs = malloc(sizeof(int64_t) * MAX_SAMPLES);
    long ndelays = 0, ndevs = 0;
    int ep = epoll_create1(0);
    printf("PORTS");
    for (int i = 0; i < n; i++) {
        fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int size = 1 << 20;
        setsockopt(fd[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        if (bind(fd[i], (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
        socklen_t len = sizeof a;
        getsockname(fd[i], (struct sockaddr *)&a, &len);
        printf(" %d", ntohs(a.sin_port));
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &ev);
        seq[i] = (uint16_t)(i * 7919);
    }
    printf("\n");
    fflush(stdout);
    char word[32];
    if (scanf("%31s", word) != 1 || strcmp(word, "TARGETS") != 0) return 2;
    for (int i = 0; i < n; i++) {
        int port;
        if (scanf("%d", &port) != 1) return 2;
        to[i].sin_family = AF_INET;
        to[i].sin_port = htons((uint16_t)port);
        to[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    unsigned char packet[12 + PAYLOAD];
    memset(packet, 0xFF, sizeof packet); /* µ-law silence-ish */
    int64_t start = now_ns() + 50000000LL;
    int64_t measure_from = start + (int64_t)(warmup * 1e9);
    int64_t stop_at = measure_from + (int64_t)(seconds * 1e9);
    int64_t drain_until = stop_at + 300000000LL;
    long long tick = 0; /* slot index: n slots per frame */
    unsigned char buf[2048];
    struct epoll_event events[256];
    for (;;) {
        int64_t t = now_ns();
        /* send every leg whose slot has come */
        for (;;) {
            long long frame = tick / n;
            int leg = (int)(tick % n);
            int64_t due = start + frame * FRAME_NS + (FRAME_NS * leg) / n;
            if (due > t || due >= stop_at) break;
            packet[0] = 0x80;
            packet[1] = 0; /* PCMU */
            packet[2] = seq[leg] >> 8;
            packet[3] = seq[leg] & 0xFF;
            uint32_t ts = htonl((uint32_t)(frame * 160));
            memcpy(packet + 4, &ts, 4);
            uint32_t ssrc = htonl(0x5A000000u + (uint32_t)leg);
            memcpy(packet + 8, &ssrc, 4);
            int64_t stamp = now_ns();
            memcpy(packet + 12, &stamp, 8);
            if (sendto(fd[leg], packet, sizeof packet, 0, (struct sockaddr *)&to[leg],
                       sizeof to[leg]) > 0 && due >= measure_from)
                sent[leg]++;
            seq[leg]++;
            tick++;
        }
        if (t >= drain_until) break;
        long long frame = tick / n;
        int leg = (int)(tick % n);
        int64_t next = start + frame * FRAME_NS + (FRAME_NS * leg) / n;
        if (next >= stop_at) next = drain_until;
        int wait_ms = (int)((next - now_ns()) / 1000000LL);
        if (wait_ms < 0) wait_ms = 0;
        int ready = epoll_wait(ep, events, 256, wait_ms);
        for (int e = 0; e < ready; e++) {
            int i = (int)events[e].data.u32;
            for (;;) {
                ssize_t got = recv(fd[i], buf, sizeof buf, 0);
                if (got < 0) break;
                int64_t arrival = now_ns();
                if (got < 12 + 8) continue;
                int64_t stamp;
                memcpy(&stamp, buf + 12, 8);
                if (stamp < measure_from || stamp >= stop_at) {
                    last_arrival[i] = 0;
                    continue;
                }
                recvd[i]++;
                if (ndelays < MAX_SAMPLES) delays[ndelays++] = arrival - stamp;
                if (last_arrival[i] && ndevs < MAX_SAMPLES) {
                    int64_t d = arrival - last_arrival[i] - FRAME_NS;
                    devs[ndevs++] = d < 0 ? -d : d;
                }
                last_arrival[i] = arrival;
            }
        }
    }
    long total_sent = 0, total_recvd = 0, lost = 0;
    for (int i = 0; i < n; i++) {
        total_sent += sent[i];
        total_recvd += recvd[i];
        long peer_sent = sent[i ^ 1];
        if (i ^ 1 < n && peer_sent > recvd[i]) lost += peer_sent - recvd[i];
    }
    printf("{\"sent\": %ld, \"received\": %ld, \"lost\": %ld, \"delay_p50_ms\": %.3f, "
           "\"delay_p99_ms\": %.3f, \"interval_dev_p99_ms\": %.3f, \"interval_dev_p50_ms\": %.3f}\n",
           total_sent, total_recvd, lost, pct(delays, ndelays, 50), pct(delays, ndelays, 99),
           pct(devs, ndevs, 99), pct(devs, ndevs, 50));
    return 0;
}
