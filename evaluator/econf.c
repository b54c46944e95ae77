/* evaluator/econf.c - the evaluator's configuration (see econf.h) */
#include "econf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "afile.h"
#include "errfmt.h"
#include "ini.h"

/* ---- the settings table ------------------------------------------------- */

enum type { T_STR, T_INT, T_I64, T_DUR, T_DBL, T_BOOL, T_LIST };

struct setting {
	const char *name;
	enum type type;
	const char *def;
	long long min, max;
	size_t off;          /* in struct eval_conf */
	const char *help;
};

#define O(f) offsetof(struct eval_conf, f)
static const struct setting SETTINGS[] = {
	{ "store", T_STR, "./tracesift-data", 0, 0, O(store), "the dataset store to evaluate (the sink's --store)" },
	{ "datasets", T_LIST, "", 0, 0, O(datasets), "comma-separated datasets to evaluate (empty: every dataset)" },
	{ "poll.ms", T_INT, "1000", 10, 3600000, O(poll_ms), "how often the store is checked for new complete batches" },
	{ "schedule", T_DUR, "0", 0, INT64_MAX, O(schedule_ms), "also evaluate what arrived, every this long (e.g. 1h; 0: batches only)" },
	{ "brokers", T_STR, "127.0.0.1:9092", 0, 0, O(brokers), "Kafka brokers for alert records (empty: no Kafka alerts)" },
	{ "alerts.topic", T_STR, "llm.alerts", 0, 0, O(alerts_topic), "topic alert records go to" },
	{ "webhook.url", T_STR, "", 0, 0, O(webhook_url), "URL alerts are POSTed to as JSON with a Slack-compatible 'text' (empty: none)" },
	{ "webhook.timeout.ms", T_INT, "5000", 100, 600000, O(webhook_timeout_ms), "timeout of one webhook call" },
	{ "worst", T_INT, "5", 0, 1000, O(worst), "worst items 'show' prints" },
	{ "judge.url", T_STR, "", 0, 0, O(judge_url), "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (empty: heuristics only)" },
	{ "judge.model", T_STR, "", 0, 0, O(judge_model), "the judge's model" },
	{ "judge.api.key.env", T_STR, "TRACESIFT_JUDGE_API_KEY", 0, 0, O(judge_key_env), "environment variable holding the API key" },
	{ "judge.api.key.file", T_STR, "", 0, 0, O(judge_key_file), "file holding the API key (first line; used when the variable is unset)" },
	{ "judge.inflight", T_INT, "16", 1, 1024, O(judge.inflight), "judge requests in flight" },
	{ "judge.timeout.ms", T_INT, "60000", 100, 3600000, O(judge.timeout_ms), "timeout of one judge request" },
	{ "judge.connect.timeout.ms", T_INT, "10000", 100, 600000, O(judge.connect_timeout_ms), "connect timeout" },
	{ "judge.retries", T_INT, "4", 0, 100, O(judge.retries), "retries on 429, 5xx, timeouts and connection errors" },
	{ "judge.backoff.ms", T_INT, "500", 1, 600000, O(judge.backoff_ms), "first retry backoff (doubles, with jitter)" },
	{ "judge.backoff.max.ms", T_INT, "30000", 1, 3600000, O(judge.backoff_max_ms), "longest backoff or Retry-After honoured" },
	{ "judge.temperature", T_DBL, "0", -1, 2, O(judge.temperature), "sampling temperature asked of the judge (-1: not sent, for models that refuse one)" },
	{ "judge.max.tokens", T_INT, "300", 0, 100000, O(judge.max_tokens), "max_tokens of one judge answer (0: not sent)" },
	{ "judge.json.mode", T_BOOL, "false", 0, 1, O(judge.json_mode), "ask for response_format json_object" },
	{ "judge.budget.requests", T_I64, "0", 0, INT64_MAX, O(judge.budget_requests), "judge requests per run at most (0: no limit)" },
	{ "judge.budget.tokens", T_I64, "0", 0, INT64_MAX, O(judge.budget_tokens), "judge tokens per run at most (0: no limit)" },
};
#undef O
#define NSETTINGS (sizeof(SETTINGS) / sizeof(SETTINGS[0]))

static const struct setting *setting_find(const char *name)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (!strcmp(SETTINGS[i].name, name))
			return &SETTINGS[i];
	return NULL;
}

/* "1500", "1.5s", "90m", "1h", "2d" -> ms */
static int parse_duration(const char *v, int64_t *out)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (end == v || errno || !isfinite(x) || x < 0)
		return -1;
	double mul = !*end || !strcmp(end, "ms") ? 1 : !strcmp(end, "s") ? 1e3 :
	             !strcmp(end, "m") ? 60e3 : !strcmp(end, "h") ? 3600e3 : !strcmp(end, "d") ? 86400e3 : -1;
	if (mul < 0 || x * mul > 9e18)
		return -1;
	*out = (int64_t)(x * mul);
	return 0;
}

static void free_list(char **l)
{
	for (char **p = l; p && *p; p++)
		free(*p);
	free(l);
}

/* Calls add for each piece of v between separators, trimmed, empty ones left out. */
static int split_each(const char *v, char sep, int (*add)(void *ctx, const char *s, size_t n), void *ctx)
{
	for (const char *p = v; *p; ) {
		const char *end = strchr(p, sep), *a = p, *b = end ? end : p + strlen(p);
		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		if (b > a && add(ctx, a, (size_t)(b - a)))
			return -1;
		p = end ? end + 1 : p + strlen(p);
	}
	return 0;
}

struct strvec {
	char **v;
	size_t n;
};

static int strvec_add(void *ctx, const char *s, size_t n)
{
	struct strvec *l = ctx;
	char **nv = realloc(l->v, (l->n + 2) * sizeof(*nv));
	if (!nv)
		return -1;
	l->v = nv;
	if (!(nv[l->n] = strndup(s, n)))
		return -1;
	nv[++l->n] = NULL;
	return 0;
}

static int parse_list(const char *v, char ***out)
{
	struct strvec l = { NULL, 0 };
	if (split_each(v, ',', strvec_add, &l)) {
		free_list(l.v);
		return -1;
	}
	free_list(*out);
	*out = l.v;
	return 0;
}

static int apply(struct eval_conf *c, const struct setting *s, const char *v, char *errstr, size_t size)
{
	void *f = (char *)c + s->off;
	char *end;
	long long x;
	double d;
	int64_t ms;

	switch (s->type) {
	case T_STR: {
		char *copy = strdup(v);
		if (!copy)
			return errfmt(errstr, size, "out of memory");
		free(*(char **)f);
		*(char **)f = copy;
		return 0;
	}
	case T_LIST:
		return parse_list(v, (char ***)f) ? errfmt(errstr, size, "out of memory") : 0;
	case T_INT:
	case T_I64:
		errno = 0;
		x = strtoll(v, &end, 10);
		if (!*v || *end || errno || x < s->min || x > s->max)
			return errfmt(errstr, size, "'%s': expected an integer from %lld to %lld, not '%s'",
			            s->name, s->min, s->max, v);
		if (s->type == T_INT)
			*(int *)f = (int)x;
		else
			*(int64_t *)f = x;
		return 0;
	case T_DUR:
		if (parse_duration(v, &ms))
			return errfmt(errstr, size, "'%s': expected a duration (e.g. 500ms, 30s, 15m, 1h), "
			            "not '%s'", s->name, v);
		*(int64_t *)f = ms;
		return 0;
	case T_DBL:
		errno = 0;
		d = strtod(v, &end);
		if (!*v || *end || errno || !isfinite(d) || d < s->min || d > s->max)
			return errfmt(errstr, size, "'%s': expected a number from %lld to %lld, not '%s'",
			            s->name, s->min, s->max, v);
		*(double *)f = d;
		return 0;
	case T_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"))
			*(int *)f = 1;
		else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0"))
			*(int *)f = 0;
		else
			return errfmt(errstr, size, "'%s': expected true or false, not '%s'", s->name, v);
		return 0;
	}
	return 0;
}

int econf_set(struct eval_conf *c, const char *name, const char *value, char *errstr, size_t size)
{
	const struct setting *s = setting_find(name);
	if (!s)
		return errfmt(errstr, size, "unknown setting '%s' (see --help)", name);
	return apply(c, s, value, errstr, size);
}

void econf_init(struct eval_conf *c)
{
	char err[256];
	memset(c, 0, sizeof(*c));
	judge_conf_default(&c->judge);
	c->defaults = -1;
	for (size_t i = 0; i < NSETTINGS; i++)
		(void)apply(c, &SETTINGS[i], SETTINGS[i].def, err, sizeof(err));
}

void econf_release(struct eval_conf *c)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (SETTINGS[i].type == T_STR)
			free(*(char **)((char *)c + SETTINGS[i].off));
	free_list(c->datasets);
	for (int i = 0; i < c->nkafka_props; i++)
		free(c->kafka_props[i]);
	free(c->kafka_props);
	if (c->judge_key) {
		memset(c->judge_key, 0, strlen(c->judge_key));
		free(c->judge_key);
	}
	for (int i = 0; i < 6; i++)
		free(c->field_owned[i]);
	for (int i = 0; i < c->nmetrics; i++) {
		metric_release(&c->metrics[i]);
	}
	free(c->metrics);
	for (int i = 0; i < c->nalerts; i++)
		alert_rule_release(&c->alerts[i]);
	free(c->alerts);
	memset(c, 0, sizeof(*c));
}

void econf_help(FILE *out)
{
	fprintf(out, "settings ([evaluator] in the config file, or -s NAME=VALUE; [judge] keys are "
	        "judge.KEY with -s):\n");
	for (size_t i = 0; i < NSETTINGS; i++) {
		const char *n = SETTINGS[i].name;
		fprintf(out, "  %-26s %s (default: %s)\n", n, SETTINGS[i].help,
		        *SETTINGS[i].def ? SETTINGS[i].def : "none");
	}
}

/* ---- metrics ------------------------------------------------------------ */

static const struct {
	const char *word;
	enum metric_kind kind;
	int good_high;
} KINDS[] = {
	{ "judge", METRIC_JUDGE, 0 }, { "length", METRIC_LENGTH, 0 }, { "empty", METRIC_EMPTY, 0 },
	{ "refusal", METRIC_REFUSAL, 0 }, { "regex", METRIC_REGEX, 0 },
	{ "contains", METRIC_CONTAINS, 0 }, { "valid_json", METRIC_VALID_JSON, 1 },
	{ "tokens", METRIC_TOKENS, 0 }, { "latency", METRIC_LATENCY, 0 }, { "ttft", METRIC_TTFT, 0 },
	{ "grounding", METRIC_GROUNDING, 1 },
};

static const struct {
	const char *word;
	enum judge_kind judge;
	int good_high;
} JUDGES[] = {
	{ "custom", JUDGE_CUSTOM, 0 }, { "hallucination", JUDGE_HALLUCINATION, 0 },
	{ "moderation", JUDGE_MODERATION, 0 }, { "answer_relevance", JUDGE_RELEVANCE, 1 },
	{ "style", JUDGE_STYLE, 1 },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return 0;
	return 1;
}

static struct metric *metric_find(struct eval_conf *c, const char *name)
{
	for (int i = 0; i < c->nmetrics; i++)
		if (!strcmp(c->metrics[i].name, name))
			return &c->metrics[i];
	return NULL;
}

static struct metric *metric_add(struct eval_conf *c, const char *name, enum metric_kind kind)
{
	struct metric *m = realloc(c->metrics, (size_t)(c->nmetrics + 1) * sizeof(*m));
	if (!m)
		return NULL;
	c->metrics = m;
	m = &c->metrics[c->nmetrics];
	memset(m, 0, sizeof(*m));
	if (!(m->name = strdup(name)))
		return NULL;
	c->nmetrics++;
	m->kind = kind;
	m->lo = 0;
	m->hi = 1;
	m->threshold = 0.5;
	for (size_t i = 0; i < NELEM(KINDS); i++)
		if (KINDS[i].kind == kind)
			m->good_high = KINDS[i].good_high;
	return m;
}

/* A config's companion file (a rubric, a key): whole, at most 1 MiB. */
static char *read_file(const char *path, char *errstr, size_t size)
{
	size_t len;
	char *text = afile_read(path, &len);
	if (!text)
		errfmt(errstr, size, "cannot read '%s': %s", path, strerror(errno));
	else if (len >= (1 << 20)) {
		errfmt(errstr, size, "'%s' is over 1 MiB", path);
		free(text);
		text = NULL;
	}
	return text;
}

static int parse_double(const char *v, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(v, &end);
	return !*v || *end || errno || !isfinite(*out) ? -1 : 0;
}

static int phrase_add(void *ctx, const char *s, size_t n)
{
	struct metric *m = ctx;
	char **np = realloc(m->phrases, (size_t)(m->nphrases + 1) * sizeof(*np));
	if (!np)
		return -1;
	m->phrases = np;
	if (!(np[m->nphrases] = strndup(s, n)))
		return -1;
	m->nphrases++;
	return 0;
}

/* A phrase list: "a | b | c". */
static int set_phrases(struct metric *m, const char *v)
{
	return split_each(v, '|', phrase_add, m);
}

static int metric_line(struct metric *m, const char *key, const char *v, const char *dir,
                       char *errstr, size_t size)
{
	char **str = NULL;
	if (!strcmp(key, "kind")) {
		for (size_t i = 0; i < NELEM(KINDS); i++)
			if (!strcmp(v, KINDS[i].word)) {
				m->kind = KINDS[i].kind;
				m->good_high = KINDS[i].good_high;
				return 0;
			}
		return errfmt(errstr, size, "metric '%s': unknown kind '%s' (expected judge, length, "
		            "empty, refusal, regex, contains, valid_json, tokens, latency, ttft or "
		            "grounding)", m->name, v);
	}
	if (!strcmp(key, "judge")) {
		for (size_t i = 0; i < NELEM(JUDGES); i++)
			if (!strcmp(v, JUDGES[i].word)) {
				m->kind = METRIC_JUDGE;
				m->judge = JUDGES[i].judge;
				m->good_high = JUDGES[i].good_high;
				return 0;
			}
		return errfmt(errstr, size, "metric '%s': unknown judge '%s' (expected hallucination, "
		            "moderation, answer_relevance, style or custom)", m->name, v);
	}
	if (!strcmp(key, "range")) {
		double lo, hi;
		char *dots = strstr(v, "..");
		char a[64];
		if (!dots || (size_t)(dots - v) >= sizeof(a))
			return errfmt(errstr, size, "metric '%s': range: expected LO..HI, not '%s'", m->name, v);
		memcpy(a, v, (size_t)(dots - v));
		a[dots - v] = '\0';
		if (parse_double(a, &lo) || parse_double(dots + 2, &hi) || lo >= hi)
			return errfmt(errstr, size, "metric '%s': range: expected LO..HI with LO < HI, not '%s'",
			            m->name, v);
		m->lo = lo;
		m->hi = hi;
		return 0;
	}
	if (!strcmp(key, "threshold")) {
		if (parse_double(v, &m->threshold))
			return errfmt(errstr, size, "metric '%s': threshold: expected a number, not '%s'",
			            m->name, v);
		return 0;
	}
	if (!strcmp(key, "better")) {
		if (strcmp(v, "high") && strcmp(v, "low"))
			return errfmt(errstr, size, "metric '%s': better: expected high or low", m->name);
		m->good_high = !strcmp(v, "high");
		return 0;
	}
	if (!strcmp(key, "icase")) {
		if (strcmp(v, "true") && strcmp(v, "false"))
			return errfmt(errstr, size, "metric '%s': icase: expected true or false", m->name);
		m->icase = !strcmp(v, "true");
		return 0;
	}
	if (!strcmp(key, "phrases"))
		return set_phrases(m, v) ? errfmt(errstr, size, "out of memory") : 0;
	if (!strcmp(key, "rubric.file")) {
		char path[PATH_MAX], *text;
		if (v[0] != '/' && dir)
			snprintf(path, sizeof(path), "%s/%s", dir, v);
		else
			snprintf(path, sizeof(path), "%s", v);
		char why[512];
		if (!(text = read_file(path, why, sizeof(why))))
			return errfmt(errstr, size, "metric '%s': rubric.file: %s", m->name, why);
		free(m->rubric);
		m->rubric = text;
		return 0;
	}
	if (!strcmp(key, "rubric"))
		str = &m->rubric;
	else if (!strcmp(key, "field"))
		str = &m->field;
	else if (!strcmp(key, "pattern"))
		str = &m->pattern;
	if (!str)
		return errfmt(errstr, size, "metric '%s': unknown key '%s' (expected kind, judge, rubric, "
		            "rubric.file, range, threshold, better, field, pattern, icase, phrases)",
		            m->name, key);
	free(*str);
	return (*str = strdup(v)) ? 0 : errfmt(errstr, size, "out of memory");
}

/* ---- the file ----------------------------------------------------------- */

struct loader {
	struct eval_conf *c;
	char dir[PATH_MAX];        /* of the config file, for relative rubric files */
	int seen_evaluator, seen_judge, seen_fields;
};

static const char *const FIELD_KEYS[6] = { "question", "answer", "context", "latency", "ttft", "tokens" };

static int field_set(struct eval_conf *c, const char *key, const char *v, char *errstr, size_t size)
{
	const char **slots[6] = { &c->fields.question, &c->fields.answer, &c->fields.context,
	                          &c->fields.latency, &c->fields.ttft, &c->fields.tokens };
	for (int i = 0; i < 6; i++)
		if (!strcmp(key, FIELD_KEYS[i])) {
			if (*v && *v != '/')
				return errfmt(errstr, size, "field '%s': expected a JSON pointer starting with "
				            "'/', not '%s'", key, v);
			char *copy = strdup(v);
			if (!copy)
				return errfmt(errstr, size, "out of memory");
			free(c->field_owned[i]);
			c->field_owned[i] = copy;
			*slots[i] = copy;
			return 0;
		}
	return errfmt(errstr, size, "unknown field '%s' (expected question, answer, context, latency, "
	            "ttft, tokens)", key);
}

static int add_kafka_prop(struct eval_conf *c, const char *name, const char *value)
{
	char **p = realloc(c->kafka_props, (size_t)(c->nkafka_props + 2) * sizeof(*p));
	if (!p)
		return -1;
	c->kafka_props = p;
	if (!(p[c->nkafka_props] = strdup(name)))
		return -1;
	if (!(p[c->nkafka_props + 1] = strdup(value))) {
		free(p[c->nkafka_props]);
		return -1;
	}
	c->nkafka_props += 2;
	return 0;
}

int econf_kafka_prop(struct eval_conf *c, const char *name, const char *value,
                     char *errstr, size_t size)
{
	return add_kafka_prop(c, name, value) ? errfmt(errstr, size, "out of memory") : 0;
}

static int on_line(void *ctx, const struct ini_pos *pos, const char *kind, const char *name,
                   const char *key, const char *v, char *errstr, size_t size)
{
	struct loader *ld = ctx;
	struct eval_conf *c = ld->c;
	(void)pos;
	if (!key) {    /* a section header */
		if (!strcmp(kind, "evaluator") || !strcmp(kind, "judge") || !strcmp(kind, "fields")) {
			int *seen = kind[0] == 'e' ? &ld->seen_evaluator : kind[0] == 'j' ?
			            &ld->seen_judge : &ld->seen_fields;
			if (*name)
				return errfmt(errstr, size, "section '[%s]' takes no name", kind);
			if ((*seen)++)
				return errfmt(errstr, size, "section '[%s]' appears twice", kind);
			return 0;
		}
		if (!strcmp(kind, "metric") || !strcmp(kind, "alert")) {
			if (!*name)
				return errfmt(errstr, size, "expected [%s NAME]", kind);
			if (!name_ok(name))
				return errfmt(errstr, size, "%s name '%s': expected 1 to 64 of A-Z a-z 0-9 _ . -",
				            kind, name);
			if (kind[0] == 'm') {
				if (metric_find(c, name))
					return errfmt(errstr, size, "metric '%s' defined twice", name);
				if (!metric_add(c, name, METRIC_JUDGE))
					return errfmt(errstr, size, "out of memory");
				c->metrics[c->nmetrics - 1].judge = JUDGE_CUSTOM;
			} else {
				for (int i = 0; i < c->nalerts; i++)
					if (!strcmp(c->alerts[i].name, name))
						return errfmt(errstr, size, "alert '%s' defined twice", name);
				struct alert_rule *a = realloc(c->alerts, (size_t)(c->nalerts + 1) * sizeof(*a));
				if (!a)
					return errfmt(errstr, size, "out of memory");
				c->alerts = a;
				memset(&a[c->nalerts], 0, sizeof(*a));
				if (!(a[c->nalerts].name = strdup(name)))
					return errfmt(errstr, size, "out of memory");
				c->nalerts++;
			}
			return 0;
		}
		return errfmt(errstr, size, "unknown section '[%s]' (expected [evaluator], [judge], "
		            "[fields], [metric NAME] or [alert NAME])", kind);
	}
	if (!*kind)
		return errfmt(errstr, size, "'%s' is outside a section (expected [evaluator] first)", key);
	if (!strcmp(kind, "evaluator")) {
		if (!strncmp(key, "kafka.", 6) && key[6])
			return add_kafka_prop(c, key + 6, v) ? errfmt(errstr, size, "out of memory") : 0;
		if (!strcmp(key, "defaults")) {
			if (strcmp(v, "auto") && strcmp(v, "on") && strcmp(v, "off"))
				return errfmt(errstr, size, "'defaults': expected auto, on or off");
			c->defaults = !strcmp(v, "auto") ? -1 : !strcmp(v, "on");
			return 0;
		}
		if (!strncmp(key, "judge.", 6) || !setting_find(key))
			return errfmt(errstr, size, "unknown key '%s' in [evaluator] (see --help)", key);
		return econf_set(c, key, v, errstr, size);
	}
	if (!strcmp(kind, "judge")) {
		char full[128];
		snprintf(full, sizeof(full), "judge.%s", key);
		if (!setting_find(full))
			return errfmt(errstr, size, "unknown key '%s' in [judge] (see --help)", key);
		return econf_set(c, full, v, errstr, size);
	}
	if (!strcmp(kind, "fields"))
		return field_set(c, key, v, errstr, size);
	if (!strcmp(kind, "metric"))
		return metric_line(&c->metrics[c->nmetrics - 1], key, v, ld->dir, errstr, size);
	/* alert */
	if (strcmp(key, "when"))
		return errfmt(errstr, size, "alert '%s': unknown key '%s' (expected when)", name, key);
	struct alert_rule *a = &c->alerts[c->nalerts - 1];
	if (a->when)
		return errfmt(errstr, size, "alert '%s': 'when' given twice", name);
	char *n = a->name;
	a->name = NULL;
	int rc = alert_rule_parse(a, n, v, errstr, size);
	if (rc)
		a->name = n;
	else
		free(n);
	return rc;
}

int econf_load(struct eval_conf *c, const char *path, char *errstr, size_t size)
{
	struct loader ld;
	memset(&ld, 0, sizeof(ld));
	ld.c = c;
	const char *slash = strrchr(path, '/');
	if (slash && (size_t)(slash - path) < sizeof(ld.dir))
		snprintf(ld.dir, sizeof(ld.dir), "%.*s", (int)(slash - path), path);
	else
		strcpy(ld.dir, ".");
	if (ini_read(path, on_line, &ld, errstr, size))
		return -1;
	for (int i = 0; i < c->nalerts; i++)
		if (!c->alerts[i].when)
			return errfmt(errstr, size, "'%s': alert '%s' has no 'when' line", path,
			            c->alerts[i].name);
	return 0;
}

int econf_apply_env(struct eval_conf *c, char *errstr, size_t size)
{
	static const struct { const char *env, *name; } ENV[] = {
		{ "TRACESIFT_STORE", "store" }, { "TRACESIFT_BROKERS", "brokers" },
		{ "TRACESIFT_JUDGE_URL", "judge.url" }, { "TRACESIFT_JUDGE_MODEL", "judge.model" },
		{ "TRACESIFT_WEBHOOK_URL", "webhook.url" },
	};
	for (size_t i = 0; i < NELEM(ENV); i++) {
		const char *v = getenv(ENV[i].env);
		if (v && econf_set(c, ENV[i].name, v, errstr, size))
			return -1;
	}
	return 0;
}

int econf_has_judge(const struct eval_conf *c)
{
	return c->judge_url && *c->judge_url;
}

/* The key: from the variable named by api.key.env, else the file. */
static int read_key(struct eval_conf *c, char *errstr, size_t size)
{
	const char *v = c->judge_key_env && *c->judge_key_env ? getenv(c->judge_key_env) : NULL;
	if (v && *v) {
		if (!(c->judge_key = strdup(v)))
			return errfmt(errstr, size, "out of memory");
		return 0;
	}
	if (c->judge_key_file && *c->judge_key_file) {
		char why[512], *text = read_file(c->judge_key_file, why, sizeof(why));
		if (!text)
			return errfmt(errstr, size, "judge api.key.file: %s", why);
		text[strcspn(text, "\r\n")] = '\0';
		if (!*text) {
			free(text);
			return errfmt(errstr, size, "judge api.key.file '%s' is empty", c->judge_key_file);
		}
		c->judge_key = text;
	}
	return 0;
}

struct default_metric {
	const char *name;
	enum metric_kind kind;
	enum judge_kind judge;
	double threshold;
};

static const struct default_metric DEFAULT_METRICS[] = {
	{ "answer_length", METRIC_LENGTH, 0, 2000 },
	{ "empty_answer", METRIC_EMPTY, 0, 0.5 },
	{ "refusal", METRIC_REFUSAL, 0, 0.5 },
	{ "tokens", METRIC_TOKENS, 0, 4000 },
	{ "latency", METRIC_LATENCY, 0, 5000 },
	{ "time_to_first_token", METRIC_TTFT, 0, 2000 },
	{ "grounding", METRIC_GROUNDING, 0, 0.5 },
	{ "hallucination", METRIC_JUDGE, JUDGE_HALLUCINATION, 0.5 },
	{ "moderation", METRIC_JUDGE, JUDGE_MODERATION, 0.5 },
	{ "answer_relevance", METRIC_JUDGE, JUDGE_RELEVANCE, 0.5 },
};

static const struct { const char *name, *when; } DEFAULT_ALERTS[] = {
	{ "hallucinations", "hallucination share above 0.5 > 0.2" },
	{ "unsafe-answer", "moderation any > 0.8" },
	{ "slow-first-token", "p90 time_to_first_token > 2000 ms" },
	{ "empty-answers", "empty_answer share above 0.5 > 0.1" },
	{ "refusals", "refusal share above 0.5 > 0.3" },
};

static int add_defaults(struct eval_conf *c, char *errstr, size_t size)
{
	int judge = econf_has_judge(c);
	for (size_t i = 0; i < NELEM(DEFAULT_METRICS); i++) {
		const struct default_metric *d = &DEFAULT_METRICS[i];
		if ((d->kind == METRIC_JUDGE && !judge) || metric_find(c, d->name))
			continue;
		struct metric *m = metric_add(c, d->name, d->kind);
		if (!m)
			return errfmt(errstr, size, "out of memory");
		m->judge = d->judge;
		m->threshold = d->threshold;
		for (size_t k = 0; k < NELEM(JUDGES); k++)
			if (d->kind == METRIC_JUDGE && JUDGES[k].judge == d->judge)
				m->good_high = JUDGES[k].good_high;
		if (d->kind == METRIC_GROUNDING)
			m->good_high = 1;
	}
	return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ULL;
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

int econf_finish(struct eval_conf *c, char *errstr, size_t size)
{
	if (econf_has_judge(c) && (!c->judge_model || !*c->judge_model))
		return errfmt(errstr, size, "judge url is set but no judge model (judge.model, or "
		            "TRACESIFT_JUDGE_MODEL)");
	if (c->defaults == 1 || (c->defaults == -1 && c->nmetrics == 0))
		if (add_defaults(c, errstr, size))
			return -1;
	if (c->nmetrics == 0)
		return errfmt(errstr, size, "no metrics (defaults = off and no [metric] section)");
	for (int i = 0; i < c->nmetrics; i++) {
		struct metric *m = &c->metrics[i];
		if (m->kind == METRIC_JUDGE && !econf_has_judge(c))
			return errfmt(errstr, size, "metric '%s' needs a judge: set [judge] url and model "
			            "(or TRACESIFT_JUDGE_URL and TRACESIFT_JUDGE_MODEL)", m->name);
		if (metric_prepare(m, errstr, size))
			return -1;
	}
	if (c->nalerts == 0) {
		for (size_t i = 0; i < NELEM(DEFAULT_ALERTS); i++) {
			const char *metric_name = DEFAULT_ALERTS[i].when;
			char mname[64];
			/* only the default rules whose metric runs */
			size_t k = strcspn(metric_name, " ");
			if (!strncmp(metric_name, "p90 ", 4)) {
				metric_name += 4;
				k = strcspn(metric_name, " ");
			}
			snprintf(mname, sizeof(mname), "%.*s", (int)k, metric_name);
			if (!metric_find(c, mname))
				continue;
			struct alert_rule *a = realloc(c->alerts, (size_t)(c->nalerts + 1) * sizeof(*a));
			if (!a)
				return errfmt(errstr, size, "out of memory");
			c->alerts = a;
			if (alert_rule_parse(&a[c->nalerts], DEFAULT_ALERTS[i].name, DEFAULT_ALERTS[i].when,
			                     errstr, size))
				return -1;
			c->nalerts++;
		}
	}
	for (int i = 0; i < c->nalerts; i++)
		if (!metric_find(c, c->alerts[i].metric))
			return errfmt(errstr, size, "alert '%s': no metric '%s' runs", c->alerts[i].name,
			            c->alerts[i].metric);
	if (econf_has_judge(c)) {
		if (read_key(c, errstr, size))
			return -1;
		c->judge.url = c->judge_url;
		c->judge.model = c->judge_model;
		c->judge.api_key = c->judge_key;
	}
	uint64_t h = 0xcbf29ce484222325ULL;
	for (int i = 0; i < c->nmetrics; i++) {
		const struct metric *m = &c->metrics[i];
		h = fnv_str(h, m->name);
		h = fnv(h, &m->kind, sizeof(m->kind));
		h = fnv(h, &m->judge, sizeof(m->judge));
		h = fnv_str(h, m->rubric);
		h = fnv(h, &m->lo, sizeof(m->lo));
		h = fnv(h, &m->hi, sizeof(m->hi));
		h = fnv(h, &m->threshold, sizeof(m->threshold));
		h = fnv_str(h, m->field);
		h = fnv_str(h, m->pattern);
		h = fnv(h, &m->icase, sizeof(m->icase));
		for (int k = 0; k < m->nphrases; k++)
			h = fnv_str(h, m->phrases[k]);
	}
	const char *f[6] = { c->fields.question, c->fields.answer, c->fields.context,
	                     c->fields.latency, c->fields.ttft, c->fields.tokens };
	for (int i = 0; i < 6; i++)
		h = fnv_str(h, f[i]);
	h = fnv_str(h, econf_has_judge(c) ? c->judge_model : NULL);
	c->hash = h;
	return 0;
}
