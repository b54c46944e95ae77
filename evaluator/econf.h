/* evaluator/econf.h - the evaluator's configuration: settings, judge, fields, metrics, alert rules
 *
 * Order (later wins): the embedded defaults, the config file (-c FILE),
 * TRACESIFT_* environment variables, command-line flags.  The file is
 * INI-style (core/ini.h):
 *
 *   [evaluator]     store, datasets, brokers, webhook.url, ... and kafka.PROP
 *   [judge]         url, model, api.key.env, api.key.file, inflight, ...
 *   [fields]        question, answer, context, latency, ttft, tokens (JSON pointers)
 *   [metric NAME]   kind, judge, rubric, rubric.file, range, threshold, field, pattern, ...
 *   [alert NAME]    when = RULE
 *
 * With no [metric] section the default metrics run: the heuristics, and the
 * hallucination, moderation and answer_relevance judges when a judge url is
 * set.  With no [alert] section the default alert rules apply.
 * docs/evaluator.md has every key.
 */
#ifndef TS_EVAL_ECONF_H
#define TS_EVAL_ECONF_H

#include <stdint.h>
#include <stdio.h>

#include "alert.h"
#include "judge.h"
#include "metric.h"

struct eval_conf {
	/* [evaluator] */
	char *store;               /* default ./tracesift-data */
	char **datasets;           /* NULL-terminated; NULL: every dataset with batches */
	int poll_ms;               /* how often the store is looked at for new batches */
	int64_t schedule_ms;       /* > 0: also evaluate what arrived, on this period */
	char *brokers;             /* for llm.alerts; "" turns the Kafka alert off */
	char *alerts_topic;
	char *webhook_url;         /* "" : no webhook */
	int webhook_timeout_ms;
	int worst;                 /* worst items shown by `show` */
	int defaults;              /* -1 auto, 0 off, 1 on: the default metrics beside configured ones */
	char **kafka_props;        /* name, value, name, value, ... (for the alert producer) */
	int nkafka_props;
	int verbose;
	/* [judge] */
	struct judge_conf judge;   /* strings owned by the fields below */
	char *judge_url, *judge_model, *judge_key, *judge_key_env, *judge_key_file;
	/* [fields] */
	struct field_paths fields; /* strings owned by field_owned */
	char *field_owned[6];
	/* [metric] and [alert] */
	struct metric *metrics;
	int nmetrics;
	struct alert_rule *alerts;
	int nalerts;
	uint64_t hash;             /* of what decides scores: metrics, fields, judge model (econf_finish) */
};

void econf_init(struct eval_conf *c);
void econf_release(struct eval_conf *c);

/* Reads a config file.  Returns 0, or -1 with errstr ("'PATH' line N: ..."). */
int econf_load(struct eval_conf *c, const char *path, char *errstr, size_t errstr_size);

/* One [evaluator] or [judge] setting by name ("store", "judge.url", ...). */
int econf_set(struct eval_conf *c, const char *name, const char *value, char *errstr, size_t errstr_size);

/* Adds a librdkafka property for the alert producer (-X). */
int econf_kafka_prop(struct eval_conf *c, const char *name, const char *value,
                     char *errstr, size_t errstr_size);

/* TRACESIFT_STORE, TRACESIFT_BROKERS, TRACESIFT_JUDGE_URL, TRACESIFT_JUDGE_MODEL,
 * TRACESIFT_WEBHOOK_URL, and the judge key variable.  Returns 0 or -1. */
int econf_apply_env(struct eval_conf *c, char *errstr, size_t errstr_size);

/* Adds the default metrics and alerts where due, reads the key, prepares
 * every metric and rule, computes the hash.  Returns 0 or -1 with errstr. */
int econf_finish(struct eval_conf *c, char *errstr, size_t errstr_size);

/* 1 when a judge is configured (url and model). */
int econf_has_judge(const struct eval_conf *c);

/* The settings with their defaults, for --help. */
void econf_help(FILE *out);

#endif
