/* tests/unit/t3002-store-recovery.c - the dataset store: torn tails, leftovers, disk full */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "afile.h"
#include "store.h"
#include "test.h"

static char err[512];

static void tmp_dir(char *dir, size_t size)
{
	char tmpl[] = "/tmp/t3002-XXXXXX";
	if (!mkdtemp(tmpl))
		abort();
	snprintf(dir, size, "%s", tmpl);
}

static int write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int rc = fwrite(p, 1, n, f) == n ? 0 : -1;
	return fclose(f) || rc ? -1 : 0;
}

static int append_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "ab");
	if (!f)
		return -1;
	int rc = fwrite(p, 1, n, f) == n ? 0 : -1;
	return fclose(f) || rc ? -1 : 0;
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 ? -1 : (long)st.st_size;
}

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint64_t next_rand(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Item text for id: {"id":ID,"text":...} of about size bytes; noisy: hex
 * (compresses about 2:1) rather than words. */
static int make_item(char *out, size_t cap, const char *id, size_t size, int noisy)
{
	int n = snprintf(out, cap, "{\"id\":\"%s\",\"text\":\"", id);
	while ((size_t)n + 20 < size && (size_t)n + 20 < cap) {
		if (noisy)
			n += snprintf(out + n, cap - (size_t)n, "%016llx", (unsigned long long)next_rand());
		else
			n += snprintf(out + n, cap - (size_t)n, "%s ", next_rand() % 2 ? "span" : "token");
	}
	n += snprintf(out + n, cap - (size_t)n, "\"}");
	return n;
}

/* The items a test expects, in order, one per line. */
struct expect {
	char *buf;
	size_t len, cap;
	long n;
};

static void expect_add(struct expect *e, const char *item, size_t n)
{
	while (e->len + n + 2 > e->cap) {
		e->cap = e->cap ? e->cap * 2 : 65536;
		e->buf = realloc(e->buf, e->cap);
	}
	memcpy(e->buf + e->len, item, n);
	e->len += n;
	e->buf[e->len++] = '\n';
	e->buf[e->len] = '\0';
	e->n++;
}

/* Adds items PREFIX<first..first+n) to w (and e when it is not NULL); returns how many were new. */
static int add_items(struct store_writer *w, const char *prefix, int first, int n, size_t size,
                     int noisy, int64_t batch, struct expect *e)
{
	char id[64], item[16384];
	int added = 0;
	for (int i = first; i < first + n; i++) {
		snprintf(id, sizeof(id), "%s%06d", prefix, i);
		uint64_t saved = rng;
		rng = (uint64_t)i * 7919 + (uint64_t)prefix[0]; /* the same id: the same text */
		int len = make_item(item, sizeof(item), id, size, noisy);
		rng = saved;
		int rc = store_add(w, "d", id, batch, batch >= 0 ? i - first : -1, item, (size_t)len,
		                   err, sizeof(err));
		if (rc < 0)
			t_note("store_add: %s", err);
		if (rc == 1 && e)
			expect_add(e, item, (size_t)len);
		added += rc == 1;
	}
	return added;
}

/* 1 when a reader sees exactly the expected items of "d", in order. */
static int store_holds(const char *dir, const struct expect *e)
{
	struct store_reader *r = store_reader_open(dir, err, sizeof(err));
	if (!r) {
		t_note("store_reader_open: %s", err);
		return 0;
	}
	int ok = 1;
	if (store_count(r, "d") != e->n) {
		t_note("count %lld, expected %ld", (long long)store_count(r, "d"), e->n);
		ok = 0;
	}
	struct store_iter *it = store_iter_new(r, "d", 0, -1, err, sizeof(err));
	const char *json;
	size_t n, off = 0;
	long seen = 0;
	int rc = -1;
	while (it && (rc = store_next(it, &json, &n, err, sizeof(err))) == 1) {
		if (off + n + 1 > e->len || memcmp(e->buf + off, json, n) || e->buf[off + n] != '\n') {
			if (ok)
				t_note("item %ld differs", seen);
			ok = 0;
			break;
		}
		off += n + 1;
		seen++;
	}
	if (rc < 0) {
		t_note("reading: %s", err);
		ok = 0;
	}
	if (ok && (seen != e->n || off != e->len)) {
		t_note("read %ld items, expected %ld", seen, e->n);
		ok = 0;
	}
	store_iter_free(it);
	store_reader_close(r);
	return ok;
}

/* The heart of it: commit N, then a second commit whose manifest never made
 * it (a crash between the segment writes and the rename), cut at many byte
 * positions of the segment and the id index.  Readers see commit 1 only;
 * the writer drops the tail and the next commit works. */
static void torn_tail_positions(void)
{
	int rc;
	char top[64], dir[128], seg[256], ids[256], man[256];
	tmp_dir(top, sizeof(top));
	snprintf(dir, sizeof(dir), "%s/s", top);
	snprintf(seg, sizeof(seg), "%s/datasets/d/seg-000001.jsonl.zst", dir);
	snprintf(ids, sizeof(ids), "%s/datasets/d/ids", dir);
	snprintf(man, sizeof(man), "%s/MANIFEST", dir);
	struct expect e1 = { 0 }, e2 = { 0 };
	struct store_writer *w = store_writer_open(dir, NULL, err, sizeof(err));
	REQUIRE(w, "open: %s", err);
	add_items(w, "a", 0, 20, 300, 0, 1, &e1);
	rc = store_commit(w, err, sizeof(err));
	REQUIRE(rc == 0, "commit: %s", err);
	size_t m1len, l1, i1;
	char *m1 = afile_read(man, &m1len);
	char *s1 = afile_read(seg, &l1), *d1 = afile_read(ids, &i1);
	free(s1);
	free(d1);
	add_items(w, "b", 0, 20, 300, 0, 2, NULL);
	rc = store_commit(w, err, sizeof(err));
	REQUIRE(rc == 0, "commit: %s", err);
	store_writer_close(w);
	size_t l2, i2;
	char *s2 = afile_read(seg, &l2), *d2 = afile_read(ids, &i2);
	REQUIRE(m1 && s2 && d2 && l2 > l1 && i2 > i1, "files");
	memcpy(&e2, &e1, sizeof(e2));
	e2.buf = malloc(e1.cap);
	memcpy(e2.buf, e1.buf, e1.len + 1);

	/* every position when the tail is small, else about 200 spread over it */
	size_t span = l2 - l1, step = span <= 300 ? 1 : span / 200;
	int tried = 0, failed = 0;
	for (size_t p = l1; p <= l2 && !failed; p += (p + step > l2 && p < l2) ? l2 - p : step) {
		size_t q = i1 + (i2 - i1) * (p - l1) / span;
		if (write_file(man, m1, m1len) || write_file(seg, s2, p) || write_file(ids, d2, q)) {
			failed = 1;
			CHECK(0, "cannot write the fixture");
			break;
		}
		tried++;
		/* a reader before any recovery sees commit 1 only */
		if (!store_holds(dir, &e1)) {
			CHECK(0, "reader at segment %zu, ids %zu", p, q);
			failed = 1;
			break;
		}
		w = store_writer_open(dir, NULL, err, sizeof(err));
		if (!w) {
			CHECK(0, "writer at segment %zu, ids %zu: %s", p, q, err);
			failed = 1;
			break;
		}
		CHECK(file_size(seg) == (long)l1 && file_size(ids) == (long)i1, "tail not cut at %zu", p);
		struct expect e = e2;
		e.buf = malloc(e2.cap);
		memcpy(e.buf, e2.buf, e2.len + 1);
		int added = add_items(w, "b", 0, 20, 300, 0, 2, &e);
		CHECK(added == 20, "the torn items are not known: %d added at %zu", added, p);
		CHECK(store_commit(w, err, sizeof(err)) == 0, "commit at %zu: %s", p, err);
		store_writer_close(w);
		if (!store_holds(dir, &e)) {
			CHECK(0, "after recovery at segment %zu, ids %zu", p, q);
			failed = 1;
		}
		CHECK(t_system("zstd -q -t '%s'", seg) == 0, "zstd -t at %zu", p);
		free(e.buf);
		if (p == l2)
			break;
	}
	t_note("cut the second commit's %zu segment bytes at %d positions", span, tried);
	CHECK(tried >= 100 || (span <= 300 && tried == (int)span + 1), "positions tried: %d", tried);
	free(m1);
	free(s2);
	free(d2);
	free(e1.buf);
	free(e2.buf);
	t_system("rm -rf '%s'", top);
}

/* Garbage and a whole valid frame past the committed length are not items. */
static void garbage_tail(void)
{
	int rc;
	char top[64], dir[128], seg[256], ids[256];
	tmp_dir(top, sizeof(top));
	snprintf(dir, sizeof(dir), "%s/s", top);
	snprintf(seg, sizeof(seg), "%s/datasets/d/seg-000001.jsonl.zst", dir);
	snprintf(ids, sizeof(ids), "%s/datasets/d/ids", dir);
	struct expect e = { 0 };
	struct store_writer *w = store_writer_open(dir, NULL, err, sizeof(err));
	REQUIRE(w, "open: %s", err);
	add_items(w, "g", 0, 10, 200, 0, -1, &e);
	rc = store_commit(w, err, sizeof(err));
	REQUIRE(rc == 0, "commit: %s", err);
	store_writer_close(w);
	long l1 = file_size(seg), i1 = file_size(ids);
	/* a whole frame of one item, as a commit would write it, then garbage */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "printf '{\"id\":\"ghost\"}\\n' | zstd -q -c >> '%s'", seg);
	CHECK(t_system("%s", cmd) == 0, "append a frame");
	append_file(seg, "\x28\xb5\x2f\xfd garbage", 12);
	append_file(ids, "ghost\nhalf-an-i", 15);
	CHECK(store_holds(dir, &e), "reader sees the tail");
	w = store_writer_open(dir, NULL, err, sizeof(err));
	REQUIRE(w, "reopen: %s", err);
	CHECK(file_size(seg) == l1 && file_size(ids) == i1, "tail not cut");
	CHECK(store_add(w, "d", "ghost", -1, -1, "{\"id\":\"ghost\"}", 14, err, sizeof(err)) == 1,
	      "an id of the tail counts as new");
	expect_add(&e, "{\"id\":\"ghost\"}", 14);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	store_writer_close(w);
	CHECK(store_holds(dir, &e), "after recovery");
	free(e.buf);
	t_system("rm -rf '%s'", top);
}

/* A segment (rotation) and a dataset folder that a failed commit created are
 * deleted; the evaluator's list is kept. */
static void uncommitted_files(void)
{
	int rc;
	char top[64], dir[128], path[256], man[256];
	tmp_dir(top, sizeof(top));
	snprintf(dir, sizeof(dir), "%s/s", top);
	snprintf(man, sizeof(man), "%s/MANIFEST", dir);
	struct store_limits lim;
	store_limits_default(&lim);
	lim.segment_items = 10;
	struct expect e = { 0 };
	struct store_writer *w = store_writer_open(dir, &lim, err, sizeof(err));
	REQUIRE(w, "open: %s", err);
	add_items(w, "u", 0, 10, 200, 0, -1, &e);
	rc = store_commit(w, err, sizeof(err));
	REQUIRE(rc == 0, "commit: %s", err);
	size_t m1len;
	char *m1 = afile_read(man, &m1len);
	add_items(w, "u", 10, 5, 200, 0, -1, NULL);
	add_items(w, "v", 0, 5, 200, 0, -1, NULL);
	rc = store_commit(w, err, sizeof(err));
	REQUIRE(rc == 0, "commit: %s", err);
	store_writer_close(w);
	snprintf(path, sizeof(path), "%s/datasets/d/seg-000002.jsonl.zst", dir);
	CHECK(file_size(path) > 0, "the second segment exists");
	/* the second commit's manifest is lost; a dataset it created is left */
	write_file(man, m1, m1len);
	CHECK(t_system("mkdir -p '%s/datasets/ghost' && cp '%s/datasets/d/seg-000001.jsonl.zst' "
	               "'%s/datasets/d/ids' '%s/datasets/ghost/' && echo 3 > '%s/datasets/ghost/evaluated'",
	               dir, dir, dir, dir, dir) == 0, "ghost dataset");
	CHECK(store_holds(dir, &e), "reader before recovery");
	w = store_writer_open(dir, &lim, err, sizeof(err));
	REQUIRE(w, "reopen: %s", err);
	CHECK(file_size(path) == -1, "uncommitted segment not deleted");
	snprintf(path, sizeof(path), "%s/datasets/ghost/seg-000001.jsonl.zst", dir);
	CHECK(file_size(path) == -1, "ghost segment not deleted");
	snprintf(path, sizeof(path), "%s/datasets/ghost/ids", dir);
	CHECK(file_size(path) == -1, "ghost ids not deleted");
	snprintf(path, sizeof(path), "%s/datasets/ghost/evaluated", dir);
	CHECK(file_size(path) == 2, "the evaluated list is not the writer's to delete");
	CHECK(add_items(w, "u", 10, 5, 200, 0, -1, &e) == 5, "re-add");
	rc = store_commit(w, err, sizeof(err));
	REQUIRE(rc == 0, "commit: %s", err);
	store_writer_close(w);
	CHECK(store_holds(dir, &e), "after recovery");
	struct store_reader *r = store_reader_open(dir, err, sizeof(err));
	const char *const *names;
	CHECK(r && store_datasets(r, &names) == 1, "only d is listed");
	store_reader_close(r);
	free(m1);
	free(e.buf);
	t_system("rm -rf '%s'", top);
}

static void manifest_tmp_ignored(void)
{
	int rc;
	char top[64], dir[128], path[256];
	tmp_dir(top, sizeof(top));
	snprintf(dir, sizeof(dir), "%s/s", top);
	struct expect e = { 0 };
	struct store_writer *w = store_writer_open(dir, NULL, err, sizeof(err));
	REQUIRE(w, "open: %s", err);
	add_items(w, "t", 0, 5, 200, 0, -1, &e);
	rc = store_commit(w, err, sizeof(err));
	REQUIRE(rc == 0, "commit: %s", err);
	store_writer_close(w);
	snprintf(path, sizeof(path), "%s/MANIFEST.tmp", dir);
	write_file(path, "{\"format\":\"tracesift-store\",\"ver", 32);
	CHECK(store_holds(dir, &e), "reader ignores MANIFEST.tmp");
	w = store_writer_open(dir, NULL, err, sizeof(err));
	REQUIRE(w, "reopen: %s", err);
	CHECK(file_size(path) == -1, "MANIFEST.tmp left");
	add_items(w, "t", 5, 5, 200, 0, -1, &e);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	store_writer_close(w);
	CHECK(store_holds(dir, &e), "after");
	free(e.buf);
	t_system("rm -rf '%s'", top);
}

/* Committed bytes that are gone are an error, never silently fewer items;
 * a broken manifest is an error too. */
static void committed_data_missing(void)
{
	int rc;
	char top[64], dir[128], seg[256], man[256];
	tmp_dir(top, sizeof(top));
	snprintf(dir, sizeof(dir), "%s/s", top);
	snprintf(seg, sizeof(seg), "%s/datasets/d/seg-000001.jsonl.zst", dir);
	snprintf(man, sizeof(man), "%s/MANIFEST", dir);
	struct store_writer *w = store_writer_open(dir, NULL, err, sizeof(err));
	REQUIRE(w, "open: %s", err);
	add_items(w, "m", 0, 10, 200, 0, -1, NULL);
	rc = store_commit(w, err, sizeof(err));
	REQUIRE(rc == 0, "commit: %s", err);
	store_writer_close(w);
	CHECK(truncate(seg, file_size(seg) - 3) == 0, "truncate");
	w = store_writer_open(dir, NULL, err, sizeof(err));
	CHECK(!w, "writer opened a store with committed bytes missing");
	CHECK(strstr(err, "shorter") && strstr(err, "seg-000001.jsonl.zst'"), "message: %s", err);
	store_writer_close(w);
	struct store_reader *r = store_reader_open(dir, err, sizeof(err));
	REQUIRE(r, "reader: %s", err);
	struct store_iter *it = store_iter_new(r, "d", 0, -1, err, sizeof(err));
	const char *json;
	size_t n;
	while ((rc = store_next(it, &json, &n, err, sizeof(err))) == 1)
		;
	CHECK(rc == -1, "the reader did not notice");
	t_note("reader: %s", err);
	store_iter_free(it);
	store_reader_close(r);
	write_file(man, "{\"format\":\"tracesift-store\"", 27);
	CHECK(!store_reader_open(dir, err, sizeof(err)), "broken manifest");
	CHECK(strstr(err, "bad manifest"), "message: %s", err);
	/* no MANIFEST but data: the writer does not start from scratch */
	unlink(man);
	CHECK(t_system("rm -f '%s'", man) == 0, "rm");
	w = store_writer_open(dir, NULL, err, sizeof(err));
	CHECK(!w, "writer opened a store whose manifest is gone");
	CHECK(strstr(err, "no MANIFEST"), "message: %s", err);
	store_writer_close(w);
	t_system("rm -rf '%s'", top);
}

/* A crash in the middle of appending to the evaluated list. */
static void evaluated_torn_line(void)
{
	int rc;
	char top[64], dir[128], path[256];
	tmp_dir(top, sizeof(top));
	snprintf(dir, sizeof(dir), "%s/s", top);
	struct store_writer *w = store_writer_open(dir, NULL, err, sizeof(err));
	REQUIRE(w, "open: %s", err);
	const char *ids[] = { "e000000", "e000001" };
	for (int b = 3; b <= 5; b++) {
		char p[16];
		snprintf(p, sizeof(p), "e%d-", b);
		add_items(w, p, 0, 2, 100, 0, b, NULL);
		char i0[64], i1[64];
		snprintf(i0, sizeof(i0), "%s%06d", p, 0);
		snprintf(i1, sizeof(i1), "%s%06d", p, 1);
		ids[0] = i0;
		ids[1] = i1;
		CHECK(store_add_trigger(w, "d", b, 0, ids, 2, err, sizeof(err)) == 0, "%s", err);
	}
	rc = store_commit(w, err, sizeof(err));
	REQUIRE(rc == 0, "commit: %s", err);
	store_writer_close(w);
	snprintf(path, sizeof(path), "%s/datasets/d/evaluated", dir);
	write_file(path, "3\n4", 3);
	struct store_reader *r = store_reader_open(dir, err, sizeof(err));
	REQUIRE(r, "reader: %s", err);
	const struct store_batch *v;
	int n = store_batches(r, "d", &v);
	CHECK(n == 3 && v[0].state == BATCH_EVALUATED && v[1].state == BATCH_COMPLETE &&
	      v[2].state == BATCH_COMPLETE, "torn line read as evaluated");
	store_reader_close(r);
	CHECK(store_mark_evaluated(dir, "d", 5, err, sizeof(err)) == 0, "mark: %s", err);
	size_t len;
	char *text = afile_read(path, &len);
	CHECK(text && !strcmp(text, "3\n5\n"), "evaluated file '%s'", text ? text : "");
	free(text);
	t_system("rm -rf '%s'", top);
}

/* The committed length of the last segment of "d", from the MANIFEST. */
static long manifest_seg_bytes(const char *dir)
{
	char path[256];
	size_t len;
	snprintf(path, sizeof(path), "%s/MANIFEST", dir);
	char *text = afile_read(path, &len);
	cJSON *j = cJSON_Parse(text);
	free(text);
	cJSON *segs = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "datasets"), "d"),
	                                  "segments");
	cJSON *last = cJSON_GetArrayItem(segs, cJSON_GetArraySize(segs) - 1);
	long n = last ? (long)cJSON_GetObjectItem(last, "bytes")->valuedouble : -1;
	cJSON_Delete(j);
	return n;
}

/* Write errors at the manifest and at a new segment (a folder stands where
 * the file must go): the commit fails, readers see the last commit, the
 * retry after the cause is gone commits exactly once and the segment holds
 * exactly its committed bytes (the failed attempt's were cut). */
static void write_errors(void)
{
	int rc;
	char top[64], dir[128], path[256], seg1[256];
	tmp_dir(top, sizeof(top));
	snprintf(dir, sizeof(dir), "%s/s", top);
	snprintf(seg1, sizeof(seg1), "%s/datasets/d/seg-000001.jsonl.zst", dir);
	struct store_limits lim;
	store_limits_default(&lim);
	lim.segment_items = 30;
	struct expect e = { 0 };
	struct store_writer *w = store_writer_open(dir, &lim, err, sizeof(err));
	REQUIRE(w, "open: %s", err);
	add_items(w, "w", 0, 10, 500, 0, -1, &e);
	store_set_offset(w, "t", 0, 10);
	rc = store_commit(w, err, sizeof(err));
	REQUIRE(rc == 0, "commit: %s", err);

	struct expect e2 = e;
	e2.buf = malloc(e.cap);
	memcpy(e2.buf, e.buf, e.len + 1);
	add_items(w, "w", 10, 10, 500, 0, -1, &e2);
	store_set_offset(w, "t", 0, 20);
	snprintf(path, sizeof(path), "%s/MANIFEST.tmp", dir);
	rc = mkdir(path, 0700);
	REQUIRE(rc == 0, "mkdir");
	for (int i = 0; i < 3; i++) {
		CHECK(store_commit(w, err, sizeof(err)) == -1, "commit with the manifest blocked");
		CHECK(strstr(err, "cannot write manifest '") && strstr(err, "MANIFEST.tmp'"), "message: %s", err);
	}
	CHECK(file_size(seg1) > manifest_seg_bytes(dir), "the failed attempts wrote to the segment");
	CHECK(store_holds(dir, &e), "readers see the last commit");
	CHECK(store_offset(w, "t", 0) == 10, "offset");
	CHECK(store_staged(w) == 10, "still staged");
	rmdir(path);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "retry: %s", err);
	CHECK(file_size(seg1) == manifest_seg_bytes(dir), "segment %ld bytes, committed %ld",
	      file_size(seg1), manifest_seg_bytes(dir));
	CHECK(store_holds(dir, &e2), "exactly once");
	CHECK(store_offset(w, "t", 0) == 20, "offset");

	/* the next commit rotates into seg-000002, and a folder is in the way */
	struct expect e3 = e2;
	e3.buf = malloc(e2.cap);
	memcpy(e3.buf, e2.buf, e2.len + 1);
	add_items(w, "w", 20, 15, 500, 0, -1, &e3);
	snprintf(path, sizeof(path), "%s/datasets/d/seg-000002.jsonl.zst", dir);
	rc = mkdir(path, 0700);
	REQUIRE(rc == 0, "mkdir");
	CHECK(store_commit(w, err, sizeof(err)) == -1, "commit with the new segment blocked");
	CHECK(strstr(err, "seg-000002.jsonl.zst'"), "message: %s", err);
	CHECK(store_holds(dir, &e2), "readers see the last commit");
	rmdir(path);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "retry: %s", err);
	CHECK(file_size(path) == manifest_seg_bytes(dir), "new segment bytes");
	CHECK(store_holds(dir, &e3), "exactly once");
	store_writer_close(w);
	w = store_writer_open(dir, &lim, err, sizeof(err));
	REQUIRE(w, "reopen: %s", err);
	CHECK(add_items(w, "w", 0, 35, 500, 0, -1, NULL) == 0, "all ids known");
	store_writer_close(w);
	free(e.buf);
	free(e2.buf);
	free(e3.buf);
	t_system("rm -rf '%s'", top);
}

/* --- disk full ------------------------------------------------------------ */

/* Fills the file system of dir up to leave_bytes free; returns the filler's fd. */
static int fill_disk(const char *path, long leave_bytes)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	static char block[65536];
	memset(block, 'f', sizeof(block));
	long total = 0;
	for (size_t chunk = sizeof(block); chunk >= 512; chunk /= 8) {
		ssize_t k;
		while ((k = write(fd, block, chunk)) > 0)
			total += k;
	}
	if (ftruncate(fd, total > leave_bytes ? total - leave_bytes : 0) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void disk_full(void)
{
	char top[64], mnt[128], dir[160], filler[160];
	tmp_dir(top, sizeof(top));
	snprintf(mnt, sizeof(mnt), "%s/mnt", top);
	mkdir(mnt, 0700);
	if (geteuid() != 0 || t_system("mount -t tmpfs -o size=2m,mode=0700 tmpfs '%s' 2>/dev/null", mnt) != 0) {
		t_note("skipped: cannot mount a tmpfs here (not root, or no permission in this container)");
		t_system("rm -rf '%s'", top);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/s", mnt);
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	struct expect e = { 0 };
	struct store_limits lim;
	store_limits_default(&lim);
	lim.segment_items = 60; /* some commits fill a segment and start the next */
	struct store_writer *w = store_writer_open(dir, &lim, err, sizeof(err));
	if (!w)
		goto out;
	add_items(w, "c", 0, 50, 2000, 0, -1, &e);
	store_set_offset(w, "llm.monitoring", 0, 50);
	CHECK(store_commit(w, err, sizeof(err)) == 0, "commit: %s", err);
	int64_t offset = 50;
	int failures = 0, rounds = 0, next = 0;
	/* free space from nothing up to more than a commit needs: the failure
	 * hits the segment, the id index or the manifest */
	long levels[] = { 0, 8192, 32768, 49152, 53248, 57344, 61440, 65536, 69632, 73728, 77824,
	                  81920, 262144 };
	for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
		struct expect staged = e;
		staged.buf = malloc(e.cap);
		memcpy(staged.buf, e.buf, e.len + 1);
		int added = add_items(w, "n", next, 40, 3000, 1, -1, &staged);
		CHECK(added == 40, "staged %d", added);
		next += 40;
		store_set_offset(w, "llm.monitoring", 0, offset + 40);
		int fd = fill_disk(filler, levels[l]);
		CHECK(fd >= 0, "filler");
		int rc = store_commit(w, err, sizeof(err));
		if (rc < 0) {
			failures++;
			CHECK(strstr(err, "No space left on device") && strstr(err, "'/"), "message: %s", err);
			t_note("at %ld bytes free: %s", levels[l], err);
			/* retrying while the disk is still full fails again, changes nothing */
			CHECK(store_commit(w, err, sizeof(err)) == -1, "second try on a full disk");
			CHECK(store_staged(w) == 40, "staged %lld", (long long)store_staged(w));
			CHECK(store_offset(w, "llm.monitoring", 0) == offset, "offset moved on failure");
			CHECK(store_holds(dir, &e), "a reader sees only what was committed");
		}
		close(fd);
		unlink(filler);
		if (rc < 0)
			CHECK(store_commit(w, err, sizeof(err)) == 0, "commit once space is back: %s", err);
		offset += 40;
		CHECK(store_offset(w, "llm.monitoring", 0) == offset, "offset");
		free(e.buf);
		e = staged;
		CHECK(store_holds(dir, &e), "exactly once after level %ld", levels[l]);
		rounds++;
	}
	t_note("%d of %d commits failed for lack of space, then succeeded", failures, rounds);
	CHECK(failures >= 3, "only %d commits failed", failures);
	store_writer_close(w);
	/* a new writer: the ids are all known, the offset is the last one */
	w = store_writer_open(dir, &lim, err, sizeof(err));
	CHECK(w, "reopen: %s", err);
	if (w) {
		CHECK(add_items(w, "n", 0, next, 3000, 1, -1, NULL) == 0, "duplicates after reopen");
		CHECK(add_items(w, "c", 0, 50, 2000, 0, -1, NULL) == 0, "duplicates after reopen");
		CHECK(store_offset(w, "llm.monitoring", 0) == offset, "offset after reopen");
		store_writer_close(w);
	}
	CHECK(t_system("cd '%s/datasets/d' && zstd -q -t seg-*", dir) == 0, "segments decode");
out:
	if (!w)
		CHECK(0, "open: %s", err);
	free(e.buf);
	t_system("umount '%s'", mnt);
	t_system("rm -rf '%s'", top);
}

int main(void)
{
	RUN(torn_tail_positions);
	RUN(garbage_tail);
	RUN(uncommitted_files);
	RUN(manifest_tmp_ignored);
	RUN(committed_data_missing);
	RUN(evaluated_torn_line);
	RUN(write_errors);
	RUN(disk_full);
	TEST_EXIT();
}
