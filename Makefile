# SPDX-License-Identifier: MIT
# mailvault - GNU make, no autotools; every dependency through pkg-config.
#   make            build ./build/mailvault
#   make check      install what is missing, build, run every test
#   make check SAN=1   the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make demo       a local archive under ./demo fed with generated mail
#   make fuzz       libFuzzer targets (clang) into build-fuzz/
#   make bench      benchmarks (figures, never pass/fail)
#   V=1 shows commands.

SHELL := /bin/bash
.DEFAULT_GOAL := all

SAN ?=
ifeq ($(SAN),1)
O ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
O ?= build
SANFLAGS :=
endif

# The command's allocator is jemalloc, as Redis's: GMime, GLib and RocksDB
# allocate per header, per MIME part and per key, and glibc's malloc and
# free took a tenth of an import's CPU (jemalloc: about a tenth less CPU
# in all, cache effects included; docs/import.md "Speed").  Not under the
# sanitizers, which bring their own; test and fuzz binaries keep glibc's.
ifeq ($(SAN),1)
ALLOC_PKG :=
else
ALLOC_PKG := jemalloc
endif
PKGS := rocksdb openssl gmime-3.0 libzstd glib-2.0 librnp xapian-core poppler-glib libarchive $(ALLOC_PKG)
# Evaluated once; a missing package stops the build with its Debian name.
PKG_OK := $(shell pkg-config --exists $(PKGS) && echo yes)
CC ?= cc
WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Werror
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -MMD -MP \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# search/ is the one C++ module (Xapian), behind a C header.
CXX ?= c++
CXXWARN := -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-declarations -Wvla -Werror
ALL_CXXFLAGS := -std=c++17 -D_GNU_SOURCE $(CXXWARN) $(CFLAGS) $(SANFLAGS) -MMD -MP \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# --as-needed: a command starts by loading its libraries; those pkg-config
# lists but nothing calls are not loaded at all.
# poppler-glib is loaded at the first PDF (search/extract.c), not linked.
LIBS := -Wl,--as-needed $(shell pkg-config --libs $(filter-out poppler-glib,$(PKGS)) 2>/dev/null) \
        -lstdc++ -lpthread -ldl
# The mailvault binary takes RocksDB from Debian's librocksdb.a (same
# package, librocksdb-dev): binding the shared library's ~8,000 symbols cost
# every command ~5 ms at start, and inside the executable RocksDB reaches
# its thread-locals and its own functions directly, not through
# __tls_get_addr and the PLT (an import: ~6% less CPU).  Tests, tools and
# fuzzers keep the shared one; ROCKSDB_STATIC=0 gives mailvault it too.
ROCKSDB_STATIC ?= 1
ROCKSDB_A := $(if $(filter 1,$(ROCKSDB_STATIC)),$(shell pkg-config --variable=libdir rocksdb 2>/dev/null)/librocksdb.a)
MV_LIBS := $(if $(wildcard $(ROCKSDB_A)),$(ROCKSDB_A) $(filter-out -lrocksdb,$(LIBS)) \
           -lgflags -lsnappy -lz -lbz2 -llz4 -lzstd -lstdc++ -lm,$(LIBS))
# Ahead of --as-needed and of every other library: malloc binds here.
ALLOC_LIBS := $(if $(ALLOC_PKG),$(shell pkg-config --libs $(ALLOC_PKG) 2>/dev/null))
TEST_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
TEST_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

ifneq ($(V),1)
Q := @
endif

LIB_SRC := $(wildcard lib/*.c) $(wildcard store/*.c) $(wildcard search/*.c) $(wildcard ingest/*.c) \
           $(wildcard export/*.c)
LIB_CXX := $(wildcard search/*.cc)
CLI_SRC := $(wildcard cli/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(O)/%.o) $(LIB_CXX:%.cc=$(O)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(O)/%.o)
UNIT_SRC := $(wildcard tests/unit/*_test.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
FUZZ_SRC := $(filter-out tests/fuzz/standalone_main.c,$(wildcard tests/fuzz/fuzz_*.c))
REPLAY_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(O)/replay/%)
TOOL_BIN := $(O)/tools/mvload

.PHONY: all deps check-deps check demo fuzz fuzz-replay bench clean lint check-headers

all: check-deps $(O)/mailvault

check-deps:
ifneq ($(PKG_OK),yes)
	@missing=""; debs=""; for m in $(PKGS); do pkg-config --exists $$m 2>/dev/null && continue; \
	   missing="$$missing $$m"; \
	   case $$m in rocksdb) d=librocksdb-dev;; openssl) d=libssl-dev;; gmime-3.0) d=libgmime-3.0-dev;; \
	     libzstd) d=libzstd-dev;; glib-2.0) d=libglib2.0-dev;; librnp) d=librnp-dev;; \
	     xapian-core) d=libxapian-dev;; poppler-glib) d=libpoppler-glib-dev;; libarchive) d=libarchive-dev;; \
	     jemalloc) d=libjemalloc-dev;; *) d=$$m;; esac; debs="$$debs $$d"; done; \
	 command -v pkg-config >/dev/null || { missing=" (pkg-config itself)"; debs=" pkg-config"; }; \
	 echo "missing build dependencies:$$missing" >&2; \
	 echo "install the Debian packages:$$debs  (scripts/deps.sh build does it as root)" >&2; \
	 exit 1
endif

deps:
	$(Q)scripts/deps.sh build

$(O)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(O)/%.o: %.cc
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(ALL_CXXFLAGS) -c $< -o $@

$(O)/libmv.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/mailvault: $(CLI_OBJ) $(O)/libmv.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(SANFLAGS) -o $@ $(CLI_OBJ) $(O)/libmv.a $(ALLOC_LIBS) $(MV_LIBS)

# The test build of the command: the same objects with an injectable clock
# (tests/tools/testclock.c, linked ahead of lib/clock.c) for retention tests.
# Never installed: the shipped binary cannot be told another time.
$(O)/tests/mailvault-testclock: $(CLI_OBJ) $(O)/tests/testclock.o $(O)/libmv.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(SANFLAGS) -o $@ $(CLI_OBJ) $(O)/tests/testclock.o $(O)/libmv.a $(ALLOC_LIBS) $(MV_LIBS)

$(O)/tests/testclock.o: tests/tools/testclock.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(O)/tests/%: tests/unit/%.c $(O)/libmv.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -o $@ $< $(O)/libmv.a $(LIBS) $(TEST_LIBS)

$(O)/replay/%: tests/fuzz/%.c tests/fuzz/standalone_main.c $(O)/libmv.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

$(O)/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBS)

# `make check` = dependencies, build, unit tests, fuzz corpora replay, end-to-end tests.
check:
	$(Q)scripts/deps.sh check
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BIN) $(REPLAY_BIN) $(TOOL_BIN) $(O)/tests/mailvault-testclock O=$(O) SAN=$(SAN)
	$(Q)MV_BUILD=$(O) SAN=$(SAN) tests/run.sh

demo:
	$(Q)scripts/deps.sh demo
	$(Q)$(MAKE) --no-print-directory all
	$(Q)MV_BUILD=$(O) scripts/demo.sh

fuzz:
	$(Q)scripts/deps.sh fuzz
	$(Q)$(MAKE) --no-print-directory O=build-fuzz CC=clang CXX=clang++ CFLAGS="-O1 -g" \
	    SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined" build-fuzz/libmv.a
	$(Q)for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	    clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	      $$(pkg-config --cflags $(PKGS)) -o build-fuzz/$$n $$f build-fuzz/libmv.a $(LIBS) || exit 1; \
	    echo "built build-fuzz/$$n (corpus: tests/fuzz/corpus/$${n#fuzz_})"; done

bench: all
	$(Q)MV_BUILD=$(O) bench/import
	$(Q)$(MAKE) --no-print-directory $(O)/tools/mvload
	$(Q)MV_BUILD=$(O) bench/smtp
	$(Q)MV_BUILD=$(O) bench/decrypt
	$(Q)MV_BUILD=$(O) bench/search
	$(Q)MV_BUILD=$(O) bench/export
	$(Q)MV_BUILD=$(O) bench/verify

lint:
	$(Q)! grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strncpy|strncat|gets|atoi|atol|rand|srand|strtok)\s*\(' \
	    $$(git ls-files '*.c' '*.h') | grep -v poison || (echo "banned function used" >&2; exit 1)
	$(Q)if command -v cppcheck >/dev/null; then cppcheck --quiet --error-exitcode=1 \
	    --enable=warning,performance,portability --std=c11 -D_GNU_SOURCE \
	    --suppress=missingIncludeSystem lib store search ingest export cli; \
	  else echo "lint: cppcheck not installed (Debian package cppcheck): skipped"; fi
	$(Q)$(MAKE) --no-print-directory check-headers

check-headers:
	$(Q)for h in $$(git ls-files 'lib/*.h' 'store/*.h' 'search/*.h' 'ingest/*.h' 'export/*.h' 'cli/*.h'); do \
	    echo "#include \"$$h\"" | $(CC) -std=c11 -D_GNU_SOURCE $(WARN) \
	      $$(pkg-config --cflags $(PKGS)) -I. -x c -fsyntax-only - || exit 1; done; echo "headers ok"

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
