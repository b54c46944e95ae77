/* evaluator/runs.h - where runs, scores and fired alerts are kept: STORE/evaluations
 *
 *   evaluations/                  0700
 *   ├── LOCK                      the running evaluator holds flock(LOCK_EX) on it
 *   ├── alerts.jsonl              one line per alert fired (append-only, fsynced)
 *   ├── cursors.json              schedule mode: per dataset, the next item sequence to evaluate
 *   └── runs/RUN/                 one folder per run (RUN is DATASET@bN or DATASET@sFROM-TO)
 *       ├── run.json              what the run is: written once, before its first score
 *       ├── scores.jsonl          one line per (item, metric): append-only, fsynced
 *       └── summary.json          written (atomically) when the run is finished
 *
 * A run whose folder has no summary.json was interrupted: the evaluator
 * resumes it, skipping the (item, metric) pairs scores.jsonl holds.  A torn
 * last line (a crash mid-write) is cut off when the run is opened again.
 * docs/evaluator.md describes the lines.
 */
#ifndef TS_EVAL_RUNS_H
#define TS_EVAL_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct runs;

/* Opens STORE/evaluations; write: create it (0700) if missing and take the
 * lock ("evaluations of store 'x' are locked by another evaluator").  NULL
 * with errstr. */
struct runs *runs_open(const char *store, int write, char *errstr, size_t errstr_size);
void runs_close(struct runs *rs);

/* Run ids, sorted; the array and strings are the caller's (free each, then
 * the array).  Returns the count, or -1 with errstr. */
int runs_list(struct runs *rs, char ***ids, char *errstr, size_t errstr_size);

/* 0: no such run, 1: started (not finished), 2: finished. */
int runs_state(struct runs *rs, const char *id);

/* Reads RUN/NAME (run.json, summary.json) as JSON; NULL with errstr. */
cJSON *runs_read_json(struct runs *rs, const char *id, const char *name, char *errstr, size_t errstr_size);

/* Calls fn for every whole line of RUN/scores.jsonl (parsed; fn must not keep it). */
typedef int (*runs_score_fn)(void *ctx, const cJSON *line);
int runs_scores(struct runs *rs, const char *id, runs_score_fn fn, void *ctx, char *errstr, size_t errstr_size);

/* ---- writing (one evaluator, holding the lock) ---------------------------- */

struct run_writer;

/* Starts or reopens run id: creates its folder and run.json (info) when
 * missing, cuts a torn tail off scores.jsonl.  NULL with errstr. */
struct run_writer *run_open(struct runs *rs, const char *id, const cJSON *info,
                            char *errstr, size_t errstr_size);
/* Adds a score line (a JSON object; written at the next flush). */
int run_add(struct run_writer *w, const cJSON *line, char *errstr, size_t errstr_size);
/* Writes what was added (whole lines: a killed process leaves whole lines,
 * or one torn line that run_open cuts off), and with sync also fsyncs the
 * file (what a crash of the machine needs).  0 or -1 with errstr. */
int run_flush(struct run_writer *w, int sync, char *errstr, size_t errstr_size);
/* Flushes, writes summary.json atomically, and closes.  0 or -1 with errstr
 * (the writer stays open then: call run_close). */
int run_finish(struct run_writer *w, const cJSON *summary, char *errstr, size_t errstr_size);
void run_close(struct run_writer *w);

/* Alerts: 1 when alerts.jsonl has id. */
int runs_alert_fired(struct runs *rs, const char *alert_id);
/* Appends one alert line (fsynced).  0 or -1 with errstr. */
int runs_alert_record(struct runs *rs, const cJSON *line, char *errstr, size_t errstr_size);
/* Every alert line, oldest first: a cJSON array the caller deletes (NULL with errstr). */
cJSON *runs_alerts(struct runs *rs, char *errstr, size_t errstr_size);

/* Schedule cursors: the next sequence to evaluate in dataset (0 if none). */
int64_t runs_cursor(struct runs *rs, const char *dataset);
int runs_set_cursor(struct runs *rs, const char *dataset, int64_t next, char *errstr, size_t errstr_size);

#endif
