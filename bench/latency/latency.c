/* Latency probe for bench/latency/run.py: writes RATE events/s for SECONDS to stdout (the events due
 * every half millisecond in one write), each carrying its send time from CLOCK_MONOTONIC, and reads
 * the pipeline's output lines from stdin on a second thread, stamping each as it arrives.
 * Writes "received p50 p99 p999 max" (ms, events sent in the first WARMUP_MS not counted) to RESULT.
 *
 *   latency RATE SECONDS WARMUP_MS RESULT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t total, received, start_ns, warmup_ns, writer_done_ns;
static int64_t *lat;   /* per received event: latency in ns, or -1 if sent during warm-up */

static void *reader(void *arg) {
    (void)arg;
    static char buf[1 << 20];
    size_t have = 0;
    while (received < total) {
        struct pollfd p = {0, POLLIN, 0};
        int r = poll(&p, 1, 1000);
        if (r == 0) {
            if (writer_done_ns && now_ns() - writer_done_ns > 30000000000LL) break;   /* 30 s after the last write */
            continue;
        }
        ssize_t n = read(0, buf + have, sizeof buf - have);
        if (n <= 0) { if (n < 0 && errno == EINTR) continue; break; }
        int64_t t_now = now_ns();
        have += (size_t)n;
        size_t line = 0;
        for (size_t i = 0; i < have; i++) {
            if (buf[i] != '\n') continue;
            char *m = memmem(buf + line, i - line, "\"t\":", 4);
            if (m && received < total) {
                int64_t t = strtoll(m + 4, NULL, 10);
                lat[received++] = t - start_ns < warmup_ns ? -1 : t_now - t;
            }
            line = i + 1;
        }
        memmove(buf, buf + line, have - line);
        have -= line;
        if (have == sizeof buf) have = 0;   /* a line longer than the buffer: not ours */
    }
    return NULL;
}

static int cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void write_all(const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w < 0) { if (errno == EINTR) continue; perror("latency: write"); exit(1); }
        p += w; n -= (size_t)w;
    }
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: latency RATE SECONDS WARMUP_MS RESULT\n"); return 2; }
    double rate = atof(argv[1]), seconds = atof(argv[2]);
    warmup_ns = (int64_t)(atof(argv[3]) * 1e6);
    total = (int64_t)(rate * seconds);
    lat = calloc((size_t)total + 1, sizeof *lat);
    if (!lat) return 1;
    start_ns = now_ns();
    pthread_t th;
    pthread_create(&th, NULL, reader, NULL);
    static char out[1 << 22];
    int64_t sent = 0;
    while (sent < total) {
        int64_t t = now_ns();
        int64_t due = (int64_t)((double)(t - start_ns) * rate / 1e9) + 1;
        if (due > total) due = total;
        size_t n = 0;
        while (sent < due && n + 200 < sizeof out) {
            n += (size_t)snprintf(out + n, 200, "{\"i\":%lld,\"t\":%lld,\"pad\":\"%s\"}\n", (long long)sent,
                                  (long long)t, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
            sent++;
        }
        if (n) write_all(out, n);
        struct timespec nap = {0, 500000};
        nanosleep(&nap, NULL);
    }
    writer_done_ns = now_ns();
    close(1);
    pthread_join(th, NULL);
    size_t k = 0;
    for (int64_t i = 0; i < received; i++) if (lat[i] >= 0) lat[k++] = lat[i];
    qsort(lat, k, sizeof *lat, cmp);
    FILE *f = fopen(argv[4], "w");
    if (!f) return 1;
    if (k == 0) fprintf(f, "%lld 0 0 0 0\n", (long long)received);
    else {
#define Q(p) (lat[(size_t)((double)(k - 1) * (p))] / 1e6)
        fprintf(f, "%lld %.3f %.3f %.3f %.3f\n", (long long)received, Q(0.5), Q(0.99), Q(0.999), lat[k - 1] / 1e6);
    }
    fclose(f);
    return 0;
}
