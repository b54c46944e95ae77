/* replay/replay.h - what tracesift-replay's reader, outputs, explanation and report share */
#ifndef TS_REPLAY_H
#define TS_REPLAY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "record.h"

/* One record read back, from Kafka or from a store's archive dataset. */
struct rmsg {
	const char *payload;
	size_t len;
	const void *key;                 /* Kafka: the message key (may be NULL); store: NULL */
	size_t key_len;
	int32_t partition;               /* -1: read from the store */
	int64_t offset;                  /* Kafka offset, or the item's sequence number in the store */
	int64_t ts_ms;                   /* Kafka timestamp, -1 when there is none (the store) */
	const rd_kafka_message_t *kmsg;  /* the Kafka message (headers), NULL from the store */
};

/* ---- range.c: one time range of a topic, every partition, end offsets fixed at start ---- */

struct range_part {
	int32_t partition;
	int64_t start;    /* first offset of the range */
	int64_t end;      /* offset after the range: fixed when the range opens */
	int64_t low;      /* the oldest offset still in Kafka when the range opened */
	int64_t pos;      /* next offset (what was read, or skipped as control records) */
	int done;
	int seen;         /* a message of this partition was read */
	int64_t first_ts; /* timestamp of the first message read, -1 before one */
};

struct range {
	rd_kafka_t *rk;
	char *topic;
	struct range_part *parts;
	int nparts;
	int ndone;
	int64_t total;    /* sum of end - start: offsets to go through */
	int64_t from_ms;  /* what the range was asked for (-1: from the beginning) */
};

/* Opens a plain assign()ed consumer (no group, commits nothing) on every
 * partition of topic, from the first offset whose timestamp is >= from_ms
 * (offsetsForTimes; from_ms < 0: the oldest offset) to the first offset whose
 * timestamp is >= to_ms (to_ms < 0 or none: the end).  The end offsets are
 * fixed now, with the consumer's isolation.level (read_committed: the last
 * stable offset), so reading stops there however the topic grows and never
 * waits on an idle partition.  Takes conf in every case (the consumer needs
 * enable.partition.eof=true).  NULL with errstr ("topic 'x': Broker: Unknown
 * topic or partition"). */
struct range *range_open(rd_kafka_conf_t *conf, const char *topic, int64_t from_ms, int64_t to_ms,
                         int timeout_ms, char *errstr, size_t errstr_size);

/* The next message of the range: 1 with *m (the caller destroys it); 0 none
 * within timeout_ms; 2 every partition is done; -1 a permanent error (errstr:
 * the topic went away, not authorized, a fatal client error); -2 a passing
 * error worth a word (errstr; the broker is down), keep calling. */
int range_next(struct range *r, int timeout_ms, rd_kafka_message_t **m, char *errstr, size_t errstr_size);

/* Offsets gone through so far (read or skipped), of r->total. */
int64_t range_done(const struct range *r);

/* Frees what range_open made (closes the consumer); accepts NULL. */
void range_destroy(struct range *r);

/* ---- output.c: records as JSONL into a file (zstd or plain) or stdout; or a topic ---- */

struct output;

/* path NULL or "-": stdout.  A path ending in ".zst" is written as one zstd
 * stream (level, content checksum); others plain.  A file is written to
 * PATH.tmp.PID and renamed over PATH by output_close(), so PATH holds a whole
 * file or its old content.  NULL with errstr. */
struct output *output_open(const char *path, int zstd_level, char *errstr, size_t errstr_size);

/* Writes one record as one line: a line break between JSON tokens (a
 * pretty-printed record) becomes a space, as the sink stores it.  0, or -1
 * with errstr (write error: the output is then abandoned by output_close). */
int output_line(struct output *o, const char *rec, size_t len, char *errstr, size_t errstr_size);

/* Ends the output and frees o (accepts NULL).  keep: the zstd stream is
 * ended, the file flushed, fsynced and renamed into place; not keep: the
 * temporary file is removed.  0, or -1 with errstr (nothing kept then). */
int output_close(struct output *o, int keep, char *errstr, size_t errstr_size);

/* The file being written ("-" for stdout). */
const char *output_name(const struct output *o);

struct topic_out;

/* An idempotent producer (acks=all, zstd) to topic; takes conf in every
 * case.  NULL with errstr. */
struct topic_out *topic_out_new(rd_kafka_conf_t *conf, const char *topic, char *errstr, size_t errstr_size);

/* Sends one record with its key, timestamp (ms; 0: now) and headers (copied;
 * may be NULL).  When the queue is full it serves delivery reports and tries
 * again while *run holds.  0, or -1 with errstr (a fatal producer error, or
 * stopped while the queue was full). */
int topic_out_send(struct topic_out *t, const void *key, size_t key_len, const char *payload, size_t len,
                   int64_t ts_ms, const rd_kafka_headers_t *headers, volatile sig_atomic_t *run,
                   char *errstr, size_t errstr_size);

/* Waits up to timeout_ms for every message to be delivered, then frees t
 * (accepts NULL).  Returns the number of messages not delivered (failed, or
 * still queued at the timeout), with the first failure in errstr. */
uint64_t topic_out_close(struct topic_out *t, int timeout_ms, uint64_t *delivered,
                         char *errstr, size_t errstr_size);

/* ---- explain.c: the sampler's decision for each replayed trace ---- */

struct explain;

struct explain_opts {
	const char *conf_path;  /* the sampler's config file */
	int has_seed;           /* seed overrides the file's */
	uint64_t seed;
	int json;               /* one JSON object per line */
	int summary_only;       /* no line per trace */
};

/* Reads the sampler's config with the sampler's parser (sconf_load,
 * sconf_finish).  NULL with errstr ("'PATH' line 3: ..."). */
struct explain *explain_new(const struct explain_opts *o, char *errstr, size_t errstr_size);
void explain_destroy(struct explain *e);

/* The limits the sampler validates records with (its max.record.bytes). */
const struct rec_limits *explain_limits(const struct explain *e);
/* The seed in use. */
uint64_t explain_seed(const struct explain *e);

/* The datasets the config's classes send items to, in class order, each once. */
int explain_datasets(const struct explain *e, const char *const **names);

/* One item of what the sampler recorded (as it wrote it to the monitoring
 * topic or the sink stored it): notes that item id was selected into its
 * dataset and class.  Other messages (batch triggers) are skipped.  Returns
 * 1 noted, 0 skipped, -1 not an item (errstr). */
int explain_record_item(struct explain *e, const char *json, size_t len, char *errstr, size_t errstr_size);

/* Says that the recorded decisions have been given (through
 * explain_record_item), and where they came from ("topic 'x'", "store 'd'
 * datasets ..."): only then are decisions compared and mismatches listed. */
void explain_set_recorded(struct explain *e, const char *what);

/* One replayed message: r its validation result (with the config's limits),
 * info what the validator filled.  Prints its line (unless summary_only). */
void explain_trace(struct explain *e, FILE *out, const struct rmsg *m, enum rec_reason r,
                   const char *payload, const struct rec_info *info);

/* The summary: per class, traces, would be selected, recorded selected,
 * mismatches; then every mismatch.  complete: the range was read to its end.
 * Returns the number of mismatches. */
uint64_t explain_summary(struct explain *e, FILE *out, int complete);

/* ---- report.c: an audit summary of the replayed range ---- */

struct report;

struct report *report_new(void);
void report_destroy(struct report *r);

/* A valid record that passed the filters. */
void report_add(struct report *r, const char *payload, const struct rec_info *info);

/* What the range was, for the report's head. */
struct report_head {
	const char *source;     /* "topic 'llm.traces'" / "store 'DIR' dataset 'archive'" */
	int64_t from_us, to_us; /* -1: open */
	const char *by;         /* "timestamp" | "start_time" */
	uint64_t read, in_window, filtered_out;
	uint64_t invalid[REC_REASON_COUNT + 1]; /* the last: an empty message */
	int complete;
};

/* Prints the report as text or one JSON object.  0, or -1 (out of memory). */
int report_print(struct report *r, FILE *out, int json, const struct report_head *h);

#endif
