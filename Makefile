# psod: parameter synchronization with particle swarms.
#
#   make                 build psod, psoworker, psoctl into $(BUILD)/
#   make test            unit suites and loopback integration tests
#   make bench           benchmarks (results go in docs/BENCHMARKS.md)
#   make SANITIZER=address,undefined test
#   make install PREFIX=/usr/local   (make uninstall; make man; make deb)
#   make format          lay out every C file as .clang-format says (CI: make format-check)
#
# Missing Debian packages are installed by scripts/install-deps.sh before the
# first compile (target `deps`).

PREFIX ?= /usr/local
OPT ?= -O3
WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wformat=2
# -ffp-contract=off: no fused multiply-adds the source does not write, so a
# compressed position decodes to the same floats in psod and in every client
# build (gcc's ISO mode has it off already; clang's default fuses).
STD = -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -ffp-contract=off
SANITIZER ?=

ifneq ($(SANITIZER),)
BUILD ?= build-san
SAN = -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD ?= build
SAN =
endif

PKGS = libzmq libprotobuf-c
# Recursive (=) so pkg-config runs after `deps` has installed the packages.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)
BLAS_CFLAGS = $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS = $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lz

ALL_CFLAGS = $(STD) $(OPT) -g $(WARN) $(SAN) -MMD -MP -I. -I$(BUILD) $(PKG_CFLAGS) $(BLAS_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SAN) -Wl,--as-needed $(LDFLAGS)
# The client library: ZeroMQ, protobuf-c and cJSON (psoc_status_json).
JSON_LIBS = $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson)
CLIENT_LIBS = $(PKG_LIBS) $(JSON_LIBS) -lm -pthread
# psod: the HTTP endpoint (libmicrohttpd).
HTTP_LIBS = $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
# Programs link --as-needed: each takes only the libraries it uses.
LIBS = $(CLIENT_LIBS) $(JSON_LIBS) $(HTTP_LIBS)

PROTO_C = $(BUILD)/proto/psod.pb-c.c
PROTO_H = $(BUILD)/proto/psod.pb-c.h

# Three libraries: libpsocommon.a (shared by both sides, internal),
# libpsoclient.a (the client library a worker needs, installed), and the
# daemon's and engine's objects as archives the tests link from.
COMMON_SRC = common/log.c common/config.c common/crc32c.c common/rng.c common/wire.c \
             common/timeutil.c common/modelfile.c common/ckpt.c common/keys.c common/hash.c \
             common/sig.c common/lrsched.c common/codec.c common/statusjson.c \
             common/token.c common/pool.c common/payload.c common/sparse.c
CLIENT_SRC = worker/client/psoclient.c worker/client/psoclient_conn.c \
             worker/client/psoclient_beat.c \
             worker/client/psoclient_wait.c worker/client/psoclient_link.c \
             worker/client/psoclient_sync.c \
             worker/client/psoclient_ops.c worker/client/psoclient_status.c \
             worker/client/psoclient_model.c worker/client/psoclient_shard.c \
             worker/client/psoclient_data.c worker/client/psoclient_verify.c \
             common/rng.c common/modelfile.c common/wire.c common/crc32c.c common/keys.c \
             common/timeutil.c common/hash.c common/codec.c common/statusjson.c common/token.c \
             common/pool.c common/payload.c common/sparse.c
SERVER_SRC = server/gate.c server/options.c server/table.c server/reply.c server/record.c server/hello.c server/members.c \
             server/rounds.c server/push.c server/persist.c server/outputs.c server/admin.c server/verify.c server/hyper.c \
             server/strategy/aggregate.c server/strategy/swarm.c server/strategy/swarm_ckpt.c server/strategy/swarm_verify.c \
             server/strategy/swarm_kernel.c server/strategy/swarm_mix.c server/strategy/swarm_hyper.c \
             server/strategy/strategy.c server/strategy/strategy_sum.c \
             server/strategy/strategy_center.c server/strategy/strategy_pso.c \
             server/strategy/strategy_avg.c server/strategy/strategy_easgd.c \
             server/strategy/strategy_diloco.c server/strategy/strategy_ssgd.c \
             server/shard/shard.c server/shard/shard_follower.c server/shard/shard_coord.c \
             server/observe/report.c server/observe/metrics.c server/observe/http.c \
             server/server.c
WORKER_SRC = worker/attack.c worker/objective.c worker/layers.c worker/model.c worker/pass.c worker/prepare.c \
             worker/optim.c worker/data.c worker/train.c

PROTO_OBJ = $(BUILD)/proto/psod.pb-c.o
COMMON_OBJ = $(COMMON_SRC:%.c=$(BUILD)/%.o) $(PROTO_OBJ)
CLIENT_OBJ = $(CLIENT_SRC:%.c=$(BUILD)/%.o) $(PROTO_OBJ)
SERVER_OBJ = $(SERVER_SRC:%.c=$(BUILD)/%.o) $(BUILD)/server/web_assets.o
WORKER_OBJ = $(WORKER_SRC:%.c=$(BUILD)/%.o)

LIBCOMMON = $(BUILD)/libpsocommon.a
LIBCLIENT = $(BUILD)/libpsoclient.a
# The shared client library: the same sources compiled position-independent
# with hidden visibility, so only the psoc_ API (PSOC_API) is exported.
VERSION := $(shell sed -n 's/^\#define PSOD_VERSION "\(.*\)"/\1/p' common/version.h)
SO_MAJOR = 1
SONAME = libpsoclient.so.$(SO_MAJOR)
LIBSO = $(BUILD)/libpsoclient.so.$(SO_MAJOR).0.0
PIC_OBJ = $(CLIENT_SRC:%.c=$(BUILD)/pic/%.o) $(BUILD)/pic/proto/psod.pb-c.o
PYTHON = /usr/bin/python3
PYDIR ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/python3/dist-packages,$(PREFIX)/lib/python$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)/dist-packages)
LIBSERVER = $(BUILD)/libpsoserver.a
LIBWORKER = $(BUILD)/libpsoworker.a
BINS = $(BUILD)/psod $(BUILD)/psoworker $(BUILD)/psoctl $(BUILD)/$(SONAME)
# Tests and benchmarks take from the archives only the objects they use, and
# OpenBLAS only when they use the engine.
TEST_LIBS = $(LIBSERVER) $(LIBWORKER) $(LIBCLIENT) $(LIBCOMMON)
AS_NEEDED = -Wl,--as-needed

UNIT_SUITES = check_config check_aggregate check_crc32c check_rng check_wire check_codec check_sparse check_keys check_ckpt check_swarm check_hyper check_strategy check_modelfile check_objective check_nn check_pool check_pass check_data check_partition check_optim check_client check_rounds check_push check_members check_persist check_verify check_hyper_daemon check_admin check_memory check_threads check_http
TEST_BINS = $(UNIT_SUITES:%=$(BUILD)/tests/%) $(BUILD)/tests/check_cluster $(BUILD)/tests/check_training $(BUILD)/tests/check_shard $(BUILD)/tests/check_security $(BUILD)/tests/check_usage $(BUILD)/tests/check_robust \
            $(BUILD)/tests/hostile_client \
            $(BUILD)/tests/make_fixture $(BUILD)/tests/nn_ref
BENCH_BINS = $(BUILD)/bench/bench_update $(BUILD)/bench/bench_round $(BUILD)/bench/bench_train

.PHONY: all deps test valgrind bench install uninstall clean man deb format format-check soak
# Keep test and bench objects make would otherwise treat as intermediate.
.SECONDARY:
all: $(BINS)

# Missing packages are looked for once per build directory (a stamp), not
# per object; `make deps` looks again.
DEPS_STAMP = $(BUILD)/.deps-ok
deps:
	@rm -f $(DEPS_STAMP)
	@$(MAKE) --no-print-directory $(DEPS_STAMP)
$(DEPS_STAMP):
	@scripts/install-deps.sh --if-missing
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/proto/psod.pb-c.c $(BUILD)/proto/psod.pb-c.h: proto/psod.proto | $(DEPS_STAMP)
	@mkdir -p $(BUILD)/proto
	protoc-c --proto_path=proto --c_out=$(BUILD)/proto proto/psod.proto

# Rebuild everything when the compiler flags change (OPT=, CFLAGS=, ...).
$(BUILD)/.flags: FORCE | $(DEPS_STAMP)
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS)' > $@
.PHONY: FORCE
FORCE:

# Every object may include the generated header.
$(BUILD)/%.o: %.c $(PROTO_H) $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Generated code is not ours to lint; only compile it warning-free.
$(BUILD)/proto/psod.pb-c.o: $(PROTO_C) $(PROTO_H)
	$(CC) $(STD) $(OPT) -g $(SAN) $(PKG_CFLAGS) $(CFLAGS) -I$(BUILD) -c $< -o $@

$(BUILD)/pic/%.o: %.c $(PROTO_H) $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@
$(BUILD)/pic/proto/psod.pb-c.o: $(PROTO_C) $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(OPT) -g $(SAN) $(PKG_CFLAGS) $(CFLAGS) -I$(BUILD) -fPIC -fvisibility=hidden -c $< -o $@
$(LIBSO): $(PIC_OBJ)
	$(CC) $(ALL_LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -o $@ $^ $(CLIENT_LIBS)
$(BUILD)/$(SONAME): $(LIBSO)
	ln -sf $(notdir $(LIBSO)) $@
	ln -sf $(SONAME) $(BUILD)/libpsoclient.so

# The status page (server/observe/web/) compiled into psod, with uPlot from npm at
# the version and checksum package-lock.json pins. Without npm the page
# works without its plot (and says so).
WEB = $(BUILD)/web
UPLOT = $(WEB)/node_modules/uplot/dist
$(WEB)/.npm-done: server/observe/web/package.json server/observe/web/package-lock.json
	@mkdir -p $(WEB) && cp server/observe/web/package.json server/observe/web/package-lock.json $(WEB)/
	@cd $(WEB) && npm ci --no-audit --no-fund --ignore-scripts --silent >/dev/null 2>&1 || \
	    echo "warning: npm could not fetch uPlot; psod's status page will have no plot" >&2
	@touch $@
WEB_FILES = server/observe/web/index.html server/observe/web/page.js server/observe/web/page.css
$(BUILD)/server/web_assets.c: server/observe/web/embed.sh $(WEB_FILES) $(WEB)/.npm-done
	@mkdir -p $(dir $@)
	server/observe/web/embed.sh $@ '/index.html=server/observe/web/index.html:text/html; charset=utf-8' \
	    '/page.js=server/observe/web/page.js:text/javascript; charset=utf-8' \
	    '/page.css=server/observe/web/page.css:text/css; charset=utf-8' \
	    '/uPlot.iife.min.js=$(UPLOT)/uPlot.iife.min.js:text/javascript; charset=utf-8' \
	    '/uPlot.min.css=$(UPLOT)/uPlot.min.css:text/css; charset=utf-8'
$(BUILD)/server/web_assets.o: $(BUILD)/server/web_assets.c
	$(CC) $(STD) $(OPT) $(SAN) -I. $(CFLAGS) -c $< -o $@

$(LIBCOMMON): $(COMMON_OBJ)
	rm -f $@ && $(AR) rcs $@ $^
$(LIBCLIENT): $(CLIENT_OBJ)
	rm -f $@ && $(AR) rcs $@ $^
$(LIBSERVER): $(SERVER_OBJ)
	rm -f $@ && $(AR) rcs $@ $^
$(LIBWORKER): $(WORKER_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/psod: $(BUILD)/server/psod.o $(LIBSERVER) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/psoworker: $(BUILD)/worker/psoworker.o $(BUILD)/worker/psoworker_opts.o \
                    $(BUILD)/worker/psoworker_objective.o $(LIBWORKER) $(LIBCLIENT) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(BLAS_LIBS)

$(BUILD)/psoctl: $(BUILD)/worker/psoctl.o $(LIBCLIENT) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Test suites live in tests/unit/ (pure modules), tests/daemon/ (the daemon
# in-process) and tests/system/ (real processes); the binaries all go to
# $(BUILD)/tests/, where the scripts find them. Make takes the first rule
# whose source exists.
TEST_LINK = $(CC) $(ALL_LDFLAGS) $(AS_NEEDED) -o $@ $^ $(LIBS) $(BLAS_LIBS) $(CHECK_LIBS)
$(BUILD)/tests/check_%: $(BUILD)/tests/unit/check_%.o $(BUILD)/tests/lib/proc.o $(TEST_LIBS)
	$(TEST_LINK)
$(BUILD)/tests/check_%: $(BUILD)/tests/daemon/check_%.o $(BUILD)/tests/lib/proc.o $(TEST_LIBS)
	$(TEST_LINK)
$(BUILD)/tests/check_%: $(BUILD)/tests/system/check_%.o $(BUILD)/tests/lib/proc.o $(TEST_LIBS)
	$(TEST_LINK)

$(BUILD)/tests/hostile_client: $(BUILD)/tests/lib/hostile_client.o $(LIBCLIENT) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/make_fixture: $(BUILD)/tests/lib/make_fixture.o $(LIBCLIENT) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/nn_ref: $(BUILD)/tests/lib/nn_ref.o $(LIBWORKER) $(LIBCLIENT) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(BLAS_LIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(TEST_LIBS)
	$(CC) $(ALL_LDFLAGS) $(AS_NEEDED) -o $@ $^ $(LIBS) $(BLAS_LIBS)

# Fuzzing: libFuzzer targets built with clang, ASan and UBSan in their own
# build directory (build-fuzz). `make fuzz` runs each target for
# FUZZ_SECONDS on a scratch copy of the seed corpus in tests/fuzz/corpus;
# anything that crashes, leaks or trips a sanitizer fails the run and
# leaves its input in build-fuzz/findings/.
FUZZ_TARGETS = fuzz_wire fuzz_server fuzz_shard fuzz_ckpt fuzz_modelfile fuzz_codec fuzz_sparse
FUZZ_SECONDS ?= 30
FUZZ_JOBS ?= 1
FUZZ_FLAGS = BUILD=build-fuzz CC=clang SANITIZER=address,undefined OPT=-O1 \
             CFLAGS=-fsanitize=fuzzer-no-link
.PHONY: fuzz fuzz-bins fuzz-build fuzz-corpus fuzz-merge

fuzz-build: | $(DEPS_STAMP)
	@scripts/install-deps.sh --fuzz --if-missing
	@$(MAKE) --no-print-directory $(FUZZ_FLAGS) fuzz-bins

fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)

$(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/%.o $(LIBSERVER) $(LIBCLIENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) tests/fuzz/run-fuzz.sh $(FUZZ_TARGETS)

# Rewrite the generated seeds (make_corpus) from the current protocol and
# daemon; inputs merged in from long fuzzing runs (fuzz-merge) stay.
fuzz-corpus: $(BUILD)/tests/make_corpus
	$(BUILD)/tests/make_corpus tests/fuzz/corpus

# Add to the seed corpus the inputs of the working corpora (build-fuzz/corpus)
# that reach code the seeds do not (libFuzzer -merge=1).
fuzz-merge: fuzz-build
	@for t in $(FUZZ_TARGETS); do d=$${t#fuzz_}; \
	    build-fuzz/fuzz/$$t -merge=1 tests/fuzz/corpus/$$d build-fuzz/corpus/$$d 2>&1 | \
	    grep -E '^MERGE-OUTER: [0-9]+ new files' | sed "s/^/$$t: /"; done

$(BUILD)/tests/make_corpus: $(BUILD)/tests/fuzz/make_corpus.o $(LIBSERVER) $(LIBCLIENT) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# The scripts test runs the scripts as users do, on the default build only.
test: $(BINS) $(TEST_BINS)
	@BUILD=$(BUILD) tests/system/leftovers-test.sh start
	@BUILD=$(BUILD) tests/lib/run-tests.sh $(UNIT_SUITES) check_cluster check_training check_robust check_shard check_security check_usage
	@if [ -z "$(SANITIZER)" ]; then BUILD=$(BUILD) tests/system/scripts-test.sh; fi
	@if [ -z "$(SANITIZER)" ]; then BUILD=$(BUILD) tests/system/python-test.sh; fi
	@if [ -z "$(SANITIZER)" ]; then BUILD=$(BUILD) tests/system/netlab-test.sh; fi
	@BUILD=$(BUILD) tests/system/http-test.sh
	@if [ -z "$(SANITIZER)" ]; then BUILD=$(BUILD) tests/system/chaos-test.sh; fi
	@tests/system/layers-test.sh
	@if [ -z "$(SANITIZER)" ]; then BUILD=$(BUILD) tests/system/packaging-test.sh; fi
	@if [ -z "$(SANITIZER)" ]; then BUILD=$(BUILD) tests/system/ssh-test.sh; fi
	@if [ -z "$(SANITIZER)" ]; then BUILD=$(BUILD) tests/system/slurm-test.sh; fi
	@BUILD=$(BUILD) tests/system/leftovers-test.sh check

# A normal daemon run under valgrind (needs a build without sanitizers).
# The house layout of every C file (.clang-format); CI runs format-check.
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^docs/')
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && \
	    echo "format: $(words $(FORMAT_FILES)) files laid out as .clang-format says"

# The long chaos run (docs/RELIABILITY.md): LeNet-5 on MNIST, 4 workers and
# 2 daemons in a netlab at 1 Gbit/s (root), every fault kind in turn, one
# every 10 s on average for SOAK_SECONDS, beside a clean run as long.
SOAK_SECONDS ?= 1800
soak: $(BINS)
	@test -f data/mnist/train-images-idx3-ubyte || \
	    { echo "make soak: no data/mnist (scripts/get-data.sh mnist data/mnist)"; exit 2; }
	/usr/bin/python3 scripts/chaos.py --build $(BUILD) --seconds $(SOAK_SECONDS) \
	    --mtbf 10 --workers 4 --shards 2 --link 1gbit --model lenet5 --data-dir data/mnist \
	    --out docs/results/soak

valgrind: $(BINS) $(BUILD)/tests/hostile_client $(BUILD)/tests/make_fixture
	@BUILD=$(BUILD) tests/system/valgrind-daemon.sh

bench: $(BINS) $(BENCH_BINS)
	@BUILD=$(BUILD) bench/run-bench.sh

# Man pages: each template's @OPTIONS@ line becomes the program's own
# option table (--help-man), so a page cannot drift from the options.
MANPAGES = $(BUILD)/man/psod.8 $(BUILD)/man/psoworker.1 $(BUILD)/man/psoctl.1 $(BUILD)/man/psoworker-torch.1
man: $(MANPAGES)
$(BUILD)/man/%: docs/man/%.in scripts/dist/man-page.sh $(BINS) python/psod/worker.py python/psod/manpage.py
	@mkdir -p $(@D)
	scripts/dist/man-page.sh $< $(VERSION) $(BUILD) > $@.tmp && mv $@.tmp $@

SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
MANDIR ?= $(PREFIX)/share/man
PROGRAMS = $(BUILD)/psod $(BUILD)/psoworker $(BUILD)/psoctl
# What make install puts where (make uninstall removes exactly these); the
# config file is installed once and then left to its owner, as dpkg does.
INSTALLED = $(PREFIX)/bin/psod $(PREFIX)/bin/psoworker $(PREFIX)/bin/psoctl \
            $(PREFIX)/bin/psoworker-torch $(PREFIX)/lib/libpsoclient.a \
            $(PREFIX)/lib/$(notdir $(LIBSO)) $(PREFIX)/lib/$(SONAME) $(PREFIX)/lib/libpsoclient.so \
            $(PREFIX)/lib/pkgconfig/psoclient.pc $(PREFIX)/include/psod/psoclient.h \
            $(MANDIR)/man8/psod.8 $(MANDIR)/man1/psoworker.1 $(MANDIR)/man1/psoctl.1 \
            $(MANDIR)/man1/psoworker-torch.1 $(UNITDIR)/psod.service $(SYSUSERSDIR)/psod.conf
install: $(BINS) $(MANPAGES)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/psod
	install -m 755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIBCLIENT) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBSO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(LIBSO)) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libpsoclient.so
	install -m 644 worker/client/psoclient.h $(DESTDIR)$(PREFIX)/include/psod/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' worker/client/psoclient.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/psoclient.pc
	install -d $(DESTDIR)$(PYDIR)/psod
	install -m 644 python/psod/*.py $(DESTDIR)$(PYDIR)/psod/
	printf '"""Where make install put psod (written by make install)."""\nLIBDIR = "%s"\n' \
	    '$(PREFIX)/lib' > $(DESTDIR)$(PYDIR)/psod/_installed.py
	sed 's|^PYDIR = None$$|PYDIR = "$(PYDIR)"|' python/psoworker-torch > $(DESTDIR)$(PREFIX)/bin/psoworker-torch
	chmod 755 $(DESTDIR)$(PREFIX)/bin/psoworker-torch
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	install -m 644 $(BUILD)/man/psod.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 $(BUILD)/man/psoworker.1 $(BUILD)/man/psoctl.1 $(BUILD)/man/psoworker-torch.1 \
	    $(DESTDIR)$(MANDIR)/man1/
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/psod
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' scripts/dist/psod.service.in \
	    > $(DESTDIR)$(UNITDIR)/psod.service
	install -m 644 scripts/dist/psod.sysusers $(DESTDIR)$(SYSUSERSDIR)/psod.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/psod/psod.conf ] || \
	    install -m 644 scripts/dist/psod.conf $(DESTDIR)$(SYSCONFDIR)/psod/psod.conf
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && case "$(PREFIX)" in /usr|/usr/local) true;; *) false;; esac; then \
	    ldconfig; \
	    if command -v systemd-sysusers >/dev/null; then systemd-sysusers $(SYSUSERSDIR)/psod.conf; fi; fi

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	rm -rf $(DESTDIR)$(PYDIR)/psod
	-rmdir $(DESTDIR)$(PREFIX)/include/psod 2>/dev/null
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/psod/psod.conf ]; then \
	    echo "left $(DESTDIR)$(SYSCONFDIR)/psod/ (your configuration; remove it by hand)"; fi

# A Debian package of the whole installation (PREFIX=/usr), by dpkg-deb.
deb: $(BINS) $(MANPAGES)
	scripts/dist/make-deb.sh $(BUILD) $(VERSION)

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) -type f -name '*.d' 2>/dev/null)
