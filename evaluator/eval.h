/* evaluator/eval.h - one evaluation run: score its items with every metric, store, aggregate, alert
 *
 * A run is a batch of a dataset (id DATASET@bN) or a range of its items by
 * sequence number (DATASET@sFROM-TO, TO exclusive).  eval_run scores what
 * the run's scores.jsonl does not hold yet (so an interrupted run resumes
 * without scoring an item twice), writes summary.json, fires the alert
 * rules that cross their bound (once per run and rule: a webhook POST, a
 * record on the alerts topic, a line on stderr) and, for a batch, marks it
 * evaluated in the store.
 */
#ifndef TS_EVAL_EVAL_H
#define TS_EVAL_EVAL_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "econf.h"
#include "runs.h"
#include "store.h"

struct evaluator;

/* run_flag: evaluation stops soon after it turns 0.  out: where the metric
 * table of each run goes (NULL: nowhere).  NULL with errstr (the store's
 * evaluations locked, judge set-up, alert producer set-up). */
struct evaluator *evaluator_new(struct eval_conf *conf, volatile sig_atomic_t *run_flag,
                                FILE *out, char *errstr, size_t errstr_size);
void evaluator_destroy(struct evaluator *ev);

/* Checks the user's Kafka properties, conf->kafka_props (the first from the
 * config file FILE, the last nflags from -X), against what the alert producer
 * needs (core/kclient.h): one librdkafka does not take, or one that would
 * change enable.idempotence=true, is refused with -1 and errstr naming it,
 * the value needed and why.  0 otherwise. */
int evaluator_check_kafka(const struct eval_conf *conf, const char *file, int nflags,
                          char *errstr, size_t errstr_size);

struct runs *evaluator_runs(struct evaluator *ev);

struct run_spec {
	char id[STORE_NAME_MAX + 64];
	char dataset[STORE_NAME_MAX + 1];
	int64_t batch;       /* -1: a range */
	int64_t first_seq;   /* batch: where its items start (a hint); range: FROM */
	int64_t to_seq;      /* range: TO (exclusive) */
	int partial;         /* batch closed by max-wait */
};

void run_spec_batch(struct run_spec *s, const char *dataset, const struct store_batch *b);
void run_spec_range(struct run_spec *s, const char *dataset, int64_t from, int64_t to);
/* From a run id (and its run.json, for a batch's first_seq); -1 when the id is not one. */
int run_spec_parse(struct run_spec *s, const char *id);

/* Evaluates (or resumes, or finishes) the run.  Returns 0 when it is done,
 * 1 when run_flag stopped it (resumable), 2 when the judge stayed
 * unavailable (errstr says so; the run is paused, resumable, and nothing
 * was recorded for the requests that failed so), -1 on error with errstr. */
int eval_run(struct evaluator *ev, struct store_reader *r, const struct run_spec *spec,
             char *errstr, size_t errstr_size);

/* Resumes every run that has a folder and no summary.  As eval_run. */
int eval_resume(struct evaluator *ev, char *errstr, size_t errstr_size);

/* Evaluates every complete batch not yet evaluated in the configured
 * datasets.  *done gets the runs finished.  0, 1 (stopped) or -1. */
int eval_pending_batches(struct evaluator *ev, int *done, char *errstr, size_t errstr_size);

/* Evaluates what arrived in each dataset since the last scheduled run. */
int eval_schedule(struct evaluator *ev, int *done, char *errstr, size_t errstr_size);

struct eval_stats {
	int64_t runs, items, scores, errors, alerts, alert_failures, paused;
};
void evaluator_stats(const struct evaluator *ev, struct eval_stats *s);

/* Prints a finished run's summary (metric table, alerts, worst items). */
int eval_show(struct runs *rs, const char *id, int worst, FILE *out, char *errstr, size_t errstr_size);

#endif
