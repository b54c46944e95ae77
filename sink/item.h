/* sink/item.h - read what the sampler writes to llm.monitoring: items and batch triggers */
#ifndef TS_SINK_ITEM_H
#define TS_SINK_ITEM_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct sink_msg {
	int trigger;                       /* 1: a batch trigger record, 0: an item */
	char id[STORE_ID_MAX + 1];         /* items */
	char dataset[STORE_NAME_MAX + 1];
	int64_t batch;                     /* -1 when the item has none */
	int position;                      /* -1 when the item has none */
	int partial;                       /* triggers */
	char **ids;                        /* triggers: the items' ids (owned) */
	int nids;
};

/* Whether s is a dataset name: 1 to 100 of [A-Za-z0-9._-], not "." or "..". */
int sink_name_valid(const char *s);

/* Reads one message value.  Returns 0 and fills *m (release with
 * sink_msg_release), or -1 with errstr saying what is wrong ("not JSON at
 * byte 3: ...", "field 'id': missing", "field 'dataset': expected a name of
 * [A-Za-z0-9._-]", "field 'type': expected \"item\" or \"batch\""). */
int sink_msg_parse(const char *buf, size_t len, struct sink_msg *m, char *errstr, size_t errstr_size);
void sink_msg_release(struct sink_msg *m);

#endif
