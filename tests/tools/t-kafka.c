/* tests/tools/t-kafka.c - what test scripts need of Kafka that kcat lacks: creating topics
 *
 * usage: t-kafka create TOPIC PARTITIONS [CONFIG=VALUE]...   (broker from $TS_BROKERS)
 */
#include "test.h"

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "create")) {
		const char *configs[64];
		int n = 0;
		for (int i = 4; i < argc && n < 32; i++) {
			char *eq = strchr(argv[i], '=');
			if (!eq) {
				fprintf(stderr, "t-kafka: expected CONFIG=VALUE, got '%s'\n", argv[i]);
				return 2;
			}
			*eq = '\0';
			configs[2 * n] = argv[i];
			configs[2 * n + 1] = eq + 1;
			n++;
		}
		return t_create_topic_with(argv[2], atoi(argv[3]), configs, n) == 0 ? 0 : 1;
	}
	fprintf(stderr, "usage: t-kafka create TOPIC PARTITIONS [CONFIG=VALUE]...\n");
	return 2;
}
