/* producer/lib/client.c - libtracesift's client: configuration, queue, delivery, stats */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "internal.h"
#include "record.h"
#include "tracesift.h"

/* Defaults chosen by measurement: see docs/producer.md and bench/RESULTS.md. */
static const char *const kafka_defaults[][2] = {
	{ "enable.idempotence", "true" },
	{ "acks", "all" },
	{ "compression.codec", "zstd" },
	{ "linger.ms", "50" },
	{ "batch.size", "1000000" },
	{ "queue.buffering.max.messages", "100000" },
	{ "queue.buffering.max.kbytes", "65536" },
	{ "message.timeout.ms", "300000" },
};

struct ts_conf {
	rd_kafka_conf_t *rk_conf;
	char *topic;
	char *project;
	int enqueue_timeout_ms;
	int close_timeout_ms;
	size_t max_record_bytes;
	size_t max_field_bytes; /* 0: max_record_bytes */
};

struct ts_client {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	char *topic;
	char *project;
	int enqueue_timeout_ms;
	int close_timeout_ms;
	size_t max_field_bytes;
	struct rec_limits limits;

	_Atomic uint64_t enqueued, delivered, failed, dropped, rejected;
	atomic_int closing;

	pthread_mutex_t err_lock;
	char last_error[256];

	pthread_t poller;
	atomic_int stop_poller;
};

const char *ts_err_str(int err)
{
	switch (err) {
	case TS_OK:               return "success";
	case TS_ERR_INVALID_ARG:  return "invalid argument";
	case TS_ERR_INVALID:      return "invalid record or JSON";
	case TS_ERR_TOO_LARGE:    return "record too large";
	case TS_ERR_QUEUE_FULL:   return "queue full: trace dropped";
	case TS_ERR_NOMEM:        return "out of memory";
	case TS_ERR_CLOSED:       return "client is closing";
	case TS_ERR_KAFKA:        return "kafka refused the message";
	case TS_ERR_UNKNOWN_CONF: return "unknown configuration property";
	default:                  return "unknown error";
	}
}

static void set_err(char *errstr, size_t size, const char *fmt, const char *arg)
{
	if (errstr && size)
		snprintf(errstr, size, fmt, arg);
}

/* ---- configuration ------------------------------------------------------ */

ts_conf_t *ts_conf_new(void)
{
	ts_conf_t *conf = calloc(1, sizeof(*conf));
	if (!conf)
		return NULL;
	conf->rk_conf = rd_kafka_conf_new();
	conf->topic = strdup("llm.traces");
	conf->project = strdup("default");
	if (!conf->rk_conf || !conf->topic || !conf->project) {
		ts_conf_destroy(conf);
		return NULL;
	}
	conf->close_timeout_ms = 5000;
	conf->max_record_bytes = REC_MAX_BYTES_DEFAULT;
	char err[256];
	for (size_t i = 0; i < sizeof(kafka_defaults) / sizeof(kafka_defaults[0]); i++)
		rd_kafka_conf_set(conf->rk_conf, kafka_defaults[i][0], kafka_defaults[i][1],
		                  err, sizeof(err));
	return conf;
}

void ts_conf_destroy(ts_conf_t *conf)
{
	if (!conf)
		return;
	if (conf->rk_conf)
		rd_kafka_conf_destroy(conf->rk_conf);
	free(conf->topic);
	free(conf->project);
	free(conf);
}

static int parse_int(const char *value, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int set_string(char **field, const char *value)
{
	char *copy = strdup(value);
	if (!copy)
		return TS_ERR_NOMEM;
	free(*field);
	*field = copy;
	return TS_OK;
}

int ts_conf_set(ts_conf_t *conf, const char *name, const char *value,
                char *errstr, size_t errstr_size)
{
	long v;
	if (!conf || !name || !value) {
		set_err(errstr, errstr_size, "%s", "conf, name and value are required");
		return TS_ERR_INVALID_ARG;
	}
	if (!strcmp(name, "topic") || !strcmp(name, "project")) {
		if (!*value) {
			set_err(errstr, errstr_size, "'%s' must not be empty", name);
			return TS_ERR_INVALID_ARG;
		}
		return set_string(!strcmp(name, "topic") ? &conf->topic : &conf->project, value);
	}
	if (!strcmp(name, "enqueue.timeout.ms") || !strcmp(name, "close.timeout.ms")) {
		if (parse_int(value, 0, 3600000, &v)) {
			set_err(errstr, errstr_size, "'%s': expected milliseconds from 0 to 3600000", name);
			return TS_ERR_INVALID_ARG;
		}
		*(name[0] == 'e' ? &conf->enqueue_timeout_ms : &conf->close_timeout_ms) = (int)v;
		return TS_OK;
	}
	if (!strcmp(name, "max.record.bytes")) {
		if (parse_int(value, 1024, 100 * 1024 * 1024, &v)) {
			set_err(errstr, errstr_size, "'%s': expected bytes from 1024 to 104857600", name);
			return TS_ERR_INVALID_ARG;
		}
		conf->max_record_bytes = (size_t)v;
		return TS_OK;
	}
	if (!strcmp(name, "max.field.bytes")) {
		if (parse_int(value, 0, 100 * 1024 * 1024, &v)) {
			set_err(errstr, errstr_size, "'%s': expected bytes from 0 to 104857600", name);
			return TS_ERR_INVALID_ARG;
		}
		conf->max_field_bytes = (size_t)v;
		return TS_OK;
	}
	char err[512];
	switch (rd_kafka_conf_set(conf->rk_conf, name, value, err, sizeof(err))) {
	case RD_KAFKA_CONF_OK:
		return TS_OK;
	case RD_KAFKA_CONF_UNKNOWN:
		set_err(errstr, errstr_size, "%s", err);
		return TS_ERR_UNKNOWN_CONF;
	default:
		set_err(errstr, errstr_size, "%s", err);
		return TS_ERR_INVALID_ARG;
	}
}

/* ---- delivery ----------------------------------------------------------- */

static void note_error(ts_client_t *c, const char *what, const char *why)
{
	pthread_mutex_lock(&c->err_lock);
	snprintf(c->last_error, sizeof(c->last_error), "%s: %s", what, why);
	pthread_mutex_unlock(&c->err_lock);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	ts_client_t *c = opaque;
	if (m->err) {
		atomic_fetch_add_explicit(&c->failed, 1, memory_order_relaxed);
		note_error(c, "delivery failed", rd_kafka_err2str(m->err));
	} else {
		atomic_fetch_add_explicit(&c->delivered, 1, memory_order_relaxed);
	}
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	(void)err;
	note_error(opaque, "kafka", reason);
}

/* librdkafka logs through this instead of printing: a library never prints.
 * Only the last serious line is kept, in last_error. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)fac;
	if (level <= 3)
		note_error(rd_kafka_opaque(rk), "kafka", buf);
}

static void *poll_main(void *arg)
{
	ts_client_t *c = arg;
	while (!atomic_load(&c->stop_poller))
		rd_kafka_poll(c->rk, 50);
	rd_kafka_poll(c->rk, 0);
	return NULL;
}

/* ---- client ------------------------------------------------------------- */

ts_client_t *ts_client_new(ts_conf_t *conf, char *errstr, size_t errstr_size)
{
	char err[512];
	if (!conf) {
		set_err(errstr, errstr_size, "%s", "conf is required");
		return NULL;
	}
	ts_client_t *c = calloc(1, sizeof(*c));
	if (!c) {
		set_err(errstr, errstr_size, "%s", "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->err_lock, NULL);
	rec_limits_default(&c->limits);
	c->limits.max_bytes = conf->max_record_bytes;
	c->enqueue_timeout_ms = conf->enqueue_timeout_ms;
	c->close_timeout_ms = conf->close_timeout_ms;
	c->max_field_bytes = conf->max_field_bytes && conf->max_field_bytes < conf->max_record_bytes
	                     ? conf->max_field_bytes : conf->max_record_bytes;

	/* The producer must accept the largest record we accept, plus framing. */
	char cur[64];
	size_t cur_size = sizeof(cur);
	size_t need = conf->max_record_bytes + 65536;
	if (rd_kafka_conf_get(conf->rk_conf, "message.max.bytes", cur, &cur_size) == RD_KAFKA_CONF_OK &&
	    strtoull(cur, NULL, 10) < need) {
		snprintf(cur, sizeof(cur), "%zu", need);
		rd_kafka_conf_set(conf->rk_conf, "message.max.bytes", cur, err, sizeof(err));
	}

	rd_kafka_conf_set_opaque(conf->rk_conf, c);
	rd_kafka_conf_set_dr_msg_cb(conf->rk_conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf->rk_conf, on_error);
	rd_kafka_conf_set_log_cb(conf->rk_conf, on_log);

	c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->rk_conf, err, sizeof(err));
	if (!c->rk) {
		set_err(errstr, errstr_size, "cannot create kafka producer: %s", err);
		pthread_mutex_destroy(&c->err_lock);
		free(c);
		return NULL;
	}
	/* rd_kafka_new() owns the rd_kafka conf now, and we own the rest. */
	conf->rk_conf = NULL;
	c->topic = conf->topic;
	c->project = conf->project;
	conf->topic = conf->project = NULL;
	ts_conf_destroy(conf);

	c->rkt = rd_kafka_topic_new(c->rk, c->topic, NULL);
	if (!c->rkt || pthread_create(&c->poller, NULL, poll_main, c)) {
		set_err(errstr, errstr_size, "cannot start client: %s",
		        c->rkt ? "no thread" : rd_kafka_err2str(rd_kafka_last_error()));
		if (c->rkt)
			rd_kafka_topic_destroy(c->rkt);
		rd_kafka_destroy(c->rk);
		free(c->topic);
		free(c->project);
		pthread_mutex_destroy(&c->err_lock);
		free(c);
		return NULL;
	}
	return c;
}

const char *client_project(const ts_client_t *c)
{
	return c->project;
}

size_t client_max_field_bytes(const ts_client_t *c)
{
	return c->max_field_bytes;
}

static uint64_t in_queue(ts_client_t *c)
{
	uint64_t done = atomic_load(&c->delivered) + atomic_load(&c->failed);
	uint64_t enq = atomic_load(&c->enqueued);
	return enq > done ? enq - done : 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

uint64_t ts_client_flush(ts_client_t *c, int timeout_ms)
{
	if (!c)
		return 0;
	int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	uint64_t left;
	/* The poller serves delivery reports; flush only watches the counters.
	 * rd_kafka_flush() also wakes the batches that linger.ms holds back. */
	while ((left = in_queue(c)) > 0) {
		int64_t now = mono_ms();
		if (now >= deadline)
			break;
		int step = (int)(deadline - now < 10 ? deadline - now : 10);
		rd_kafka_flush(c->rk, step);
		if (in_queue(c))
			sleep_ms(1);
	}
	return left;
}

void ts_client_stats(ts_client_t *c, ts_stats_t *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!c)
		return;
	st->enqueued = atomic_load(&c->enqueued);
	st->delivered = atomic_load(&c->delivered);
	st->failed = atomic_load(&c->failed);
	st->dropped = atomic_load(&c->dropped);
	st->rejected = atomic_load(&c->rejected);
	uint64_t done = st->delivered + st->failed;
	st->in_queue = st->enqueued > done ? st->enqueued - done : 0;
	pthread_mutex_lock(&c->err_lock);
	memcpy(st->last_error, c->last_error, sizeof(st->last_error));
	pthread_mutex_unlock(&c->err_lock);
}

uint64_t ts_client_destroy(ts_client_t *c, ts_stats_t *final_stats)
{
	if (!c) {
		if (final_stats)
			memset(final_stats, 0, sizeof(*final_stats));
		return 0;
	}
	atomic_store(&c->closing, 1);
	if (ts_client_flush(c, c->close_timeout_ms) > 0) {
		/* What is left now will not make it: purge it so that each message
		 * gets its (failed) delivery report and is counted. */
		rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		int64_t deadline = mono_ms() + 2000;
		while (in_queue(c) > 0 && mono_ms() < deadline)
			sleep_ms(2);
	}
	/* The poller may be waiting in rd_kafka_poll() for up to 50 ms: wake it.
	 * A yield that comes before it waits makes its next poll return at once,
	 * and it sees the flag then. */
	atomic_store(&c->stop_poller, 1);
	rd_kafka_queue_t *mainq = rd_kafka_queue_get_main(c->rk);
	rd_kafka_queue_yield(mainq);
	rd_kafka_queue_destroy(mainq);
	pthread_join(c->poller, NULL);
	ts_client_stats(c, final_stats);
	uint64_t undelivered = atomic_load(&c->failed) + in_queue(c);
	rd_kafka_topic_destroy(c->rkt);
	rd_kafka_destroy(c->rk);
	free(c->topic);
	free(c->project);
	pthread_mutex_destroy(&c->err_lock);
	free(c);
	return undelivered;
}

/* ---- enqueue ------------------------------------------------------------ */

/* Produces buf with the given flags, waiting at most enqueue.timeout.ms for
 * room.  On success the message belongs to librdkafka. */
static int enqueue(ts_client_t *c, const char *key, void *buf, size_t len, int flags)
{
	if (atomic_load_explicit(&c->closing, memory_order_relaxed))
		return TS_ERR_CLOSED;
	atomic_fetch_add_explicit(&c->enqueued, 1, memory_order_relaxed);
	int64_t deadline = 0;
	for (;;) {
		if (rd_kafka_produce(c->rkt, RD_KAFKA_PARTITION_UA, flags, buf, len,
		                     key, REC_TRACE_ID_LEN, NULL) == 0)
			return TS_OK;
		rd_kafka_resp_err_t err = rd_kafka_last_error();
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && c->enqueue_timeout_ms > 0) {
			int64_t now = mono_ms();
			if (!deadline)
				deadline = now + c->enqueue_timeout_ms;
			if (now < deadline) {
				sleep_ms(1);
				continue;
			}
		}
		atomic_fetch_sub_explicit(&c->enqueued, 1, memory_order_relaxed);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			atomic_fetch_add_explicit(&c->dropped, 1, memory_order_relaxed);
			return TS_ERR_QUEUE_FULL;
		}
		atomic_fetch_add_explicit(&c->rejected, 1, memory_order_relaxed);
		note_error(c, "produce", rd_kafka_err2str(err));
		return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? TS_ERR_TOO_LARGE : TS_ERR_KAFKA;
	}
}

int client_enqueue_owned(ts_client_t *c, const char *trace_id, char *buf, size_t len)
{
	if (len > c->limits.max_bytes) {
		atomic_fetch_add_explicit(&c->rejected, 1, memory_order_relaxed);
		free(buf);
		return TS_ERR_TOO_LARGE;
	}
	int rc = enqueue(c, trace_id, buf, len, RD_KAFKA_MSG_F_FREE);
	if (rc != TS_OK)
		free(buf);
	return rc;
}

int ts_publish_json(ts_client_t *c, const char *json, size_t len,
                    char *errstr, size_t errstr_size)
{
	if (!c || !json) {
		set_err(errstr, errstr_size, "%s", "client and json are required");
		return TS_ERR_INVALID_ARG;
	}
	struct rec_info info;
	char reason[256];
	enum rec_reason r = rec_validate(json, len, &c->limits, &info, reason, sizeof(reason));
	if (r != REC_OK) {
		atomic_fetch_add_explicit(&c->rejected, 1, memory_order_relaxed);
		set_err(errstr, errstr_size, "%s", reason);
		return r == REC_TOO_LARGE ? TS_ERR_TOO_LARGE : TS_ERR_INVALID;
	}
	int rc = enqueue(c, info.trace_id, (void *)json, len, RD_KAFKA_MSG_F_COPY);
	if (rc != TS_OK)
		set_err(errstr, errstr_size, "%s", ts_err_str(rc));
	return rc;
}

/* ---- ids ---------------------------------------------------------------- */

/* xoshiro256** per thread, seeded from the kernel once per thread. */
static _Thread_local uint64_t rng_s[4];
static _Thread_local int rng_ready;

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
	if (!rng_ready) {
		if (getrandom(rng_s, sizeof(rng_s), 0) != (ssize_t)sizeof(rng_s)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)&ts;
			for (int i = 0; i < 4; i++) {
				x += 0x9e3779b97f4a7c15ULL;
				uint64_t z = x;
				z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
				z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
				rng_s[i] = z ^ (z >> 31);
			}
		}
		rng_ready = 1;
	}
	uint64_t r = rotl(rng_s[1] * 5, 7) * 9, t = rng_s[1] << 17;
	rng_s[2] ^= rng_s[0];
	rng_s[3] ^= rng_s[1];
	rng_s[1] ^= rng_s[2];
	rng_s[0] ^= rng_s[3];
	rng_s[2] ^= t;
	rng_s[3] = rotl(rng_s[3], 45);
	return r;
}

void ids_random_hex(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	int nonzero;
	do {
		nonzero = 0;
		uint64_t r = 0;
		for (size_t i = 0; i < n; i++) {
			if (i % 16 == 0)
				r = rng_next();
			int d = (int)(r & 15);
			r >>= 4;
			nonzero |= d;
			out[i] = hex[d];
		}
	} while (!nonzero);
}
