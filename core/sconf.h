/* core/sconf.h - the sampler's configuration: service settings, classes, rules, redaction */
#ifndef TS_SCONF_H
#define TS_SCONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "record.h"

enum pred_kind {
	PRED_ERROR,      /* "error"                  : error present and not null */
	PRED_TAG,        /* "tag = X"                : X among tags */
	PRED_META_EQ,    /* "metadata.KEY = VALUE"   : metadata.KEY is the string VALUE
	                    (or a number/bool whose JSON text is VALUE) */
	PRED_MODEL,      /* "model = X" */
	PRED_NAME,       /* "name = X" */
	PRED_LATENCY_GT, /* "latency_ms > N"         : latency_ms.total > N */
	PRED_TTFT_GT,    /* "ttft_ms > N"            : latency_ms.time_to_first_token > N */
	PRED_TOKENS_GT   /* "tokens > N"             : usage.total_tokens > N */
};

struct pred {
	enum pred_kind kind;
	char *key;    /* PRED_META_EQ: the metadata key */
	char *value;  /* PRED_TAG/META_EQ/MODEL/NAME */
	double bound; /* the *_GT kinds */
};

/* A sampling class: records matching every predicate (none: all records)
 * are selected with probability rate into dataset. */
struct sclass {
	char *name;
	struct pred *preds;
	int npreds;
	double rate;          /* [0, 1] */
	char *dataset;        /* default "monitoring" */
	int limit;            /* 0: no rate limit; else at most limit per limit_window_ms */
	int limit_window_ms;  /* 1000 or 60000 */
};

struct redact_rule {
	char *builtin;        /* "email", "phone", "api_key", or NULL for a pattern */
	char *pattern;        /* POSIX extended regular expression */
	char *replacement;
};

enum projection {
	PROJ_FULL = 0,        /* the whole record */
	PROJ_FIELDS = 1       /* only the fields named in proj_fields */
};

#define PROJ_INPUT    0x1
#define PROJ_OUTPUT   0x2
#define PROJ_CONTEXT  0x4 /* output.context: the retrieved passages */
#define PROJ_METADATA 0x8

struct sampler_conf {
	/* [sampler] section; flags and TRACESIFT_* environment override */
	char *brokers;             /* "brokers", default 127.0.0.1:9092 */
	char *input;               /* "input", default llm.traces */
	char *output;              /* "output", default llm.monitoring */
	char *pending;             /* "pending", default llm.monitoring.pending */
	char *state;               /* "state", default llm.monitoring.state */
	char *dlq;                 /* "dlq", default llm.traces.dlq */
	char *group;               /* "group", default tracesift-sampler */
	char *transactional_id;    /* "transactional.id", default "<group>-<instance>" */
	int instance;              /* "instance", default 0 */
	uint64_t seed;             /* "seed", default 0 */
	int commit_interval_ms;    /* "commit.interval.ms", default 100, 10..60000 */
	int stats_interval_ms;     /* "stats.interval.ms", default 5000, 0 = off */
	int batch_size;            /* "batch.size", default 50; 0 = no triggered batches */
	int batch_max_wait_ms;     /* "batch.max.wait.ms", default 0 = never close a partial batch */
	enum projection projection;/* "projection", "full" (default) or e.g. "input,output,context" */
	int proj_fields;           /* PROJ_* bits when projection is PROJ_FIELDS */
	size_t max_record_bytes;   /* "max.record.bytes", default 1048576 */
	char *metrics_file;        /* "metrics.file", default none */

	struct sclass *classes;    /* [class NAME] sections in file order; the last is
	                              the default class (no predicates): if the file
	                              defines none, "default" with rate 0 is added */
	int nclasses;

	struct redact_rule *redact;/* [redact] section */
	int nredact;

	char **kafka_props;        /* "kafka.PROP = VALUE" lines and -X flags: PROP, VALUE pairs */
	int nkafka_props;          /* number of pairs */
};

/* Fills c with the defaults.  sconf_release() frees what it holds. */
void sconf_init(struct sampler_conf *c);
void sconf_release(struct sampler_conf *c);

/* Reads an INI-style file (see docs/sampling.md) into c, on top of what c
 * holds.  Returns 0, or -1 with errstr "'PATH' line N: REASON". */
int sconf_load(struct sampler_conf *c, const char *path, char *errstr, size_t errstr_size);

/* Sets one [sampler] setting by name (as a flag or the environment would);
 * "kafka.PROP" names go to sconf_add_kafka_prop().
 * Returns 0, or -1 with errstr "'NAME': REASON". */
int sconf_set(struct sampler_conf *c, const char *name, const char *value,
              char *errstr, size_t errstr_size);

/* Applies the environment: for each [sampler] setting NAME, the variable
 * TRACESIFT_NAME with NAME in capitals and '_' for '.' (TRACESIFT_BATCH_SIZE),
 * when it is set and not empty.  Returns 0, or -1 with errstr
 * "'TRACESIFT_NAME': REASON". */
int sconf_apply_env(struct sampler_conf *c, char *errstr, size_t errstr_size);

/* Sets the librdkafka property name to value for every client (as -X or a
 * "kafka.NAME = VALUE" line does), replacing an earlier value of name.
 * Returns 0, or -1 with errstr (empty name, out of memory). */
int sconf_add_kafka_prop(struct sampler_conf *c, const char *name, const char *value,
                         char *errstr, size_t errstr_size);

/* Checks the whole configuration once everything is applied (a default class
 * exists and is last, rates in [0,1], a rate limit has a window, redaction
 * patterns compile ...).  Returns 0, or -1 with errstr. */
int sconf_finish(struct sampler_conf *c, char *errstr, size_t errstr_size);

/* The settings table as text for --help: name, default, bounds, help. */
void sconf_help(FILE *out);

/* Index in c->classes of the first class whose predicates all hold for the
 * record buf (validated, with fields in *info).  Always a valid index: the
 * last class matches everything. */
int sconf_classify(const struct sampler_conf *c, const char *buf, const struct rec_info *info);

#endif
