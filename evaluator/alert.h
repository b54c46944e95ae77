/* evaluator/alert.h - aggregates of a run's scores, and the alert rules that look at them
 *
 * A rule is one line: a metric, an aggregate and a bound, in either order:
 *
 *   hallucination share above 0.5 > 0.2     more than 20% of items score above 0.5
 *   moderation any > 0.8                    some item scores above 0.8 (any = max)
 *   p90 time_to_first_token > 2000 ms       (a unit after the bound is allowed: ms, s, %)
 *   answer_relevance mean < 0.6
 *   grounding errors > 0.1                  share of items the metric could not score
 *
 * Aggregates: mean, p50, p90, p95, p99, min, max, any (max), all (min),
 * share above X, share below X, errors, count.  Operators: > >= < <=.
 */
#ifndef TS_EVAL_ALERT_H
#define TS_EVAL_ALERT_H

#include <stddef.h>

enum agg_kind {
	AGG_MEAN, AGG_P50, AGG_P90, AGG_P95, AGG_P99, AGG_MIN, AGG_MAX,
	AGG_SHARE_ABOVE, AGG_SHARE_BELOW, AGG_ERRORS, AGG_COUNT
};

enum alert_op { OP_GT, OP_GE, OP_LT, OP_LE };

struct alert_rule {
	char *name;              /* the [alert NAME] */
	char *when;              /* the rule as written */
	char *metric;            /* the metric it looks at */
	enum agg_kind agg;
	double agg_arg;          /* share above/below: the score bound */
	enum alert_op op;
	double bound;
};

/* What a run's scores of one metric add up to.  Percentiles are nearest
 * rank over the scored items; everything is NAN when n is 0. */
struct metric_agg {
	int n;                   /* items scored */
	int errors;              /* items the metric could not score */
	double mean, p50, p90, p95, p99, min, max;
	double threshold;
	int above;               /* scored items above the threshold */
	double share_above;      /* above / n */
};

/* Parses when into r (name and when copied).  Returns 0, or -1 with errstr
 * ("alert 'x': unknown aggregate 'p42' (expected ...)"). */
int alert_rule_parse(struct alert_rule *r, const char *name, const char *when,
                     char *errstr, size_t errstr_size);
void alert_rule_release(struct alert_rule *r);

/* Sorts scores (n of them) and fills a. */
void metric_agg_compute(double *scores, int n, int errors, double threshold, struct metric_agg *a);

/* The rule's aggregate over the sorted scores; NAN when there is nothing to
 * look at (no scored item, for everything but errors and count). */
double alert_value(const struct alert_rule *r, const double *sorted, int n, int errors);

/* 1 when value crosses the bound (never for NAN). */
int alert_fires(const struct alert_rule *r, double value);

/* The aggregate's words ("share above 0.5", "p90"), for messages. */
void alert_agg_text(const struct alert_rule *r, char *buf, size_t size);
const char *alert_op_text(enum alert_op op);

#endif
