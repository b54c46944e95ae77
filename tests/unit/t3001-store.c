/* tests/unit/t3001-store.c - the dataset store: round trip, dedup, rotation, batches, readers */
#include <errno.h>
#include <glob.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "store.h"
#include "test.h"

static char err[512];

/* A fresh folder under /tmp; the store goes in DIR/s (created by the writer). */
static void tmp_store(char *dir, size_t size)
{
	char tmpl[] = "/tmp/t3001-XXXXXX";
	if (!mkdtemp(tmpl))
		abort();
	snprintf(dir, size, "%s/s", tmpl);
}

static void rm_store(const char *dir)
{
	char top[512];
	snprintf(top, sizeof(top), "%s", dir);
	char *slash = strrchr(top, '/');
	if (slash)
		*slash = '\0';
	t_system("rm -rf '%s'", top);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Item i of a run: {"id":ID,"n":i,"text":"..."} of about size bytes. */
static int make_item(char *out, size_t cap, const char *id, int i, size_t size)
{
	int n = snprintf(out, cap, "{\"id\":\"%s\",\"n\":%d,\"u\":\"caf\\u00e9 \xc3\xa9\",\"text\":\"", id, i);
	static const char words[][12] = { "the", "model", "said", "token", "retrieval", "ok", "latency" };
	while ((size_t)n + 12 < size && (size_t)n + 12 < cap) {
		const char *w = words[next_rand() % 7];
		n += snprintf(out + n, cap - (size_t)n, "%s ", w);
	}
	n += snprintf(out + n, cap - (size_t)n, "\"}");
	return n;
}

static void make_id(char *out, const char *prefix, int i)
{
	snprintf(out, 64, "%s%08x", prefix, i);
}

static struct store_writer *wopen(const char *dir, const struct store_limits *lim)
{
	struct store_writer *w = store_writer_open(dir, lim, err, sizeof(err));
	if (!w)
		t_note("store_writer_open: %s", err);
	return w;
}

static struct store_reader *ropen(const char *dir)
{
	struct store_reader *r = store_reader_open(dir, err, sizeof(err));
	if (!r)
		t_note("store_reader_open: %s", err);
	return r;
}

/* Adds n items "P<i>" (i from first) of about size bytes to ds; returns how many were new. */
static int add_items(struct store_writer *w, const char *ds, const char *prefix, int first, int n,
                     size_t size, int64_t batch)
{
	char id[64], item[16384];
	int added = 0;
	for (int i = first; i < first + n; i++) {
		make_id(id, prefix, i);
		int len = make_item(item, sizeof(item), id, i, size);
		int rc = store_add(w, ds, id, batch, batch >= 0 ? i - first : -1, item, (size_t)len,
		                   err, sizeof(err));
		if (rc < 0)
			t_note("store_add: %s", err);
		added += rc == 1;
	}
	return added;
}

/* Reads every item of ds (from seq, of batch) into *out (one string per
 * line, joined with '\n'); returns the count, -1 on error. */
static long read_all_items(const char *dir, const char *ds, int64_t from, int64_t batch,
                           char **out, int64_t *first_seq)
{
	struct store_reader *r = ropen(dir);
	if (!r)
		return -1;
	struct store_iter *it = store_iter_new(r, ds, from, batch, err, sizeof(err));
	if (!it) {
		t_note("store_iter_new: %s", err);
		store_reader_close(r);
		return -1;
	}
	size_t cap = 1 << 16, len = 0;
	char *buf = out ? malloc(cap) : NULL;
	const char *json;
	size_t n;
	long count = 0;
	int rc;
	int64_t prev = -1;
	while ((rc = store_next(it, &json, &n, err, sizeof(err))) == 1) {
		int64_t seq = store_item_seq(it);
		if (count == 0 && first_seq)
			*first_seq = seq;
		if (seq <= prev)
			t_note("sequence went from %lld to %lld", (long long)prev, (long long)seq);
		prev = seq;
		if (json[n] != '\0')
			t_note("item not NUL-terminated");
		if (buf) {
			while (len + n + 2 > cap)
				buf = realloc(buf, cap *= 2);
			memcpy(buf + len, json, n);
			len += n;
			buf[len++] = '\n';
			buf[len] = '\0';
		}
		count++;
	}
	if (rc < 0) {
		t_note("store_next: %s", err);
		count = -1;
	}
	store_iter_free(it);
	store_reader_close(r);
	if (out)
		*out = buf;
	return count;
}

static int count_files(const char *dir, const char *ds)
{
	char pat[600];
	glob_t g;
	snprintf(pat, sizeof(pat), "%s/datasets/%s/seg-*.jsonl.zst", dir, ds);
	if (glob(pat, 0, NULL, &g))
		return 0;
	int n = (int)g.gl_pathc;
	globfree(&g);
	return n;
}

static void round_trip(void)
{
	char dir[256], id[64], item[16384];
	tmp_store(dir, sizeof(dir));
	struct store_writer *w = wopen(dir, NULL);
	REQUIRE(w, "open");
	size_t cap = 1 << 20, len = 0;
	char *expect = malloc(cap);
	for (int i = 0; i < 500; i++) {
		make_id(id, "rt-", i);
		int n = make_item(item, sizeof(item), id, i, 50 + (size_t)(next_rand() % 9000));
		CHECK(store_add(w, "monitoring", id, -1, -1, item, (size_t)n, err, sizeof(err)) == 1, "%s", err);
		while (len + (size_t)n + 2 > cap)
			expect = realloc(expect, cap *= 2);
		memcpy(expect + len, item, (size_t)n);
		len += (size_t)n;
		expect[len++] = '\n';
		expect[len] = '\0';
	}
	CHECK(store_staged(w) == 500, "staged %lld", (long long)store_staged(w));
	/* nothing visible before the commit */
	struct store_reader *r = ropen(dir);
	CHECK(r && store_count(r, "monitoring") == -1, "visible before commit");
	store_reader_close(r);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	CHECK(store_staged(w) == 0, "staged after commit");
	CHECK(store_commit(w, err, sizeof(err)) == 0, "empty commit: %s", err);
	store_writer_close(w);

	char *got = NULL;
	int64_t first = -1;
	long n = read_all_items(dir, "monitoring", 0, -1, &got, &first);
	CHECK(n == 500, "read %ld", n);
	CHECK(first == 0, "first seq %lld", (long long)first);
	CHECK(got && strlen(got) == len && !memcmp(got, expect, len), "bytes differ");
	free(got);

	/* reopen the writer, add more, read them all */
	w = wopen(dir, NULL);
	REQUIRE(w, "reopen");
	CHECK(add_items(w, "monitoring", "more-", 0, 10, 100, -1) == 10, "more");
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	store_writer_close(w);
	r = ropen(dir);
	CHECK(r && store_count(r, "monitoring") == 510, "count %lld", r ? (long long)store_count(r, "monitoring") : -2);
	store_reader_close(r);
	free(expect);
	rm_store(dir);
}

static void dedup(void)
{
	char dir[256];
	tmp_store(dir, sizeof(dir));
	struct store_writer *w = wopen(dir, NULL);
	REQUIRE(w, "open");
	CHECK(add_items(w, "d", "x", 0, 100, 200, -1) == 100, "first");
	CHECK(add_items(w, "d", "x", 50, 100, 200, -1) == 50, "staged duplicates skipped");
	CHECK(store_staged(w) == 150, "staged %lld", (long long)store_staged(w));
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	CHECK(add_items(w, "d", "x", 0, 150, 200, -1) == 0, "stored duplicates skipped");
	CHECK(add_items(w, "other", "x", 0, 10, 200, -1) == 10, "another dataset has its own ids");
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	store_writer_close(w);
	w = wopen(dir, NULL);
	REQUIRE(w, "reopen");
	CHECK(add_items(w, "d", "x", 0, 160, 200, -1) == 10, "after reopen only new ids are added");
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	store_writer_close(w);
	struct store_reader *r = ropen(dir);
	REQUIRE(r, "reader");
	CHECK(store_count(r, "d") == 160, "count %lld", (long long)store_count(r, "d"));
	CHECK(store_count(r, "other") == 10, "other %lld", (long long)store_count(r, "other"));
	store_reader_close(r);
	rm_store(dir);
}

static void rotation_items(void)
{
	char dir[256];
	tmp_store(dir, sizeof(dir));
	struct store_limits lim;
	store_limits_default(&lim);
	lim.segment_items = 10;
	struct store_writer *w = wopen(dir, &lim);
	REQUIRE(w, "open");
	add_items(w, "d", "r", 0, 35, 100, -1);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	CHECK(count_files(dir, "d") == 4, "segments %d", count_files(dir, "d"));
	add_items(w, "d", "r", 35, 3, 100, -1);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	CHECK(count_files(dir, "d") == 4, "the last segment fills up: %d", count_files(dir, "d"));
	add_items(w, "d", "r", 38, 3, 100, -1);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	CHECK(count_files(dir, "d") == 5, "then rotates: %d", count_files(dir, "d"));
	store_writer_close(w);
	CHECK(read_all_items(dir, "d", 0, -1, NULL, NULL) == 41, "all items");
	/* the manifest says 10, 10, 10, 10, 1 */
	char path[512];
	snprintf(path, sizeof(path), "%s/MANIFEST", dir);
	FILE *f = fopen(path, "r");
	REQUIRE(f, "manifest");
	char text[65536];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	cJSON *j = cJSON_Parse(text);
	cJSON *segs = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "datasets"), "d"), "segments");
	REQUIRE(cJSON_GetArraySize(segs) == 5, "manifest segments");
	int want[] = { 10, 10, 10, 10, 1 };
	for (int i = 0; i < 5; i++)
		CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(segs, i), "items")->valueint == want[i], "segment %d", i);
	cJSON_Delete(j);
	rm_store(dir);
}

static void rotation_bytes(void)
{
	char dir[256];
	tmp_store(dir, sizeof(dir));
	struct store_limits lim;
	store_limits_default(&lim);
	lim.segment_bytes = 2000;
	struct store_writer *w = wopen(dir, &lim);
	REQUIRE(w, "open");
	for (int c = 0; c < 10; c++) {
		add_items(w, "d", "b", c * 10, 10, 1000, -1);
		CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	}
	store_writer_close(w);
	int nseg = count_files(dir, "d");
	CHECK(nseg >= 3 && nseg <= 10, "segments %d", nseg);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "for f in %s/datasets/d/seg-*; do s=$(stat -c %%s $f); "
	         "[ $s -lt 6000 ] || exit 1; done", dir);
	CHECK(t_system("%s", cmd) == 0, "a segment passes the limit by more than a commit");
	CHECK(read_all_items(dir, "d", 0, -1, NULL, NULL) == 100, "all items");
	rm_store(dir);
}

static void rotation_age(void)
{
	char dir[256];
	tmp_store(dir, sizeof(dir));
	struct store_limits lim;
	store_limits_default(&lim);
	lim.segment_age_s = 1;
	struct store_writer *w = wopen(dir, &lim);
	REQUIRE(w, "open");
	add_items(w, "d", "a", 0, 5, 100, -1);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	add_items(w, "d", "a", 5, 5, 100, -1);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	CHECK(count_files(dir, "d") == 1, "young segment kept: %d", count_files(dir, "d"));
	usleep(1100 * 1000);
	add_items(w, "d", "a", 10, 5, 100, -1);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	CHECK(count_files(dir, "d") == 2, "old segment rotated: %d", count_files(dir, "d"));
	store_writer_close(w);
	CHECK(read_all_items(dir, "d", 0, -1, NULL, NULL) == 15, "all items");
	rm_store(dir);
}

static void counts_names_errors(void)
{
	char dir[256];
	tmp_store(dir, sizeof(dir));
	struct store_writer *w = wopen(dir, NULL);
	REQUIRE(w, "open");
	add_items(w, "zeta", "z", 0, 3, 100, -1);
	add_items(w, "alpha", "a", 0, 5, 100, -1);
	add_items(w, "m.x_y-1", "m", 0, 7, 100, -1);
	const char *bad_names[] = { "", ".", "..", "a/b", "a b", "../x", "caf\xc3\xa9", NULL };
	for (int i = 0; bad_names[i]; i++) {
		CHECK(store_add(w, bad_names[i], "id", -1, -1, "{}", 2, err, sizeof(err)) == -1,
		      "name '%s' accepted", bad_names[i]);
		CHECK(strstr(err, "bad dataset name") || strstr(err, "dataset"), "message: %s", err);
	}
	char longname[STORE_NAME_MAX + 2];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[STORE_NAME_MAX + 1] = '\0';
	CHECK(store_add(w, longname, "id", -1, -1, "{}", 2, err, sizeof(err)) == -1, "long name");
	longname[STORE_NAME_MAX] = '\0';
	CHECK(store_add(w, longname, "id", -1, -1, "{}", 2, err, sizeof(err)) == 1, "100 bytes: %s", err);
	const char *bad_ids[] = { "", "a\"b", "a\\b", "a\nb", "tab\t", "\x7f", "caf\xc3\xa9", NULL };
	for (int i = 0; bad_ids[i]; i++)
		CHECK(store_add(w, "alpha", bad_ids[i], -1, -1, "{}", 2, err, sizeof(err)) == -1,
		      "id %d accepted", i);
	char longid[STORE_ID_MAX + 2];
	memset(longid, 'i', sizeof(longid) - 1);
	longid[STORE_ID_MAX + 1] = '\0';
	CHECK(store_add(w, "alpha", longid, -1, -1, "{}", 2, err, sizeof(err)) == -1, "long id");
	longid[STORE_ID_MAX] = '\0';
	CHECK(store_add(w, "alpha", longid, -1, -1, "{}", 2, err, sizeof(err)) == 1, "128 bytes: %s", err);
	CHECK(store_add(w, "alpha", "with space ok", -1, -1, "{}", 2, err, sizeof(err)) == 1, "space: %s", err);
	CHECK(store_add(w, "alpha", "nl", -1, -1, "{\"a\":\n1}", 8, err, sizeof(err)) == -1, "newline");
	CHECK(!strcmp(err, "item 'nl' in dataset 'alpha' holds a raw newline"), "message: %s", err);
	CHECK(store_add(w, "alpha", "empty", -1, -1, "", 0, err, sizeof(err)) == -1, "empty item");
	CHECK(store_add(w, "alpha", "b", -5, -1, "{}", 2, err, sizeof(err)) == -1, "batch -5");
	CHECK(store_add(w, "newds", "bad\"id", -1, -1, "{}", 2, err, sizeof(err)) == -1, "bad id");
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	store_writer_close(w);

	struct store_reader *r = ropen(dir);
	REQUIRE(r, "reader");
	const char *const *names;
	int n = store_datasets(r, &names);
	CHECK(n == 4, "datasets %d (a failed add must not create one)", n);
	if (n == 4) {
		CHECK(!strcmp(names[0], "alpha") && !strcmp(names[1], "m.x_y-1") &&
		      !strcmp(names[2], longname) && !strcmp(names[3], "zeta"), "sorted");
	}
	CHECK(store_count(r, "alpha") == 7, "alpha %lld", (long long)store_count(r, "alpha"));
	CHECK(store_count(r, "zeta") == 3, "zeta");
	CHECK(store_count(r, "m.x_y-1") == 7, "m");
	CHECK(store_count(r, "nope") == -1, "missing");
	CHECK(store_iter_new(r, "nope", 0, -1, err, sizeof(err)) == NULL, "iter of missing");
	CHECK(strstr(err, "no dataset 'nope'") != NULL, "message: %s", err);
	const struct store_batch *b;
	CHECK(store_batches(r, "nope", &b) == -1, "batches of missing");
	CHECK(store_batches(r, "alpha", &b) == 0, "no batches");
	store_reader_close(r);
	CHECK(store_reader_open("/nonexistent/store", err, sizeof(err)) == NULL, "missing store");
	CHECK(strstr(err, "/nonexistent/store/MANIFEST") != NULL, "message: %s", err);
	rm_store(dir);
}

static const struct store_batch *find_batch(const struct store_batch *v, int n, int64_t batch)
{
	for (int i = 0; i < n; i++)
		if (v[i].batch == batch)
			return &v[i];
	return NULL;
}

static void batches(void)
{
	char dir[256], id[64];
	tmp_store(dir, sizeof(dir));
	struct store_writer *w = wopen(dir, NULL);
	REQUIRE(w, "open");
	const char *ids[8];
	char idbuf[8][64];
	for (int i = 0; i < 8; i++)
		ids[i] = idbuf[i];
	/* 1: 3 items, trigger of 3: complete */
	add_items(w, "m", "b1-", 0, 3, 100, 1);
	for (int i = 0; i < 3; i++)
		make_id(idbuf[i], "b1-", i);
	CHECK(store_add_trigger(w, "m", 1, 0, ids, 3, err, sizeof(err)) == 0, "trigger: %s", err);
	/* 2: 3 items, trigger of 4: open (one missing) */
	add_items(w, "m", "b2-", 0, 3, 100, 2);
	for (int i = 0; i < 4; i++)
		make_id(idbuf[i], "b2-", i);
	CHECK(store_add_trigger(w, "m", 2, 0, ids, 4, err, sizeof(err)) == 0, "trigger: %s", err);
	/* 3: items, no trigger: open */
	add_items(w, "m", "b3-", 0, 2, 100, 3);
	/* 4: partial trigger of 2: complete, partial */
	add_items(w, "m", "b4-", 0, 2, 100, 4);
	for (int i = 0; i < 2; i++)
		make_id(idbuf[i], "b4-", i);
	CHECK(store_add_trigger(w, "m", 4, 1, ids, 2, err, sizeof(err)) == 0, "trigger: %s", err);
	/* 5: trigger before its items */
	for (int i = 0; i < 2; i++)
		make_id(idbuf[i], "b5-", i);
	CHECK(store_add_trigger(w, "m", 5, 0, ids, 2, err, sizeof(err)) == 0, "trigger: %s", err);
	CHECK(store_add_trigger(w, "m", 5, 0, ids, 0, err, sizeof(err)) == -1, "empty trigger");
	CHECK(store_add_trigger(w, "m", -1, 0, ids, 2, err, sizeof(err)) == -1, "batch -1");
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);

	struct store_reader *r = ropen(dir);
	REQUIRE(r, "reader");
	const struct store_batch *v;
	int n = store_batches(r, "m", &v);
	CHECK(n == 5, "batches %d", n);
	for (int i = 1; i < n; i++)
		CHECK(v[i - 1].batch < v[i].batch, "in order");
	const struct store_batch *b = find_batch(v, n, 1);
	CHECK(b && b->state == BATCH_COMPLETE && b->size == 3 && b->have == 3 && !b->partial && b->first_seq == 0,
	      "batch 1");
	b = find_batch(v, n, 2);
	CHECK(b && b->state == BATCH_OPEN && b->size == 4 && b->have == 3 && b->first_seq == 3, "batch 2");
	b = find_batch(v, n, 3);
	CHECK(b && b->state == BATCH_OPEN && b->size == 0 && b->have == 2, "batch 3");
	b = find_batch(v, n, 4);
	CHECK(b && b->state == BATCH_COMPLETE && b->partial && b->size == 2, "batch 4");
	b = find_batch(v, n, 5);
	CHECK(b && b->state == BATCH_OPEN && b->size == 2 && b->have == 0 && b->first_seq == -1, "batch 5");
	store_reader_close(r);

	/* the missing item of 2 and the items of 5 arrive after a restart */
	store_writer_close(w);
	w = wopen(dir, NULL);
	REQUIRE(w, "reopen");
	add_items(w, "m", "b2-", 3, 1, 100, 2);
	add_items(w, "m", "b5-", 0, 2, 100, 5);
	add_items(w, "m", "b1-", 0, 3, 100, 1); /* duplicates change nothing */
	CHECK(store_add_trigger(w, "m", 1, 0, ids, 2, err, sizeof(err)) == 0, "re-trigger ignored");
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	CHECK(store_mark_evaluated(dir, "m", 1, err, sizeof(err)) == 0, "mark: %s", err);
	CHECK(store_mark_evaluated(dir, "m", 1, err, sizeof(err)) == 0, "mark again: %s", err);
	CHECK(store_mark_evaluated(dir, "m", 4, err, sizeof(err)) == 0, "mark: %s", err);
	CHECK(store_mark_evaluated(dir, "nope", 4, err, sizeof(err)) == -1, "no dataset");
	CHECK(store_mark_evaluated(dir, "../m", 4, err, sizeof(err)) == -1, "bad name");
	r = ropen(dir);
	REQUIRE(r, "reader");
	n = store_batches(r, "m", &v);
	CHECK(n == 5, "batches %d", n);
	b = find_batch(v, n, 1);
	CHECK(b && b->state == BATCH_EVALUATED && b->size == 3, "batch 1 evaluated");
	b = find_batch(v, n, 2);
	CHECK(b && b->state == BATCH_COMPLETE && b->have == 4, "batch 2 complete");
	b = find_batch(v, n, 3);
	CHECK(b && b->state == BATCH_OPEN, "batch 3 open");
	b = find_batch(v, n, 4);
	CHECK(b && b->state == BATCH_EVALUATED && b->partial, "batch 4 evaluated");
	b = find_batch(v, n, 5);
	CHECK(b && b->state == BATCH_COMPLETE && b->first_seq == 11, "batch 5 complete (first_seq %lld)",
	      b ? (long long)b->first_seq : -2);
	CHECK(store_count(r, "m") == 13, "count %lld", (long long)store_count(r, "m"));
	store_reader_close(r);
	store_writer_close(w);

	/* the evaluated list is one line per batch */
	char path[512];
	snprintf(path, sizeof(path), "%s/datasets/m/evaluated", dir);
	FILE *f = fopen(path, "r");
	char text[64] = "";
	if (f) {
		size_t k = fread(text, 1, sizeof(text) - 1, f);
		text[k] = '\0';
		fclose(f);
	}
	CHECK(!strcmp(text, "1\n4\n"), "evaluated file '%s'", text);
	(void)id;
	rm_store(dir);
}

static void iterate_since(void)
{
	char dir[256];
	tmp_store(dir, sizeof(dir));
	struct store_limits lim;
	store_limits_default(&lim);
	lim.segment_items = 30;
	struct store_writer *w = wopen(dir, &lim);
	REQUIRE(w, "open");
	add_items(w, "d", "s", 0, 100, 100, -1);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	int64_t first = -1;
	char *got = NULL;
	CHECK(read_all_items(dir, "d", 50, -1, &got, &first) == 50, "since 50");
	CHECK(first == 50, "first %lld", (long long)first);
	CHECK(got && strstr(got, "\"n\":50,") == strstr(got, "\"n\":"), "starts at item 50");
	free(got);
	CHECK(read_all_items(dir, "d", 100, -1, NULL, NULL) == 0, "nothing new");
	add_items(w, "d", "s", 100, 20, 100, -1);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	CHECK(read_all_items(dir, "d", 100, -1, NULL, &first) == 20 && first == 100, "the 20 new ones");
	CHECK(read_all_items(dir, "d", 119, -1, NULL, &first) == 1 && first == 119, "the last");
	CHECK(read_all_items(dir, "d", 500, -1, NULL, NULL) == 0, "past the end");
	store_writer_close(w);
	rm_store(dir);
}

static void iterate_batch(void)
{
	char dir[256], id[64], item[256];
	tmp_store(dir, sizeof(dir));
	struct store_limits lim;
	store_limits_default(&lim);
	lim.segment_items = 7;
	struct store_writer *w = wopen(dir, &lim);
	REQUIRE(w, "open");
	/* batches 1..6 of 5 items, interleaved two at a time, with items
	 * without a batch in between */
	int pos[7] = { 0 };
	for (int round = 0; round < 5; round++)
		for (int b = 1; b <= 6; b++) {
			int other = b % 2 ? b + 1 : b - 1;
			int bb = round % 2 ? other : b;
			if (pos[bb] >= 5)
				bb = pos[b] < 5 ? b : other;
			snprintf(id, sizeof(id), "b%d-%d", bb, pos[bb]);
			int n = snprintf(item, sizeof(item), "{\"batch\":%d,\"position\":%d}", bb, pos[bb]);
			CHECK(store_add(w, "d", id, bb, pos[bb], item, (size_t)n, err, sizeof(err)) == 1, "%s", err);
			pos[bb]++;
			snprintf(id, sizeof(id), "nob-%d-%d", round, b);
			CHECK(store_add(w, "d", id, -1, -1, "{\"batch\":null}", 14, err, sizeof(err)) == 1, "%s", err);
		}
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	store_writer_close(w);
	CHECK(count_files(dir, "d") > 4, "several segments");
	for (int b = 1; b <= 6; b++) {
		char *got = NULL;
		long n = read_all_items(dir, "d", 0, b, &got, NULL);
		CHECK(n == 5, "batch %d has %ld", b, n);
		char want[64];
		snprintf(want, sizeof(want), "\"batch\":%d,", b);
		int k = 0;
		for (char *p = got; p && (p = strstr(p, "\"batch\":")); p++)
			k += !strncmp(p, want, strlen(want));
		CHECK(k == 5, "batch %d: %d of its own", b, k);
		free(got);
	}
	CHECK(read_all_items(dir, "d", 0, 99, NULL, NULL) == 0, "unknown batch");
	CHECK(read_all_items(dir, "d", 40, 6, NULL, NULL) >= 0, "batch and cursor");
	rm_store(dir);
}

static void offsets(void)
{
	char dir[256];
	tmp_store(dir, sizeof(dir));
	struct store_writer *w = wopen(dir, NULL);
	REQUIRE(w, "open");
	CHECK(store_offset(w, "llm.monitoring", 0) == -1, "none yet");
	store_set_offset(w, "llm.monitoring", 0, 100);
	store_set_offset(w, "llm.monitoring", 3, 7);
	store_set_offset(w, "other/topic", 1, 5);
	CHECK(store_offset(w, "llm.monitoring", 0) == -1, "staged is not committed");
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	CHECK(store_offset(w, "llm.monitoring", 0) == 100, "committed");
	store_set_offset(w, "llm.monitoring", 0, 200);
	CHECK(store_offset(w, "llm.monitoring", 0) == 100, "still the committed one");
	store_writer_close(w); /* the staged 200 is lost */
	w = wopen(dir, NULL);
	REQUIRE(w, "reopen");
	CHECK(store_offset(w, "llm.monitoring", 0) == 100, "persisted %lld", (long long)store_offset(w, "llm.monitoring", 0));
	CHECK(store_offset(w, "llm.monitoring", 3) == 7, "partition 3");
	CHECK(store_offset(w, "other/topic", 1) == 5, "topic with a slash");
	CHECK(store_offset(w, "llm.monitoring", 1) == -1, "unknown partition");
	store_set_offset(w, "llm.monitoring", 0, 300);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	store_writer_close(w);
	w = wopen(dir, NULL);
	REQUIRE(w, "reopen");
	CHECK(store_offset(w, "llm.monitoring", 0) == 300, "updated");
	store_writer_close(w);
	rm_store(dir);
}

static int mode_is(const char *dir, const char *rel, mode_t want)
{
	char path[600];
	struct stat st;
	snprintf(path, sizeof(path), "%s%s%s", dir, *rel ? "/" : "", rel);
	if (stat(path, &st) < 0) {
		t_note("stat '%s': %s", path, strerror(errno));
		return 0;
	}
	if ((st.st_mode & 07777) != want) {
		t_note("'%s' is %04o, not %04o", path, st.st_mode & 07777, want);
		return 0;
	}
	return 1;
}

static void permissions(void)
{
	char dir[256];
	tmp_store(dir, sizeof(dir));
	mode_t old = umask(0);
	struct store_writer *w = wopen(dir, NULL);
	if (!w) {
		umask(old);
		REQUIRE(w, "open");
	}
	add_items(w, "d", "p", 0, 5, 100, 1);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	const char *ids[] = { "p00000000", "p00000001", "p00000002", "p00000003", "p00000004" };
	store_add_trigger(w, "d", 1, 0, ids, 5, err, sizeof(err));
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	CHECK(store_mark_evaluated(dir, "d", 1, err, sizeof(err)) == 0, "mark: %s", err);
	CHECK(mode_is(dir, "", 0700), "store folder");
	CHECK(mode_is(dir, "datasets", 0700), "datasets");
	CHECK(mode_is(dir, "datasets/d", 0700), "dataset folder");
	CHECK(mode_is(dir, "MANIFEST", 0600), "manifest");
	CHECK(mode_is(dir, "LOCK", 0600), "lock");
	CHECK(mode_is(dir, "datasets/d/seg-000001.jsonl.zst", 0600), "segment");
	CHECK(mode_is(dir, "datasets/d/ids", 0600), "ids");
	CHECK(mode_is(dir, "datasets/d/batches", 0600), "batches");
	CHECK(mode_is(dir, "datasets/d/evaluated", 0600), "evaluated");
	umask(old);
	store_writer_close(w);
	rm_store(dir);
}

static void lock(void)
{
	char dir[256];
	tmp_store(dir, sizeof(dir));
	struct store_writer *w = wopen(dir, NULL);
	REQUIRE(w, "open");
	struct store_writer *w2 = store_writer_open(dir, NULL, err, sizeof(err));
	CHECK(!w2, "a second writer got in");
	char want[400];
	snprintf(want, sizeof(want), "store '%s' is locked by another writer", dir);
	CHECK(!strcmp(err, want), "message: %s", err);
	store_writer_close(w2);
	struct store_reader *r = ropen(dir);
	CHECK(r != NULL, "readers are not locked out");
	store_reader_close(r);
	store_writer_close(w);
	w2 = wopen(dir, NULL);
	CHECK(w2 != NULL, "after close the next writer gets in");
	store_writer_close(w2);
	rm_store(dir);
}

/* Every segment decodes with the zstd command line tool and every line is JSON. */
static void zstd_cli(void)
{
	char dir[256], path[600];
	tmp_store(dir, sizeof(dir));
	struct store_limits lim;
	store_limits_default(&lim);
	lim.segment_items = 40;
	struct store_writer *w = wopen(dir, &lim);
	REQUIRE(w, "open");
	for (int c = 0; c < 5; c++) {
		add_items(w, "d", "z", c * 30, 30, 50 + (size_t)c * 1500, c);
		CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	}
	store_writer_close(w);
	snprintf(path, sizeof(path), "%s/datasets/d", dir);
	CHECK(t_system("cd '%s' && for f in seg-*.jsonl.zst; do zstd -q -t \"$f\" || exit 1; done", path) == 0,
	      "zstd -t");
	CHECK(t_system("cd '%s' && zstd -q -dc seg-*.jsonl.zst > all.jsonl", path) == 0, "zstd -dc");
	snprintf(path, sizeof(path), "%s/datasets/d/all.jsonl", dir);
	FILE *f = fopen(path, "r");
	REQUIRE(f, "output");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lines = 0, ok = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		lines++;
		cJSON *j = cJSON_ParseWithLength(line, (size_t)n);
		ok += cJSON_IsObject(j) && cJSON_IsString(cJSON_GetObjectItem(j, "id"));
		cJSON_Delete(j);
	}
	free(line);
	fclose(f);
	CHECK(lines == 150 && ok == 150, "%d lines, %d parse", lines, ok);
	rm_store(dir);
}

/* Two readers open, count and read the store while a writer commits. */
struct rstate {
	const char *dir;
	atomic_int *stop;
	long snapshots, errors;
	char err[512];
};

static void *reader_thread(void *arg)
{
	struct rstate *s = arg;
	while (!*s->stop) {
		struct store_reader *r = store_reader_open(s->dir, s->err, sizeof(s->err));
		if (!r) {
			s->errors++;
			continue;
		}
		int64_t count = store_count(r, "d");
		if (count < 0) {
			store_reader_close(r);
			continue;
		}
		struct store_iter *it = store_iter_new(r, "d", 0, -1, s->err, sizeof(s->err));
		const char *json;
		size_t n;
		int64_t seen = 0;
		int rc;
		while (it && (rc = store_next(it, &json, &n, s->err, sizeof(s->err))) == 1) {
			if (store_item_seq(it) != seen || n < 2 || json[0] != '{' || json[n - 1] != '}')
				s->errors++;
			seen++;
		}
		if (!it || rc < 0 || seen != count) {
			s->errors++;
			if (it)
				snprintf(s->err + strlen(s->err), sizeof(s->err) - strlen(s->err),
				         " (seen %lld of %lld)", (long long)seen, (long long)count);
		}
		store_iter_free(it);
		store_reader_close(r);
		s->snapshots++;
	}
	return NULL;
}

static void readers_during_commits(void)
{
	char dir[256];
	tmp_store(dir, sizeof(dir));
	struct store_limits lim;
	store_limits_default(&lim);
	lim.segment_items = 250;
	struct store_writer *w = wopen(dir, &lim);
	REQUIRE(w, "open");
	atomic_int stop = 0;
	struct rstate rs[2] = { { dir, &stop, 0, 0, "" }, { dir, &stop, 0, 0, "" } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, reader_thread, &rs[i]);
	for (int c = 0; c < 60; c++) {
		add_items(w, "d", "c", c * 50, 50, 300, -1);
		CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
		usleep(2000);
	}
	stop = 1;
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		CHECK(rs[i].errors == 0, "reader %d: %ld errors: %s", i, rs[i].errors, rs[i].err);
		CHECK(rs[i].snapshots > 3, "reader %d read %ld snapshots", i, rs[i].snapshots);
	}
	t_note("readers read %ld and %ld snapshots", rs[0].snapshots, rs[1].snapshots);
	store_writer_close(w);
	CHECK(read_all_items(dir, "d", 0, -1, NULL, NULL) == 3000, "all items");
	rm_store(dir);
}

int main(void)
{
	RUN(round_trip);
	RUN(dedup);
	RUN(rotation_items);
	RUN(rotation_bytes);
	RUN(rotation_age);
	RUN(counts_names_errors);
	RUN(batches);
	RUN(iterate_since);
	RUN(iterate_batch);
	RUN(offsets);
	RUN(permissions);
	RUN(lock);
	RUN(zstd_cli);
	RUN(readers_during_commits);
	TEST_EXIT();
}
