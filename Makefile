# ganeti-rs: build, check, install and package the static multicall binary.
#
#   make [build]     release build for x86_64-unknown-linux-musl, checked static, <= 15 MB
#   make install     DESTDIR=... PREFIX=... (default /usr/local), via packaging/install.sh
#   make dist        ganeti-rs-$(VERSION)-x86_64.tar.gz
#   make test | lint | bench | demo | clean | fuzz-confd
#
# The list of program links comes from the binary itself (`ganeti --list --names`),
# so the install never drifts from src/applets.rs.

SHELL := /bin/sh
CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
DIST_NAME := ganeti-rs-$(VERSION)-x86_64
MAX_BINARY_BYTES := 15728640

MUSL_TARGET := x86_64-unknown-linux-musl
GNU_TARGET := x86_64-unknown-linux-gnu
# The musl build needs rustup's musl target and a musl C compiler (Debian's
# musl-tools) for crates with C parts such as ring. Without them: glibc with
# crt-static, which links but needs glibc's NSS libraries for name lookups.
MUSL_OK := $(shell d=$$(rustc --print target-libdir --target $(MUSL_TARGET) 2>/dev/null) \
	&& [ -d "$$d" ] && command -v x86_64-linux-musl-gcc >/dev/null 2>&1 && echo yes)
ifeq ($(MUSL_OK),yes)
TARGET := $(MUSL_TARGET)
STATIC_RUSTFLAGS :=
else
TARGET := $(GNU_TARGET)
STATIC_RUSTFLAGS := -C target-feature=+crt-static
endif
BIN := target/$(TARGET)/release/ganeti

.PHONY: all build install dist test lint bench demo clean fuzz-confd

all: build

build:
	@if [ "$(TARGET)" != "$(MUSL_TARGET)" ]; then \
	  echo "warning: musl target or x86_64-linux-musl-gcc missing (rustup target add $(MUSL_TARGET);" \
	       "apt-get install musl-tools); building glibc with crt-static instead" >&2; \
	fi
	@start=$$(date +%s); \
	RUSTFLAGS="$$RUSTFLAGS $(STATIC_RUSTFLAGS)" $(CARGO) build --release --locked --target $(TARGET) --bin ganeti || exit 1; \
	echo "build took $$(( $$(date +%s) - start )) s"
	@if readelf -l $(BIN) | grep -q INTERP; then \
	  echo "error: $(BIN) has a program interpreter: not static" >&2; exit 1; fi
	@if readelf -d $(BIN) 2>/dev/null | grep -q NEEDED; then \
	  echo "error: $(BIN) needs shared libraries:" >&2; readelf -d $(BIN) | grep NEEDED >&2; exit 1; fi
	@size=$$(stat -c %s $(BIN)); \
	echo "$(BIN): static, $$size bytes ($$(( size / 1024 )) KiB)"; \
	if [ $$size -gt $(MAX_BINARY_BYTES) ]; then \
	  echo "error: binary larger than 15 MB" >&2; exit 1; fi

install: build
	sh packaging/install.sh --prefix "$(PREFIX)" --destdir "$(DESTDIR)" --binary "$(BIN)"

dist: build
	rm -rf target/dist/$(DIST_NAME)
	mkdir -p target/dist/$(DIST_NAME)/packaging
	cp $(BIN) target/dist/$(DIST_NAME)/ganeti
	cp -R man systemd target/dist/$(DIST_NAME)/
	cp packaging/install.sh target/dist/$(DIST_NAME)/packaging/
	cp README.md target/dist/$(DIST_NAME)/
	tar -C target/dist -czf $(DIST_NAME).tar.gz --owner=0 --group=0 $(DIST_NAME)
	@echo "wrote $(DIST_NAME).tar.gz"

# Benches are left out: `--all-targets` would run them (in debug mode) as
# tests; `make bench` runs them optimised.
test:
	$(CARGO) test --lib --bins --tests

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

bench:
	$(CARGO) bench

# Long random run over confd's packet path (debug build; FUZZ_CONFD_SECS, FUZZ_CONFD_SEED).
FUZZ_CONFD_SECS ?= 600
fuzz-confd:
	FUZZ_CONFD_SECS=$(FUZZ_CONFD_SECS) $(CARGO) test --test fuzz_confd -- --ignored --nocapture

demo: build
	sh packaging/demo.sh $(BIN)

clean:
	$(CARGO) clean
	rm -f ganeti-rs-*-x86_64.tar.gz
