/* tests/test.h - a small test harness: one program per file, one line per case
 *
 * Each case prints "ok - NAME" or "not ok - NAME" (with "# ..." diagnostics
 * before it); tests/run.sh counts those lines.  A program exits non-zero when
 * any case failed.  Integration tests reach the broker at $TS_BROKERS and scale
 * every timeout by $TS_TIMEOUT_SCALE (never tuned per machine).
 */
#ifndef TS_TEST_H
#define TS_TEST_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "afile.h"

static int t_case_failed __attribute__((unused));
static int t_any_failed __attribute__((unused));

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		t_case_failed = 1; \
		printf("# %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		fflush(stdout); \
	} \
} while (0)

/* CHECK, and leave the current case (a function returning void) on failure. */
#define REQUIRE(cond, ...) do { \
	CHECK(cond, __VA_ARGS__); \
	if (!(cond)) return; \
} while (0)

#define RUN(fn) do { \
	t_case_failed = 0; \
	fn(); \
	printf("%s - %s\n", t_case_failed ? "not ok" : "ok", #fn); \
	fflush(stdout); \
	t_any_failed |= t_case_failed; \
} while (0)

#define TEST_EXIT() return t_any_failed ? 1 : 0

static inline void t_note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

static inline const char *t_brokers(void)
{
	const char *b = getenv("TS_BROKERS");
	return b && *b ? b : "127.0.0.1:9092";
}

/* A timeout in ms scaled by $TS_TIMEOUT_SCALE (default 1). */
static inline int t_timeout_ms(int base_ms)
{
	const char *s = getenv("TS_TIMEOUT_SCALE");
	double k = s && *s ? atof(s) : 1.0;
	if (k < 1.0)
		k = 1.0;
	return (int)(base_ms * k);
}

static inline int64_t t_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A topic name nobody else uses: "t-PREFIX-PID-RANDOM". */
static inline void t_topic_name(char *out, size_t size, const char *prefix)
{
	static unsigned seq;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, size, "t-%s-%d-%lx%u", prefix, (int)getpid(),
	         (unsigned long)(ts.tv_nsec ^ ts.tv_sec), seq++);
}

/* Creates a topic with the Admin API and topic configs (NAME, VALUE pairs,
 * nconfigs of them); returns 0 or -1 (with a note). */
static inline int t_create_topic_with(const char *topic, int partitions,
                                      const char *const *configs, int nconfigs)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", t_brokers(), err, sizeof(err))) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		t_note("rd_kafka_new: %s", err);
		return -1;
	}
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
	for (int i = 0; i < nconfigs; i++)
		rd_kafka_NewTopic_set_config(nt, configs[2 * i], configs[2 * i + 1]);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	int rc = -1;
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, t_timeout_ms(30000));
	if (ev) {
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t n = 0;
		const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
		if (rd_kafka_event_error(ev))
			t_note("create topic '%s': %s", topic, rd_kafka_event_error_string(ev));
		else if (n == 1 && (rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_NO_ERROR ||
		                    rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS))
			rc = 0;
		else if (n == 1)
			t_note("create topic '%s': %s", topic, rd_kafka_topic_result_error_string(tr[0]));
		rd_kafka_event_destroy(ev);
	} else {
		t_note("create topic '%s': timed out", topic);
	}
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_destroy(rk);
	return rc;
}

/* Creates a topic with the broker's default configs. */
static inline int t_create_topic(const char *topic, int partitions)
{
	return t_create_topic_with(topic, partitions, NULL, 0);
}

/* A file of the source tree ($TS_TOP, else the current directory), with a
 * NUL after its len bytes; NULL when it cannot be read.  Caller frees. */
static inline char *t_read_top(const char *rel, size_t *len)
{
	char path[1024];
	const char *top = getenv("TS_TOP");
	snprintf(path, sizeof(path), "%s/%s", top && *top ? top : ".", rel);
	return afile_read(path, len);
}

/* Runs a shell command and returns its exit status (-1 if it did not exit). */
static inline int t_system(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	if (st == -1 || !(st >= 0 && (st & 0x7f) == 0))
		return -1;
	return (st >> 8) & 0xff;
}

/* Reads topic from the beginning of every partition, calling cb for each
 * message, until want messages were seen (want 0: until idle_ms pass with
 * nothing new) or idle_ms pass without a message.  isolation is
 * "read_committed" or "read_uncommitted".  Returns how many were seen, or -1. */
typedef void (*t_msg_cb)(const rd_kafka_message_t *m, void *opaque);

static inline long t_consume(const char *topic, long want, int idle_ms, const char *isolation,
                             t_msg_cb cb, void *opaque)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *props[][2] = {
		{ "bootstrap.servers", t_brokers() }, { "group.id", "tracesift-tests" },
		{ "enable.auto.commit", "false" }, { "enable.partition.eof", "false" },
		{ "isolation.level", isolation }, { "fetch.wait.max.ms", "50" },
	};
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err))) {
			t_note("consumer conf: %s", err);
			rd_kafka_conf_destroy(conf);
			return -1;
		}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		t_note("consumer: %s", err);
		return -1;
	}
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	long seen = -1;
	if (rd_kafka_metadata(rk, 0, rkt, &md, t_timeout_ms(10000)) || md->topic_cnt != 1 ||
	    md->topics[0].err) {
		t_note("metadata of '%s' unavailable", topic);
		goto done;
	}
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	seen = 0;
	int64_t last = t_now_ms();
	while (want == 0 || seen < want) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m) {
			if (t_now_ms() - last > idle_ms)
				break;
			continue;
		}
		if (!m->err) {
			seen++;
			last = t_now_ms();
			if (cb)
				cb(m, opaque);
		} else {
			t_note("consume: %s", rd_kafka_message_errstr(m));
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
done:
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return seen;
}

#endif
