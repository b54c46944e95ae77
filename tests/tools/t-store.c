/* tests/tools/t-store.c - what test scripts need of the dataset store that no program offers
 *
 * usage: t-store mark-evaluated DIR DATASET BATCH   (as the evaluator does)
 */
#include "test.h"

#include "store.h"

int main(int argc, char **argv)
{
	char err[512];
	if (argc == 5 && !strcmp(argv[1], "mark-evaluated")) {
		if (store_mark_evaluated(argv[2], argv[3], atoll(argv[4]), err, sizeof(err))) {
			fprintf(stderr, "t-store: %s\n", err);
			return 1;
		}
		return 0;
	}
	fprintf(stderr, "usage: t-store mark-evaluated DIR DATASET BATCH\n");
	return 2;
}
