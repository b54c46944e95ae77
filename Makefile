# Makefile - build, test and run tracesift
#
#   make            build lib/ and bin/ (V=1 shows commands, SAN=1 adds ASan+UBSan)
#   make deps       install what the build, the tests and the local broker need
#   make test       deps, sanitizer build, local broker, unit then integration tests
#   make bench      benchmarks against their baselines, results in bench/RESULTS.md
#   make demo       the whole pipeline on a local broker, then a report (deploy/demo.sh)
#   make kafka-up | kafka-down | kafka-status | topics
#   make install    programs, library and header under PREFIX (/usr/local; DESTDIR for staging)

.PHONY: all deps check-deps test test-build bench demo clean install \
        kafka-up kafka-down kafka-status topics
.DEFAULT_GOAL := all

CC      ?= cc
PKGS    := rdkafka libcjson libzstd libcurl
V       ?= 0
SAN     ?= 0
Q       := $(if $(filter 1,$(V)),,@)
VARIANT := $(if $(filter 1,$(SAN)),san,rel)
B       := build/$(VARIANT)

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null)

OPT      := $(if $(filter 1,$(SAN)),-O1,-O2)
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SANFLAGS := $(if $(filter 1,$(SAN)),$(SANITIZE))
CFLAGS   ?= -g $(OPT)
ALL_CFLAGS  = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden -Wall -Wextra -Werror \
              -Icore -Iproducer -Isampler $(PKG_CFLAGS) $(SANFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS        = $(PKG_LIBS) -lpthread -lm

CORE_SRCS := $(wildcard core/*.c)
LIB_SRCS  := $(wildcard producer/lib/*.c)
CORE_OBJS := $(CORE_SRCS:%.c=$(B)/%.o)
LIB_OBJS  := $(LIB_SRCS:%.c=$(B)/%.o)

# Programs: bin/NAME is built from the listed sources plus the libraries it names.
PRODUCE_SRCS := producer/produce.c
LOADGEN_SRCS := $(wildcard producer/loadgen/*.c)
SAMPLER_SRCS := $(wildcard sampler/*.c)
SINK_SRCS    := sink/sink.c sink/item.c $(wildcard sink/opik.c)
DATASET_SRCS := $(wildcard sink/dataset.c)
REPLAY_SRCS  := $(wildcard replay/*.c)
EVAL_SRCS    := $(wildcard evaluator/*.c)
EVAL_LIB_SRCS := $(filter-out evaluator/main.c,$(EVAL_SRCS))
# Only the sink (its HTTP target) and the evaluator link libcurl.
CURL_LIBS    := $(shell pkg-config --libs libcurl 2>/dev/null)

PROGS := bin/tracesift-produce bin/tracesift-loadgen bin/tracesift-sampler bin/tracesift-sink \
         $(if $(DATASET_SRCS),bin/tracesift-dataset) $(if $(REPLAY_SRCS),bin/tracesift-replay) \
         $(if $(wildcard evaluator/main.c),bin/tracesift-evaluator)
LIBRARIES := lib/libtracesift.a lib/libtracesift.so.1 lib/libtracesift.so lib/tracesift.h

# Tests: tests/unit/tNNNN-*.c and tests/integration/tNNNN-*.c are one program each,
# linked with libtracesift.a (which holds core too); scripts run as they are.
TEST_SRCS  := $(wildcard tests/unit/t*.c tests/integration/t*.c)
TEST_PROGS := $(TEST_SRCS:%.c=$(B)/%) $(patsubst %.c,$(B)/%,$(wildcard tests/tools/*.c))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_PROGS := $(BENCH_SRCS:%.c=$(B)/%)

all: check-deps $(LIBRARIES) $(PROGS)

check-deps:
	@pkg-config --exists $(PKGS) 2>/dev/null || \
	  { echo "% ERROR: missing build dependencies ($(PKGS)); run 'make deps'" >&2; exit 1; }

# bin/ and lib/ hold one variant at a time; relink when the variant changes.
VARIANT_STAMP := build/variant
$(shell mkdir -p build; [ "$$(cat $(VARIANT_STAMP) 2>/dev/null)" = "$(VARIANT)" ] || echo $(VARIANT) > $(VARIANT_STAMP))

$(B)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/libtscore.a: $(CORE_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

lib/libtracesift.a: $(LIB_OBJS) $(CORE_OBJS) $(VARIANT_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $(LIB_OBJS) $(CORE_OBJS)

# The shared library is the file named by its soname (what programs load),
# and lib/libtracesift.so is the link that -ltracesift finds.
lib/libtracesift.so.1: $(LIB_OBJS) $(CORE_OBJS) $(VARIANT_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,libtracesift.so.1 -o $@ $(LIB_OBJS) $(CORE_OBJS) $(ALL_LDFLAGS) $(LIBS)

lib/libtracesift.so: lib/libtracesift.so.1
	$(Q)ln -sfn libtracesift.so.1 $@

lib/tracesift.h: producer/tracesift.h
	@mkdir -p $(@D)
	$(Q)cp $< $@

bin/tracesift-produce: $(PRODUCE_SRCS:%.c=$(B)/%.o) lib/libtracesift.a $(VARIANT_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(filter-out $(VARIANT_STAMP),$^) $(ALL_LDFLAGS) $(LIBS)

bin/tracesift-loadgen: $(LOADGEN_SRCS:%.c=$(B)/%.o) lib/libtracesift.a $(VARIANT_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(filter-out $(VARIANT_STAMP),$^) $(ALL_LDFLAGS) $(LIBS)

bin/tracesift-sampler: $(SAMPLER_SRCS:%.c=$(B)/%.o) $(B)/libtscore.a $(VARIANT_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(filter-out $(VARIANT_STAMP),$^) $(ALL_LDFLAGS) $(LIBS)

bin/tracesift-sink: $(SINK_SRCS:%.c=$(B)/%.o) $(B)/libtscore.a $(VARIANT_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(filter-out $(VARIANT_STAMP),$^) $(ALL_LDFLAGS) $(LIBS) $(CURL_LIBS)

bin/tracesift-dataset: $(DATASET_SRCS:%.c=$(B)/%.o) $(B)/sink/item.o $(B)/libtscore.a $(VARIANT_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(filter-out $(VARIANT_STAMP),$^) $(ALL_LDFLAGS) $(LIBS)

# Replay reads Kafka and the store and writes zstd: no libcurl.
bin/tracesift-replay: $(REPLAY_SRCS:%.c=$(B)/%.o) $(B)/libtscore.a $(VARIANT_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(filter-out $(VARIANT_STAMP),$^) $(ALL_LDFLAGS) $(LIBS)

# The evaluator's code (all but its main) is a library of its own, for its tests.
$(B)/libtseval.a: $(EVAL_LIB_SRCS:%.c=$(B)/%.o)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

bin/tracesift-evaluator: $(B)/evaluator/main.o $(B)/libtseval.a $(B)/libtscore.a $(VARIANT_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(filter-out $(VARIANT_STAMP),$^) $(ALL_LDFLAGS) $(LIBS) $(CURL_LIBS)

# Evaluator tests (t4NNN, tests/tools/t-eval*) link its library and libcurl.
$(B)/tests/unit/t4%: tests/unit/t4%.c $(B)/libtseval.a lib/libtracesift.a tests/test.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -Ievaluator -o $@ $< $(B)/libtseval.a lib/libtracesift.a $(ALL_LDFLAGS) $(LIBS) $(CURL_LIBS)

$(B)/tests/integration/t4%: tests/integration/t4%.c $(B)/libtseval.a lib/libtracesift.a tests/test.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -Ievaluator -o $@ $< $(B)/libtseval.a lib/libtracesift.a $(ALL_LDFLAGS) $(LIBS) $(CURL_LIBS)

$(B)/tests/tools/t-eval%: tests/tools/t-eval%.c $(B)/libtseval.a lib/libtracesift.a tests/test.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -Ievaluator -o $@ $< $(B)/libtseval.a lib/libtracesift.a $(ALL_LDFLAGS) $(LIBS) $(CURL_LIBS)

$(B)/bench/eval%: bench/eval%.c $(B)/libtseval.a lib/libtracesift.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Ievaluator -o $@ $< $(B)/libtseval.a lib/libtracesift.a $(ALL_LDFLAGS) $(LIBS) $(CURL_LIBS)

$(B)/tests/%: tests/%.c lib/libtracesift.a tests/test.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -o $@ $< lib/libtracesift.a $(ALL_LDFLAGS) $(LIBS)

$(B)/bench/%: bench/%.c lib/libtracesift.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< lib/libtracesift.a $(ALL_LDFLAGS) $(LIBS)

test-build: all $(TEST_PROGS)

# --- what users run -------------------------------------------------------

deps:
	$(Q)deploy/deps.sh

test:
	$(Q)deploy/deps.sh --quiet
	$(Q)$(MAKE) --no-print-directory SAN=1 test-build
	$(Q)tests/run.sh build/san

bench:
	$(Q)deploy/deps.sh --quiet --no-compose
	$(Q)$(MAKE) --no-print-directory SAN=0 all $(BENCH_PROGS)
	$(Q)bench/run.sh build/rel

demo:
	$(Q)deploy/deps.sh --quiet --no-compose
	$(Q)$(MAKE) --no-print-directory SAN=0 all
	$(Q)deploy/demo.sh

kafka-up:
	$(Q)deploy/kafka/kafka.sh up

kafka-down:
	$(Q)deploy/kafka/kafka.sh down

kafka-status:
	$(Q)deploy/kafka/kafka.sh status

topics:
	$(Q)deploy/kafka/topics.sh

clean:
	rm -rf build bin lib

PREFIX  ?= /usr/local
DESTDIR ?=

# What deploy/systemd and deploy/Dockerfile run: $(PREFIX)/bin/tracesift-*.
install: all
	$(Q)install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	$(Q)install -m 0755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	$(Q)install -m 0755 lib/libtracesift.so.1 $(DESTDIR)$(PREFIX)/lib/
	$(Q)ln -sfn libtracesift.so.1 $(DESTDIR)$(PREFIX)/lib/libtracesift.so
	$(Q)install -m 0644 lib/libtracesift.a $(DESTDIR)$(PREFIX)/lib/
	$(Q)install -m 0644 lib/tracesift.h $(DESTDIR)$(PREFIX)/include/
	@echo "installed $(notdir $(PROGS)) and libtracesift in $(DESTDIR)$(PREFIX)"

-include $(shell find build -name '*.d' 2>/dev/null)

# --- tests/tools/t-opik: the Opik dataset target's driver (sink/opik.c, libcurl) ---
OPIK_CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
OPIK_CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
$(B)/sink/opik.o: ALL_CFLAGS += $(OPIK_CURL_CFLAGS)
$(B)/tests/tools/t-opik: tests/tools/t-opik.c $(B)/sink/opik.o lib/libtracesift.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Isink $(OPIK_CURL_CFLAGS) -o $@ $< $(B)/sink/opik.o lib/libtracesift.a $(ALL_LDFLAGS) $(LIBS) $(OPIK_CURL_LIBS)
