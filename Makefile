# The two commands of the README: `make run` and `make test`.
# Both install missing Debian packages first (scripts/deps.sh).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN     ?= 127.0.0.1:8080
DATABASE   ?= data/collie.db

.PHONY: all deps build build-asan run test test-fast unit api-deps bench clean format

all: build

deps:
	@./scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCOLLIE_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

api-deps:
	@cd tests/api && npm ci --silent --no-audit --no-fund

run: build
	@mkdir -p $(dir $(DATABASE))
	./$(BUILD)/collie serve --dev --listen $(LISTEN) --database $(DATABASE)

# Every test twice: once on the release build, once under ASan+UBSan.
test: build build-asan api-deps
	cd $(BUILD) && ctest --output-on-failure -j 2
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 2

test-fast: build api-deps
	cd $(BUILD) && ctest --output-on-failure -j 2

bench: build
	./bench/run.sh

format:
	clang-format -i $$(git ls-files 'src/*.[ch]' 'tests/unit/*.c')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
