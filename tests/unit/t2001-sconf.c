/* tests/unit/t2001-sconf.c - the sampler's config: file syntax, every refusal with its line, settings table */
#include "sconf.h"
#include "test.h"

#include <math.h>
#include <sys/stat.h>

static char tmpdir[256];

/* Writes text to a new file in the test's directory; returns its path (static). */
static const char *write_conf(const char *text)
{
	static char path[512];
	static int n;
	snprintf(path, sizeof(path), "%s/c%d.conf", tmpdir, n++);
	FILE *f = fopen(path, "w");
	if (!f)
		return NULL;
	fputs(text, f);
	fclose(f);
	return path;
}

static const char *top_path(const char *rel)
{
	static char path[1024];
	const char *top = getenv("TS_TOP");
	snprintf(path, sizeof(path), "%s/%s", top && *top ? top : ".", rel);
	return path;
}

/* The config of docs/sampling.md's and the example, inline comments and all. */
static const char full_conf[] =
	"# comment ; also comment\n"
	"; a comment too\n"
	"\n"
	"[sampler]\n"
	"brokers = 127.0.0.1:9092\n"
	"seed = 42\n"
	"batch.size = 50\n"
	"kafka.linger.ms = 20            # kafka.* lines become librdkafka properties (kafka_props)\n"
	"   input=traces.in   \n"
	"group = \"my group # not a comment\"\n"
	"projection = input, context,metadata\n"
	"max.record.bytes = 2048\n"
	"metrics.file = /tmp/x.prom\n"
	"commit.interval.ms = 10\n"
	"stats.interval.ms = 0\n"
	"batch.max.wait.ms = 60000\n"
	"instance = 3\n"
	"kafka.security.protocol = SASL_SSL\n"
	"[class errors]\n"
	"when = error\n"
	"rate = 1.0\n"
	"dataset = incidents\n"
	"[class slow]\n"
	"when = latency_ms > 2000\n"
	"when = model = gpt-4o-mini      # several 'when' lines: all must hold\n"
	"rate = 0.5\n"
	"limit = 10/s                    # or N/min\n"
	"[ class  vip ]\n"
	"when = metadata.user_tier = \"enterprise plus\"\n"
	"when=tag=beta\n"
	"when = ttft_ms > 1.5e3\n"
	"when = tokens>100\n"
	"when = name = \"say \\\"hi\\\"\"\n"
	"when = metadata.\"odd key\" = 3\n"
	"rate = 0\n"
	"limit = 5 / min\n"
	"dataset = vip.v-2_x\n"
	"[class default]\n"
	"rate = 0.05\n"
	"[redact]\n"
	"builtin = email, phone, api_key\n"
	"pattern = secret-[0-9]+ => [SECRET]   # POSIX ERE => replacement\n"
	"pattern = \"a => b\" => \"[A B]\"\n"
	"pattern = (x)(y) => \\2\\1\n"
	"pattern = drop-me =>\n";

static void full_config(void)
{
	struct sampler_conf c;
	char err[512] = "";
	const char *path = write_conf(full_conf);
	sconf_init(&c);
	int rc = sconf_load(&c, path, err, sizeof(err));
	CHECK(rc == 0, "load: %s", err);
	if (rc == 0) {
		rc = sconf_finish(&c, err, sizeof(err));
		CHECK(rc == 0, "finish: %s", err);
	}
	if (rc) {
		sconf_release(&c);
		return;
	}
	CHECK(!strcmp(c.brokers, "127.0.0.1:9092"), "brokers %s", c.brokers);
	CHECK(!strcmp(c.input, "traces.in"), "input '%s'", c.input);
	CHECK(!strcmp(c.output, "llm.monitoring"), "output default %s", c.output);
	CHECK(!strcmp(c.group, "my group # not a comment"), "group '%s'", c.group);
	CHECK(!strcmp(c.transactional_id, "my group # not a comment-3"), "txn id '%s'", c.transactional_id);
	CHECK(c.seed == 42 && c.batch_size == 50 && c.instance == 3, "numbers");
	CHECK(c.commit_interval_ms == 10 && c.stats_interval_ms == 0 && c.batch_max_wait_ms == 60000,
	      "intervals");
	CHECK(c.max_record_bytes == 2048, "max.record.bytes");
	CHECK(c.projection == PROJ_FIELDS && c.proj_fields == (PROJ_INPUT | PROJ_CONTEXT | PROJ_METADATA),
	      "projection %d %d", c.projection, c.proj_fields);
	CHECK(c.metrics_file && !strcmp(c.metrics_file, "/tmp/x.prom"), "metrics.file");
	REQUIRE(c.nkafka_props == 2, "kafka props %d", c.nkafka_props);
	CHECK(!strcmp(c.kafka_props[0], "linger.ms") && !strcmp(c.kafka_props[1], "20") &&
	      !strcmp(c.kafka_props[2], "security.protocol") && !strcmp(c.kafka_props[3], "SASL_SSL"),
	      "kafka props");

	REQUIRE(c.nclasses == 4, "%d classes", c.nclasses);
	const struct sclass *k = c.classes;
	CHECK(!strcmp(k[0].name, "errors") && k[0].npreds == 1 && k[0].preds[0].kind == PRED_ERROR &&
	      k[0].rate == 1.0 && !strcmp(k[0].dataset, "incidents") && k[0].limit == 0, "errors");
	CHECK(!strcmp(k[1].name, "slow") && k[1].npreds == 2 && k[1].rate == 0.5 &&
	      !strcmp(k[1].dataset, "monitoring") && k[1].limit == 10 && k[1].limit_window_ms == 1000,
	      "slow");
	if (k[1].npreds == 2) {
		CHECK(k[1].preds[0].kind == PRED_LATENCY_GT && k[1].preds[0].bound == 2000, "latency");
		CHECK(k[1].preds[1].kind == PRED_MODEL && !strcmp(k[1].preds[1].value, "gpt-4o-mini"),
		      "model '%s'", k[1].preds[1].value);
	}
	CHECK(!strcmp(k[2].name, "vip") && k[2].npreds == 6 && k[2].rate == 0 &&
	      k[2].limit == 5 && k[2].limit_window_ms == 60000 && !strcmp(k[2].dataset, "vip.v-2_x"),
	      "vip");
	if (k[2].npreds == 6) {
		const struct pred *p = k[2].preds;
		CHECK(p[0].kind == PRED_META_EQ && !strcmp(p[0].key, "user_tier") &&
		      !strcmp(p[0].value, "enterprise plus"), "metadata '%s' '%s'", p[0].key, p[0].value);
		CHECK(p[1].kind == PRED_TAG && !strcmp(p[1].value, "beta"), "tag");
		CHECK(p[2].kind == PRED_TTFT_GT && p[2].bound == 1500, "ttft %g", p[2].bound);
		CHECK(p[3].kind == PRED_TOKENS_GT && p[3].bound == 100, "tokens");
		CHECK(p[4].kind == PRED_NAME && !strcmp(p[4].value, "say \"hi\""), "name '%s'", p[4].value);
		CHECK(p[5].kind == PRED_META_EQ && !strcmp(p[5].key, "odd key") && !strcmp(p[5].value, "3"),
		      "quoted key '%s'", p[5].key);
	}
	CHECK(!strcmp(k[3].name, "default") && k[3].npreds == 0 && k[3].rate == 0.05, "default");

	REQUIRE(c.nredact == 7, "%d redaction rules", c.nredact);
	const struct redact_rule *r = c.redact;
	CHECK(!strcmp(r[0].builtin, "email") && !strcmp(r[1].builtin, "phone") &&
	      !strcmp(r[2].builtin, "api_key") && !r[0].pattern && !r[0].replacement, "builtins");
	CHECK(!r[3].builtin && !strcmp(r[3].pattern, "secret-[0-9]+") &&
	      !strcmp(r[3].replacement, "[SECRET]"), "pattern '%s' '%s'", r[3].pattern, r[3].replacement);
	CHECK(!strcmp(r[4].pattern, "a => b") && !strcmp(r[4].replacement, "[A B]"), "quoted '%s' '%s'",
	      r[4].pattern, r[4].replacement);
	CHECK(!strcmp(r[5].pattern, "(x)(y)") && !strcmp(r[5].replacement, "\\2\\1"), "groups");
	CHECK(!strcmp(r[6].pattern, "drop-me") && !strcmp(r[6].replacement, ""), "empty replacement");
	sconf_release(&c);
	sconf_release(&c); /* twice is harmless */
}

struct bad {
	const char *text;
	int line;            /* 0: the message has no line */
	const char *reason;  /* what follows "'PATH' line N: " (a prefix of it) */
};

static const struct bad bads[] = {
	{ "brokers = x\n", 1, "'brokers' is outside a section" },
	{ "# c\n\n  [sampler]\nfoo = 1\n", 4, "unknown setting 'foo'" },
	{ "[sampler]\nbatch.size = abc\n", 2, "'batch.size': expected an integer, not 'abc'" },
	{ "[sampler]\nbatch.size = 5x\n", 2, "'batch.size': expected an integer, not '5x'" },
	{ "[sampler]\nbatch.size = 99999999999999999999\n", 2, "'batch.size': expected an integer" },
	{ "[sampler]\ncommit.interval.ms = 5\n", 2, "'commit.interval.ms': 5 is out of bounds (10..60000)" },
	{ "[sampler]\nbatch.size = -1\n", 2, "'batch.size': -1 is out of bounds (0..1000000)" },
	{ "[sampler]\nseed = -1\n", 2, "'seed': expected a number from 0 to 2^64-1" },
	{ "[sampler]\nseed = 0xZZ\n", 2, "'seed': expected a number" },
	{ "[sampler]\nseed = 18446744073709551616\n", 2, "'seed': expected a number" },
	{ "[sampler]\ninput = a b\n", 2, "'input': 'a b' is not a valid topic name" },
	{ "[sampler]\noutput = ..\n", 2, "'output': '..' is not a valid topic name" },
	{ "[sampler]\nbrokers = \"\"\n", 2, "'brokers': expected a value" },
	{ "[sampler]\nprojection = input,answer\n", 2, "'projection': expected full or a list" },
	{ "[sampler]\nprojection = input,\n", 2, "'projection': expected full or a list" },
	{ "[sampler]\nbrokers = \"abc\n", 2, "'brokers': no closing quote" },
	{ "[sampler]\nbrokers = \"abc\" def\n", 2, "'brokers': text after the closing quote" },
	{ "[sampler]\nseed = 1\nseed = 2\n", 3, "'seed' appears twice in [sampler]" },
	{ "[sampler]\nkafka.acks = 1\nkafka.acks = all\n", 3, "'kafka.acks' appears twice in [sampler]" },
	{ "[sampler]\nkafka. = 1\n", 2, "'kafka.': empty librdkafka property name" },
	{ "[sampler]\n[sampler]\n", 2, "section '[sampler]' appears twice" },
	{ "[redact]\n[class a]\nrate=1\n[redact]\n", 4, "section '[redact]' appears twice" },
	{ "[sampler]\nbrokers 127.0.0.1\n", 2, "missing '=' in 'brokers 127.0.0.1'" },
	{ "[sampler]\n= 5\n", 2, "missing name before '='" },
	{ "[sampler]\nbatch size = 5\n", 2, "invalid name 'batch size'" },
	{ "[sampler\n", 1, "no ']' in section header" },
	{ "[sampler] x\n", 1, "text after section header '[sampler]'" },
	{ "[samplers]\n", 1, "unknown section '[samplers]'" },
	{ "[classy]\n", 1, "unknown section '[classy]'" },
	{ "[class]\n", 1, "class section without a name" },
	{ "[class a/b]\n", 1, "class name 'a/b' is not 1 to 100 of" },
	{ "[class a]\nwhen = error\nrate = 1\n[class a]\nrate = 1\n", 4, "class 'a' appears twice" },
	{ "[class a]\nrate = 1\n\n[class b]\nwhen = error\nrate = 1\n", 1,
	  "class 'a' has no 'when' but is not last" },
	{ "[class a]\nwhen = error\n[class b]\nrate = 0\n", 1, "class 'a' has no 'rate'" },
	{ "[class a]\nwhen = error\n", 1, "class 'a' has no 'rate'" },
	{ "[class default]\nwhen = error\nrate = 1\n", 1, "class 'default' has 'when' lines" },
	{ "[class a]\nrate = 1.5\n", 2, "'rate': expected a number from 0 to 1, not '1.5'" },
	{ "[class a]\nrate = -0.1\n", 2, "'rate': expected a number from 0 to 1, not '-0.1'" },
	{ "[class a]\nrate = half\n", 2, "'rate': expected a number from 0 to 1, not 'half'" },
	{ "[class a]\nrate = nan\n", 2, "'rate': expected a number from 0 to 1, not 'nan'" },
	{ "[class a]\nrate = 1\nrate = 1\n", 3, "'rate' appears twice in class 'a'" },
	{ "[class a]\ndataset = \"a b\"\n", 2, "'dataset': 'a b' is not a valid dataset name" },
	{ "[class a]\ndataset = \"\"\n", 2, "'dataset': '' is not a valid dataset name" },
	{ "[class a]\ndataset = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", 2, "'dataset': 'xxx" },
	{ "[class a]\nlimit = 10/h\n", 2, "'limit': expected N/s or N/min" },
	{ "[class a]\nlimit = 0/s\n", 2, "'limit': expected N/s or N/min" },
	{ "[class a]\nlimit = ten/s\n", 2, "'limit': expected N/s or N/min" },
	{ "[class a]\ncolour = red\n", 2, "unknown key 'colour' in class 'a'" },
	{ "[class a]\nwhen =\n", 2, "'when' needs a predicate" },
	{ "[class a]\nwhen = colour = red\n", 2, "invalid predicate 'colour = red': expected error, tag = X" },
	{ "[class a]\nwhen = errors\n", 2, "invalid predicate 'errors'" },
	{ "[class a]\nwhen = error = 1\n", 2, "invalid predicate 'error = 1'" },
	{ "[class a]\nwhen = latency_ms = 5\n", 2, "invalid predicate 'latency_ms = 5': 'latency_ms' takes '> N'" },
	{ "[class a]\nwhen = latency_ms >= 5\n", 2, "invalid predicate 'latency_ms >= 5': 'latency_ms' takes '> N'" },
	{ "[class a]\nwhen = tag > 5\n", 2, "invalid predicate 'tag > 5': 'tag' takes '= VALUE'" },
	{ "[class a]\nwhen = model == x\n", 2, "invalid predicate 'model == x': 'model' takes '= VALUE'" },
	{ "[class a]\nwhen = tokens > many\n", 2, "invalid predicate 'tokens > many': expected a number of 0 or more" },
	{ "[class a]\nwhen = ttft_ms > -1\n", 2, "invalid predicate 'ttft_ms > -1': expected a number" },
	{ "[class a]\nwhen = ttft_ms > inf\n", 2, "invalid predicate 'ttft_ms > inf': expected a number" },
	{ "[class a]\nwhen = tag =\n", 2, "invalid predicate 'tag =': missing value" },
	{ "[class a]\nwhen = tag = \"x\n", 2, "invalid predicate 'tag = \"x': no closing quote" },
	{ "[class a]\nwhen = metadata = x\n", 2, "invalid predicate 'metadata = x'" },
	{ "[class a]\nwhen = metadata. = x\n", 2, "invalid predicate 'metadata. = x': empty metadata key" },
	{ "[class a]\nwhen = metadata.\"k = x\n", 2, "invalid predicate 'metadata.\"k = x': no closing quote" },
	{ "[redact]\nbuiltin = email, ssn\n", 2, "unknown builtin 'ssn' (known: email, phone, api_key)" },
	{ "[redact]\nbuiltin = email\nbuiltin = phone,email\n", 3, "builtin 'email' listed twice" },
	{ "[redact]\npattern = a[ => x\n", 2, "invalid pattern 'a[': " },
	{ "[redact]\npattern = x* => y\n", 2, "pattern 'x*' matches the empty string" },
	{ "[redact]\npattern = (a) => \\2\n", 2, "replacement '\\2' refers to group 2 but pattern '(a)' has 1" },
	{ "[redact]\npattern = abc\n", 2, "'pattern': expected 'REGEX => REPLACEMENT'" },
	{ "[redact]\npattern = a=>b\n", 2, "'pattern': expected 'REGEX => REPLACEMENT'" },
	{ "[redact]\npattern = => x\n", 2, "empty pattern" },
	{ "[redact]\npattern = \"abc\" x => y\n", 2, "'pattern': text after the closing quote" },
	{ "[redact]\nregex = a => b\n", 2, "unknown key 'regex' in [redact]" },
};

static void bad_configs(void)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct sampler_conf c;
		char err[512] = "", want[1024];
		const char *path = write_conf(bads[i].text);
		REQUIRE(path, "write");
		if (bads[i].line)
			snprintf(want, sizeof(want), "'%s' line %d: %s", path, bads[i].line, bads[i].reason);
		else
			snprintf(want, sizeof(want), "'%s': %s", path, bads[i].reason);
		sconf_init(&c);
		int rc = sconf_load(&c, path, err, sizeof(err));
		CHECK(rc == -1 && !strncmp(err, want, strlen(want)),
		      "case %zu: got '%s', want '%s...'", i, err, want);
		CHECK(err[strlen(err) - 1] != '.', "case %zu ends with a full stop: %s", i, err);
		sconf_release(&c);
	}
	t_note("%zu bad configs", sizeof(bads) / sizeof(bads[0]));
}

static void missing_file(void)
{
	struct sampler_conf c;
	char err[512];
	char path[600];
	snprintf(path, sizeof(path), "%s/none.conf", tmpdir);
	sconf_init(&c);
	CHECK(sconf_load(&c, path, err, sizeof(err)) == -1 && strstr(err, "cannot open '") &&
	      strstr(err, "No such file"), "%s", err);
	sconf_release(&c);
}

/* The settings table as the docs give it. */
static const struct {
	const char *name, *def;
	long long min, max; /* min > max: no bounds */
} table[] = {
	{ "brokers", "127.0.0.1:9092", 1, 0 },
	{ "input", "llm.traces", 1, 0 },
	{ "output", "llm.monitoring", 1, 0 },
	{ "pending", "llm.monitoring.pending", 1, 0 },
	{ "state", "llm.monitoring.state", 1, 0 },
	{ "dlq", "llm.traces.dlq", 1, 0 },
	{ "group", "tracesift-sampler", 1, 0 },
	{ "transactional.id", "<group>-<instance>", 1, 0 },
	{ "instance", "0", 0, 65535 },
	{ "seed", "0", 1, 0 },
	{ "commit.interval.ms", "100", 10, 60000 },
	{ "stats.interval.ms", "5000", 0, 3600000 },
	{ "batch.size", "50", 0, 1000000 },
	{ "batch.max.wait.ms", "0", 0, 86400000 },
	{ "projection", "full", 1, 0 },
	{ "max.record.bytes", "1048576", 1024, 268435456 },
	{ "metrics.file", "none", 1, 0 },
};

static void defaults(void)
{
	struct sampler_conf c;
	char err[256];
	sconf_init(&c);
	CHECK(!strcmp(c.brokers, "127.0.0.1:9092") && !strcmp(c.input, "llm.traces") &&
	      !strcmp(c.output, "llm.monitoring") && !strcmp(c.pending, "llm.monitoring.pending") &&
	      !strcmp(c.state, "llm.monitoring.state") && !strcmp(c.dlq, "llm.traces.dlq") &&
	      !strcmp(c.group, "tracesift-sampler"), "topics and group");
	CHECK(!c.transactional_id && !c.metrics_file, "no transactional.id or metrics.file yet");
	CHECK(c.instance == 0 && c.seed == 0 && c.commit_interval_ms == 100 &&
	      c.stats_interval_ms == 5000 && c.batch_size == 50 && c.batch_max_wait_ms == 0 &&
	      c.projection == PROJ_FULL && c.max_record_bytes == 1048576, "numbers");
	CHECK(c.nclasses == 0 && c.nredact == 0 && c.nkafka_props == 0, "empty lists");
	int rc = sconf_finish(&c, err, sizeof(err));
	CHECK(rc == 0, "finish: %s", err);
	if (rc) {
		sconf_release(&c);
		return;
	}
	CHECK(!strcmp(c.transactional_id, "tracesift-sampler-0"), "txn id %s", c.transactional_id);
	CHECK(c.nclasses == 1 && !strcmp(c.classes[0].name, "default") && c.classes[0].rate == 0 &&
	      c.classes[0].npreds == 0 && !strcmp(c.classes[0].dataset, "monitoring"),
	      "a default class at rate 0");
	CHECK(sconf_finish(&c, err, sizeof(err)) == 0 && c.nclasses == 1, "finish twice");
	sconf_release(&c);

	/* a file with no class without 'when' gets the default at rate 0 */
	sconf_init(&c);
	const char *path = write_conf("[class e]\nwhen = error\nrate = 1\n");
	rc = sconf_load(&c, path, err, sizeof(err));
	CHECK(rc == 0, "%s", err);
	if (rc) {
		sconf_release(&c);
		return;
	}
	CHECK(c.nclasses == 2 && !strcmp(c.classes[1].name, "default") && c.classes[1].rate == 0,
	      "default added");
	sconf_release(&c);
}

static void set_bounds(void)
{
	struct sampler_conf c;
	char err[256], v[64], want[256];
	sconf_init(&c);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (table[i].min > table[i].max)
			continue;
		snprintf(v, sizeof(v), "%lld", table[i].min);
		CHECK(sconf_set(&c, table[i].name, v, err, sizeof(err)) == 0, "%s = min: %s", table[i].name, err);
		snprintf(v, sizeof(v), "%lld", table[i].max);
		CHECK(sconf_set(&c, table[i].name, v, err, sizeof(err)) == 0, "%s = max: %s", table[i].name, err);
		snprintf(v, sizeof(v), "%lld", table[i].min - 1);
		snprintf(want, sizeof(want), "'%s': %lld is out of bounds (%lld..%lld)", table[i].name,
		         table[i].min - 1, table[i].min, table[i].max);
		CHECK(sconf_set(&c, table[i].name, v, err, sizeof(err)) == -1 && !strcmp(err, want),
		      "%s = min-1: %s", table[i].name, err);
		snprintf(v, sizeof(v), "%lld", table[i].max + 1);
		snprintf(want, sizeof(want), "'%s': %lld is out of bounds (%lld..%lld)", table[i].name,
		         table[i].max + 1, table[i].min, table[i].max);
		CHECK(sconf_set(&c, table[i].name, v, err, sizeof(err)) == -1 && !strcmp(err, want),
		      "%s = max+1: %s", table[i].name, err);
	}
	CHECK(c.batch_size == 1000000, "the last good value stays: %d", c.batch_size);
	CHECK(sconf_set(&c, "nope", "1", err, sizeof(err)) == -1 && !strcmp(err, "'nope': unknown setting"),
	      "%s", err);
	CHECK(sconf_set(&c, "seed", "0xffffffffffffffff", err, sizeof(err)) == 0 && c.seed == UINT64_MAX,
	      "hex seed: %s", err);
	CHECK(sconf_set(&c, "seed", "18446744073709551615", err, sizeof(err)) == 0 && c.seed == UINT64_MAX,
	      "decimal seed: %s", err);
	CHECK(sconf_set(&c, "transactional.id", "t-1", err, sizeof(err)) == 0, "%s", err);
	CHECK(sconf_set(&c, "metrics.file", "/tmp/m", err, sizeof(err)) == 0, "%s", err);
	CHECK(sconf_set(&c, "metrics.file", "", err, sizeof(err)) == 0 && !c.metrics_file, "unset");
	CHECK(sconf_set(&c, "projection", "output", err, sizeof(err)) == 0 &&
	      c.projection == PROJ_FIELDS && c.proj_fields == PROJ_OUTPUT, "projection");
	CHECK(sconf_set(&c, "projection", "full", err, sizeof(err)) == 0 && c.projection == PROJ_FULL,
	      "full");
	CHECK(sconf_set(&c, "input", "has space", err, sizeof(err)) == -1 &&
	      !strncmp(err, "'input': 'has space' is not a valid topic name", 45), "%s", err);

	/* kafka properties: set, replace, add */
	CHECK(sconf_set(&c, "kafka.linger.ms", "5", err, sizeof(err)) == 0, "%s", err);
	CHECK(sconf_add_kafka_prop(&c, "linger.ms", "7", err, sizeof(err)) == 0, "%s", err);
	CHECK(sconf_add_kafka_prop(&c, "acks", "all", err, sizeof(err)) == 0, "%s", err);
	CHECK(c.nkafka_props == 2 && !strcmp(c.kafka_props[1], "7") && !strcmp(c.kafka_props[2], "acks"),
	      "replaced and added");
	CHECK(sconf_add_kafka_prop(&c, "", "x", err, sizeof(err)) == -1, "empty name");

	/* what sconf_finish checks of the whole */
	CHECK(sconf_set(&c, "batch.size", "0", err, sizeof(err)) == 0, "%s", err);
	CHECK(sconf_set(&c, "batch.max.wait.ms", "1000", err, sizeof(err)) == 0, "%s", err);
	CHECK(sconf_finish(&c, err, sizeof(err)) == -1 &&
	      !strcmp(err, "'batch.max.wait.ms' needs 'batch.size' above 0"), "%s", err);
	CHECK(sconf_set(&c, "batch.size", "1", err, sizeof(err)) == 0, "%s", err);
	CHECK(sconf_finish(&c, err, sizeof(err)) == 0, "%s", err);
	CHECK(!strcmp(c.transactional_id, "t-1"), "an explicit transactional.id stays");
	sconf_release(&c);
}

/* Precedence as the sampler applies it: file, environment, flags. */
static void environment(void)
{
	struct sampler_conf c;
	char err[256];
	const char *path = write_conf("[sampler]\nbatch.size = 10\nseed = 1\ncommit.interval.ms = 200\n");
	sconf_init(&c);
	int rc = sconf_load(&c, path, err, sizeof(err));
	CHECK(rc == 0, "%s", err);
	if (rc) {
		sconf_release(&c);
		return;
	}
	setenv("TRACESIFT_BATCH_SIZE", "20", 1);
	setenv("TRACESIFT_SEED", "2", 1);
	setenv("TRACESIFT_BATCH_MAX_WAIT_MS", "", 1); /* empty: unset */
	setenv("TRACESIFT_NOT_A_SETTING", "x", 1);
	CHECK(sconf_apply_env(&c, err, sizeof(err)) == 0, "%s", err);
	CHECK(sconf_set(&c, "seed", "3", err, sizeof(err)) == 0, "%s", err);
	CHECK(c.batch_size == 20 && c.seed == 3 && c.commit_interval_ms == 200 && c.batch_max_wait_ms == 0,
	      "flag > env > file: %d %llu %d", c.batch_size, (unsigned long long)c.seed,
	      c.commit_interval_ms);
	setenv("TRACESIFT_COMMIT_INTERVAL_MS", "1", 1);
	CHECK(sconf_apply_env(&c, err, sizeof(err)) == -1 &&
	      !strcmp(err, "'TRACESIFT_COMMIT_INTERVAL_MS': 1 is out of bounds (10..60000)"), "%s", err);
	unsetenv("TRACESIFT_BATCH_SIZE");
	unsetenv("TRACESIFT_SEED");
	unsetenv("TRACESIFT_BATCH_MAX_WAIT_MS");
	unsetenv("TRACESIFT_NOT_A_SETTING");
	unsetenv("TRACESIFT_COMMIT_INTERVAL_MS");
	sconf_release(&c);
}

static void help_lists_everything(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	REQUIRE(f, "open_memstream");
	sconf_help(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char line[256], env[64];
		size_t n = 0;
		for (const char *p = table[i].name; *p; p++)
			env[n++] = *p == '.' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		env[n] = '\0';
		snprintf(line, sizeof(line), "  %-20s default %s", table[i].name, table[i].def);
		CHECK(strstr(text, line), "help lacks '%s'", line);
		if (table[i].min <= table[i].max) {
			snprintf(line, sizeof(line), "%s, %lld..%lld (TRACESIFT_%s)", table[i].def,
			         table[i].min, table[i].max, env);
			CHECK(strstr(text, line), "help lacks '%s'", line);
		}
	}
	CHECK(strstr(text, "kafka.PROP"), "kafka.PROP");
	int lines = 0;
	for (char *p = text; *p; p++)
		lines += *p == '\n';
	CHECK(lines == 2 * (int)(sizeof(table) / sizeof(table[0])) + 1, "exactly the table: %d lines", lines);
	free(text);
}

/* docs/sampling.md documents every setting with its default. */
static void docs_list_everything(void)
{
	FILE *f = fopen(top_path("docs/sampling.md"), "r");
	REQUIRE(f, "docs/sampling.md");
	char *text = NULL;
	size_t cap = 0;
	ssize_t n = getdelim(&text, &cap, '\0', f);
	fclose(f);
	REQUIRE(n > 0, "read");
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char cell[128];
		snprintf(cell, sizeof(cell), "| `%s` | `%s` |", table[i].name, table[i].def);
		CHECK(strstr(text, cell), "docs lack '%s'", cell);
	}
	/* and every ```ini example in it loads */
	int examples = 0;
	for (char *p = text; (p = strstr(p, "```ini\n")); ) {
		char *end = strstr(p += 7, "```");
		if (!end)
			break;
		*end = '\0';
		struct sampler_conf c;
		char err[512];
		sconf_init(&c);
		CHECK(sconf_load(&c, write_conf(p), err, sizeof(err)) == 0, "example %d: %s", examples, err);
		sconf_release(&c);
		examples++;
		p = end + 3;
	}
	CHECK(examples >= 2, "%d examples", examples);
	free(text);
}

static void deploy_config_loads(void)
{
	struct sampler_conf c;
	char err[512];
	sconf_init(&c);
	int rc = sconf_load(&c, top_path("deploy/sampler.conf"), err, sizeof(err));
	CHECK(rc == 0, "%s", err);
	if (rc == 0)
		CHECK(sconf_finish(&c, err, sizeof(err)) == 0, "%s", err);
	CHECK(c.batch_size == 50, "batch.size %d", c.batch_size);
	CHECK(c.nclasses == 5, "%d classes", c.nclasses);
	if (c.nclasses == 5) {
		CHECK(!strcmp(c.classes[0].name, "errors") && c.classes[0].rate == 1 &&
		      !strcmp(c.classes[0].dataset, "incidents"), "errors first");
		CHECK(!strcmp(c.classes[4].name, "default") && c.classes[4].rate == 0.05 &&
		      c.classes[4].npreds == 0, "default last");
		int ent = 0, slow = 0, ttft = 0;
		for (int i = 0; i < c.nclasses; i++)
			for (int j = 0; j < c.classes[i].npreds; j++) {
				const struct pred *p = &c.classes[i].preds[j];
				ent += p->kind == PRED_META_EQ && c.classes[i].rate == 0.2;
				slow += p->kind == PRED_LATENCY_GT && c.classes[i].rate == 0.5;
				ttft += p->kind == PRED_TTFT_GT && p->bound == 2000;
			}
		CHECK(ent == 1 && slow == 1 && ttft == 1, "enterprise, slow, ttft classes");
	}
	int builtins = 0;
	for (int i = 0; i < c.nredact; i++)
		builtins += c.redact[i].builtin != NULL;
	CHECK(builtins == 3, "email, phone, api_key");
	sconf_release(&c);
}

/* Two files, the second on top of the first; init/release of a conf that
 * failed to load. */
static void layering_and_release(void)
{
	struct sampler_conf c;
	char err[512];
	sconf_init(&c);
	const char *a = write_conf("[sampler]\nseed = 5\nkafka.acks = 1\n[redact]\nbuiltin = email\n");
	int rc = sconf_load(&c, a, err, sizeof(err));
	CHECK(rc == 0, "%s", err);
	if (rc) {
		sconf_release(&c);
		return;
	}
	const char *b = write_conf("[sampler]\nbatch.size = 5\nkafka.acks = all\n[redact]\nbuiltin = email\n");
	CHECK(sconf_load(&c, b, err, sizeof(err)) == -1 && strstr(err, "line 5: builtin 'email' listed twice"),
	      "%s", err);
	CHECK(c.seed == 5 && c.batch_size == 5 && c.nkafka_props == 1 && !strcmp(c.kafka_props[1], "all"),
	      "second file on top");
	sconf_release(&c);

	sconf_init(&c);
	const char *bad = write_conf("[class a]\nwhen = tag = x\nwhen = metadata.k = v\nrate = 1\n"
	                             "dataset = d\n[redact]\npattern = a => b\nbuiltin = phone\n"
	                             "[class b]\nwhen = tokens > x\n");
	CHECK(sconf_load(&c, bad, err, sizeof(err)) == -1 && strstr(err, "line 10:"), "%s", err);
	sconf_release(&c); /* frees the half-built classes (ASan checks) */
	sconf_init(&c);
	sconf_release(&c);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/t2001-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		printf("not ok - mkdtemp\n");
		return 1;
	}
	RUN(full_config);
	RUN(bad_configs);
	RUN(missing_file);
	RUN(defaults);
	RUN(set_bounds);
	RUN(environment);
	RUN(help_lists_everything);
	RUN(docs_list_everything);
	RUN(deploy_config_loads);
	RUN(layering_and_release);
	t_system("rm -rf '%s'", tmpdir);
	TEST_EXIT();
}
