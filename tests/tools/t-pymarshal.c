/* tests/tools/t-pymarshal.c - core/pymarshal.c as a filter, for tests/unit/t0004-pymarshal.py
 *
 * usage: t-pymarshal json MAX_DEPTH MAX_BYTES < RECORDS   (each: 4-byte little-endian length, marshal data)
 *        t-pymarshal float < DOUBLES                     (each: 8 bytes, little-endian IEEE 754)
 * Writes one line per record: "ok JSON" or "refused N" (the pym_result); for
 * doubles, pymarshal_float_repr()'s text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pymarshal.h"

static int read_all(void *buf, size_t n)
{
	return fread(buf, 1, n, stdin) == n;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "float")) {
		unsigned char b[8];
		while (read_all(b, 8)) {
			uint64_t bits = 0;
			for (int i = 7; i >= 0; i--)
				bits = bits << 8 | b[i];
			double x;
			memcpy(&x, &bits, 8);
			char out[40];
			size_t n = pymarshal_float_repr(x, out);
			printf("%.*s\n", (int)n, out);
		}
		return 0;
	}
	if (argc != 4 || strcmp(argv[1], "json")) {
		fprintf(stderr, "usage: t-pymarshal json MAX_DEPTH MAX_BYTES | t-pymarshal float\n");
		return 2;
	}
	int max_depth = atoi(argv[2]);
	size_t max_bytes = (size_t)strtoull(argv[3], NULL, 10);
	unsigned char lenb[4];
	struct sbuf out;
	sbuf_init(&out);
	while (read_all(lenb, 4)) {
		size_t len = (size_t)lenb[0] | (size_t)lenb[1] << 8 | (size_t)lenb[2] << 16 | (size_t)lenb[3] << 24;
		unsigned char *data = malloc(len ? len : 1);
		if (!data || !read_all(data, len)) {
			fprintf(stderr, "t-pymarshal: short input\n");
			return 1;
		}
		out.len = 0;
		sbuf_put_lit(&out, "ok ");
		int rc = pymarshal_to_json(data, len, max_depth, max_bytes, &out);
		if (rc == PYM_OK)
			printf("%s\n", out.buf);
		else
			printf("refused %d\n", rc);
		free(data);
	}
	sbuf_release(&out);
	return 0;
}
