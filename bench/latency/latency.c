/* Latency probe for bench/latency/run.py: writes RATE events/s for SECONDS to stdout (the events due
 * every half millisecond in one write), each carrying its send time from CLOCK_MONOTONIC, and reads
 * the pipeline's output lines from stdin on a second thread, stamping each as it arrives.
 * Writes "received p50 p99 p999 max" (ms, events sent in the first WARMUP_MS not counted) to RESULT.
 *
 *   latency RATE SECONDS WARMUP_MS RESULT [BROKERS IN OUT]
 *
 * With BROKERS, the probe is itself the Kafka producer of topic IN (linger.ms=0, each event stamped
 * just before rd_kafka_produce) and the consumer of partition 0 of topic OUT (fetch.wait.max.ms=1,
 * from its high watermark, read before the clock starts), so no pipe or client of another program
 * sits between the stamps and the pipeline's topics.
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
#include <librdkafka/rdkafka.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t total, received, start_ns, warmup_ns, writer_done_ns;
static int64_t *lat;   /* per received event: latency in ns, or -1 if sent during warm-up */
static rd_kafka_t *producer, *consumer;
static rd_kafka_topic_t *out_topic;

/* One received line (without its newline): its latency, stamped at `t_now`. */
static void stamp(const char *line, size_t len, int64_t t_now) {
    char *m = memmem(line, len, "\"t\":", 4);
    if (m && received < total) {
        int64_t t = strtoll(m + 4, NULL, 10);
        lat[received++] = t - start_ns < warmup_ns ? -1 : t_now - t;
    }
}

static void kafka_received(rd_kafka_message_t *m, void *opaque) {
    (void)opaque;
    if (!m->err) stamp(m->payload, m->len, now_ns());
}

static void *kafka_reader(void *arg) {
    (void)arg;
    while (received < total) {
        /* Serves what has been fetched as soon as anything has (consume_batch would wait to fill). */
        int n = rd_kafka_consume_callback(out_topic, 0, 1000, kafka_received, NULL);
        if (n <= 0 && writer_done_ns && now_ns() - writer_done_ns > 30000000000LL) break;
    }
    return NULL;
}

static rd_kafka_t *kafka_client(rd_kafka_type_t type, const char *brokers, const char *key, const char *value) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "latency: %s\n", err); exit(1);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) { fprintf(stderr, "latency: %s\n", err); exit(1); }
    return rk;
}

/* Producer of `in`, and a consumer of `out` partition 0 positioned at its current end. */
static void kafka_open(const char *brokers, const char *out) {
    producer = kafka_client(RD_KAFKA_PRODUCER, brokers, "linger.ms", "0");
    consumer = kafka_client(RD_KAFKA_CONSUMER, brokers, "fetch.wait.max.ms", "1");
    out_topic = rd_kafka_topic_new(consumer, out, NULL);
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(consumer, out, 0, &low, &high, 10000);
    if (e) { fprintf(stderr, "latency: watermarks of %s: %s\n", out, rd_kafka_err2str(e)); exit(1); }
    if (rd_kafka_consume_start(out_topic, 0, high) == -1) {
        fprintf(stderr, "latency: consume %s: %s\n", out, rd_kafka_err2str(rd_kafka_last_error())); exit(1);
    }
}

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
            stamp(buf + line, i - line, t_now);
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
    if (argc != 5 && argc != 8) {
        fprintf(stderr, "usage: latency RATE SECONDS WARMUP_MS RESULT [BROKERS IN OUT]\n"); return 2;
    }
    rd_kafka_topic_t *in_topic = NULL;
    if (argc == 8) {
        kafka_open(argv[5], argv[7]);
        in_topic = rd_kafka_topic_new(producer, argv[6], NULL);
    }
    double rate = atof(argv[1]), seconds = atof(argv[2]);
    warmup_ns = (int64_t)(atof(argv[3]) * 1e6);
    total = (int64_t)(rate * seconds);
    lat = calloc((size_t)total + 1, sizeof *lat);
    if (!lat) return 1;
    start_ns = now_ns();
    pthread_t th;
    pthread_create(&th, NULL, in_topic ? kafka_reader : reader, NULL);
    static char out[1 << 22];
    int64_t sent = 0;
    while (sent < total) {
        int64_t t = now_ns();
        int64_t due = (int64_t)((double)(t - start_ns) * rate / 1e9) + 1;
        if (due > total) due = total;
        size_t n = 0;
        while (sent < due && n + 200 < sizeof out) {
            if (in_topic) t = now_ns();
            int len = snprintf(out + n, 200, "{\"i\":%lld,\"t\":%lld,\"pad\":\"%s\"}\n", (long long)sent,
                               (long long)t, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
            if (in_topic) {
                while (rd_kafka_produce(in_topic, 0, RD_KAFKA_MSG_F_COPY, out + n, (size_t)len - 1, NULL, 0, NULL) == -1)
                    rd_kafka_poll(producer, 1);   /* queue full: serve delivery reports */
            } else n += (size_t)len;
            sent++;
        }
        if (n) write_all(out, n);
        if (in_topic) rd_kafka_poll(producer, 0);
        struct timespec nap = {0, 500000};
        nanosleep(&nap, NULL);
    }
    writer_done_ns = now_ns();
    if (in_topic) rd_kafka_flush(producer, 10000);
    else close(1);
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
