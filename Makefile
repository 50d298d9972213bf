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

bench: build
	bench/run.sh

clean:
	rm -rf .build out
