/* evaluator/item.c - find an item's fields (question, answer, context, figures) by JSON pointer */
#include "metric.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

static const struct field_paths default_paths = {
	.question = "/input/question",
	.answer = "/output/answer",
	.context = "/output/context",
	.latency = "/latency_ms/total",
	.ttft = "/latency_ms/time_to_first_token",
	.tokens = "/usage/total_tokens",
};

/* 1 when the reference token tok[0..n) (still escaped: ~0 is '~', ~1 is '/')
 * names key.  -1 when the token holds a '~' that is not ~0 or ~1. */
static int token_is(const char *tok, size_t n, const char *key)
{
	size_t i = 0;
	for (; i < n; i++, key++) {
		char c = tok[i];
		if (c == '~') {
			if (i + 1 >= n || (tok[i + 1] != '0' && tok[i + 1] != '1'))
				return -1;
			c = tok[++i] == '0' ? '~' : '/';
		}
		if (*key != c)
			return 0;
	}
	return *key == '\0';
}

/* The array index a token spells ("0" or no leading zero, digits only), or
 * -1 ("-", the element after the last, is never there to read). */
static long token_index(const char *tok, size_t n)
{
	if (n == 0 || (n > 1 && tok[0] == '0'))
		return -1;
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (tok[i] < '0' || tok[i] > '9' || v > (INT_MAX - 9) / 10)
			return -1;
		v = v * 10 + (tok[i] - '0');
	}
	return v;
}

const cJSON *json_pointer(const cJSON *root, const char *ptr)
{
	if (!root || !ptr)
		return NULL;
	const cJSON *cur = root;
	const char *p = ptr;
	if (*p && *p != '/')
		return NULL;
	while (*p) {
		const char *tok = ++p; /* past the '/' */
		size_t n = strcspn(tok, "/");
		p = tok + n;
		if (cJSON_IsObject(cur)) {
			const cJSON *found = NULL;
			for (const cJSON *c = cur->child; c; c = c->next) {
				int is = token_is(tok, n, c->string ? c->string : "");
				if (is < 0)
					return NULL;
				if (is) {
					found = c;
					break;
				}
			}
			if (!found)
				return NULL;
			cur = found;
		} else if (cJSON_IsArray(cur)) {
			long idx = token_index(tok, n);
			if (idx < 0)
				return NULL;
			const cJSON *c = cur->child;
			while (c && idx-- > 0)
				c = c->next;
			if (!c)
				return NULL;
			cur = c;
		} else {
			return NULL;
		}
	}
	return cur;
}

static double number_at(const cJSON *rec, const char *ptr)
{
	const cJSON *v = json_pointer(rec, ptr);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* One passage of a context array: a string, or an object's "text" (else
 * "content") string; NULL for anything else. */
static const char *passage_text(const cJSON *el)
{
	if (cJSON_IsString(el))
		return el->valuestring;
	if (!cJSON_IsObject(el))
		return NULL;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(el, "text");
	if (!cJSON_IsString(t))
		t = cJSON_GetObjectItemCaseSensitive(el, "content");
	return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* The context's passages joined by blank lines into *out (NULL when there is
 * no passage with text).  Returns 0, or -1 when out of memory. */
static int join_context(const cJSON *v, char **out)
{
	*out = NULL;
	if (cJSON_IsString(v)) {
		if (!*v->valuestring)
			return 0;
		*out = strdup(v->valuestring);
		return *out ? 0 : -1;
	}
	if (!cJSON_IsArray(v))
		return 0;
	struct sbuf sb;
	sbuf_init(&sb);
	for (const cJSON *el = v->child; el; el = el->next) {
		const char *t = passage_text(el);
		if (!t || !*t)
			continue;
		if (sb.len)
			sbuf_put_lit(&sb, "\n\n");
		sbuf_puts(&sb, t);
	}
	if (sb.oom) {
		sbuf_release(&sb);
		return -1;
	}
	*out = sb.len ? sbuf_detach(&sb, NULL) : NULL;
	sbuf_release(&sb);
	return 0;
}

/* Copies s into it->id, cut at a UTF-8 boundary when it is too long. */
static void set_id(struct eval_item *it, const char *s)
{
	size_t n = strlen(s);
	if (n >= sizeof(it->id)) {
		n = sizeof(it->id) - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(it->id, s, n);
	it->id[n] = '\0';
}

int item_fields(const cJSON *root, const struct field_paths *paths, struct eval_item *it)
{
	memset(it, 0, sizeof(*it));
	it->latency_ms = it->ttft_ms = it->tokens = NAN;
	it->at = default_paths;
	if (paths) {
		if (paths->question)
			it->at.question = paths->question;
		if (paths->answer)
			it->at.answer = paths->answer;
		if (paths->context)
			it->at.context = paths->context;
		if (paths->latency)
			it->at.latency = paths->latency;
		if (paths->ttft)
			it->at.ttft = paths->ttft;
		if (paths->tokens)
			it->at.tokens = paths->tokens;
	}
	it->root = root;
	const cJSON *rec = cJSON_GetObjectItemCaseSensitive(root, "record");
	it->record = cJSON_IsObject(rec) ? rec : root;
	if (!root)
		return 0;

	const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
	if (!cJSON_IsString(id))
		id = cJSON_GetObjectItemCaseSensitive(it->record, "trace_id");
	if (cJSON_IsString(id))
		set_id(it, id->valuestring);

	const cJSON *q = json_pointer(it->record, it->at.question);
	it->question = cJSON_IsString(q) ? q->valuestring : NULL;

	/* A JSON null answer counts as no answer (EMPTY scores it 1, the rest
	 * report it missing); any other non-string is scored as its JSON text. */
	const cJSON *a = json_pointer(it->record, it->at.answer);
	if (cJSON_IsString(a)) {
		it->answer = a->valuestring;
	} else if (a && !cJSON_IsNull(a)) {
		it->answer_owned = cJSON_PrintUnformatted(a);
		if (!it->answer_owned)
			goto oom;
		it->answer = it->answer_owned;
	}

	if (join_context(json_pointer(it->record, it->at.context), &it->context))
		goto oom;

	it->latency_ms = number_at(it->record, it->at.latency);
	it->ttft_ms = number_at(it->record, it->at.ttft);
	it->tokens = number_at(it->record, it->at.tokens);
	return 0;
oom:
	item_release(it);
	return -1;
}

void item_release(struct eval_item *it)
{
	if (!it)
		return;
	free(it->context);
	free(it->answer_owned);
	it->context = NULL;
	it->answer_owned = NULL;
	it->answer = NULL;
}
