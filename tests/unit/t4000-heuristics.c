/* tests/unit/t4000-heuristics.c - item fields by JSON pointer, metric settings, every heuristic */
#include "metric.h"
#include "test.h"

#include <math.h>

/* Two records of `tracesift-loadgen -n 4 --seed 7` (the 1st and the 4th),
 * cut to the fields the evaluator reads. */
static const char rec_refusal[] =
"{\"v\":1,\"trace_id\":\"fb2161e3a8c4d3d55221466c14d28fa8\",\"name\":\"rag_query\",\""
	"input\":{\"question\":\"How do I recover my account after losing my phone?\"},\"outp"
	"ut\":{\"answer\":\"I could not find information about this in the provided documents"
	". Please contact support or check the documentation for your plan.\",\"context\":[\""
	"A recovery code can be used once in place of a one-time password. In most cases, a s"
	"ervice account key blocks requests from addresses outside the listed CIDR ranges.\","
	"\"An active session is signed out immediately when its credentials are revoked. If y"
	"ou are an administrator, SCIM provisioning creates and deactivates users automatical"
	"ly when they change in the identity provider. An active session is signed out immedi"
	"ately when its credentials are revoked, unless your administrator has changed the de"
	"fault.\"]},\"usage\":{\"input_tokens\":248,\"output_tokens\":68,\"total_tokens\":316"
	"},\"latency_ms\":{\"total\":1260.983,\"time_to_first_token\":823.926,\"inter_token_m"
	"ean\":13.526}}";

static const char rec_answer[] =
	"{\"v\":1,\"trace_id\":\"0938df68cc80e90d2be1bec8682db74b\",\"name\":\"rag_query\",\""
	"input\":{\"question\":\"Why can't I download last month's invoice? The option seems "
	"to be missing.\"},\"output\":{\"answer\":\"To download last month's invoice, follow "
	"these steps. First, a receipt can be downloaded as a PDF from the Billing page [1]. "
	"Finally, each invoice is generated on the first business day of every month, which y"
	"ou can check on the status page [2]. Let me know if you need anything else.\",\"cont"
	"ext\":[\"A receipt can be downloaded as a PDF from the Billing page. Note that the u"
	"sage report lists compute, storage and egress charges separately.\",\"By default, a "
	"failed payment is retried three times over seven days before the account is suspende"
	"d, as described in the admin guide. According to the documentation, a failed payment"
	" is retried three times over seven days before the account is suspended.\",\"Keep in"
	" mind that your payment method must be updated by an account owner or a billing admi"
	"nistrator. As of the latest release, a receipt can be downloaded as a PDF from the B"
	"illing page, although some older accounts may behave differently.\",\"A promotional "
	"code cannot be combined with other discounts or enterprise agreements. If you are an"
	" administrator, a receipt is generated on the first business day of every month. In "
	"most cases, a promotional code cannot be combined with other discounts or enterprise"
	" agreements, and you receive an email confirmation. The billing contact applies only"
	" to usage above the included monthly quota. Each invoice is generated on the first b"
	"usiness day of every month, as described in the admin guide. On the Pro and Enterpri"
	"se plans, each invoice is generated on the first business day of every month, unless"
	" your administrator has changed the default. The usage report lists compute, storage"
	" and egress charges separately. As of the latest release, a failed payment is retrie"
	"d three times over seven days before the account is suspended, so contact support if"
	" you need an exception.\"]},\"usage\":{\"input_tokens\":513,\"output_tokens\":102,\""
	"total_tokens\":615},\"latency_ms\":{\"total\":2414.016,\"time_to_first_token\":1650."
	"699,\"inter_token_mean\":10.853}}";

/* ---- helpers ------------------------------------------------------------------ */

static cJSON *parse(const char *json)
{
	cJSON *v = cJSON_Parse(json);
	if (!v)
		t_note("cannot parse test JSON: %.80s", json);
	return v;
}

/* A metric whose strings are heap copies, as the config would make it. */
static struct metric mk(const char *name, enum metric_kind kind, const char *pattern,
                        int icase, const char *field)
{
	struct metric m;
	memset(&m, 0, sizeof(m));
	m.name = strdup(name);
	m.kind = kind;
	m.pattern = pattern ? strdup(pattern) : NULL;
	m.icase = icase;
	m.field = field ? strdup(field) : NULL;
	m.lo = 0;
	m.hi = 1;
	return m;
}

/* Scores metric m on the item JSON item_json (NULL paths); *r gets the result.
 * Returns heuristic_score's return, or -2 when the item cannot be made. */
static int score_json(const struct metric *m, const char *item_json, struct metric_result *r)
{
	cJSON *root = parse(item_json);
	if (!root)
		return -2;
	struct eval_item it;
	if (item_fields(root, NULL, &it)) {
		cJSON_Delete(root);
		return -2;
	}
	int rc = heuristic_score(m, &it, r);
	item_release(&it);
	cJSON_Delete(root);
	return rc;
}

/* A record JSON with the answer given as JSON text ("null", "\"text\"", ...)
 * or without one (NULL). */
static char *answer_record(const char *answer_json)
{
	char *buf = malloc(strlen(answer_json ? answer_json : "") + 128);
	if (answer_json)
		sprintf(buf, "{\"trace_id\":\"t1\",\"output\":{\"answer\":%s}}", answer_json);
	else
		sprintf(buf, "{\"trace_id\":\"t1\",\"output\":{}}");
	return buf;
}

struct score_case {
	const char *answer;   /* JSON text of the answer; NULL: no answer member */
	int error;
	double score;
	const char *reason;   /* a part of the reason, or NULL */
};

/* Runs a table of cases for metric m; returns the number that failed. */
static int run_cases(const struct metric *m, const struct score_case *c, size_t n)
{
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		char *rec = answer_record(c[i].answer);
		struct metric_result r;
		int rc = score_json(m, rec, &r);
		int ok = rc == 0 && r.error == c[i].error &&
		         (c[i].error || fabs(r.score - c[i].score) < 1e-9) &&
		         (!c[i].reason || strstr(r.reason, c[i].reason));
		if (!ok) {
			bad++;
			t_note("%s case %zu (answer %s): rc %d error %d score %g reason '%s'; "
			       "want error %d score %g reason ~'%s'", m->name, i,
			       c[i].answer ? c[i].answer : "(none)", rc, r.error, r.score, r.reason,
			       c[i].error, c[i].score, c[i].reason ? c[i].reason : "");
		}
		free(rec);
	}
	return bad;
}

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

/* ---- json_pointer ----------------------------------------------------------- */

static void json_pointer_rfc6901(void)
{
	/* The example document of RFC 6901 section 5, plus nesting. */
	cJSON *doc = parse("{\"foo\":[\"bar\",\"baz\"],\"\":0,\"a/b\":1,\"c%d\":2,\"e^f\":3,"
	                   "\"g|h\":4,\"i\\\\j\":5,\"k\\\"l\":6,\" \":7,\"m~n\":8,\"~1\":9,"
	                   "\"deep\":{\"list\":[{\"x\":10},{\"x\":11,\"y\":[12]}]}}");
	REQUIRE(doc, "parse");
	struct { const char *ptr; int want; } ok[] = {
		{ "/\"", -1 }, /* no such member */
		{ "/", 0 }, { "/a~1b", 1 }, { "/c%d", 2 }, { "/e^f", 3 }, { "/g|h", 4 },
		{ "/i\\j", 5 }, { "/k\"l", 6 }, { "/ ", 7 }, { "/m~0n", 8 },
		{ "/~01", 9 },  /* ~0 first, then '1': the key "~1", not "/" */
		{ "/deep/list/0/x", 10 }, { "/deep/list/1/x", 11 }, { "/deep/list/1/y/0", 12 },
	};
	for (size_t i = 0; i < NCASES(ok); i++) {
		const cJSON *v = json_pointer(doc, ok[i].ptr);
		if (ok[i].want < 0)
			CHECK(v == NULL, "'%s' found something", ok[i].ptr);
		else
			CHECK(cJSON_IsNumber(v) && v->valueint == ok[i].want, "'%s' -> %d", ok[i].ptr,
			      v && cJSON_IsNumber(v) ? v->valueint : -1);
	}
	CHECK(json_pointer(doc, "") == doc, "\"\" is the document");
	const cJSON *foo = json_pointer(doc, "/foo");
	CHECK(cJSON_IsArray(foo), "/foo is the array");
	const cJSON *f0 = json_pointer(doc, "/foo/0"), *f1 = json_pointer(doc, "/foo/1");
	CHECK(cJSON_IsString(f0) && !strcmp(f0->valuestring, "bar"), "/foo/0");
	CHECK(cJSON_IsString(f1) && !strcmp(f1->valuestring, "baz"), "/foo/1");

	const char *absent[] = {
		"foo",          /* not a pointer: no leading '/' */
		"/foo/2",       /* past the end */
		"/foo/-",       /* the element after the last is never there */
		"/foo/01",      /* leading zero */
		"/foo/+1", "/foo/-1", "/foo/1x", "/foo/", "/foo/99999999999999999999",
		"/foo/0/x",     /* through a string */
		"/~2", "/m~n", "/a~", /* bad escapes */
		"/deep/list/2", "/deep/nope", "/nope/x",
	};
	for (size_t i = 0; i < NCASES(absent); i++)
		CHECK(json_pointer(doc, absent[i]) == NULL, "'%s' should be absent", absent[i]);
	CHECK(json_pointer(NULL, "/foo") == NULL, "NULL root");
	CHECK(json_pointer(doc, NULL) == NULL, "NULL pointer");
	cJSON_Delete(doc);
}

/* ---- item_fields ------------------------------------------------------------ */

static void item_fields_sampler_item(void)
{
	char *json = malloc(sizeof(rec_answer) + 256);
	sprintf(json, "{\"type\":\"item\",\"id\":\"item-0001\",\"batch\":3,\"position\":17,"
	        "\"dataset\":\"monitoring\",\"record\":%s}", rec_answer);
	cJSON *root = parse(json);
	free(json);
	REQUIRE(root, "parse");
	struct eval_item it;
	int rc = item_fields(root, NULL, &it);
	REQUIRE(rc == 0, "item_fields");
	CHECK(it.root == root, "root");
	CHECK(it.record == cJSON_GetObjectItem(root, "record"), "record is the item's record");
	CHECK(!strcmp(it.id, "item-0001"), "id from the item: '%s'", it.id);
	CHECK(it.question && !strcmp(it.question, "Why can't I download last month's invoice? "
	                             "The option seems to be missing."), "question");
	CHECK(it.answer && !strncmp(it.answer, "To download last month's invoice,", 33), "answer");
	CHECK(it.context && !strncmp(it.context, "A receipt can be downloaded as a PDF", 36) &&
	      strstr(it.context, "charges separately.\n\nBy default, a failed payment"),
	      "context passages joined by a blank line");
	CHECK(it.latency_ms == 2414.016, "latency %g", it.latency_ms);
	CHECK(it.ttft_ms == 1650.699, "ttft %g", it.ttft_ms);
	CHECK(it.tokens == 615, "tokens %g", it.tokens);
	CHECK(it.at.answer && !strcmp(it.at.answer, "/output/answer"), "default answer pointer");
	CHECK(it.at.ttft && !strcmp(it.at.ttft, "/latency_ms/time_to_first_token"), "default ttft pointer");
	item_release(&it);
	CHECK(it.context == NULL && it.answer == NULL, "released");
	item_release(&it); /* twice is harmless */
	cJSON_Delete(root);
}

static void item_fields_bare_record(void)
{
	cJSON *root = parse(rec_refusal);
	REQUIRE(root, "parse");
	struct eval_item it;
	int rc = item_fields(root, NULL, &it);
	REQUIRE(rc == 0, "item_fields");
	CHECK(it.record == root, "a bare record is its own record");
	CHECK(!strcmp(it.id, "fb2161e3a8c4d3d55221466c14d28fa8"), "id from trace_id: '%s'", it.id);
	CHECK(it.question && !strcmp(it.question, "How do I recover my account after losing my phone?"),
	      "question");
	CHECK(it.answer && !strncmp(it.answer, "I could not find information", 28), "answer");
	CHECK(it.context && strstr(it.context, "CIDR ranges.\n\nAn active session"), "context");
	CHECK(it.latency_ms == 1260.983 && it.ttft_ms == 823.926 && it.tokens == 316,
	      "figures %g %g %g", it.latency_ms, it.ttft_ms, it.tokens);
	item_release(&it);
	cJSON_Delete(root);
}

static void item_fields_absent_and_odd(void)
{
	struct eval_item it;
	int rc;
	/* Nothing there: NULL strings, NAN figures, empty id. */
	cJSON *root = parse("{\"input\":{\"question\":42},\"latency_ms\":{\"total\":\"12\"}}");
	REQUIRE(root, "parse");
	rc = item_fields(root, NULL, &it);
	REQUIRE(rc == 0, "item_fields");
	CHECK(it.id[0] == '\0', "no id");
	CHECK(!it.question && !it.answer && !it.context, "no strings");
	CHECK(isnan(it.latency_ms) && isnan(it.ttft_ms) && isnan(it.tokens), "no figures");
	item_release(&it);
	cJSON_Delete(root);

	/* "record" that is not an object: the pointers look at the item itself. */
	root = parse("{\"id\":\"x1\",\"record\":\"gone\",\"output\":{\"answer\":\"hi\"}}");
	REQUIRE(root, "parse");
	rc = item_fields(root, NULL, &it);
	REQUIRE(rc == 0, "item_fields");
	CHECK(it.record == root && it.answer && !strcmp(it.answer, "hi") && !strcmp(it.id, "x1"),
	      "record not an object");
	item_release(&it);
	cJSON_Delete(root);

	/* A non-string answer is its compact JSON text; null is no answer. */
	root = parse("{\"output\":{\"answer\":{ \"a\" : [1, 2.5, \"x\"], \"b\": null }}}");
	REQUIRE(root, "parse");
	rc = item_fields(root, NULL, &it);
	REQUIRE(rc == 0, "item_fields");
	CHECK(it.answer && !strcmp(it.answer, "{\"a\":[1,2.5,\"x\"],\"b\":null}"), "answer '%s'",
	      it.answer ? it.answer : "(null)");
	item_release(&it);
	cJSON_Delete(root);
	root = parse("{\"output\":{\"answer\":null}}");
	REQUIRE(root, "parse");
	rc = item_fields(root, NULL, &it);
	REQUIRE(rc == 0, "item_fields");
	CHECK(it.answer == NULL, "null answer is no answer");
	item_release(&it);
	cJSON_Delete(root);

	/* An id longer than 128 bytes is cut, never mid-character. */
	char json[600], want[200];
	memset(want, 0, sizeof(want));
	strcpy(want, "a");
	for (int i = 0; i < 70; i++)
		strcat(want, "\xc3\xa9"); /* 1 + 140 bytes */
	snprintf(json, sizeof(json), "{\"trace_id\":\"%s\"}", want);
	root = parse(json);
	REQUIRE(root, "parse");
	rc = item_fields(root, NULL, &it);
	REQUIRE(rc == 0, "item_fields");
	CHECK(strlen(it.id) == 127 && !strncmp(it.id, want, 127), "id cut at 127 bytes: %zu",
	      strlen(it.id));
	item_release(&it);
	cJSON_Delete(root);
	rc = item_fields(NULL, NULL, &it);
	CHECK(rc == 0 && !it.answer && isnan(it.tokens), "NULL root");
	item_release(&it);
}

static void item_fields_context_shapes(void)
{
	struct { const char *ctx; const char *want; } c[] = {
		{ "\"one passage\"", "one passage" },
		{ "[\"first\",\"second\",\"third\"]", "first\n\nsecond\n\nthird" },
		{ "[{\"id\":\"d1\",\"text\":\"alpha\",\"score\":0.8},{\"id\":\"d2\",\"text\":\"beta\"}]",
		  "alpha\n\nbeta" },
		{ "[{\"content\":\"gamma\"},{\"text\":\"delta\",\"content\":\"not this\"}]",
		  "gamma\n\ndelta" },
		/* what is not a passage is skipped; so are empty passages */
		{ "[\"a\",17,null,{\"score\":1},{\"text\":3},\"\",[\"x\"],\"b\"]", "a\n\nb" },
		{ "[]", NULL },
		{ "\"\"", NULL },
		{ "[1,2]", NULL },
		{ "{\"text\":\"an object is not a context\"}", NULL },
		{ "null", NULL },
	};
	for (size_t i = 0; i < NCASES(c); i++) {
		char json[512];
		snprintf(json, sizeof(json), "{\"output\":{\"context\":%s}}", c[i].ctx);
		cJSON *root = parse(json);
		struct eval_item it;
		if (!root || item_fields(root, NULL, &it)) {
			CHECK(0, "case %zu", i);
			cJSON_Delete(root);
			continue;
		}
		if (c[i].want)
			CHECK(it.context && !strcmp(it.context, c[i].want), "context %s -> '%s'", c[i].ctx,
			      it.context ? it.context : "(null)");
		else
			CHECK(!it.context, "context %s should be absent, is '%s'", c[i].ctx, it.context);
		item_release(&it);
		cJSON_Delete(root);
	}
}

static void item_fields_custom_paths(void)
{
	cJSON *root = parse("{\"record\":{\"trace_id\":\"tr-9\",\"req\":{\"messages\":[{\"content\":\"q?\"}]},"
	                    "\"resp\":{\"choices\":[{\"text\":\"the reply\"}],\"docs\":[{\"content\":\"d\"}]},"
	                    "\"timing\":{\"ms\":12.5,\"first\":3},\"n\":{\"t/k\":99}}}");
	REQUIRE(root, "parse");
	struct field_paths p = {
		.question = "/req/messages/0/content", .answer = "/resp/choices/0/text",
		.context = "/resp/docs", .latency = "/timing/ms", .ttft = "/timing/first",
		.tokens = "/n/t~1k",
	};
	struct eval_item it;
	int rc = item_fields(root, &p, &it);
	REQUIRE(rc == 0, "item_fields");
	CHECK(!strcmp(it.id, "tr-9"), "id from the record's trace_id when the item has none");
	CHECK(it.question && !strcmp(it.question, "q?"), "question");
	CHECK(it.answer && !strcmp(it.answer, "the reply"), "answer");
	CHECK(it.context && !strcmp(it.context, "d"), "context");
	CHECK(it.latency_ms == 12.5 && it.ttft_ms == 3 && it.tokens == 99, "figures");
	CHECK(it.at.answer == p.answer && it.at.tokens == p.tokens, "the pointers used are kept");
	item_release(&it);

	/* Partly given: the rest are the defaults. */
	struct field_paths q = { .answer = "/nowhere" };
	rc = item_fields(root, &q, &it);
	REQUIRE(rc == 0, "item_fields");
	CHECK(!it.answer && !strcmp(it.at.answer, "/nowhere") &&
	      !strcmp(it.at.question, "/input/question"), "defaults fill in");
	struct metric m = mk("len", METRIC_LENGTH, NULL, 0, NULL);
	struct metric_result r;
	heuristic_score(&m, &it, &r);
	CHECK(r.error && !strcmp(r.reason, "no answer at /nowhere"), "reason '%s'", r.reason);
	metric_release(&m);
	item_release(&it);
	cJSON_Delete(root);
}

/* ---- metric_prepare ----------------------------------------------------------- */

static void metric_prepare_checks(void)
{
	struct {
		const char *name;
		enum metric_kind kind;
		enum judge_kind judge;
		const char *pattern, *field, *rubric;
		double lo, hi;
		const char *err;  /* NULL: accepted */
	} c[] = {
		{ "answer_len", METRIC_LENGTH, 0, NULL, NULL, NULL, 0, 1, NULL },
		{ "a.b-c_D9", METRIC_EMPTY, 0, NULL, NULL, NULL, 0, 1, NULL },
		{ "x", METRIC_LENGTH, 0, NULL, "/output/summary", NULL, 0, 1, NULL },
		{ "x", METRIC_LENGTH, 0, NULL, "", NULL, 0, 1, NULL },
		{ "", METRIC_LENGTH, 0, NULL, NULL, NULL, 0, 1, "metric '': a name is 1 to 64 of" },
		{ "a b", METRIC_LENGTH, 0, NULL, NULL, NULL, 0, 1, "metric 'a b': a name is" },
		{ "caf\xc3\xa9", METRIC_LENGTH, 0, NULL, NULL, NULL, 0, 1, "a name is 1 to 64" },
		{ "a234567890123456789012345678901234567890123456789012345678901234", METRIC_LENGTH, 0,
		  NULL, NULL, NULL, 0, 1, NULL },
		{ "a2345678901234567890123456789012345678901234567890123456789012345", METRIC_LENGTH, 0,
		  NULL, NULL, NULL, 0, 1, "a name is 1 to 64" },
		{ "x", METRIC_LENGTH, 0, NULL, "output/answer", NULL, 0, 1,
		  "metric 'x': field 'output/answer' is not a JSON pointer" },
		{ "x", METRIC_LENGTH, 0, NULL, "/a~2", NULL, 0, 1, "is not a JSON pointer" },
		{ "rel", METRIC_JUDGE, JUDGE_RELEVANCE, NULL, NULL, NULL, 0, 1, NULL },
		{ "rel", METRIC_JUDGE, JUDGE_RELEVANCE, NULL, NULL, NULL, 1, 5, NULL },
		{ "rel", METRIC_JUDGE, JUDGE_RELEVANCE, NULL, NULL, NULL, 1, 1,
		  "metric 'rel': score range [1, 1] is empty" },
		{ "rel", METRIC_JUDGE, JUDGE_RELEVANCE, NULL, NULL, NULL, 2, 1, "score range [2, 1]" },
		{ "rel", METRIC_JUDGE, JUDGE_RELEVANCE, NULL, NULL, NULL, 0, INFINITY, "score range" },
		{ "rel", METRIC_JUDGE, JUDGE_RELEVANCE, NULL, NULL, NULL, NAN, 1, "score range" },
		{ "tone", METRIC_JUDGE, JUDGE_STYLE, NULL, NULL, NULL, 0, 1, "metric 'tone' has no rubric" },
		{ "tone", METRIC_JUDGE, JUDGE_STYLE, NULL, NULL, "Be brief.", 0, 1, NULL },
		{ "mine", METRIC_JUDGE, JUDGE_CUSTOM, NULL, NULL, "", 0, 1, "metric 'mine' has no rubric" },
		{ "mine", METRIC_JUDGE, (enum judge_kind)9, NULL, NULL, "r", 0, 1, "unknown judge 9" },
		{ "r", METRIC_REGEX, 0, NULL, NULL, NULL, 0, 1, "metric 'r': regex needs a pattern" },
		{ "r", METRIC_REGEX, 0, "a(b", NULL, NULL, 0, 1, "metric 'r': bad pattern 'a(b': " },
		{ "r", METRIC_REGEX, 0, "^[0-9]+(ms)?$", NULL, NULL, 0, 1, NULL },
		{ "c", METRIC_CONTAINS, 0, "", NULL, NULL, 0, 1, "metric 'c': contains needs a pattern" },
		{ "k", (enum metric_kind)42, 0, NULL, NULL, NULL, 0, 1, "metric 'k': unknown kind 42" },
	};
	for (size_t i = 0; i < NCASES(c); i++) {
		struct metric m = mk(c[i].name, c[i].kind, c[i].pattern, 0, c[i].field);
		m.judge = c[i].judge;
		m.rubric = c[i].rubric ? strdup(c[i].rubric) : NULL;
		m.lo = c[i].lo;
		m.hi = c[i].hi;
		char err[256] = "";
		int rc = metric_prepare(&m, err, sizeof(err));
		if (c[i].err)
			CHECK(rc == -1 && strstr(err, c[i].err), "case %zu: rc %d err '%s', want '%s'", i, rc,
			      err, c[i].err);
		else
			CHECK(rc == 0, "case %zu: rc %d err '%s'", i, rc, err);
		if (c[i].kind == METRIC_REGEX && !c[i].err)
			CHECK(m.re_ready, "regex compiled");
		metric_release(&m);
		CHECK(!m.name && !m.pattern && !m.re_ready, "released");
	}

	/* Refusal phrases of one's own: the list must have no empty phrase. */
	struct metric m = mk("ref", METRIC_REFUSAL, NULL, 0, NULL);
	char err[256] = "";
	m.phrases = calloc(2, sizeof(char *));
	m.nphrases = 2;
	m.phrases[0] = strdup("no idea");
	m.phrases[1] = strdup("");
	CHECK(metric_prepare(&m, err, sizeof(err)) == -1 && !strcmp(err, "metric 'ref': refusal phrase 2 is empty"),
	      "err '%s'", err);
	m.nphrases = 1;
	CHECK(metric_prepare(&m, err, sizeof(err)) == 0, "one phrase: %s", err);
	m.nphrases = 2; /* so that release frees both */
	metric_release(&m);

	/* Prepared twice: the first regex is freed (the leak check would see it). */
	m = mk("twice", METRIC_REGEX, "a+", 0, NULL);
	CHECK(metric_prepare(&m, err, sizeof(err)) == 0 && metric_prepare(&m, err, sizeof(err)) == 0,
	      "prepare twice");
	metric_release(&m);
	metric_release(NULL);
}

/* ---- the heuristics -------------------------------------------------------------- */

static void heuristic_length(void)
{
	struct metric m = mk("len", METRIC_LENGTH, NULL, 0, NULL);
	struct score_case c[] = {
		{ "\"hello\"", 0, 5, "answer has 5 characters" },
		{ "\"h\\u00e9llo\"", 0, 5, "answer has 5 characters" },   /* é: 2 bytes, 1 character */
		{ "\"\xe6\x9d\xb1\xe4\xba\xac\"", 0, 2, "answer has 2 characters" }, /* 東京 */
		{ "\"\\ud83d\\ude00!\"", 0, 2, NULL },                     /* an emoji: 4 bytes */
		{ "\"x\"", 0, 1, "answer has 1 character" },
		{ "\"\"", 0, 0, "answer has 0 characters" },
		{ "{\"a\": 1}", 0, 7, NULL },                               /* {"a":1} */
		{ "12", 0, 2, NULL },
		{ NULL, 1, 0, "no answer at /output/answer" },
		{ "null", 1, 0, "no answer at /output/answer" },
	};
	CHECK(run_cases(&m, c, NCASES(c)) == 0, "length cases");
	metric_release(&m);

	/* Another field, by pointer. */
	m = mk("qlen", METRIC_LENGTH, NULL, 0, "/input/question");
	struct metric_result r;
	CHECK(score_json(&m, rec_refusal, &r) == 0 && !r.error && r.score == 50 &&
	      !strcmp(r.reason, "/input/question has 50 characters"), "question: %g '%s'", r.score, r.reason);
	metric_release(&m);
	m = mk("slen", METRIC_LENGTH, NULL, 0, "/output/summary");
	CHECK(score_json(&m, rec_refusal, &r) == 0 && r.error &&
	      !strcmp(r.reason, "no value at /output/summary"), "reason '%s'", r.reason);
	metric_release(&m);
}

static void heuristic_empty(void)
{
	struct metric m = mk("empty", METRIC_EMPTY, NULL, 0, NULL);
	struct score_case c[] = {
		{ NULL, 0, 1, "answer is missing" },
		{ "null", 0, 1, "answer is missing" },
		{ "\"\"", 0, 1, "answer is empty" },
		{ "\" \\n\\t\\r \"", 0, 1, "answer is only white space" },
		{ "\"\\u00a0\\u3000\\u200b\\ufeff \"", 0, 1, "only white space" }, /* Unicode spaces */
		{ "\" . \"", 0, 0, "answer has text" },
		{ "\"a\"", 0, 0, NULL },
		{ "\"\\u00e9\"", 0, 0, NULL },
		{ "0", 0, 0, NULL },
		{ "[]", 0, 0, NULL },
	};
	CHECK(run_cases(&m, c, NCASES(c)) == 0, "empty cases");
	metric_release(&m);
}

static void heuristic_refusal(void)
{
	struct metric m = mk("refusal", METRIC_REFUSAL, NULL, 0, NULL);
	struct score_case c[] = {
		{ "\"I'm sorry, but I can't share that.\"", 0, 1, "the refusal phrase \"i'm sorry, but\"" },
		{ "\"I CANNOT HELP with that request.\"", 0, 1, "\"i cannot help\"" },
		{ "\"Sadly I can\xe2\x80\x99t help you there.\"", 0, 1, "\"i can't help\"" }, /* ’ */
		{ "\"As an AI language model, I have no opinions.\"", 0, 1, "\"as an ai\"" },
		{ "\"I am unable to access your account.\"", 0, 1, "\"i am unable to\"" },
		{ "\"Unfortunately, I'm not able to do that.\"", 0, 1, "\"i'm not able to\"" },
		{ "\"I could not find information about this in the provided documents.\"", 0, 1,
		  "\"i could not find information\"" },
		{ "\"I don't have enough information to answer.\"", 0, 1, NULL },
		{ "\"I must decline.\"", 0, 1, NULL },
		/* whole words only, and no refusal in ordinary answers */
		{ "\"Use it as an aid to memory.\"", 0, 0, "answer has no refusal phrase" },
		{ "\"Hi can't help noticing the sky.\"", 0, 0, NULL },
		{ "\"To reset your password, open Settings. I cannot stress this enough.\"", 0, 0, NULL },
		{ "\"\"", 0, 0, NULL },
		{ NULL, 1, 0, "no answer at /output/answer" },
	};
	CHECK(run_cases(&m, c, NCASES(c)) == 0, "built-in phrases");

	struct metric_result r;
	CHECK(score_json(&m, rec_refusal, &r) == 0 && !r.error && r.score == 1, "loadgen's refusal: %s",
	      r.reason);
	CHECK(score_json(&m, rec_answer, &r) == 0 && !r.error && r.score == 0, "loadgen's answer: %s",
	      r.reason);
	metric_release(&m);

	/* One's own phrases replace the built-in list. */
	m = mk("mine", METRIC_REFUSAL, NULL, 0, NULL);
	m.phrases = calloc(2, sizeof(char *));
	m.nphrases = 2;
	m.phrases[0] = strdup("No Idea");
	m.phrases[1] = strdup("ask someone else");
	char err[128];
	int rc;
	rc = metric_prepare(&m, err, sizeof(err));
	REQUIRE(rc == 0, "%s", err);
	struct score_case own[] = {
		{ "\"Honestly, I have no idea.\"", 0, 1, "the refusal phrase \"No Idea\"" },
		{ "\"Please ASK SOMEONE ELSE\"", 0, 1, NULL },
		{ "\"I'm sorry, but no.\"", 0, 0, NULL },
	};
	CHECK(run_cases(&m, own, NCASES(own)) == 0, "own phrases");
	metric_release(&m);
}

static void heuristic_regex(void)
{
	char err[256];
	int rc;
	struct metric m = mk("digits", METRIC_REGEX, "^[0-9]+$", 0, NULL);
	rc = metric_prepare(&m, err, sizeof(err));
	REQUIRE(rc == 0, "%s", err);
	struct score_case c[] = {
		{ "\"12345\"", 0, 1, "answer matches '^[0-9]+$'" },
		{ "\"123a\"", 0, 0, "answer does not match '^[0-9]+$'" },
		{ "\"\"", 0, 0, NULL },
		{ "42", 0, 1, NULL },     /* a number answer is its text */
		{ NULL, 1, 0, "no answer at /output/answer" },
	};
	CHECK(run_cases(&m, c, NCASES(c)) == 0, "regex cases");
	metric_release(&m);

	m = mk("cite", METRIC_REGEX, "\\[[0-9]+\\]", 0, NULL);
	rc = metric_prepare(&m, err, sizeof(err));
	REQUIRE(rc == 0, "%s", err);
	struct metric_result r;
	CHECK(score_json(&m, rec_answer, &r) == 0 && r.score == 1, "citation: %s", r.reason);
	CHECK(score_json(&m, rec_refusal, &r) == 0 && r.score == 0, "no citation: %s", r.reason);
	metric_release(&m);

	/* icase, and a field of one's own */
	m = mk("q", METRIC_REGEX, "^how (do|can) i ", 1, "/input/question");
	rc = metric_prepare(&m, err, sizeof(err));
	REQUIRE(rc == 0, "%s", err);
	CHECK(score_json(&m, rec_refusal, &r) == 0 && r.score == 1 &&
	      strstr(r.reason, "/input/question matches"), "icase: %s", r.reason);
	metric_release(&m);
	m = mk("q", METRIC_REGEX, "^how (do|can) i ", 0, "/input/question");
	rc = metric_prepare(&m, err, sizeof(err));
	REQUIRE(rc == 0, "%s", err);
	CHECK(score_json(&m, rec_refusal, &r) == 0 && r.score == 0, "case kept: %s", r.reason);
	metric_release(&m);

	/* Not prepared: refused, not a made-up score. */
	m = mk("raw", METRIC_REGEX, "x", 0, NULL);
	CHECK(score_json(&m, rec_answer, &r) == -1 && r.error, "unprepared regex");
	metric_release(&m);
}

static void heuristic_contains(void)
{
	struct metric m = mk("has", METRIC_CONTAINS, "Billing page", 0, NULL);
	struct score_case c[] = {
		{ "\"see the Billing page\"", 0, 1, "answer contains 'Billing page'" },
		{ "\"see the billing PAGE\"", 0, 0, "answer does not contain 'Billing page'" },
		{ "\"Billing\"", 0, 0, NULL },
		{ NULL, 1, 0, "no answer at /output/answer" },
	};
	CHECK(run_cases(&m, c, NCASES(c)) == 0, "case kept");
	metric_release(&m);

	m = mk("has", METRIC_CONTAINS, "Billing page", 1, NULL);
	struct score_case ci[] = {
		{ "\"see the billing PAGE\"", 0, 1, "contains 'Billing page' (ignoring case)" },
		{ "\"BILLING PAGE\"", 0, 1, NULL },
		{ "\"BILLING PAG\"", 0, 0, NULL },
	};
	CHECK(run_cases(&m, ci, NCASES(ci)) == 0, "ignoring case");
	metric_release(&m);
}

static void heuristic_valid_json(void)
{
	struct metric m = mk("json", METRIC_VALID_JSON, NULL, 0, NULL);
	struct score_case c[] = {
		{ "\"{\\\"a\\\": 1}\"", 0, 1, "answer is one valid JSON value" },
		{ "\"  [1, 2, {\\\"b\\\": null}]\\n\\t \"", 0, 1, NULL },  /* white space around */
		{ "\"\\\"just a string\\\"\"", 0, 1, NULL },
		{ "\"42\"", 0, 1, NULL },
		{ "\"-0.5e3\"", 0, 1, NULL },
		{ "\"true\"", 0, 1, NULL },
		{ "\"null\"", 0, 1, NULL },
		{ "\"{\\\"a\\\": 1} trailing\"", 0, 0, "answer is not valid JSON (at byte 9)" },
		{ "\"{\\\"a\\\": 1}{}\"", 0, 0, "not valid JSON" },        /* two values */
		{ "\"[1, 2] [3]\"", 0, 0, NULL },
		{ "\"{\\\"a\\\": 1\"", 0, 0, NULL },                      /* unclosed */
		{ "\"[1,]\"", 0, 0, NULL },
		{ "\"{a: 1}\"", 0, 0, NULL },
		{ "\"NaN\"", 0, 0, NULL },
		{ "\"nul\"", 0, 0, NULL },
		{ "\"Sure! {\\\"a\\\": 1}\"", 0, 0, NULL },
		{ "\"```json\\n{}\\n```\"", 0, 0, NULL },                /* a fence is not JSON */
		{ "\"\"", 0, 0, "answer is not JSON: it is empty" },
		{ "\"   \"", 0, 0, "it is empty" },
		{ "{\"already\": \"json\"}", 0, 1, NULL },              /* a non-string answer */
		{ NULL, 1, 0, "no answer at /output/answer" },
	};
	CHECK(run_cases(&m, c, NCASES(c)) == 0, "valid JSON cases");
	metric_release(&m);
}

static void heuristic_figures(void)
{
	struct metric lat = mk("lat", METRIC_LATENCY, NULL, 0, NULL);
	struct metric ttft = mk("ttft", METRIC_TTFT, NULL, 0, NULL);
	struct metric tok = mk("tok", METRIC_TOKENS, NULL, 0, NULL);
	struct metric_result r;
	CHECK(score_json(&lat, rec_refusal, &r) == 0 && !r.error && r.score == 1260.983 &&
	      !strcmp(r.reason, "latency 1261 ms"), "latency %g '%s'", r.score, r.reason);
	CHECK(score_json(&ttft, rec_refusal, &r) == 0 && !r.error && r.score == 823.926 &&
	      !strcmp(r.reason, "time to first token 824 ms"), "ttft %g '%s'", r.score, r.reason);
	CHECK(score_json(&tok, rec_refusal, &r) == 0 && !r.error && r.score == 316 &&
	      !strcmp(r.reason, "316 tokens"), "tokens %g '%s'", r.score, r.reason);
	CHECK(score_json(&ttft, "{\"latency_ms\":{\"time_to_first_token\":4.25}}", &r) == 0 &&
	      !r.error && !strcmp(r.reason, "time to first token 4.2 ms"), "small: '%s'", r.reason);

	const char *none = "{\"trace_id\":\"x\",\"latency_ms\":{\"total\":null},\"usage\":{}}";
	CHECK(score_json(&lat, none, &r) == 0 && r.error && isnan(r.score) &&
	      !strcmp(r.reason, "no latency at /latency_ms/total"), "'%s'", r.reason);
	CHECK(score_json(&ttft, none, &r) == 0 && r.error &&
	      !strcmp(r.reason, "no time to first token at /latency_ms/time_to_first_token"), "'%s'",
	      r.reason);
	CHECK(score_json(&tok, none, &r) == 0 && r.error &&
	      !strcmp(r.reason, "no token count at /usage/total_tokens"), "'%s'", r.reason);
	metric_release(&lat);
	metric_release(&ttft);
	metric_release(&tok);

	/* A judge is not scored here. */
	struct metric j = mk("judge", METRIC_JUDGE, NULL, 0, NULL);
	CHECK(score_json(&j, rec_refusal, &r) == -1 && r.error, "judge refused");
	metric_release(&j);
}

/* ---- grounding ----------------------------------------------------------------- */

static void grounding_hand_computed(void)
{
	struct { const char *answer, *context; double want; } c[] = {
		/* password reset link expires thirty minutes: 6 of 6 ("the", "after" are stop words) */
		{ "The password reset link expires after thirty minutes.",
		  "The password reset link expires thirty minutes after it is sent.", 1.0 },
		/* refunds processed five business days finance team: 5 of 7 (not "refunds", "processed") */
		{ "Refunds are processed within five business days by the finance team.",
		  "A refund request is reviewed by the finance team within five business days.", 5.0 / 7 },
		/* ASCII case does not matter; repeated words count once: 1 of 1 */
		{ "PASSWORD Password password", "reset the password", 1.0 },
		/* refund policy: 1 of 2 */
		{ "refund refund refund policy", "refund", 0.5 },
		/* kept 400 days: 2 of 3; "[1]" and "for" are no content words */
		{ "Kept for 400 days [1].", "Backups are stored 400 days.", 2.0 / 3 },
		/* café naïve (東京 has 2 characters): only ASCII is lowercased, so Café
		 * matches café and NAÏVE does not match naïve: 1 of 2 */
		{ "caf\xc3\xa9 na\xc3\xafve \xe6\x9d\xb1\xe4\xba\xac ab", "Caf\xc3\xa9 NA\xc3\x8fVE", 0.5 },
		/* words split on punctuation: "e-mail" is "mail" (and "e", too short) */
		{ "e-mail/sms", "send mail", 0.5 },
		/* substrings are not words: "pass" in "password" is not found */
		{ "pass word", "password", 0.0 },
		/* nothing but stop words and short words */
		{ "It is what it is, and so on.", "anything", -1 },
		{ "", "anything", -1 },
		/* no context: nothing found */
		{ "billing page", "", 0.0 },
	};
	for (size_t i = 0; i < NCASES(c); i++) {
		double g = grounding_score(c[i].answer, c[i].context);
		CHECK(fabs(g - c[i].want) < 1e-9, "case %zu: %g, want %g", i, g, c[i].want);
	}
	CHECK(grounding_score(NULL, "x") == -1, "no answer");
	CHECK(grounding_score("billing page", NULL) == 0, "NULL context");
}

static void grounding_metric(void)
{
	struct metric m = mk("grounded", METRIC_GROUNDING, NULL, 0, NULL);
	struct metric_result r;
	/* Counted by an independent implementation (Python) of the same rule. */
	CHECK(score_json(&m, rec_answer, &r) == 0 && !r.error && fabs(r.score - 0.6) < 1e-9 &&
	      !strcmp(r.reason, "12 of 20 content words found in the context"), "%g '%s'", r.score,
	      r.reason);
	CHECK(score_json(&m, "{\"output\":{\"answer\":\"The billing page.\"}}", &r) == 0 && r.error &&
	      !strcmp(r.reason, "no context at /output/context"), "'%s'", r.reason);
	CHECK(score_json(&m, "{\"output\":{\"context\":[\"The billing page.\"]}}", &r) == 0 && r.error &&
	      !strcmp(r.reason, "no answer at /output/answer"), "'%s'", r.reason);
	CHECK(score_json(&m, "{\"output\":{\"answer\":\"Yes, it is.\",\"context\":\"It is.\"}}", &r) == 0 &&
	      r.error && !strcmp(r.reason, "answer has no content word"), "'%s'", r.reason);
	CHECK(score_json(&m, "{\"output\":{\"answer\":\"billing page\",\"context\":[{\"text\":\"The "
	                     "Billing Page\"}]}}", &r) == 0 && !r.error && r.score == 1 &&
	      !strcmp(r.reason, "2 of 2 content words found in the context"), "'%s'", r.reason);
	metric_release(&m);
}

/* 8 KB answers against 8 KB contexts, many times: the evaluator scores
 * thousands of items a second, and sanitizers slow this build several-fold. */
static void grounding_speed(void)
{
	char *a = malloc(8193), *c = malloc(8193);
	REQUIRE(a && c, "malloc");
	unsigned x = 12345;
	size_t na = 0, nc = 0;
	while (na < 8000) {
		x = x * 1103515245u + 12345u;
		na += (size_t)sprintf(a + na, "w%u ", (x >> 16) % 3000);
	}
	while (nc < 8000) {
		x = x * 1103515245u + 12345u;
		nc += (size_t)sprintf(c + nc, "W%u, ", (x >> 16) % 3000);
	}
	int64_t t0 = t_now_ms();
	double g = 0;
	int n = 0;
	while (n < 2000 && t_now_ms() - t0 < 5000) {
		g = grounding_score(a, c);
		n++;
	}
	int64_t ms = t_now_ms() - t0;
	t_note("%d scores of %zu-byte answers against %zu-byte contexts in %lld ms (score %.3f)",
	       n, na, nc, (long long)ms, g);
	CHECK(g > 0.2 && g < 1, "score %g", g);
	CHECK(n == 2000, "only %d scores in 5 s", n);
	free(a);
	free(c);
}

/* ---- loadgen's traffic, end to end ---------------------------------------------- */

/* Every record loadgen makes has the fields at the default pointers, and
 * every heuristic scores it (or, for grounding, says why not). */
static void loadgen_records(void)
{
	char cmd[1024];
	const char *bin = getenv("TS_BIN");
	snprintf(cmd, sizeof(cmd), "%s/tracesift-loadgen -n 200 --seed 7 --error-rate 0",
	         bin && *bin ? bin : "bin");
	FILE *p = popen(cmd, "r");
	REQUIRE(p, "popen %s", cmd);
	enum metric_kind kinds[] = { METRIC_LENGTH, METRIC_EMPTY, METRIC_REFUSAL, METRIC_VALID_JSON,
	                             METRIC_TOKENS, METRIC_LATENCY, METRIC_TTFT, METRIC_GROUNDING };
	char line[1 << 16];
	int n = 0, refusals = 0;
	double g_refusals = 0, g_answers = 0; /* sums of the grounding scores */
	while (fgets(line, sizeof(line), p)) {
		cJSON *root = cJSON_Parse(line);
		struct eval_item it;
		if (!root || item_fields(root, NULL, &it)) {
			CHECK(0, "record %d", n);
			cJSON_Delete(root);
			break;
		}
		n++;
		CHECK(it.question && it.answer && it.context && !isnan(it.latency_ms) &&
		      !isnan(it.ttft_ms) && !isnan(it.tokens) && strlen(it.id) == 32,
		      "record %d lacks a field", n);
		for (size_t k = 0; k < NCASES(kinds); k++) {
			struct metric m = mk("m", kinds[k], NULL, 0, NULL);
			struct metric_result r;
			CHECK(heuristic_score(&m, &it, &r) == 0 && !r.error, "record %d kind %d: %s", n,
			      (int)kinds[k], r.reason);
			if (kinds[k] == METRIC_REFUSAL)
				refusals += r.score == 1;
			if (kinds[k] == METRIC_GROUNDING && !strncmp(it.answer, "I could not find", 16))
				g_refusals += r.score;
			else if (kinds[k] == METRIC_GROUNDING)
				g_answers += r.score;
			if (kinds[k] == METRIC_VALID_JSON)
				CHECK(r.score == 0, "prose is not JSON");
			metric_release(&m);
		}
		item_release(&it);
		cJSON_Delete(root);
	}
	CHECK(pclose(p) == 0, "loadgen failed");
	CHECK(n == 200, "%d records", n);
	CHECK(refusals > 0 && refusals < n, "refusals %d", refusals);
	if (refusals > 0 && refusals < n) {
		/* Answers built from the passages are better grounded than the
		 * service's "not in the documents" reply. */
		double ga = g_answers / (n - refusals), gr = g_refusals / refusals;
		t_note("%d records: %d refusals; mean grounding %.3f of answers, %.3f of refusals",
		       n, refusals, ga, gr);
		CHECK(ga > gr + 0.15, "answers %.3f, refusals %.3f", ga, gr);
	}
}

int main(void)
{
	RUN(json_pointer_rfc6901);
	RUN(item_fields_sampler_item);
	RUN(item_fields_bare_record);
	RUN(item_fields_absent_and_odd);
	RUN(item_fields_context_shapes);
	RUN(item_fields_custom_paths);
	RUN(metric_prepare_checks);
	RUN(heuristic_length);
	RUN(heuristic_empty);
	RUN(heuristic_refusal);
	RUN(heuristic_regex);
	RUN(heuristic_contains);
	RUN(heuristic_valid_json);
	RUN(heuristic_figures);
	RUN(grounding_hand_computed);
	RUN(grounding_metric);
	RUN(grounding_speed);
	RUN(loadgen_records);
	TEST_EXIT();
}
