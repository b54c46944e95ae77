/* tracesift.h - libtracesift: publish LLM trace records to Kafka without blocking
 *
 * An inference process builds a trace (a root with nested spans), ends it, and
 * goes on: ts_trace_end() serializes the record (trace record v1, see
 * docs/trace-format.md) and hands it to librdkafka's queue.  It never waits on
 * the network.  When the queue is full the trace is dropped and counted (or,
 * with enqueue.timeout.ms > 0, the call waits at most that long for room).
 *
 * Threads: a ts_client_t is shared by any number of threads.  A trace and its
 * spans may also be touched from several threads (each trace has its own lock).
 * A span belongs to its trace until the trace ends: after ts_span_end() it may
 * still be named as a parent and have fields set (they are in the record).
 * Nothing may be used after its trace's ts_trace_end() or ts_trace_abandon().
 *
 * Errors: functions that can fail return 0 on success and a negative ts_err
 * value on failure; ts_err_str() names it.  Functions that take an errstr fill
 * it with a human-readable reason.  The library never prints and never exits.
 *
 * Ownership: every string and value passed in is copied; the caller keeps its
 * own.
 */
#ifndef TRACESIFT_H
#define TRACESIFT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TS_API __attribute__((visibility("default")))
#else
#define TS_API
#endif

#define TS_VERSION_STR "0.1.0"

typedef struct ts_conf   ts_conf_t;
typedef struct ts_client ts_client_t;
typedef struct ts_trace  ts_trace_t;
typedef struct ts_span   ts_span_t;

typedef enum ts_err {
	TS_OK              =  0,
	TS_ERR_INVALID_ARG = -1, /* NULL where a value is needed, bad name */
	TS_ERR_INVALID     = -2, /* the JSON or record is not valid (see errstr) */
	TS_ERR_TOO_LARGE   = -3, /* the record is larger than max.record.bytes */
	TS_ERR_QUEUE_FULL  = -4, /* dropped: no room within enqueue.timeout.ms */
	TS_ERR_NOMEM       = -5,
	TS_ERR_CLOSED      = -6, /* the client is being destroyed */
	TS_ERR_KAFKA       = -7, /* librdkafka refused the message (see errstr) */
	TS_ERR_UNKNOWN_CONF = -8 /* no such configuration property */
} ts_err_t;

typedef enum ts_span_type {
	TS_SPAN_GENERAL   = 0,
	TS_SPAN_LLM       = 1,
	TS_SPAN_RETRIEVAL = 2,
	TS_SPAN_TOOL      = 3
} ts_span_type_t;

/* What a client has done so far.  Every trace handed to ts_trace_end() or
 * ts_publish_json() is counted once in enqueued, dropped or rejected; every
 * enqueued trace ends in delivered or failed, or is still in_queue. */
typedef struct ts_stats {
	uint64_t enqueued;   /* accepted into the queue */
	uint64_t delivered;  /* acknowledged by the broker (acks=all) */
	uint64_t failed;     /* delivery failed or purged at destroy */
	uint64_t dropped;    /* queue full: not enqueued */
	uint64_t rejected;   /* invalid or too large: not enqueued */
	uint64_t in_queue;   /* enqueued - delivered - failed */
	char last_error[256];/* the last delivery or enqueue error, "" if none */
} ts_stats_t;

/* Returns a static description of a ts_err_t value. */
TS_API const char *ts_err_str(int err);

/* ---- configuration ---------------------------------------------------- */

/* A new configuration with tracesift's defaults: enable.idempotence=true,
 * acks=all, compression.codec=zstd, and the linger and batch settings in
 * docs/producer.md.  NULL only when out of memory. */
TS_API ts_conf_t *ts_conf_new(void);

/* Sets a property.  tracesift's own:
 *   topic               destination topic (default llm.traces)
 *   project             project of traces built with ts_trace_begin (default "default")
 *   enqueue.timeout.ms  how long ts_trace_end may wait for queue room (default 0: drop)
 *   close.timeout.ms    how long ts_client_destroy flushes (default 5000)
 *   max.record.bytes    largest record accepted (default 1048576)
 *   max.field.bytes     longest JSON of a value given to the one-call
 *                       functions below (default 0: max.record.bytes)
 * Everything else goes to librdkafka as it is (bootstrap.servers,
 * queue.buffering.max.messages, security.protocol, ...).  Returns TS_OK, or an
 * error with errstr filled; the conf is unchanged on error. */
TS_API int ts_conf_set(ts_conf_t *conf, const char *name, const char *value,
                       char *errstr, size_t errstr_size);

/* Frees a conf that was not handed to ts_client_new().  Accepts NULL. */
TS_API void ts_conf_destroy(ts_conf_t *conf);

/* ---- client ------------------------------------------------------------ */

/* Creates a client.  On success the client owns conf (do not destroy it);
 * on failure returns NULL, fills errstr, and the caller still owns conf. */
TS_API ts_client_t *ts_client_new(ts_conf_t *conf, char *errstr, size_t errstr_size);

/* Waits up to timeout_ms for everything enqueued to be delivered or failed.
 * Returns how many traces are still in the queue (0: all done). */
TS_API uint64_t ts_client_flush(ts_client_t *client, int timeout_ms);

/* Fills *stats with a snapshot of the counters. */
TS_API void ts_client_stats(ts_client_t *client, ts_stats_t *stats);

/* Flushes for up to close.timeout.ms, purges what is left, and frees the
 * client.  Returns how many traces enqueued over the client's life were not
 * delivered (failed, including those purged now); fills *final_stats with the
 * last counters when it is not NULL.  Accepts NULL (returns 0). */
TS_API uint64_t ts_client_destroy(ts_client_t *client, ts_stats_t *final_stats);

/* ---- publishing a prebuilt record --------------------------------------- */

/* Validates json (trace record v1, len bytes, need not be NUL-terminated)
 * and enqueues a copy with key = its trace_id.  Returns TS_OK, or
 * TS_ERR_INVALID / TS_ERR_TOO_LARGE with the reason (field and what is wrong)
 * in errstr (counted as rejected), or TS_ERR_QUEUE_FULL (counted as dropped). */
TS_API int ts_publish_json(ts_client_t *client, const char *json, size_t len,
                           char *errstr, size_t errstr_size);

/* ---- building traces ---------------------------------------------------- */

/* Starts a trace named name now, with a new random trace_id.  The trace
 * carries its own root span (ts_trace_root) whose fields become the record's
 * top-level input, output, tags, metadata, model, usage, error and latency.
 * Returns NULL only when out of memory or a NULL argument. */
TS_API ts_trace_t *ts_trace_begin(ts_client_t *client, const char *name);

/* Replaces the generated trace_id (32 lowercase hex characters). */
TS_API int ts_trace_set_id(ts_trace_t *trace, const char *trace_id);

/* The trace's id, valid until the trace ends. */
TS_API const char *ts_trace_id(const ts_trace_t *trace);

/* Sets the project of this trace (default: the client's "project"). */
TS_API int ts_trace_set_project(ts_trace_t *trace, const char *project);

/* The root span: pass it to the ts_span_set_* functions to set top-level
 * fields, or as parent to ts_span_begin.  Owned by the trace. */
TS_API ts_span_t *ts_trace_root(ts_trace_t *trace);

/* Ends the trace now (ending any span still open), serializes it and
 * enqueues it; frees the trace and its spans whatever the outcome.  Never
 * waits longer than enqueue.timeout.ms.  Returns TS_OK, TS_ERR_QUEUE_FULL
 * (dropped and counted), TS_ERR_TOO_LARGE (rejected and counted), or
 * TS_ERR_CLOSED. */
TS_API int ts_trace_end(ts_trace_t *trace);

/* Frees the trace without sending anything.  Accepts NULL. */
TS_API void ts_trace_abandon(ts_trace_t *trace);

/* Starts a span now, child of parent (NULL: the root).  Owned by the trace.
 * Returns NULL only when out of memory or a NULL argument. */
TS_API ts_span_t *ts_span_begin(ts_trace_t *trace, ts_span_t *parent,
                                const char *name, ts_span_type_t type);

/* Ends the span now.  A span that is never ended ends with its trace. */
TS_API void ts_span_end(ts_span_t *span);

/* The span's id (16 lowercase hex characters), valid until the trace ends. */
TS_API const char *ts_span_id(const ts_span_t *span);

/* Field setters.  Each replaces an earlier value of the same field.  The
 * *_json variants take JSON text (NUL-terminated) and return TS_ERR_INVALID,
 * leaving the field as it was, when it is not valid JSON or not UTF-8; the
 * plain variants take a string and store it as a JSON string. */
TS_API int ts_span_set_input_json(ts_span_t *span, const char *json);
TS_API int ts_span_set_input(ts_span_t *span, const char *text);
TS_API int ts_span_set_output_json(ts_span_t *span, const char *json);
TS_API int ts_span_set_output(ts_span_t *span, const char *text);
TS_API int ts_span_set_metadata_json(ts_span_t *span, const char *key, const char *json);
TS_API int ts_span_set_metadata(ts_span_t *span, const char *key, const char *value);
TS_API int ts_span_add_tag(ts_span_t *span, const char *tag);
TS_API int ts_span_set_model(ts_span_t *span, const char *model);
TS_API int ts_span_set_usage(ts_span_t *span, int64_t input_tokens, int64_t output_tokens);
TS_API int ts_span_set_error(ts_span_t *span, const char *type, const char *message);

/* Time to first token: the _now variant takes the time elapsed since the
 * span began; the other sets it in milliseconds. */
TS_API int ts_span_mark_first_token(ts_span_t *span);
TS_API int ts_span_set_ttft_ms(ts_span_t *span, double ms);

/* ---- a span in one call ------------------------------------------------- */

/* Bindings that pay for every call into the library (Python's ctypes) can
 * build a trace with one or two calls a span: each function below does what
 * the calls it names do, under the trace's lock once, and the record is the
 * same.  Every argument is copied and checked before anything changes: when
 * a value is refused (TS_ERR_INVALID), nothing was begun, set or ended.
 *
 * start_ns is when the span (or trace) began, in nanoseconds of the
 * library's clock, ts_now_ns() (CLOCK_MONOTONIC): a binding may read that
 * clock itself (Python: time.monotonic_ns()) and call the library only when
 * the span ends.  0, or a time later than now, means now.
 *
 * An input or output is data[0..len), NULL for a field left unset: JSON
 * text (need not be NUL-terminated), or, with its TS_*_MARSHAL flag, the
 * bytes of Python's marshal.dumps(value, 4), which the library writes as
 * the JSON text json.dumps(value, ensure_ascii=False, separators=(",",
 * ":")) would be (lone surrogates as '?'); Python makes those several times
 * faster than JSON.  Marshal data holding anything JSON does not hold that
 * way (bytes, sets, NaN, subnormal floats, keys other than str, int, bool
 * and None, ...) is refused with TS_ERR_INVALID, like JSON that is not
 * valid: the caller then gives that value as JSON.  Either way a value
 * nests at most 58 deep, and its JSON may take at most max.field.bytes
 * (else TS_ERR_INVALID too).  error_type NULL: no error (error_message NULL
 * with a type: ""). */

#define TS_INPUT_MARSHAL  0x1 /* the input is marshal data */
#define TS_OUTPUT_MARSHAL 0x2 /* the output is marshal data */

/* The library's clock, nanoseconds; only differences mean anything. */
TS_API int64_t ts_now_ns(void);

/* ts_trace_begin() at start_ns, with input as the root's input.  Returns
 * TS_OK and sets *trace; or TS_ERR_INVALID_ARG (a NULL client, name or
 * trace), TS_ERR_INVALID or TS_ERR_NOMEM, and *trace is left as it was. */
TS_API int ts_trace_begin_with(ts_client_t *client, const char *name, int64_t start_ns, int flags,
                               const void *input, size_t input_len, ts_trace_t **trace);

/* Sets the root's output and error, then ts_trace_end().  Returns
 * TS_ERR_INVALID when the output is refused: then the trace is untouched
 * and still the caller's (end it again, or abandon it).  Otherwise the trace
 * is gone whatever the outcome: TS_ERR_NOMEM copying the fields frees it
 * unsent, else this returns what ts_trace_end() returns. */
TS_API int ts_trace_end_with(ts_trace_t *trace, int flags, const void *output, size_t output_len,
                             const char *error_type, const char *error_message);

/* A trace of its root alone: ts_trace_begin_with() at start_ns, then
 * ts_trace_end_with() now.  Returns TS_ERR_INVALID_ARG, TS_ERR_INVALID or
 * TS_ERR_NOMEM before building anything (nothing sent, nothing counted), or
 * what ts_trace_end() returns. */
TS_API int ts_trace_record(ts_client_t *client, const char *name, int64_t start_ns, int flags,
                           const void *input, size_t input_len, const void *output,
                           size_t output_len, const char *error_type, const char *error_message);

/* ts_span_begin() at start_ns, with input as the span's input.  Returns
 * TS_OK and sets *span (owned by the trace); or TS_ERR_INVALID_ARG (a NULL
 * trace, name or span, or a parent of another trace), TS_ERR_INVALID or
 * TS_ERR_NOMEM, and begins nothing. */
TS_API int ts_span_begin_with(ts_trace_t *trace, ts_span_t *parent, const char *name,
                              ts_span_type_t type, int64_t start_ns, int flags, const void *input,
                              size_t input_len, ts_span_t **span);

/* Sets the span's output and error, then ts_span_end().  Returns TS_OK; or
 * TS_ERR_INVALID_ARG, TS_ERR_INVALID or TS_ERR_NOMEM, and the span is left
 * as it was (still open). */
TS_API int ts_span_end_with(ts_span_t *span, int flags, const void *output, size_t output_len,
                            const char *error_type, const char *error_message);

/* A finished span: ts_span_begin_with() at start_ns, then
 * ts_span_end_with() now.  Returns TS_OK and, when span is not NULL, sets
 * *span (owned by the trace: a parent for later spans); or
 * TS_ERR_INVALID_ARG, TS_ERR_INVALID or TS_ERR_NOMEM, and adds nothing. */
TS_API int ts_span_record(ts_trace_t *trace, ts_span_t *parent, const char *name,
                          ts_span_type_t type, int64_t start_ns, int flags, const void *input,
                          size_t input_len, const void *output, size_t output_len,
                          const char *error_type, const char *error_message, ts_span_t **span);

#ifdef __cplusplus
}
#endif
#endif /* TRACESIFT_H */
