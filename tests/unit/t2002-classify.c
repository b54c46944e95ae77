/* tests/unit/t2002-classify.c - sconf_classify: each predicate kind, first match wins, the default class */
#include "sconf.h"
#include "test.h"

static const char rules[] =
	"[class err]\n"
	"when = error\n"
	"rate = 1\n"
	"[class slow-gpt]\n"
	"when = latency_ms > 2000\n"
	"when = model = gpt-4o-mini\n"
	"rate = 0.5\n"
	"[class ttft]\n"
	"when = ttft_ms > 1000\n"
	"rate = 0.5\n"
	"[class big]\n"
	"when = tokens > 5000\n"
	"rate = 0.3\n"
	"[class review]\n"
	"when = tag = \"needs review\"   # quoted: keeps the space\n"
	"rate = 0.4\n"
	"[class ent]\n"
	"when = metadata.user_tier = enterprise\n"
	"rate = 0.2\n"
	"[class build]\n"
	"when = metadata.build = 42\n"
	"rate = 0.2\n"
	"[class canary]\n"
	"when = metadata.canary = true\n"
	"rate = 0.2\n"
	"[class named]\n"
	"when = name = \"summarize doc\"\n"
	"rate = 0.1\n"
	"[class cafe]\n"
	"when = tag = caf\xc3\xa9\n"
	"rate = 0.1\n"
	"[class both-tags]\n"
	"when = tag = a\n"
	"when = tag = b\n"
	"rate = 0.1\n"
	"[class rest]\n"
	"rate = 0.05\n";

static struct sampler_conf conf;

#define HEAD "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"," \
             "\"start_time\":\"2026-03-14T09:26:53.589793Z\",\"end_time\":\"2026-03-14T09:26:55.102311Z\","

/* The name of the class the record falls in; validates it from a buffer of
 * exactly its length (no NUL after it), so reading past it shows under ASan. */
static const char *classify(const char *rec)
{
	static char name[320];
	struct rec_info info;
	char err[256];
	size_t len = strlen(rec);
	char *buf = malloc(len);
	if (!buf)
		return "(oom)";
	memcpy(buf, rec, len);
	enum rec_reason r = rec_validate(buf, len, NULL, &info, err, sizeof(err));
	if (r != REC_OK) {
		free(buf);
		snprintf(name, sizeof(name), "(invalid: %s)", err);
		return name;
	}
	int i = sconf_classify(&conf, buf, &info);
	free(buf);
	if (i < 0 || i >= conf.nclasses)
		return "(out of range)";
	snprintf(name, sizeof(name), "%s", conf.classes[i].name);
	return name;
}

static const struct {
	const char *rec, *want;
} cases[] = {
	/* error */
	{ HEAD "\"name\":\"n\",\"error\":{\"type\":\"t\",\"message\":\"m\"}}", "err" },
	{ HEAD "\"name\":\"n\",\"error\":null}", "rest" },
	/* first match wins: an error that is also slow on gpt-4o-mini */
	{ HEAD "\"name\":\"n\",\"model\":\"gpt-4o-mini\",\"latency_ms\":{\"total\":3000},"
	  "\"error\":{\"type\":\"t\",\"message\":\"m\"}}", "err" },
	/* every 'when' must hold */
	{ HEAD "\"name\":\"n\",\"model\":\"gpt-4o-mini\",\"latency_ms\":{\"total\":2000.5}}", "slow-gpt" },
	{ HEAD "\"name\":\"n\",\"model\":\"gpt-4o-mini\",\"latency_ms\":{\"total\":2000}}", "rest" },
	{ HEAD "\"name\":\"n\",\"model\":\"gpt-4o\",\"latency_ms\":{\"total\":3000}}", "rest" },
	{ HEAD "\"name\":\"n\",\"model\":\"gpt-4o-mini-2024-07-18\",\"latency_ms\":{\"total\":3000}}", "rest" },
	{ HEAD "\"name\":\"n\",\"model\":null,\"latency_ms\":{\"total\":3000}}", "rest" },
	{ HEAD "\"name\":\"n\",\"model\":\"gpt-4o-mini\",\"latency_ms\":{\"total\":null}}", "rest" },
	/* slow-gpt before ttft */
	{ HEAD "\"name\":\"n\",\"model\":\"gpt-4o-mini\",\"latency_ms\":{\"total\":3e3,"
	  "\"time_to_first_token\":1500}}", "slow-gpt" },
	{ HEAD "\"name\":\"n\",\"latency_ms\":{\"total\":3000,\"time_to_first_token\":1000.001}}", "ttft" },
	{ HEAD "\"name\":\"n\",\"latency_ms\":{\"time_to_first_token\":1000}}", "rest" },
	/* tokens */
	{ HEAD "\"name\":\"n\",\"usage\":{\"input_tokens\":9000,\"total_tokens\":5001}}", "big" },
	{ HEAD "\"name\":\"n\",\"usage\":{\"input_tokens\":9000,\"total_tokens\":5000}}", "rest" },
	{ HEAD "\"name\":\"n\",\"usage\":{\"input_tokens\":9000}}", "rest" },
	/* tags, quoted value with a space */
	{ HEAD "\"name\":\"n\",\"tags\":[\"x\",\"needs review\"]}", "review" },
	{ HEAD "\"name\":\"n\",\"tags\":[\"needs\",\"review\"]}", "rest" },
	{ HEAD "\"name\":\"n\",\"tags\":[\"needs\\u0020review\"]}", "review" },
	{ HEAD "\"name\":\"n\",\"tags\":[\"needs review \"]}", "rest" },
	/* metadata strings */
	{ HEAD "\"name\":\"n\",\"metadata\":{\"user_tier\":\"enterprise\"}}", "ent" },
	{ HEAD "\"name\":\"n\",\"metadata\":{\"user_tier\":\"Enterprise\"}}", "rest" },
	{ HEAD "\"name\":\"n\",\"metadata\":{\"tier\":\"enterprise\"}}", "rest" },
	{ HEAD "\"name\":\"n\",\"metadata\":{\"x\":{\"user_tier\":\"enterprise\"}}}", "rest" },
	{ HEAD "\"name\":\"n\",\"metadata\":{\"user_tier\":[\"enterprise\"]}}", "rest" },
	/* metadata numbers and booleans: their JSON text */
	{ HEAD "\"name\":\"n\",\"metadata\":{\"build\":42}}", "build" },
	{ HEAD "\"name\":\"n\",\"metadata\":{\"build\":\"42\"}}", "build" },
	{ HEAD "\"name\":\"n\",\"metadata\":{\"build\":42.0}}", "rest" },
	{ HEAD "\"name\":\"n\",\"metadata\":{\"build\":420}}", "rest" },
	{ HEAD "\"name\":\"n\",\"metadata\":{\"canary\":true}}", "canary" },
	{ HEAD "\"name\":\"n\",\"metadata\":{\"canary\":\"true\"}}", "canary" },
	{ HEAD "\"name\":\"n\",\"metadata\":{\"canary\":false}}", "rest" },
	{ HEAD "\"name\":\"n\",\"metadata\":{\"canary\":null}}", "rest" },
	/* name, escaped in the record */
	{ HEAD "\"name\":\"summarize doc\"}", "named" },
	{ HEAD "\"name\":\"summarize\\u0020d\\u006fc\"}", "named" },
	{ HEAD "\"name\":\"summarize\"}", "rest" },
	/* an escaped tag against a UTF-8 value */
	{ HEAD "\"name\":\"n\",\"tags\":[\"caf\\u00e9\"]}", "cafe" },
	{ HEAD "\"name\":\"n\",\"tags\":[\"caf\xc3\xa9\"]}", "cafe" },
	{ HEAD "\"name\":\"n\",\"tags\":[\"cafe\"]}", "rest" },
	/* two tag predicates, both must hold */
	{ HEAD "\"name\":\"n\",\"tags\":[\"b\",\"a\"]}", "both-tags" },
	{ HEAD "\"name\":\"n\",\"tags\":[\"a\"]}", "rest" },
	/* only the record's own fields count, not its spans' */
	{ HEAD "\"name\":\"n\",\"spans\":[{\"span_id\":\"00f067aa0ba902b7\",\"name\":\"s\",\"type\":\"llm\","
	  "\"start_time\":\"2026-03-14T09:26:53.589793Z\",\"end_time\":\"2026-03-14T09:26:54Z\","
	  "\"error\":{\"type\":\"t\",\"message\":\"m\"},\"tags\":[\"needs review\"],"
	  "\"usage\":{\"total_tokens\":9999},\"metadata\":{\"user_tier\":\"enterprise\"}}]}", "rest" },
	/* nothing at all */
	{ HEAD "\"name\":\"n\"}", "rest" },
};

static void each_predicate(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = classify(cases[i].rec);
		CHECK(!strcmp(got, cases[i].want), "case %zu: '%s', want '%s': %s", i, got, cases[i].want,
		      cases[i].rec);
	}
	t_note("%zu records", sizeof(cases) / sizeof(cases[0]));
}

/* A conf with no classes gets the default one: everything lands there. */
static void only_default(void)
{
	struct sampler_conf c;
	struct rec_info info;
	char err[256];
	const char *rec = HEAD "\"name\":\"n\",\"error\":{\"type\":\"t\",\"message\":\"m\"}}";
	sconf_init(&c);
	REQUIRE(sconf_finish(&c, err, sizeof(err)) == 0, "%s", err);
	REQUIRE(rec_validate(rec, strlen(rec), NULL, &info, err, sizeof(err)) == REC_OK, "%s", err);
	CHECK(sconf_classify(&c, rec, &info) == 0, "the default class");
	sconf_release(&c);
}

/* The loadgen-like example records fall where the deploy config says. */
static void deploy_rules(void)
{
	struct sampler_conf c;
	struct rec_info info;
	char err[512], path[1024];
	const char *top = getenv("TS_TOP");
	snprintf(path, sizeof(path), "%s/deploy/sampler.conf", top && *top ? top : ".");
	sconf_init(&c);
	int rc = sconf_load(&c, path, err, sizeof(err));
	CHECK(rc == 0, "%s", err);
	if (rc == 0) {
		static const struct { const char *rec, *want; } d[] = {
			{ HEAD "\"name\":\"n\",\"error\":{\"type\":\"t\",\"message\":\"m\"}}", "errors" },
			{ HEAD "\"name\":\"n\",\"latency_ms\":{\"total\":2500}}", "slow" },
			{ HEAD "\"name\":\"n\",\"latency_ms\":{\"total\":1500,\"time_to_first_token\":2100}}",
			  "slow-first-token" },
			{ HEAD "\"name\":\"n\",\"metadata\":{\"user_tier\":\"enterprise\"}}", "enterprise" },
			{ HEAD "\"name\":\"n\",\"metadata\":{\"user_tier\":\"free\"}}", "default" },
		};
		for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
			REQUIRE(rec_validate(d[i].rec, strlen(d[i].rec), NULL, &info, err, sizeof(err)) == REC_OK,
			        "%s", err);
			int k = sconf_classify(&c, d[i].rec, &info);
			CHECK(k >= 0 && k < c.nclasses && !strcmp(c.classes[k].name, d[i].want),
			      "%zu: %s, want %s", i, k >= 0 && k < c.nclasses ? c.classes[k].name : "?", d[i].want);
		}
	}
	sconf_release(&c);
}

int main(void)
{
	char path[] = "/tmp/t2002-XXXXXX", err[512];
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, rules, sizeof(rules) - 1) != (ssize_t)(sizeof(rules) - 1)) {
		printf("not ok - write rules\n");
		return 1;
	}
	close(fd);
	sconf_init(&conf);
	if (sconf_load(&conf, path, err, sizeof(err)) || sconf_finish(&conf, err, sizeof(err))) {
		printf("# %s\nnot ok - load rules\n", err);
		sconf_release(&conf);
		unlink(path);
		return 1;
	}
	unlink(path);
	RUN(each_predicate);
	RUN(only_default);
	RUN(deploy_rules);
	sconf_release(&conf);
	TEST_EXIT();
}
