/* tests/tools/t-kafka.c - what test scripts need of Kafka that kcat lacks: creating topics
 *
 * usage: t-kafka create TOPIC PARTITIONS     (broker from $TS_BROKERS)
 */
#include "test.h"

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "create"))
		return t_create_topic(argv[2], atoi(argv[3])) == 0 ? 0 : 1;
	fprintf(stderr, "usage: t-kafka create TOPIC PARTITIONS\n");
	return 2;
}
