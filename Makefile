# cairncms.ops: `make demo` shows the main job, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
COLLECTIONS := $(CURDIR)/.build/collections
LINK := $(COLLECTIONS)/ansible_collections/cairncms/ops
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_FORCE_COLOR ?= 0
export PATH := $(BIN):$(PATH)

.PHONY: demo test sanity lint unit integration molecule docs build publish clean

$(VENV)/.demo-ready: requirements.txt $(wildcard requirements/*.txt)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt 'ansible-core>=2.19.0'
	touch $@

$(VENV)/.test-ready: $(VENV)/.demo-ready test-requirements.txt
	$(BIN)/pip install --quiet -r requirements.txt -r test-requirements.txt
	touch $@

$(LINK):
	mkdir -p $(dir $(LINK))
	ln -sfn $(CURDIR) $(LINK)

demo: $(VENV)/.demo-ready $(LINK)
	$(BIN)/python tests/support/demo.py .demo

test: $(VENV)/.test-ready $(LINK)
	$(MAKE) --no-print-directory sanity lint unit integration molecule publish

unit: $(VENV)/.test-ready $(LINK)
	$(BIN)/python -m pytest -q tests/unit

integration: $(VENV)/.test-ready $(LINK)
	CAIRN_REQUIRE_DB_SERVERS=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup tests/integration

molecule: $(VENV)/.test-ready $(LINK)
	$(BIN)/molecule test --all

lint: $(VENV)/.test-ready $(LINK)
	$(BIN)/ansible-lint --profile production

sanity: $(VENV)/.test-ready
	bash tests/sanity/run-ansible-test.sh $(BIN)/python

# The docsite's guides: RST made from the Markdown guides (docs/*.md) into docs/docsite/rst/ (git-ignored).
docs: $(VENV)/.test-ready
	$(BIN)/python tests/publish/md2rst.py

build: docs
	mkdir -p .build/dist
	$(BIN)/ansible-galaxy collection build --force --output-path .build/dist .

# What Galaxy, AWX and the docsite take: tarball contents, galaxy-importer, ansible-builder, antsibull-docs.
publish: $(VENV)/.test-ready $(LINK)
	bash tests/publish/check.sh $(BIN)

clean:
	rm -rf .build .demo $(VENV)
