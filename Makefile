# khyve build. `make` builds the programs, unit tests and test guests; `make test` runs
# every test (tests/run.sh prints the final "N passed, N failed" line).
# Variables: CC=gcc|clang, SAN=1 (ASan+UBSan), BUILD=dir (default build).

CC ?= cc
BUILD ?= build
OPT ?= -O2

CFLAGS_COMMON := -std=gnu11 -D_GNU_SOURCE -g -Wall -Wextra -Werror -Wno-unused-parameter \
	-fno-strict-aliasing -Isrc -MMD -MP
ifeq ($(SAN),1)
OPT := -O1
CFLAGS_COMMON += -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
CFLAGS_ALL := $(CFLAGS_COMMON) $(OPT) $(CFLAGS)
LIBS := -lZydis -luring -lpthread -lz -llzma -lzstd -lm

LIB_SRC := $(shell find src -name '*.c' ! -path src/main.c | sort)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
TOOLS := $(patsubst tools/%/main.c,$(BUILD)/%,$(wildcard tools/*/main.c))

.SECONDARY:
.PHONY: all programs unit guests test check-slow bench demo clean fuzz
all: programs unit guests

programs: $(BUILD)/khyve $(TOOLS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libkhyve.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/khyve: $(BUILD)/src/main.o $(BUILD)/libkhyve.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/%: $(BUILD)/tools/%/main.o $(BUILD)/libkhyve.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

unit: $(UNIT_BIN)
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(BUILD)/tests/unit/unit_main.o $(BUILD)/libkhyve.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

guests:
	$(MAKE) -C tests/guest BUILD=$(abspath $(BUILD))/guest

test: all
	BUILD=$(BUILD) tests/run.sh

check-slow: all
	BUILD=$(BUILD) tests/run.sh --slow

bench: all
	BUILD=$(BUILD) bench/run.sh

demo: programs guests
	scripts/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
