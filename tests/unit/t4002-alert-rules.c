/* tests/unit/t4002-alert-rules.c - alert rules: parsing both word orders, units, errors; aggregates and firing */
#include "test.h"

#include <math.h>

#include "alert.h"

static void parses_rules(void)
{
	static const struct {
		const char *when, *metric;
		enum agg_kind agg;
		double arg;
		enum alert_op op;
		double bound;
	} ok[] = {
		{ "hallucination share above 0.5 > 0.2", "hallucination", AGG_SHARE_ABOVE, 0.5, OP_GT, 0.2 },
		{ "moderation any > 0.8", "moderation", AGG_MAX, 0, OP_GT, 0.8 },
		{ "p90 time_to_first_token > 2000 ms", "time_to_first_token", AGG_P90, 0, OP_GT, 2000 },
		{ "p99 latency >= 2 s", "latency", AGG_P99, 0, OP_GE, 2000 },
		{ "answer_relevance mean < 0.6", "answer_relevance", AGG_MEAN, 0, OP_LT, 0.6 },
		{ "grounding errors > 10 %", "grounding", AGG_ERRORS, 0, OP_GT, 0.1 },
		{ "share below 0.3 style <= 0.5", "style", AGG_SHARE_BELOW, 0.3, OP_LE, 0.5 },
		{ "refusal all > 0", "refusal", AGG_MIN, 0, OP_GT, 0 },
		{ "tokens count > 40", "tokens", AGG_COUNT, 0, OP_GT, 40 },
		{ "  latency   median  >  5  ", "latency", AGG_P50, 0, OP_GT, 5 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct alert_rule r;
		char err[256];
		int rc = alert_rule_parse(&r, "a", ok[i].when, err, sizeof(err));
		CHECK(rc == 0, "'%s': %s", ok[i].when, err);
		if (rc)
			continue;
		CHECK(!strcmp(r.metric, ok[i].metric), "'%s': metric %s", ok[i].when, r.metric);
		CHECK(r.agg == ok[i].agg, "'%s': agg %d", ok[i].when, r.agg);
		CHECK(fabs(r.agg_arg - ok[i].arg) < 1e-12, "'%s': arg %g", ok[i].when, r.agg_arg);
		CHECK(r.op == ok[i].op, "'%s': op %d", ok[i].when, r.op);
		CHECK(fabs(r.bound - ok[i].bound) < 1e-12, "'%s': bound %g", ok[i].when, r.bound);
		alert_rule_release(&r);
	}
}

static void refuses_bad_rules(void)
{
	static const struct { const char *when, *want; } bad[] = {
		{ "latency p90 2000", "no comparison" },
		{ "latency p90 >", "expected a number" },
		{ "latency p90 > x", "expected a number" },
		{ "latency p90 > 5 hours", "unexpected 'hours'" },
		{ "latency p42 > 5", "unknown aggregate 'latency'" },
		{ "p90 > 5", "no metric" },
		{ "latency > 5", "no aggregate" },
		{ "latency share above > 5", "share above X" },
		{ "latency p90 mean > 5", "two aggregates" },
		{ "latency p90 > 5 > 6", "two comparisons" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct alert_rule r;
		char err[256] = "";
		CHECK(alert_rule_parse(&r, "rule1", bad[i].when, err, sizeof(err)) == -1, "'%s' accepted",
		      bad[i].when);
		CHECK(strstr(err, bad[i].want) && strstr(err, "alert 'rule1'"), "'%s': %s", bad[i].when, err);
	}
}

static void aggregates_and_firing(void)
{
	double s[] = { 0.9, 0.1, 0.4, 0.7, 0.2, 0.3, 0.8, 0.5, 0.6, 1.0 };
	struct metric_agg a;
	metric_agg_compute(s, 10, 2, 0.5, &a);
	CHECK(a.n == 10 && a.errors == 2, "n %d errors %d", a.n, a.errors);
	CHECK(fabs(a.mean - 0.55) < 1e-12, "mean %g", a.mean);
	CHECK(a.p50 == 0.5 && a.p90 == 0.9 && a.p99 == 1.0, "p50 %g p90 %g p99 %g", a.p50, a.p90, a.p99);
	CHECK(a.min == 0.1 && a.max == 1.0, "min %g max %g", a.min, a.max);
	CHECK(a.above == 5 && a.share_above == 0.5, "above %d share %g", a.above, a.share_above);

	struct alert_rule r;
	char err[256];
	int rc = alert_rule_parse(&r, "a", "m share above 0.75 > 0.2", err, sizeof(err));   /* REQUIRE evaluates twice */
	REQUIRE(rc == 0, "%s", err);
	double v = alert_value(&r, s, 10, 2);
	CHECK(fabs(v - 0.3) < 1e-12 && alert_fires(&r, v), "share above 0.75 = %g", v);
	alert_rule_release(&r);
	rc = alert_rule_parse(&r, "a", "m errors > 0.2", err, sizeof(err));   /* REQUIRE evaluates twice */
	REQUIRE(rc == 0, "%s", err);
	v = alert_value(&r, s, 10, 2);
	CHECK(fabs(v - 2.0 / 12) < 1e-12 && !alert_fires(&r, v), "errors = %g", v);
	alert_rule_release(&r);
	rc = alert_rule_parse(&r, "a", "m mean < 0.6", err, sizeof(err));   /* REQUIRE evaluates twice */
	REQUIRE(rc == 0, "%s", err);
	CHECK(alert_fires(&r, alert_value(&r, s, 10, 0)), "mean 0.55 < 0.6");
	CHECK(!alert_fires(&r, alert_value(&r, s, 0, 3)), "no scores: nothing to look at, no alert");
	alert_rule_release(&r);

	metric_agg_compute(NULL, 0, 4, 0.5, &a);
	CHECK(a.n == 0 && isnan(a.mean) && isnan(a.p90) && isnan(a.share_above), "empty");
}

int main(void)
{
	RUN(parses_rules);
	RUN(refuses_bad_rules);
	RUN(aggregates_and_firing);
	TEST_EXIT();
}
