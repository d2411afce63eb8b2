# SPDX-License-Identifier: LGPL-2.1-or-later
# Makefile: builds libqblock.so, the qblock-img tool and the tests (GNU make).
#
# Every source is found by wildcard, so adding a .c file never needs an
# edit here:
#   block/*.c libqblock/*.c   -> libqblock.so.1.0.0 (+ libqblock-internal.a)
#   tools/*.c                 -> tools/qblock-img
#   tests/unit/check_*.c      -> one Check binary each; check_int_* link the
#                                internal archive, the others libqblock.so
#   tests/unit/<other>.c      -> shared test helpers linked into every
#                                tests/unit/check_* binary (public API only)
#   tests/helpers/*.c         -> one program each (public API), built by
#                                `make check` for the interop scripts
#
# Out-of-tree builds work too: `mkdir b && cd b && ../configure && make`;
# `make check-asan` builds that way in build-asan/.

# The source tree; an out-of-tree Makefile stub sets it before including us.
SRCDIR ?= .
SRCDIR_ABS := $(abspath $(SRCDIR))

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules

# Goals that must work without (and never trigger) a configure run.
NOCONFIG_GOALS := clean distclean help
ifneq ($(filter-out $(NOCONFIG_GOALS),$(or $(MAKECMDGOALS),all)),)
include config-host.mak
# Runs configure when config-host.mak is missing, and re-runs it with the
# previous options when the script changed since.
config-host.mak: $(SRCDIR)/configure
	@if test -x config.status; then \
	    echo "  GEN     config-host.mak (re-running configure)"; ./config.status; \
	else \
	    echo "  GEN     config-host.mak (running $(SRCDIR)/configure)"; $(SRCDIR)/configure; \
	fi
endif

# ------------------------------------------------------------------
# Verbosity: `make V=1` shows full commands, `make -s` nothing.
ifeq ($(V),1)
Q :=
quiet =
else ifneq ($(findstring s,$(filter-out --%,$(firstword -$(MAKEFLAGS)))),)
Q := @
quiet =
else
Q := @
quiet = @printf '  %-7s %s\n' '$(1)' '$(2)';
endif

# ------------------------------------------------------------------
# Names

SO_MAJOR   := 1
SO_VERSION := 1.0.0
SONAME     := libqblock.so.$(SO_MAJOR)
LIB_REAL   := libqblock.so.$(SO_VERSION)
LIB_LINKS  := $(SONAME) libqblock.so
LIB_STATIC := libqblock-internal.a
LIB_MAP    := libqblock/libqblock.map
PC_FILE    := libqblock.pc
TOOL       := tools/qblock-img
# The installed copy of the tool: linked without the in-tree run path.
TOOL_INST  := tools/qblock-img.inst

# srcs PATTERNS: source files matching PATTERNS, relative to SRCDIR.
srcs = $(sort $(patsubst $(SRCDIR)/%,%,$(wildcard $(addprefix $(SRCDIR)/,$(1)))))

LIB_SRCS    := $(call srcs,block/*.c libqblock/*.c)
TOOL_SRCS   := $(call srcs,tools/*.c)
UNIT_SRCS   := $(call srcs,tests/unit/check_*.c)
UNIT_COMMON_SRCS := $(filter-out $(UNIT_SRCS),$(call srcs,tests/unit/*.c))
HELPER_SRCS := $(call srcs,tests/helpers/*.c)
# bench/*.c: measurement programs for bench/run (built by make bench and build-tests).
BENCH_SRCS  := $(call srcs,bench/*.c)
BENCH_BINS  := $(BENCH_SRCS:.c=)
PUB_HEADERS := $(call srcs,include/libqblock/*.h)
# Manual pages, generated (scripts/gen-man.sh) from docs/*.in, the public
# header's comments and the tool's --help text.
MAN3_PAGES  := docs/libqblock.3
MAN1_PAGES  := $(if $(TOOL_SRCS),docs/qblock-img.1)
MAN_PAGES   := $(MAN3_PAGES) $(MAN1_PAGES)

LIB_OBJS    := $(LIB_SRCS:.c=.o)
# The out-of-memory test build (`make check-oom`, in build-oom/) links the
# library's own allocation calls to tests/oom/oom-wrap.c, which can fail
# the Nth of them; no other build has it.
OOM_WRAPPED := malloc calloc realloc strdup strndup posix_memalign aligned_alloc asprintf vasprintf
ifeq ($(OOM_INJECT),1)
LIB_OBJS    += tests/oom/oom-wrap.o
LIB_WRAP_LDFLAGS := $(foreach f,$(OOM_WRAPPED),-Wl,--wrap=$(f))
endif
TOOL_OBJS   := $(TOOL_SRCS:.c=.o)
UNIT_OBJS   := $(UNIT_SRCS:.c=.o)
UNIT_COMMON_OBJS := $(UNIT_COMMON_SRCS:.c=.o)
HELPER_OBJS := $(HELPER_SRCS:.c=.o)
TEST_OBJS   := $(UNIT_OBJS) $(UNIT_COMMON_OBJS) $(HELPER_OBJS)
ALL_OBJS    := $(LIB_OBJS) $(TOOL_OBJS) $(TEST_OBJS)

UNIT_INT_BINS := $(patsubst %.c,%,$(filter tests/unit/check_int_%,$(UNIT_SRCS)))
UNIT_PUB_BINS := $(filter-out $(UNIT_INT_BINS),$(UNIT_SRCS:.c=))
UNIT_BINS     := $(UNIT_INT_BINS) $(UNIT_PUB_BINS)
HELPER_BINS   := $(HELPER_SRCS:.c=)
TEST_BINS     := $(UNIT_BINS) $(HELPER_BINS)

PROGS := $(if $(TOOL_SRCS),$(TOOL) $(TOOL_INST))

# Sources live in SRCDIR; objects and programs in the build folder (the
# current one). Only source-like files are searched for, so that objects
# of an in-tree build are never mistaken for those of an out-of-tree one.
vpath %.c $(SRCDIR)
vpath %.map $(SRCDIR)
vpath %.in $(SRCDIR)

# ------------------------------------------------------------------
# Flags

# config-host.h is force-included in every compilation, so CONFIG_LIBAIO,
# CONFIG_ZSTD and QBLOCK_VERSION are visible to every file without an
# #include (it holds only #defines, so it cannot disturb a file that sets
# _GNU_SOURCE before its first system header).
QB_CPPFLAGS  = -I. -I$(SRCDIR)/include -include config-host.h
# Programs outside the library may also write #include <libqblock.h>, as
# installed users do.
PUB_CPPFLAGS = $(QB_CPPFLAGS) -I$(SRCDIR)/include/libqblock
QB_CFLAGS    = $(BASE_CFLAGS) $(WARN_CFLAGS) $(SAN_CFLAGS) $(EXTRA_CFLAGS) $(CFLAGS)
QB_LDFLAGS   = $(SAN_LDFLAGS) $(EXTRA_LDFLAGS) $(LDFLAGS)
DEPFLAGS     = -MMD -MP -MF $(@:.o=.d)
AR          ?= ar

# In-tree programs find ./libqblock.so through a run path relative to
# themselves (RUNPATH, so LD_LIBRARY_PATH still wins); installed programs
# are linked without one.
RPATH_TOOL   = -Wl,--enable-new-dtags -Wl,-rpath,'$$ORIGIN/..'
RPATH_TESTS  = -Wl,--enable-new-dtags -Wl,-rpath,'$$ORIGIN/../..'
PROG_LIBS    = -lpthread -lm

# ------------------------------------------------------------------
# Building

.PHONY: all
all: $(LIB_REAL) $(LIB_LINKS) $(LIB_STATIC) $(PROGS) $(PC_FILE) $(MAN_PAGES)

docs/libqblock.3: $(SRCDIR)/docs/libqblock.3.in $(SRCDIR)/include/libqblock/libqblock.h \
                  $(SRCDIR)/scripts/gen-man.sh
	@mkdir -p $(@D)
	$(call quiet,GEN,$@)sh $(SRCDIR)/scripts/gen-man.sh lib $(SRCDIR) >$@.tmp && mv $@.tmp $@

docs/qblock-img.1: $(SRCDIR)/docs/qblock-img.1.in $(TOOL) $(SRCDIR)/scripts/gen-man.sh
	@mkdir -p $(@D)
	$(call quiet,GEN,$@)sh $(SRCDIR)/scripts/gen-man.sh tool $(SRCDIR) ./$(TOOL) >$@.tmp && mv $@.tmp $@

# Objects are rebuilt when configure changed the flags.
$(LIB_OBJS): %.o: %.c config-host.mak
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(QB_CPPFLAGS) $(LIB_CFLAGS) $(QB_CFLAGS) -fPIC -fvisibility=hidden $(DEPFLAGS) -c -o $@ $<

$(TOOL_OBJS): %.o: %.c config-host.mak
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(PUB_CPPFLAGS) $(QB_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(TEST_OBJS): %.o: %.c config-host.mak | check-prereq
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(PUB_CPPFLAGS) $(LIB_CFLAGS) $(CHECK_CFLAGS) $(TEST_EXTRA_CFLAGS) $(QB_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(LIB_REAL): $(LIB_OBJS) $(LIB_MAP)
	$(call quiet,LINK,$@)$(CC) -shared -o $@ $(LIB_OBJS) \
	    -Wl,-soname,$(SONAME) -Wl,--version-script=$(filter %.map,$^) \
	    $(LIB_NO_UNDEFINED) $(LIB_WRAP_LDFLAGS) $(QB_LDFLAGS) $(LIBS)

$(SONAME): $(LIB_REAL)
	$(call quiet,LN,$@)ln -sf $(LIB_REAL) $@

libqblock.so: $(SONAME)
	$(call quiet,LN,$@)ln -sf $(SONAME) $@

$(LIB_STATIC): $(LIB_OBJS)
	$(call quiet,AR,$@)rm -f $@ && $(AR) rcs $@ $(LIB_OBJS)

$(TOOL): $(TOOL_OBJS) $(LIB_LINKS)
	$(call quiet,LINK,$@)$(CC) $(QB_LDFLAGS) -o $@ $(TOOL_OBJS) -L. -lqblock $(RPATH_TOOL) $(PROG_LIBS)

$(TOOL_INST): $(TOOL_OBJS) $(LIB_LINKS)
	$(call quiet,LINK,$@)$(CC) $(QB_LDFLAGS) -o $@ $(TOOL_OBJS) -L. -lqblock $(PROG_LIBS)

# The pkg-config file, for the folders `make install` would use.
PREFIX     ?= $(prefix)
LIBDIR     ?= $(libdir)
INCLUDEDIR ?= $(includedir)
BINDIR     ?= $(bindir)
MANDIR     ?= $(mandir)
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

# Folders under the prefix are written relative to ${prefix}, as usual.
pc_rel = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
gen_pc = sed -e 's|@prefix@|$(PREFIX)|g' -e 's|@libdir@|$(call pc_rel,$(LIBDIR))|g' \
	     -e 's|@includedir@|$(call pc_rel,$(INCLUDEDIR))|g' -e 's|@VERSION@|$(QBLOCK_VERSION)|g' \
	     -e 's|@LIBS_PRIVATE@|$(LIBS)|g' $(1)

$(PC_FILE): libqblock/libqblock.pc.in config-host.mak $(SRCDIR)/Makefile
	$(call quiet,GEN,$@)$(call gen_pc,$<) >$@.tmp && mv -f $@.tmp $@

# Test programs.
$(UNIT_PUB_BINS): %: %.o $(UNIT_COMMON_OBJS) $(LIB_LINKS)
	$(call quiet,LINK,$@)$(CC) $(QB_LDFLAGS) -o $@ $< $(UNIT_COMMON_OBJS) -L. -lqblock $(RPATH_TESTS) $(CHECK_LIBS) $(TEST_EXTRA_LIBS) $(PROG_LIBS)

$(UNIT_INT_BINS): %: %.o $(UNIT_COMMON_OBJS) $(LIB_STATIC)
	$(call quiet,LINK,$@)$(CC) $(QB_LDFLAGS) -o $@ $< $(UNIT_COMMON_OBJS) $(LIB_STATIC) $(LIBS) $(CHECK_LIBS) $(PROG_LIBS)

$(HELPER_BINS): %: %.o $(LIB_LINKS)
	$(call quiet,LINK,$@)$(CC) $(QB_LDFLAGS) -o $@ $< -L. -lqblock $(RPATH_TESTS) $(PROG_LIBS)

# Programs that use the GLib adapter (libqblock-glib.h) get GLib's flags;
# built without GLib they compile to a stub that reports the skip.
GLIB_PROGS := tests/unit/check_api_aio_glib examples/aio-glib
$(addsuffix .o,$(GLIB_PROGS)): TEST_EXTRA_CFLAGS = $(GLIB_CFLAGS)
$(GLIB_PROGS): TEST_EXTRA_LIBS = $(GLIB_LIBS)

# The examples (examples/*.c): programs a user could copy, built by
# `make examples` and by build-tests (the interop scripts run them).
EXAMPLE_SRCS := $(call srcs,examples/*.c)
EXAMPLE_BINS := $(EXAMPLE_SRCS:.c=)
EXAMPLE_OBJS := $(EXAMPLE_SRCS:.c=.o)
ALL_OBJS     += $(EXAMPLE_OBJS)

$(EXAMPLE_OBJS): %.o: %.c config-host.mak
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(PUB_CPPFLAGS) $(TEST_EXTRA_CFLAGS) $(QB_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(EXAMPLE_BINS): %: %.o $(LIB_LINKS)
	$(call quiet,LINK,$@)$(CC) $(QB_LDFLAGS) -o $@ $< -L. -lqblock $(RPATH_TOOL) $(TEST_EXTRA_LIBS) $(PROG_LIBS)

.PHONY: examples
examples: $(EXAMPLE_BINS)

-include $(ALL_OBJS:.o=.d)

# ------------------------------------------------------------------
# Tests

.PHONY: check-prereq check check-asan check-tsan check-oom check-valgrind build-tests

check-prereq:
	@if test "$(CONFIG_CHECK)" != yes; then \
	    echo "*** The Check unit test framework was not found when configure ran." >&2; \
	    echo "*** Install it (./scripts/install-deps, Debian package 'check')" >&2; \
	    echo "*** and run ./configure again before 'make $(or $(MAKECMDGOALS),check)'." >&2; \
	    exit 1; \
	fi

build-tests: all $(TEST_BINS) $(BENCH_BINS) $(EXAMPLE_BINS)

# The environment every run of the test runner gets. TESTS selects a
# subset (see tests/run-tests.sh --help), e.g. `make check TESTS=interop`.
TESTS ?=
ifndef QEMU_IMG
QEMU_IMG := $(shell command -v qemu-img 2>/dev/null)
endif
ifndef QEMU_IO
QEMU_IO := $(shell command -v qemu-io 2>/dev/null)
endif
# Scripts that compile programs against the built library get compilers
# that add the sanitizer flags of a sanitized build: its libqblock.so
# needs the sanitizer runtime loaded first, i.e. linked into the program.
SAN_CC_FLAGS = $(if $(SAN_CFLAGS), $(SAN_CFLAGS) $(SAN_LDFLAGS))
# Tests run as many at a time as make's -j says (`make -j2 check`), or as
# TEST_JOBS says.
TEST_JOBS ?= $(or $(patsubst -j%,%,$(filter -j%,$(MAKEFLAGS))),1)
RUN_TESTS = SRCDIR='$(SRCDIR_ABS)' BUILDDIR='$(CURDIR)' TEST_JOBS='$(TEST_JOBS)' \
	    CC='$(CC)$(SAN_CC_FLAGS)' CXX='$(CXX)$(SAN_CC_FLAGS)' \
	    TEST_CFLAGS='$(SAN_CFLAGS)' TEST_LDFLAGS='$(SAN_LDFLAGS)' \
	    QEMU_IMG='$(QEMU_IMG)' QEMU_IO='$(QEMU_IO)' \
	    bash '$(SRCDIR_ABS)/tests/run-tests.sh'

check: check-prereq build-tests
	$(Q)$(RUN_TESTS) $(TESTS)

VALGRIND_SUPP := $(wildcard $(SRCDIR)/tests/valgrind.supp)
VALGRIND = valgrind --error-exitcode=1 --leak-check=full --track-origins=yes \
	   --num-callers=30 $(if $(VALGRIND_SUPP),--suppressions=$(abspath $(VALGRIND_SUPP)))

# Unit binaries run under valgrind without Check's fork mode (so that the
# tests themselves, not a parent waiting for them, are checked); the
# runner wraps QBLOCK_IMG for the interop scripts and fails a script when
# any valgrind log of it reports an error.
check-valgrind: check-prereq build-tests
	$(Q)if test -n "$(CONFIG_SANITIZERS)"; then \
	    echo "*** check-valgrind needs a build without sanitizers (configured: $(CONFIG_SANITIZERS))" >&2; \
	    exit 1; \
	fi
	$(Q)if ! command -v valgrind >/dev/null 2>&1; then \
	    echo "*** valgrind is not installed (./scripts/install-deps installs it)" >&2; exit 1; \
	fi
	$(Q)CK_FORK=no TEST_TIMEOUT=$${TEST_TIMEOUT:-1800} TEST_WRAPPER='$(VALGRIND)' $(RUN_TESTS) $(TESTS)

# Sanitizer builds happen out of tree, in a folder of their own, so the
# normal build is never left instrumented. The folder is configured once
# and rebuilt incrementally afterwards.
ASAN_DIR := build-asan
TSAN_DIR := build-tsan
# The way back from $(ASAN_DIR) to the source tree, relative when possible
# so that the whole tree can be moved.
SRC_FROM_SUBDIR = $(if $(filter /%,$(SRCDIR)),$(SRCDIR),../$(SRCDIR))

ASAN_ENV = TEST_TIMEOUT=$${TEST_TIMEOUT:-600} ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1 \
	   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	   CK_TIMEOUT_MULTIPLIER=$${CK_TIMEOUT_MULTIPLIER:-4}
TSAN_ENV = TEST_TIMEOUT=$${TEST_TIMEOUT:-900} \
	   TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(SRCDIR_ABS)/tests/sanitizers/tsan.supp \
	   CK_TIMEOUT_MULTIPLIER=$${CK_TIMEOUT_MULTIPLIER:-10}

# sanitized_check DIR,SANITIZERS,ENV
define sanitized_check
	$(Q)mkdir -p $(1)
	$(Q)if ! test -f $(1)/config-host.mak; then \
	    cd $(1) && $(SRC_FROM_SUBDIR)/configure --cc='$(CC)' --enable-sanitizers=$(2) \
	        $(if $(filter yes,$(CONFIG_DEBUG)),--enable-debug) >configure.out 2>&1 \
	    || { cat configure.out >&2; exit 1; }; \
	fi
	+$(Q)$(3) $(MAKE) -C $(1) check TESTS='$(or $(4),$(TESTS))'
endef

check-asan: check-prereq
	$(call sanitized_check,$(ASAN_DIR),address$(COMMA)undefined,$(ASAN_ENV))

check-tsan: check-prereq
	$(call sanitized_check,$(TSAN_DIR),thread,$(TSAN_ENV))

# Out-of-memory injection: an ASan (LeakSanitizer) build whose library can
# fail its Nth allocation (tests/oom/oom-wrap.c), where interop 521 runs
# tests/helpers/qboom over every N of a workload per format (sampled;
# QB_FAULT_FULL=1 for every N). QB_OOM_REQUIRED makes 521 fail rather than
# skip if the hook is missing.
OOM_DIR := build-oom
OOM_ENV = $(ASAN_ENV) QB_OOM_REQUIRED=1 OOM_INJECT=1

check-oom: check-prereq
	$(call sanitized_check,$(OOM_DIR),address$(COMMA)undefined,$(OOM_ENV),$(or $(TESTS),521))

COMMA := ,

# ------------------------------------------------------------------
# Fuzzing (tests/fuzz/): `make fuzz` builds one libFuzzer target per format
# with clang in $(FUZZ_DIR)/ (not part of `all`); `make fuzz-smoke` runs each
# for FUZZ_SECONDS over its seeds (tests/fuzz/make-seeds.sh makes them) and
# regression inputs. The gcc-built replay driver, tests/fuzz/fuzz-replay,
# is a test program: interop 500 replays every saved input with it.

FUZZ_CC      ?= clang-14
FUZZ_DIR     := build-fuzz
FUZZ_SECONDS ?= 20
FUZZ_TARGETS := qcow2 qcow qed vmdk vmdk-desc vdi vpc cow raw probe
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=gnu11 -D_FILE_OFFSET_BITS=64 -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN)
FUZZ_LIB_OBJS := $(addprefix $(FUZZ_DIR)/,$(LIB_SRCS:.c=.o))
FUZZ_BINS    := $(addprefix $(FUZZ_DIR)/fuzz-,$(FUZZ_TARGETS))
FUZZ_REPLAY  := tests/fuzz/fuzz-replay
FUZZ_REPLAY_OBJS := tests/fuzz/fuzz-replay.o tests/fuzz/fuzz-target.o

# Defined here, after build-tests' first rule, so named here too.
build-tests: $(FUZZ_REPLAY)

$(FUZZ_LIB_OBJS): $(FUZZ_DIR)/%.o: %.c config-host.mak
	@mkdir -p $(@D)
	$(call quiet,FUZZCC,$@)$(FUZZ_CC) $(QB_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link \
	    -fvisibility=hidden -MMD -MP -MF $(@:.o=.d) -c -o $@ $<

# fuzz_name TARGET: the format string a target is built for ("" probes).
fuzz_fmt = $(if $(filter probe,$(1)),,$(1))

$(FUZZ_BINS): $(FUZZ_DIR)/fuzz-%: tests/fuzz/fuzz-target.c tests/fuzz/fuzz-target.h $(FUZZ_LIB_OBJS)
	$(call quiet,FUZZLD,$@)$(FUZZ_CC) $(QB_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer \
	    -DFUZZ_FMT='"$(call fuzz_fmt,$*)"' -o $@ $< $(FUZZ_LIB_OBJS) $(LIBS) -lm

-include $(FUZZ_LIB_OBJS:.o=.d)

.PHONY: fuzz fuzz-smoke
fuzz: $(FUZZ_BINS)

# Seeds are made by qemu-img and friends into $(FUZZ_DIR)/seeds/<target>/.
fuzz-smoke: fuzz
	$(Q)sh $(SRCDIR)/tests/fuzz/make-seeds.sh $(FUZZ_DIR)/seeds
	$(Q)for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$t; \
	    echo "  FUZZ    $$t ($(FUZZ_SECONDS) s)"; \
	    ./$(FUZZ_DIR)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=120 \
	        -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-$$t- \
	        $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/seeds/$$t \
	        $$(test -d $(SRCDIR)/tests/fuzz/regressions/$$t && echo $(SRCDIR)/tests/fuzz/regressions/$$t) \
	        >$(FUZZ_DIR)/smoke-$$t.log 2>&1 \
	    || { tail -40 $(FUZZ_DIR)/smoke-$$t.log; exit 1; }; \
	    grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec' $(FUZZ_DIR)/smoke-$$t.log; \
	done

# A long run: every target to FUZZ_RUNS executions, FUZZ_JOBS at a time
# (tests/fuzz/campaign.sh says more). Not part of CI: a million executions
# of every target takes hours of machine time.
FUZZ_RUNS    ?= 1000000
FUZZ_JOBS    ?= 2
FUZZ_MAX_LEN ?= 131072
.PHONY: fuzz-campaign
fuzz-campaign: fuzz
	$(Q)sh $(SRCDIR)/tests/fuzz/make-seeds.sh $(FUZZ_DIR)/seeds
	$(Q)sh $(SRCDIR)/tests/fuzz/campaign.sh $(FUZZ_DIR) $(SRCDIR) $(FUZZ_RUNS) $(FUZZ_JOBS) \
	    $(FUZZ_MAX_LEN) $(FUZZ_TARGETS)

$(FUZZ_REPLAY_OBJS): %.o: %.c config-host.mak
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(QB_CPPFLAGS) $(LIB_CFLAGS) $(QB_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(FUZZ_REPLAY): $(FUZZ_REPLAY_OBJS) $(LIB_STATIC)
	$(call quiet,LINK,$@)$(CC) $(QB_LDFLAGS) -o $@ $(FUZZ_REPLAY_OBJS) $(LIB_STATIC) $(LIBS) $(PROG_LIBS)

-include $(FUZZ_REPLAY_OBJS:.o=.d)

# ------------------------------------------------------------------
# The demo: scripts/demo.sh drives the in-tree qblock-img on local files.

.PHONY: demo
demo: all
	$(Q)if ! test -f '$(SRCDIR_ABS)/scripts/demo.sh'; then \
	    echo "*** scripts/demo.sh is missing" >&2; exit 1; \
	fi
	$(Q)SRCDIR='$(SRCDIR_ABS)' BUILDDIR='$(CURDIR)' \
	    QBLOCK_IMG='$(CURDIR)/$(TOOL)' QEMU_IMG='$(QEMU_IMG)' QEMU_IO='$(QEMU_IO)' \
	    LD_LIBRARY_PATH='$(CURDIR)'$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH} \
	    PATH='$(CURDIR)/tools':"$$PATH" \
	    bash '$(SRCDIR_ABS)/scripts/demo.sh'

# The benchmark: bench/run times the in-tree qblock-img against qemu-img
# on the same images (BENCH_ARGS, e.g. "-n 3" or "--quick", go to it).

.PHONY: bench
BENCH_ARGS ?=
# bench/*.c: measurement programs bench/run drives (bench/threads: 1 thread
# against N on one image), linked against the in-tree library.
RPATH_BENCH = -Wl,--enable-new-dtags -Wl,-rpath,'$$ORIGIN/..'
$(BENCH_BINS): %: %.c $(LIB_LINKS) config-host.mak
	@mkdir -p $(@D)
	$(call quiet,LINK,$@)$(CC) $(PUB_CPPFLAGS) $(QB_CFLAGS) $(QB_LDFLAGS) -o $@ $< -L. -lqblock \
	    $(RPATH_BENCH) $(PROG_LIBS)

bench: all $(BENCH_BINS)
	$(Q)QBLOCK_IMG='$(CURDIR)/$(TOOL)' QBLOCK_BENCH_THREADS='$(CURDIR)/bench/threads' \
	    python3 '$(SRCDIR_ABS)/bench/run' $(BENCH_ARGS)

# ------------------------------------------------------------------
# Installing: PREFIX, LIBDIR, INCLUDEDIR, BINDIR, MANDIR and DESTDIR may be
# given on the command line, e.g. `make install PREFIX=/usr DESTDIR=/tmp/pkg`.

.PHONY: install uninstall

# ldconfig refreshes the loader cache; only meaningful when installing into
# the running system as root.
run_ldconfig = if test -z '$(DESTDIR)' && test "$$(id -u)" = 0; then \
	    if command -v ldconfig >/dev/null 2>&1; then ldconfig; \
	    elif test -x /sbin/ldconfig; then /sbin/ldconfig; fi; \
	fi

install: all
	$(Q)install -d '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(PKGCONFIGDIR)' \
	    '$(DESTDIR)$(INCLUDEDIR)/libqblock' '$(DESTDIR)$(BINDIR)'
	$(call quiet,INSTALL,$(DESTDIR)$(LIBDIR)/$(LIB_REAL))install -m 0755 $(LIB_REAL) '$(DESTDIR)$(LIBDIR)/$(LIB_REAL)'
	$(Q)ln -sf $(LIB_REAL) '$(DESTDIR)$(LIBDIR)/$(SONAME)'
	$(Q)ln -sf $(SONAME) '$(DESTDIR)$(LIBDIR)/libqblock.so'
	$(call quiet,INSTALL,$(DESTDIR)$(INCLUDEDIR)/libqblock)install -m 0644 $(addprefix $(SRCDIR)/,$(PUB_HEADERS)) '$(DESTDIR)$(INCLUDEDIR)/libqblock/'
	$(call quiet,INSTALL,$(DESTDIR)$(PKGCONFIGDIR)/libqblock.pc)$(call gen_pc,$(SRCDIR)/libqblock/libqblock.pc.in) >'$(DESTDIR)$(PKGCONFIGDIR)/libqblock.pc'
	$(Q)chmod 0644 '$(DESTDIR)$(PKGCONFIGDIR)/libqblock.pc'
ifneq ($(TOOL_SRCS),)
	$(call quiet,INSTALL,$(DESTDIR)$(BINDIR)/qblock-img)install -m 0755 $(TOOL_INST) '$(DESTDIR)$(BINDIR)/qblock-img'
endif
	$(Q)install -d '$(DESTDIR)$(MANDIR)/man3'
	$(call quiet,INSTALL,$(DESTDIR)$(MANDIR)/man3)install -m 0644 $(MAN3_PAGES) '$(DESTDIR)$(MANDIR)/man3/'
ifneq ($(MAN1_PAGES),)
	$(Q)install -d '$(DESTDIR)$(MANDIR)/man1'
	$(call quiet,INSTALL,$(DESTDIR)$(MANDIR)/man1)install -m 0644 $(MAN1_PAGES) '$(DESTDIR)$(MANDIR)/man1/'
endif
	$(Q)$(run_ldconfig)

uninstall:
	$(call quiet,RM,$(DESTDIR)$(LIBDIR)/libqblock.so*)rm -f '$(DESTDIR)$(LIBDIR)/$(LIB_REAL)' \
	    '$(DESTDIR)$(LIBDIR)/$(SONAME)' '$(DESTDIR)$(LIBDIR)/libqblock.so'
	$(call quiet,RM,$(DESTDIR)$(PKGCONFIGDIR)/libqblock.pc)rm -f '$(DESTDIR)$(PKGCONFIGDIR)/libqblock.pc'
	$(call quiet,RM,$(DESTDIR)$(INCLUDEDIR)/libqblock)rm -f $(foreach h,$(notdir $(PUB_HEADERS)),'$(DESTDIR)$(INCLUDEDIR)/libqblock/$(h)')
	$(Q)if test -d '$(DESTDIR)$(INCLUDEDIR)/libqblock'; then rmdir '$(DESTDIR)$(INCLUDEDIR)/libqblock' 2>/dev/null || true; fi
	$(call quiet,RM,$(DESTDIR)$(BINDIR)/qblock-img)rm -f '$(DESTDIR)$(BINDIR)/qblock-img'
	$(Q)rm -f $(foreach m,$(notdir $(MAN1_PAGES)),'$(DESTDIR)$(MANDIR)/man1/$(m)') \
	    $(foreach m,$(notdir $(MAN3_PAGES)),'$(DESTDIR)$(MANDIR)/man3/$(m)')
	$(Q)$(run_ldconfig)

# ------------------------------------------------------------------
# Release tarball: every file git tracks, plus new files not yet added that
# .gitignore does not exclude (so a working tree can be packed before it is
# committed); build outputs are excluded by .gitignore.

.PHONY: dist
DIST_NAME = libqblock-$(QBLOCK_VERSION)
dist:
	$(Q)if ! git -C '$(SRCDIR_ABS)' rev-parse --git-dir >/dev/null 2>&1; then \
	    echo "*** make dist needs a git checkout of the source tree" >&2; exit 1; \
	fi
	$(call quiet,TAR,$(DIST_NAME).tar.gz)cd '$(SRCDIR_ABS)' && \
	    git ls-files --cached --others --exclude-standard | \
	    while IFS= read -r f; do test -f "$$f" && printf '%s\n' "$$f"; done | \
	    LC_ALL=C sort -u | \
	    tar -c --owner=0 --group=0 --numeric-owner --no-recursion \
	        --transform 's|^|$(DIST_NAME)/|' -T - -f - | \
	    gzip -9n >'$(CURDIR)/$(DIST_NAME).tar.gz.tmp'
	$(Q)mv -f '$(DIST_NAME).tar.gz.tmp' '$(DIST_NAME).tar.gz'
	@echo "Wrote $(DIST_NAME).tar.gz ($$(tar -tzf $(DIST_NAME).tar.gz | wc -l) entries)"

# ------------------------------------------------------------------
# Cleaning

.PHONY: clean distclean help

clean:
	$(Q)rm -f $(LIB_REAL) $(LIB_LINKS) $(LIB_STATIC) $(PC_FILE) $(PC_FILE).tmp \
	    $(TOOL) $(TOOL_INST) $(TEST_BINS) $(EXAMPLE_BINS) $(ALL_OBJS) $(ALL_OBJS:.o=.d) $(MAN_PAGES) \
	    $(BENCH_BINS) $(FUZZ_REPLAY) $(FUZZ_REPLAY_OBJS) $(FUZZ_REPLAY_OBJS:.o=.d)
	$(Q)for d in block libqblock tools tests examples; do \
	    if test -d "$$d"; then find "$$d" -type f \( -name '*.o' -o -name '*.d' \) -exec rm -f {} +; fi; \
	done
	$(Q)rm -rf $(ASAN_DIR) $(TSAN_DIR) $(OOM_DIR) $(FUZZ_DIR)

distclean: clean
	$(Q)rm -f config-host.mak config-host.h config.status config.log \
	    libqblock-*.tar.gz libqblock-*.tar.gz.tmp
	$(Q)if test -f Makefile && test "$$(sed -n 1p Makefile)" = \
	    "# Makefile: generated by configure for an out-of-tree build."; then rm -f Makefile; fi

help:
	@echo "Targets:"
	@echo "  all             libqblock.so, libqblock-internal.a, tools/qblock-img, libqblock.pc"
	@echo "  check           build and run every test (TESTS=unit|interop|PATTERN for a subset)"
	@echo "  check-asan      the same, built with ASan+UBSan in $(ASAN_DIR)/"
	@echo "  check-tsan      the same, built with TSan in $(TSAN_DIR)/"
	@echo "  check-oom       out-of-memory injection (interop 521) in an ASan build in $(OOM_DIR)/"
	@echo "  check-valgrind  the tests under valgrind (unit binaries and qblock-img)"
	@echo "  examples        build examples/*.c (aio-glib needs GLib)"
	@echo "  fuzz            libFuzzer targets per format in $(FUZZ_DIR)/ (clang-14)"
	@echo "  fuzz-smoke      run each fuzz target FUZZ_SECONDS (20) seconds"
	@echo "  fuzz-campaign   run each fuzz target FUZZ_RUNS (10^6) executions"
	@echo "  demo            run scripts/demo.sh with the in-tree tool"
	@echo "  bench           bench/run: qblock-img against qemu-img (BENCH_ARGS=)"
	@echo "  install         install (PREFIX=, LIBDIR=, INCLUDEDIR=, BINDIR=, MANDIR=, DESTDIR=)"
	@echo "  uninstall       remove what install installed"
	@echo "  dist            libqblock-VERSION.tar.gz of the source tree"
	@echo "  clean           remove build outputs (and the sanitizer build folders)"
	@echo "  distclean       clean, and remove what configure wrote"
	@echo "Variables: V=1 prints full commands; CFLAGS=/LDFLAGS= are appended."
