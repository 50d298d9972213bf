# The two commands a new user needs:  make run  (build + quickstart)  and  make test  (all tests).
SWIFT ?= swift
RELEASE_BIN := .build/release/sluice

.PHONY: run test deps test-deps build bench clean

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

build: deps
	$(SWIFT) build -c release --product sluice

run: build
	@rm -rf out/quickstart
	$(RELEASE_BIN) run pipelines/quickstart.yaml
	@echo "--- outputs:"; wc -l out/quickstart/*.jsonl

test: test-deps
	$(SWIFT) build --product sluice
	$(SWIFT) test --parallel

# Every benchmark, one after the other (bench/RESULTS.md says what each measures). Peers that
# come from PyPI (PyFlink, pymemcache) are installed by their own scripts into bench/.venv-*.
bench: build
	bench/run.sh
	SLUICE_BIN=$(RELEASE_BIN) python3 bench/callgrind.py
	SLUICE_BIN=$(RELEASE_BIN) bench/kafka/run.sh
	SLUICE_BIN=$(RELEASE_BIN) bench/join/run.sh
	SLUICE_BIN=$(RELEASE_BIN) bench/checkpoint/run.sh
	python3 bench/latency/run.py --sluice $(RELEASE_BIN)
	python3 bench/enrich/lookups.py --sluice $(RELEASE_BIN)
	SLUICE_BIN=$(RELEASE_BIN) bench/enrich/memcached.sh
	SLUICE_BIN=$(RELEASE_BIN) bench/reload/run.sh
	bench/micro/run.sh

clean:
	rm -rf .build out
