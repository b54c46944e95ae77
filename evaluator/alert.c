/* evaluator/alert.c - aggregates of a run's scores, and parsing and checking alert rules */
#include "alert.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errfmt.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest score with at least q of the scores at or below it. */
static double percentile(const double *sorted, int n, double q)
{
	if (n <= 0)
		return NAN;
	int k = (int)ceil(q * n);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return sorted[k - 1];
}

static double share(const double *sorted, int n, double x, int above)
{
	if (n <= 0)
		return NAN;
	int c = 0;
	for (int i = 0; i < n; i++)
		c += above ? sorted[i] > x : sorted[i] < x;
	return (double)c / n;
}

void metric_agg_compute(double *scores, int n, int errors, double threshold, struct metric_agg *a)
{
	double sum = 0;
	memset(a, 0, sizeof(*a));
	a->n = n;
	a->errors = errors;
	a->threshold = threshold;
	if (n > 0)
		qsort(scores, (size_t)n, sizeof(*scores), cmp_double);
	for (int i = 0; i < n; i++) {
		sum += scores[i];
		a->above += scores[i] > threshold;
	}
	a->mean = n ? sum / n : NAN;
	a->p50 = percentile(scores, n, 0.50);
	a->p90 = percentile(scores, n, 0.90);
	a->p95 = percentile(scores, n, 0.95);
	a->p99 = percentile(scores, n, 0.99);
	a->min = n ? scores[0] : NAN;
	a->max = n ? scores[n - 1] : NAN;
	a->share_above = n ? (double)a->above / n : NAN;
}

double alert_value(const struct alert_rule *r, const double *sorted, int n, int errors)
{
	double sum = 0;
	switch (r->agg) {
	case AGG_MEAN:
		for (int i = 0; i < n; i++)
			sum += sorted[i];
		return n ? sum / n : NAN;
	case AGG_P50: return percentile(sorted, n, 0.50);
	case AGG_P90: return percentile(sorted, n, 0.90);
	case AGG_P95: return percentile(sorted, n, 0.95);
	case AGG_P99: return percentile(sorted, n, 0.99);
	case AGG_MIN: return n ? sorted[0] : NAN;
	case AGG_MAX: return n ? sorted[n - 1] : NAN;
	case AGG_SHARE_ABOVE: return share(sorted, n, r->agg_arg, 1);
	case AGG_SHARE_BELOW: return share(sorted, n, r->agg_arg, 0);
	case AGG_ERRORS: return n + errors ? (double)errors / (n + errors) : NAN;
	case AGG_COUNT: return n;
	}
	return NAN;
}

int alert_fires(const struct alert_rule *r, double v)
{
	if (isnan(v))
		return 0;
	switch (r->op) {
	case OP_GT: return v > r->bound;
	case OP_GE: return v >= r->bound;
	case OP_LT: return v < r->bound;
	case OP_LE: return v <= r->bound;
	}
	return 0;
}

const char *alert_op_text(enum alert_op op)
{
	static const char *const text[] = { ">", ">=", "<", "<=" };
	return text[op];
}

void alert_agg_text(const struct alert_rule *r, char *buf, size_t size)
{
	static const char *const names[] = { "mean", "p50", "p90", "p95", "p99", "min", "max",
	                                     "share above", "share below", "errors", "count" };
	if (r->agg == AGG_SHARE_ABOVE || r->agg == AGG_SHARE_BELOW)
		snprintf(buf, size, "%s %g", names[r->agg], r->agg_arg);
	else
		snprintf(buf, size, "%s", names[r->agg]);
}

static int parse_number(const char *s, double *out)
{
	char *end;
	if (!*s)
		return -1;
	*out = strtod(s, &end);
	return *end || !isfinite(*out) ? -1 : 0;
}

static const struct {
	const char *word;
	enum agg_kind agg;
} AGGS[] = {
	{ "mean", AGG_MEAN }, { "avg", AGG_MEAN }, { "p50", AGG_P50 }, { "median", AGG_P50 },
	{ "p90", AGG_P90 }, { "p95", AGG_P95 }, { "p99", AGG_P99 }, { "min", AGG_MIN },
	{ "all", AGG_MIN }, { "max", AGG_MAX }, { "any", AGG_MAX }, { "errors", AGG_ERRORS },
	{ "count", AGG_COUNT },
};

#define MAX_WORDS 8

int alert_rule_parse(struct alert_rule *r, const char *name, const char *when,
                     char *errstr, size_t size)
{
	char buf[512], *w[MAX_WORDS + 1], *save = NULL;
	int nw = 0, op = -1, have_agg = 0;
	const char *metric = NULL;

	memset(r, 0, sizeof(*r));
	if (strlen(when) >= sizeof(buf))
		return errfmt(errstr, size, "alert '%s': rule too long", name);
	strcpy(buf, when);
	for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (nw == MAX_WORDS)
			return errfmt(errstr, size, "alert '%s': too many words in '%s'", name, when);
		w[nw++] = t;
	}
	for (int i = 0; i < nw; i++) {
		static const char *const ops[] = { ">", ">=", "<", "<=" };
		for (int k = 0; k < 4; k++)
			if (!strcmp(w[i], ops[k])) {
				if (op >= 0)
					return errfmt(errstr, size, "alert '%s': two comparisons in '%s'", name, when);
				op = i;
				r->op = (enum alert_op)k;
			}
	}
	if (op < 0)
		return errfmt(errstr, size, "alert '%s': no comparison in '%s' (expected e.g. "
		            "'hallucination share above 0.5 > 0.2' or 'p90 latency > 2000 ms')", name, when);
	/* the bound, and an optional unit */
	if (op + 1 >= nw || parse_number(w[op + 1], &r->bound))
		return errfmt(errstr, size, "alert '%s': expected a number after '%s' in '%s'",
		            name, w[op], when);
	if (op + 2 < nw) {
		const char *unit = w[op + 2];
		if (op + 3 < nw || (strcmp(unit, "ms") && strcmp(unit, "s") && strcmp(unit, "%")))
			return errfmt(errstr, size, "alert '%s': unexpected '%s' after the bound "
			            "(a unit may follow it: ms, s or %%)", name, unit);
		if (!strcmp(unit, "s"))
			r->bound *= 1000;
		else if (!strcmp(unit, "%"))
			r->bound /= 100;
	}
	/* the left side: the metric and its aggregate, in either order */
	for (int i = 0; i < op; i++) {
		int found = 0;
		if (!strcasecmp(w[i], "share")) {
			if (i + 2 >= op || (strcasecmp(w[i + 1], "above") && strcasecmp(w[i + 1], "below")) ||
			    parse_number(w[i + 2], &r->agg_arg))
				return errfmt(errstr, size, "alert '%s': expected 'share above X' or 'share "
				            "below X' in '%s'", name, when);
			if (have_agg)
				return errfmt(errstr, size, "alert '%s': two aggregates in '%s'", name, when);
			r->agg = strcasecmp(w[i + 1], "above") ? AGG_SHARE_BELOW : AGG_SHARE_ABOVE;
			have_agg = 1;
			i += 2;
			continue;
		}
		for (size_t k = 0; k < sizeof(AGGS) / sizeof(AGGS[0]); k++)
			if (!strcasecmp(w[i], AGGS[k].word)) {
				if (have_agg)
					return errfmt(errstr, size, "alert '%s': two aggregates in '%s'", name, when);
				r->agg = AGGS[k].agg;
				have_agg = found = 1;
			}
		if (found)
			continue;
		if (metric)
			return errfmt(errstr, size, "alert '%s': unknown aggregate '%s' in '%s' (expected "
			            "mean, p50, p90, p95, p99, min, max, any, all, share above X, share "
			            "below X, errors or count)", name, metric, when);
		metric = w[i];
	}
	if (!metric)
		return errfmt(errstr, size, "alert '%s': no metric in '%s'", name, when);
	if (!have_agg)
		return errfmt(errstr, size, "alert '%s': no aggregate in '%s' (expected mean, p50, p90, "
		            "p95, p99, min, max, any, all, share above X, share below X, errors or count)",
		            name, when);
	if (!(r->name = strdup(name)) || !(r->when = strdup(when)) || !(r->metric = strdup(metric))) {
		alert_rule_release(r);
		return errfmt(errstr, size, "out of memory");
	}
	return 0;
}

void alert_rule_release(struct alert_rule *r)
{
	free(r->name);
	free(r->when);
	free(r->metric);
	memset(r, 0, sizeof(*r));
}
