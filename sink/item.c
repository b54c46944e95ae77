/* sink/item.c - read what the sampler writes to llm.monitoring: items and batch triggers
 *
 * Only the top-level fields the store needs are read, with the validating
 * cursor of core/json.c: no tree is built, and the whole value is checked.
 */
#include "item.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define MAX_DEPTH 64

int sink_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > STORE_NAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '.' || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

static int valid_id(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e || *s == '"' || *s == '\\')
			return 0;
	return 1;
}

static int key_is(const struct json_str *k, const char *name)
{
	return !k->escaped && k->len == strlen(name) && !memcmp(k->s, name, k->len);
}

/* Reads a string value into out (size bytes); -1 if it is not a string or too long. */
static int read_str(struct json_cur *c, char *out, size_t size)
{
	struct json_str s;
	if (json_cur_peek(c) != JSON_STRING)
		return json_cur_skip(c), -1;
	if (json_cur_string(c, &s) || json_str_decode(&s, out, size, NULL))
		return -1;
	return 0;
}

static int read_int(struct json_cur *c, int64_t *out)
{
	const char *s;
	size_t len;
	if (json_cur_peek(c) != JSON_NUMBER)
		return json_cur_skip(c), -1;
	if (json_cur_number(c, &s, &len))
		return -1;
	int64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int read_ids(struct json_cur *c, struct sink_msg *m)
{
	if (json_cur_peek(c) != JSON_ARRAY)
		return json_cur_skip(c), -1;
	if (json_cur_enter(c))
		return -1;
	int n = 0, cap = 0, more;
	while ((more = json_cur_element(c, &n)) == 1) {
		char id[STORE_ID_MAX + 1];
		if (read_str(c, id, sizeof(id)) || !valid_id(id))
			return -1;
		if (m->nids == cap) {
			cap = cap ? cap * 2 : 64;
			char **nv = realloc(m->ids, sizeof(*nv) * (size_t)cap);
			if (!nv)
				return -1;
			m->ids = nv;
		}
		if (!(m->ids[m->nids] = strdup(id)))
			return -1;
		m->nids++;
	}
	return more;
}

int sink_msg_parse(const char *buf, size_t len, struct sink_msg *m, char *errstr, size_t errstr_size)
{
	struct json_cur c;
	struct json_str k;
	char type[16] = "";
	int n = 0, more, have_batch = 0, have_pos = 0, have_ids = 0;
	const char *bad = NULL;

	memset(m, 0, sizeof(*m));
	m->batch = -1;
	m->position = -1;
	json_cur_init(&c, buf, len, MAX_DEPTH);
	if (json_cur_peek(&c) != JSON_OBJECT) {
		if (c.err == JSON_OK)
			snprintf(errstr, errstr_size, "expected a JSON object");
		else
			json_cur_errstr(&c, errstr, errstr_size);
		return -1;
	}
	json_cur_enter(&c);
	while (!bad && (more = json_cur_member(&c, &n, &k)) == 1) {
		int64_t v;
		if (key_is(&k, "type")) {
			if (read_str(&c, type, sizeof(type)))
				bad = "field 'type': expected \"item\" or \"batch\"";
		} else if (key_is(&k, "id")) {
			if (read_str(&c, m->id, sizeof(m->id)) || !valid_id(m->id))
				bad = "field 'id': expected printable ASCII without quotes, at most 128 bytes";
		} else if (key_is(&k, "dataset")) {
			if (read_str(&c, m->dataset, sizeof(m->dataset)) || !sink_name_valid(m->dataset))
				bad = "field 'dataset': expected a name of 1 to 100 of [A-Za-z0-9._-]";
		} else if (key_is(&k, "batch")) {
			if (read_int(&c, &v) || v < 1)
				bad = "field 'batch': expected a positive integer";
			m->batch = v;
			have_batch = 1;
		} else if (key_is(&k, "position")) {
			if (read_int(&c, &v) || v > 1000000000)
				bad = "field 'position': expected a non-negative integer";
			m->position = (int)v;
			have_pos = 1;
		} else if (key_is(&k, "partial")) {
			enum json_type t = json_cur_peek(&c);
			m->partial = t == JSON_TRUE;
			if (t != JSON_TRUE && t != JSON_FALSE)
				bad = "field 'partial': expected true or false";
			json_cur_skip(&c);
		} else if (key_is(&k, "items")) {
			have_ids = 1;
			if (read_ids(&c, m))
				bad = "field 'items': expected an array of item ids";
		} else if (json_cur_skip(&c)) {
			break;
		}
	}
	if (!bad && (c.err != JSON_OK || json_cur_finish(&c))) {
		json_cur_errstr(&c, errstr, errstr_size);
		sink_msg_release(m);
		return -1;
	}
	if (!bad) {
		m->trigger = !strcmp(type, "batch");
		if (!m->trigger && strcmp(type, "item"))
			bad = "field 'type': expected \"item\" or \"batch\"";
		else if (!m->dataset[0])
			bad = "field 'dataset': missing";
		else if (!m->trigger && !m->id[0])
			bad = "field 'id': missing";
		else if (!m->trigger && have_batch != have_pos)
			bad = "fields 'batch' and 'position': one without the other";
		else if (m->trigger && (!have_batch || !have_ids))
			bad = "a batch record needs 'batch' and 'items'";
	}
	if (bad) {
		/* a failed read may leave the cursor anywhere: the message stands */
		snprintf(errstr, errstr_size, "%s", bad);
		sink_msg_release(m);
		return -1;
	}
	return 0;
}

void sink_msg_release(struct sink_msg *m)
{
	for (int i = 0; i < m->nids; i++)
		free(m->ids[i]);
	free(m->ids);
	m->ids = NULL;
	m->nids = 0;
}
