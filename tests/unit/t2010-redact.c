/* tests/unit/t2010-redact.c - redaction of string values: built-ins, user patterns, loadgen traffic */
#include "json.h"
#include "record.h"
#include "redact.h"
#include "sbuf.h"
#include "test.h"

#include <pthread.h>
#include <regex.h>

/* Redacts the JSON text in with r; returns the output (caller frees) and
 * the count in *n. */
static char *red(const struct redactor *r, const char *in, long *n)
{
	struct sbuf o;
	sbuf_init(&o);
	sbuf_put(&o, "", 0);
	*n = redact_json(r, in, strlen(in), &o);
	return sbuf_detach(&o, NULL);
}

static struct redactor *with_builtins(const char *const *names)
{
	char err[256];
	struct redactor *r = redact_new();
	for (; r && *names; names++)
		if (redact_add_builtin(r, *names, NULL, err, sizeof(err))) {
			t_note("add '%s': %s", *names, err);
			redact_destroy(r);
			return NULL;
		}
	return r;
}

/* A case: the body of a JSON string value (as written, escapes and all), the
 * body expected after redaction (NULL: unchanged) and the replacements. */
struct rcase {
	const char *in, *want;
	long        n;
};

/* Runs each case as {"k":"IN"}: the output must be {"k":"WANT"}, valid JSON. */
static void run_cases(const struct redactor *r, const char *what, const struct rcase *cs, size_t ncs)
{
	for (size_t i = 0; i < ncs; i++) {
		struct sbuf in, want;
		sbuf_init(&in);
		sbuf_init(&want);
		sbuf_printf(&in, "{\"k\":\"%s\"}", cs[i].in);
		sbuf_printf(&want, "{\"k\":\"%s\"}", cs[i].want ? cs[i].want : cs[i].in);
		char err[256] = "";
		if (json_check(in.buf, in.len, 64, err, sizeof(err))) {
			CHECK(0, "%s case %zu: bad test input %s: %s", what, i, in.buf, err);
		} else {
			long n;
			char *out = red(r, in.buf, &n);
			CHECK(out && !strcmp(out, want.buf) && n == (cs[i].want ? cs[i].n : 0),
			      "%s case %zu:\n#   in   %s\n#   got  %s (%ld)\n#   want %s (%ld)", what, i,
			      in.buf, out ? out : "(null)", n, want.buf, cs[i].want ? cs[i].n : 0L);
			CHECK(out && !json_check(out, strlen(out), 64, err, sizeof(err)),
			      "%s case %zu: output not JSON: %s", what, i, err);
			free(out);
		}
		sbuf_release(&in);
		sbuf_release(&want);
	}
}

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

static void builtin_email(void)
{
	static const char *const names[] = { "email", NULL };
	static const struct rcase cs[] = {
		/* positives */
		{ "a@b.co", "[EMAIL]", 1 },
		{ "mail me at a@b.com\\n", "mail me at [EMAIL]\\n", 1 },
		{ "Hi, I'm Jane Doe (jane.doe@example.com). Why?", "Hi, I'm Jane Doe ([EMAIL]). Why?", 1 },
		{ "jane_smith07@corp.example.com, then", "[EMAIL], then", 1 },
		{ "x+tag%1@sub-domain.example.co.uk.", "[EMAIL].", 1 },
		{ "\\\"quoted@example.org\\\"", "\\\"[EMAIL]\\\"", 1 },
		{ "\\\\a@b.com", "\\\\[EMAIL]", 1 },
		{ "line\\nb@example.net\\tx", "line\\n[EMAIL]\\tx", 1 },
		{ "mailto:ops@example.com?subject=x", "mailto:[EMAIL]?subject=x", 1 },
		{ "...lead@example.com", "...[EMAIL]", 1 },
		{ "a@b.com c@d.org;e-f@g-h.io", "[EMAIL] [EMAIL];[EMAIL]", 3 },
		{ "jos\xc3\xa9.m\xc3\xbcller@example.com", "[EMAIL]", 1 },
		{ "\xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab\xef\xbc\x9atanaka@example.jp\xe3\x80\x82",
		  "\xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab\xef\xbc\x9a[EMAIL]\xe3\x80\x82", 1 },
		{ "caf\\u00e9 a@b.com", "caf\\u00e9 [EMAIL]", 1 },
		{ "user@mail2.example.com/path", "[EMAIL]/path", 1 },
		/* negatives */
		{ "@mention here", NULL, 0 },
		{ "user@localhost", NULL, 0 },
		{ "a@b.c", NULL, 0 },
		{ "a@b.c0m", NULL, 0 },
		{ "me@ example.com", NULL, 0 },
		{ "me @example.com", NULL, 0 },
		{ "version 1.2@3", NULL, 0 },
		{ "foo@-bar.com", NULL, 0 },
		{ "no at sign example.com", NULL, 0 },
	};
	struct redactor *r = with_builtins(names);
	REQUIRE(r, "redactor");
	run_cases(r, "email", cs, NCASES(cs));
	redact_destroy(r);
}

static void builtin_phone(void)
{
	static const char *const names[] = { "phone", NULL };
	static const struct rcase cs[] = {
		/* positives: loadgen's four shapes, then others */
		{ "+1 415-555-0134", "[PHONE]", 1 },
		{ "Please call me back at +1 415-555-0134.", "Please call me back at [PHONE].", 1 },
		{ "(212) 555-0199", "[PHONE]", 1 },
		{ "+44 20 7946 0958", "[PHONE]", 1 },
		{ "206.555.0115 is mine", "[PHONE] is mine", 1 },
		{ "call (212)555-0199 now", "call [PHONE] now", 1 },
		{ "415-555-0134", "[PHONE]", 1 },
		{ "415 555 0134", "[PHONE]", 1 },
		{ "1-800-555-0199", "[PHONE]", 1 },
		{ "+1 (212) 555-0199", "[PHONE]", 1 },
		{ "+44 (0)20 7946 0958", "[PHONE]", 1 },
		{ "0044 20 7946 0958", "[PHONE]", 1 },
		{ "+33 1 23 45 67 89", "[PHONE]", 1 },
		{ "+4915112345678", "[PHONE]", 1 },
		{ "020 7946 0958", "[PHONE]", 1 },
		{ "07700 900123", "[PHONE]", 1 },
		{ "tel:+14155550134", "tel:[PHONE]", 1 },
		{ "\\n415-555-0134\\n", "\\n[PHONE]\\n", 1 },
		{ "on 2026-11-26 415-555-0134", "on 2026-11-26 [PHONE]", 1 },
		{ "at 10:30 call 415.555.0134 or +44 20 7946 0000.", "at 10:30 call [PHONE] or [PHONE].", 2 },
		{ "Ll\xc3\xa1mame al +34 612 345 678, por favor", "Ll\xc3\xa1mame al [PHONE], por favor", 1 },
		{ "\xe7\x94\xb5\xe8\xaf\x9d\xef\xbc\x9a+86 138 0013 8000\xef\xbc\x8c",
		  "\xe7\x94\xb5\xe8\xaf\x9d\xef\xbc\x9a[PHONE]\xef\xbc\x8c", 1 },
		/* negatives: dates, times, figures, versions, ids, digits in words */
		{ "2026-11-26", NULL, 0 },
		{ "2026-11-26T21:32:21.341276Z", NULL, 0 },
		{ "2024-01-01 12:30:45", NULL, 0 },
		{ "21:32:21", NULL, 0 },
		{ "01/02/2024", NULL, 0 },
		{ "1574.533", NULL, 0 },
		{ "3.10.12", NULL, 0 },
		{ "v1.2.3", NULL, 0 },
		{ "192.168.100.200", NULL, 0 },
		{ "2ac145f954ebfb8fff8872a3702f86f7", NULL, 0 },
		{ "12345678901234567890123456789012", NULL, 0 },
		{ "e70b496c98375acf", NULL, 0 },
		{ "abc4155550134", NULL, 0 },
		{ "4155550134", NULL, 0 },
		{ "1732000000", NULL, 0 },
		{ "555-0134", NULL, 0 },
		{ "100-200-3000", NULL, 0 },
		{ "415-555-0134-99", NULL, 0 },
		{ "415-555-0134x", NULL, 0 },
		{ "ISBN 978-3-16-148410-0", NULL, 0 },
		{ "kb-security-0159#c5", NULL, 0 },
		{ "$1,234,567.89", NULL, 0 },
		{ "1e-10 and +0.5 and -415", NULL, 0 },
		{ "10 20 30 40 50", NULL, 0 },
		{ "+1 2", NULL, 0 },
		{ "gpt-4o-mini, llama-3.1-8b-instruct", NULL, 0 },
		{ "4111 1111 1111 1111", NULL, 0 },
		{ "(see page 12)", NULL, 0 },
	};
	struct redactor *r = with_builtins(names);
	REQUIRE(r, "redactor");
	run_cases(r, "phone", cs, NCASES(cs));
	redact_destroy(r);
}

static void builtin_api_key(void)
{
	static const char *const names[] = { "api_key", NULL };
	static const struct rcase cs[] = {
		/* positives */
		{ "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCD", "[API_KEY]", 1 },
		{ "key: sk-proj-AbC123dEf456GhI789jKl012MnO345pQr\\n", "key: [API_KEY]\\n", 1 },
		{ "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345", "[API_KEY]", 1 },
		{ "AKIAIOSFODNN7EXAMPLE", "[API_KEY]", 1 },
		{ "id=ASIAY34FZKBOKMUTVV7A;", "id=[API_KEY];", 1 },
		{ "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[API_KEY]", 1 },
		{ "(gho_16C7e42F292c6912E7710c838347Ae178B4a)", "([API_KEY])", 1 },
		{ "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP",
		  "[API_KEY]", 1 },
		{ "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "[API_KEY]", 1 },
		{ "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[API_KEY]", 1 },
		{ "AIzaSyA-1234567890abcdefghijklmnopqrstu", "[API_KEY]", 1 },
		{ "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
		  "Authorization: Bearer [API_KEY]", 1 },
		{ "Bearer abc\\/def0123456789xyz.", "Bearer [API_KEY].", 1 },
		{ "\\\"Bearer  AbCdEfGhIjKlMnOpQrSt\\\"", "\\\"Bearer  [API_KEY]\\\"", 1 },
		/* negatives */
		{ "risk-free and sk-learn", NULL, 0 },
		{ "task-abcdefghijklmnopqrstuvwxyz0123", NULL, 0 },
		{ "mask-abcdefghijklmnopqrstuvwxyz", NULL, 0 },
		{ "AKIA1234", NULL, 0 },
		{ "AKIAIOSFODNN7EXAMPLEX", NULL, 0 },
		{ "An API key is shown only once, so store it in a secrets manager.", NULL, 0 },
		{ "Bearer token auth", NULL, 0 },
		{ "Bearer authentication", NULL, 0 },
		{ "ghp_short", NULL, 0 },
		{ "xoxb-123", NULL, 0 },
		{ "rag_answer_v3 usr_dd46e8 time_to_first_token", NULL, 0 },
	};
	struct redactor *r = with_builtins(names);
	REQUIRE(r, "redactor");
	run_cases(r, "api_key", cs, NCASES(cs));
	redact_destroy(r);
}

/* Whole documents: IN -> WANT (NULL: unchanged), N replacements. */
struct dcase {
	const char *in, *want;
	long        n;
};

static void run_docs(const struct redactor *r, const char *what, const struct dcase *cs, size_t ncs)
{
	for (size_t i = 0; i < ncs; i++) {
		char err[256] = "";
		long n;
		const char *want = cs[i].want ? cs[i].want : cs[i].in;
		char *out = red(r, cs[i].in, &n);
		CHECK(out && !strcmp(out, want) && n == cs[i].n,
		      "%s case %zu:\n#   in   %s\n#   got  %s (%ld)\n#   want %s (%ld)", what, i,
		      cs[i].in, out ? out : "(null)", n, want, cs[i].n);
		CHECK(out && !json_check(out, strlen(out), 64, err, sizeof(err)),
		      "%s case %zu: output not JSON: %s", what, i, err);
		free(out);
	}
}

static void secret_keys(void)
{
	static const char *const names[] = { "api_key", NULL };
	static const struct dcase cs[] = {
		{ "{\"api_key\":\"abcd1234efgh5678ijkl\"}", "{\"api_key\":\"[API_KEY]\"}", 1 },
		{ "{\"headers\":{\"X-Api-Key\" : \"Zm9vYmFyYmF6cXV4MTIzNDU2\"}}",
		  "{\"headers\":{\"X-Api-Key\" : \"[API_KEY]\"}}", 1 },
		{ "{\"session_token\":\"0123456789abcdefABCDEF\",\"n\":1}",
		  "{\"session_token\":\"[API_KEY]\",\"n\":1}", 1 },
		{ "{\"authorization\":\"Basic dXNlcjpwYXNz\"}", "{\"authorization\":\"Basic [API_KEY]\"}", 1 },
		{ "{\"Authorization\":\"Bearer abcdefghijklmnop0123\"}",
		  "{\"Authorization\":\"Bearer [API_KEY]\"}", 1 },
		{ "{\"token\":\"hello\",\"api_key\":\"none\",\"secret\":\"a phrase with 12 spaces in it\"}", NULL, 0 },
		{ "{\"input_tokens\":12,\"token\":null,\"tokens\":\"abcd1234efgh5678ijkl\"}", NULL, 0 },
	};
	struct redactor *r = with_builtins(names);
	REQUIRE(r, "redactor");
	run_docs(r, "secret key", cs, NCASES(cs));
	redact_destroy(r);
}

static void keys_left_alone(void)
{
	static const char *const names[] = { "email", "phone", "api_key", NULL };
	static const struct dcase cs[] = {
		{ "{\"jane@example.com\":\"jane@example.com\"}", "{\"jane@example.com\":\"[EMAIL]\"}", 1 },
		{ "{\"415-555-0134\" :[\"415-555-0134\",{\"sk-abcdefghijklmnopqrstuvwxyz0123\":1}]}",
		  "{\"415-555-0134\" :[\"[PHONE]\",{\"sk-abcdefghijklmnopqrstuvwxyz0123\":1}]}", 1 },
		{ "{ \"a@b.com\"\n\t: \"a@b.com\" , \"x\":[\"a@b.com\",\"c\"]}",
		  "{ \"a@b.com\"\n\t: \"[EMAIL]\" , \"x\":[\"[EMAIL]\",\"c\"]}", 2 },
		{ "\"a@b.com\"", "\"[EMAIL]\"", 1 },
		{ "[1,true,null,-2.5e3,\"\",{}]", NULL, 0 },
		{ "{\"n\":12345678901,\"t\":\"2026-01-01T00:00:00.000000Z\",\"d\":4155550134}", NULL, 0 },
	};
	struct redactor *r = with_builtins(names);
	REQUIRE(r, "redactor");
	run_docs(r, "keys", cs, NCASES(cs));
	redact_destroy(r);
}

static void no_rules_copies(void)
{
	struct redactor *r = redact_new();
	REQUIRE(r, "redactor");
	const char *in = "{\"a@b.com\":\"a@b.com\",\"p\":\"+1 415-555-0134\"}";
	long n;
	char *out = red(r, in, &n);
	CHECK(out && !strcmp(out, in) && n == 0, "got '%s' (%ld)", out ? out : "", n);
	free(out);
	/* output is appended */
	struct sbuf o;
	sbuf_init(&o);
	sbuf_puts(&o, "prefix:");
	n = redact_json(r, "[]", 2, &o);
	CHECK(n == 0 && o.buf && !strcmp(o.buf, "prefix:[]"), "appended '%s'", o.buf ? o.buf : "");
	o.len = 0;
	n = redact_json(r, "", 0, &o);
	CHECK(n == 0 && o.len == 0, "empty input: %ld, %zu bytes", n, o.len);
	sbuf_release(&o);
	redact_destroy(r);
	redact_destroy(NULL);
}

static void custom_builtin_replacement(void)
{
	char err[256];
	struct redactor *r = redact_new();
	REQUIRE(r, "redactor");
	CHECK(!redact_add_builtin(r, "email", "<\"mail\" \\ \xc3\xa9\n>", err, sizeof(err)), "%s", err);
	CHECK(!redact_add_builtin(r, "phone", "", err, sizeof(err)), "%s", err);
	long n;
	char *out = red(r, "[\"to a@b.com or +1 415-555-0134!\"]", &n);
	const char *want = "[\"to <\\\"mail\\\" \\\\ \xc3\xa9\\n> or !\"]";
	CHECK(out && !strcmp(out, want) && n == 2, "got %s (%ld), want %s", out ? out : "", n, want);
	free(out);
	/* adding again replaces the replacement */
	CHECK(!redact_add_builtin(r, "email", NULL, err, sizeof(err)), "%s", err);
	out = red(r, "[\"a@b.com\"]", &n);
	CHECK(out && !strcmp(out, "[\"[EMAIL]\"]") && n == 1, "got %s", out ? out : "");
	free(out);
	redact_destroy(r);
}

static void user_patterns(void)
{
	static const struct {
		const char *ere, *repl, *in, *want;
		long        n;
	} cs[] = {
		{ "(SSN|ssn):? [0-9]{3}-[0-9]{2}-[0-9]{4}", "\\1 [SSN]", "[\"my ssn: 123-45-6789 ok\"]",
		  "[\"my ssn [SSN] ok\"]", 1 },
		/* quotes and backslashes in the replacement are escaped; \\ is one backslash */
		{ "secret", "say \"hi\" \\\\ \\q", "[\"a secret!\"]", "[\"a say \\\"hi\\\" \\\\ \\\\q!\"]", 1 },
		/* patterns see decoded text: "." matches the newline of \n */
		{ "1.l", "X", "[\"line1\\nline2\"]", "[\"lineXine2\"]", 1 },
		/* ^ only at the start of the string */
		{ "^ab", "X", "[\"ab ab\"]", "[\"X ab\"]", 1 },
		{ "o", "X", "[\"foo\"]", "[\"fXX\"]", 2 },
		{ "[0-9]+", "<\\0>", "[\"a12b345\"]", "[\"a<12>b<345>\"]", 2 },
		{ "(x)|y", "[\\1]", "[\"y\"]", "[\"[]\"]", 1 },
		{ "\xc3\xa9", "e", "[\"caf\xc3\xa9 caf\\u00e9\"]", "[\"cafe cafe\"]", 2 },
		/* a match that cuts a UTF-8 character takes the whole character */
		{ "[^a-z]", "_", "[\"caf\xc3\xa9\"]", "[\"caf_\"]", 1 },
		{ "z+", "Z", "[\"\xe4\xb8\xad\xe6\x96\x87 zz \xf0\x9f\x98\x80\"]",
		  "[\"\xe4\xb8\xad\xe6\x96\x87 Z \xf0\x9f\x98\x80\"]", 1 },
		/* not in keys; an unchanged string keeps its escapes as written */
		{ "y", "Y", "{\"xyz\":\"xyz\",\"e\":\"a\\/b\\u0041\"}", "{\"xyz\":\"xYz\",\"e\":\"a\\/b\\u0041\"}", 1 },
		{ "zzz", "", "[\"a\\/b\",\"\\ud83d\\ude00\"]", NULL, 0 },
		/* a match at the start and at the end */
		{ "a|d", "_", "[\"abcd\"]", "[\"_bc_\"]", 2 },
		/* a control character produced by a replacement */
		{ "b", "\t", "[\"abc\"]", "[\"a\\tc\"]", 1 },
	};
	for (size_t i = 0; i < NCASES(cs); i++) {
		char err[256] = "";
		struct redactor *r = redact_new();
		REQUIRE(r, "redactor");
		if (redact_add_pattern(r, cs[i].ere, cs[i].repl, err, sizeof(err))) {
			CHECK(0, "case %zu: pattern '%s': %s", i, cs[i].ere, err);
		} else {
			const char *want = cs[i].want ? cs[i].want : cs[i].in;
			long n;
			char *out = red(r, cs[i].in, &n);
			CHECK(out && !strcmp(out, want) && n == cs[i].n,
			      "case %zu '%s':\n#   in   %s\n#   got  %s (%ld)\n#   want %s (%ld)", i, cs[i].ere,
			      cs[i].in, out ? out : "(null)", n, want, cs[i].n);
			CHECK(out && !json_check(out, strlen(out), 64, err, sizeof(err)),
			      "case %zu: output not JSON: %s", i, err);
			free(out);
		}
		redact_destroy(r);
	}
#ifdef REG_STARTEND
	/* a NUL in a string (\u0000) does not stop the pattern */
	{
		char err[256];
		struct redactor *r = redact_new();
		REQUIRE(r, "redactor");
		CHECK(!redact_add_pattern(r, "b+", "X", err, sizeof(err)), "%s", err);
		long n;
		char *out = red(r, "[\"a\\u0000bb\"]", &n);
		CHECK(out && !strcmp(out, "[\"a\\u0000X\"]") && n == 1, "got %s", out ? out : "");
		free(out);
		redact_destroy(r);
	}
#endif
}

static void builtins_then_patterns(void)
{
	static const char *const names[] = { "email", "phone", NULL };
	char err[256];
	struct redactor *r = with_builtins(names);
	REQUIRE(r, "redactor");
	CHECK(!redact_add_pattern(r, "\\[EMAIL\\]", "<e>", err, sizeof(err)), "%s", err);
	CHECK(!redact_add_pattern(r, "<e>", "<<e>>", err, sizeof(err)), "%s", err);
	CHECK(!redact_add_pattern(r, "Jane", "J.", err, sizeof(err)), "%s", err);
	long n;
	char *out = red(r, "{\"q\":\"Jane\\t(jane@example.com) +1 415-555-0134\",\"k\":\"none\"}", &n);
	const char *want = "{\"q\":\"J.\\t(<<e>>) [PHONE]\",\"k\":\"none\"}";
	CHECK(out && !strcmp(out, want) && n == 5, "got %s (%ld), want %s", out ? out : "", n, want);
	free(out);
	redact_destroy(r);
}

static void many_matches_one_string(void)
{
	static const char *const names[] = { "email", NULL };
	struct redactor *r = with_builtins(names);
	REQUIRE(r, "redactor");
	struct sbuf in, want;
	sbuf_init(&in);
	sbuf_init(&want);
	sbuf_puts(&in, "[\"");
	sbuf_puts(&want, "[\"");
	for (int i = 0; i < 300; i++) {
		sbuf_printf(&in, "u%d@example.com, ", i);
		sbuf_puts(&want, "[EMAIL], ");
	}
	sbuf_puts(&in, "\"]");
	sbuf_puts(&want, "\"]");
	long n;
	char *out = red(r, in.buf, &n);
	CHECK(out && !strcmp(out, want.buf) && n == 300, "%ld replacements", n);
	free(out);
	sbuf_release(&in);
	sbuf_release(&want);
	redact_destroy(r);
}

/* Deeper than the scanner's nesting table: keys are still told from values. */
static void deep_nesting(void)
{
	static const char *const names[] = { "email", NULL };
	struct redactor *r = with_builtins(names);
	REQUIRE(r, "redactor");
	struct sbuf in, want;
	sbuf_init(&in);
	sbuf_init(&want);
	const int depth = 5000;
	for (int i = 0; i < depth; i++) {
		sbuf_puts(&in, i % 2 ? "[\"a@b.com\"," : "{\"k@b.com\":");
		sbuf_puts(&want, i % 2 ? "[\"[EMAIL]\"," : "{\"k@b.com\":");
	}
	sbuf_puts(&in, "\"v@b.com\"");
	sbuf_puts(&want, "\"[EMAIL]\"");
	for (int i = depth - 1; i >= 0; i--) {
		sbuf_puts(&in, i % 2 ? "]" : ",\"x@b.com\":\"y@b.com\"}");
		sbuf_puts(&want, i % 2 ? "]" : ",\"x@b.com\":\"[EMAIL]\"}");
	}
	long n;
	char *out = red(r, in.buf, &n);
	CHECK(out && !strcmp(out, want.buf) && n == depth / 2 + 1 + depth / 2,
	      "%ld replacements, output %s", n, out && !strcmp(out, want.buf) ? "as expected" : "differs");
	free(out);
	sbuf_release(&in);
	sbuf_release(&want);
	redact_destroy(r);
}

static void errors(void)
{
	char err[512] = "", why[256];
	struct redactor *r = redact_new();
	REQUIRE(r, "redactor");

	regex_t re;
	int rc = regcomp(&re, "a(", REG_EXTENDED);
	REQUIRE(rc != 0, "regcomp accepted 'a('");
	regerror(rc, &re, why, sizeof(why));
	char want[600];
	snprintf(want, sizeof(want), "invalid pattern 'a(': %s", why);
	CHECK(redact_add_pattern(r, "a(", "x", err, sizeof(err)) == -1 && !strcmp(err, want),
	      "got '%s', want '%s'", err, want);

	err[0] = '\0';
	CHECK(redact_add_pattern(r, "x*", "y", err, sizeof(err)) == -1 &&
	      !strcmp(err, "pattern 'x*' matches the empty string"), "got '%s'", err);
	err[0] = '\0';
	CHECK(redact_add_pattern(r, "(a)b", "\\2", err, sizeof(err)) == -1 &&
	      !strcmp(err, "replacement '\\2': pattern '(a)b' has no group 2"), "got '%s'", err);
	err[0] = '\0';
	CHECK(redact_add_pattern(r, "a", "\xff", err, sizeof(err)) == -1 &&
	      strstr(err, "not valid UTF-8"), "got '%s'", err);
	err[0] = '\0';
	CHECK(redact_add_builtin(r, "ssn", NULL, err, sizeof(err)) == -1 &&
	      !strcmp(err, "unknown built-in pattern 'ssn' (known: email, phone, api_key)"),
	      "got '%s'", err);
	err[0] = '\0';
	CHECK(redact_add_builtin(r, "email", "\xc3", err, sizeof(err)) == -1 &&
	      strstr(err, "replacement for 'email' is not valid UTF-8"), "got '%s'", err);
	/* nothing was added by the failures */
	long n;
	char *out = red(r, "[\"a@b.com aaa\"]", &n);
	CHECK(out && !strcmp(out, "[\"a@b.com aaa\"]") && n == 0, "got %s", out ? out : "");
	free(out);
	regfree(&re);
	redact_destroy(r);
}

/* --- one redactor, several threads ------------------------------------------- */

struct thr {
	const struct redactor *r;
	const char            *in, *want;
	int                    bad;
};

static void *thr_run(void *arg)
{
	struct thr *t = arg;
	for (int i = 0; i < 300; i++) {
		long n;
		char *out = red(t->r, t->in, &n);
		t->bad += !out || strcmp(out, t->want) != 0 || n != 4;
		free(out);
	}
	return NULL;
}

static void threads(void)
{
	static const char *const names[] = { "email", "phone", "api_key", NULL };
	char err[256];
	struct redactor *r = with_builtins(names);
	REQUIRE(r, "redactor");
	CHECK(!redact_add_pattern(r, "order #([0-9]+)", "order #\\1-X", err, sizeof(err)), "%s", err);
	struct thr t[4];
	pthread_t th[4];
	int started = 0;
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){ r,
			"{\"q\":\"jane@example.com, +44 20 7946 0958, order #12\",\"k\":\"Bearer abcdefghij0123456789\"}",
			"{\"q\":\"[EMAIL], [PHONE], order #12-X\",\"k\":\"Bearer [API_KEY]\"}", 0 };
		int rc = pthread_create(&th[i], NULL, thr_run, &t[i]);
		CHECK(rc == 0, "pthread_create: %s", strerror(rc));
		if (rc)
			break;
		started++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		CHECK(t[i].bad == 0, "thread %d: %d bad results", i, t[i].bad);
	}
	redact_destroy(r);
}

/* --- loadgen's traffic --------------------------------------------------------- */

static size_t count_str(const char *s, size_t len, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	const char *end = s + len;
	while ((s = memmem(s, (size_t)(end - s), needle, nl))) {
		n++;
		s += nl;
	}
	return n;
}

/* Runs loadgen with args; returns its stdout (caller frees) or NULL. */
static char *loadgen(const char *args, size_t *len)
{
	const char *bin = getenv("TS_BIN");
	char path[1024], cmd[1300];
	snprintf(path, sizeof(path), "%s/tracesift-loadgen", bin && *bin ? bin : "bin");
	if (access(path, X_OK)) {
		t_note("'%s' is missing: build it first (make SAN=1)", path);
		return NULL;
	}
	snprintf(cmd, sizeof(cmd), "'%s' %s", path, args);
	FILE *f = popen(cmd, "r");
	if (!f)
		return NULL;
	struct sbuf s;
	sbuf_init(&s);
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		sbuf_put(&s, chunk, n);
	int st = pclose(f);
	if (st != 0) {
		t_note("'%s' exited with status %d", cmd, st);
		sbuf_release(&s);
		return NULL;
	}
	return sbuf_detach(&s, len);
}

/* Redacts every line; checks each output is valid JSON and a valid record,
 * and that redacting it again changes nothing.  Returns the replacements, or
 * -1; *out gets the outputs, one per line. */
static long redact_lines(const struct redactor *r, const char *buf, size_t len, struct sbuf *out,
                         long *records)
{
	long total = 0, bad = 0;
	*records = 0;
	for (const char *p = buf, *end = buf + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t at = out->len;
		char err[512];
		long k = redact_json(r, p, n, out);
		if (k < 0)
			return -1;
		total += k;
		(*records)++;
		const char *o = out->buf + at;
		size_t olen = out->len - at;
		if (json_check(o, olen, 64, err, sizeof(err)) ||
		    rec_validate(o, olen, NULL, NULL, err, sizeof(err)) != REC_OK) {
			if (bad++ < 3)
				t_note("record %ld after redaction: %s", *records, err);
		} else {
			struct sbuf again;
			sbuf_init(&again);
			long k2 = redact_json(r, o, olen, &again);
			if (k2 != 0 || again.len != olen || memcmp(again.buf, o, olen)) {
				if (bad++ < 3)
					t_note("record %ld: redacting again made %ld replacements", *records, k2);
			}
			sbuf_release(&again);
		}
		sbuf_putc(out, '\n');
		p += n + 1;
	}
	return bad ? -1 : total;
}

static void loadgen_pii(void)
{
	static const char *const names[] = { "email", "phone", "api_key", NULL };
	size_t len;
	char *in = loadgen("-n 5000 --pii-rate 1 --seed 3", &len);
	REQUIRE(in, "no loadgen output");
	struct redactor *r = with_builtins(names);
	struct sbuf out;
	sbuf_init(&out);
	long records = 0;
	long n = r ? redact_lines(r, in, len, &out, &records) : -1;
	CHECK(records == 5000, "%ld records", records);
	/* loadgen's addresses are at example.com/.org/.net, mail.example.com and
	 * corp.example.com; its numbers hold 555-01xx, 555.01xx or 7946 0xxx, once each */
	static const char *const pii[] = { "@example.", "@mail.example.", "@corp.example.",
	                                   "555-01", "555.01", "7946 0" };
	size_t want = 0;
	for (size_t i = 0; i < NCASES(pii); i++) {
		size_t before = count_str(in, len, pii[i]);
		size_t after = out.buf ? count_str(out.buf, out.len, pii[i]) : 1;
		CHECK(after == 0, "'%s' still appears %zu times (of %zu)", pii[i], after, before);
		want += before;
	}
	size_t emails = out.buf ? count_str(out.buf, out.len, "[EMAIL]") : 0;
	size_t phones = out.buf ? count_str(out.buf, out.len, "[PHONE]") : 0;
	CHECK(want > 10000 && n == (long)want && emails + phones == want,
	      "%ld replacements (%zu emails, %zu phones), %zu pieces of personal data in the input",
	      n, emails, phones, want);
	t_note("%ld records, %zu bytes: %zu emails and %zu phone numbers redacted", records, len,
	       emails, phones);
	sbuf_release(&out);
	redact_destroy(r);
	free(in);
}

/* Traffic without personal data comes out byte for byte. */
static void loadgen_clean(void)
{
	static const char *const names[] = { "email", "phone", "api_key", NULL };
	size_t len;
	char *in = loadgen("-n 3000 --pii-rate 0 --seed 11", &len);
	REQUIRE(in, "no loadgen output");
	struct redactor *r = with_builtins(names);
	struct sbuf out;
	sbuf_init(&out);
	long records = 0;
	long n = r ? redact_lines(r, in, len, &out, &records) : -1;
	CHECK(records == 3000 && n == 0, "%ld records, %ld replacements", records, n);
	CHECK(out.len == len && out.buf && !memcmp(out.buf, in, len), "output differs from input");
	sbuf_release(&out);
	redact_destroy(r);
	free(in);
}

int main(void)
{
	RUN(builtin_email);
	RUN(builtin_phone);
	RUN(builtin_api_key);
	RUN(secret_keys);
	RUN(keys_left_alone);
	RUN(no_rules_copies);
	RUN(custom_builtin_replacement);
	RUN(user_patterns);
	RUN(builtins_then_patterns);
	RUN(many_matches_one_string);
	RUN(deep_nesting);
	RUN(errors);
	RUN(threads);
	RUN(loadgen_pii);
	RUN(loadgen_clean);
	TEST_EXIT();
}
