# The README's commands. Each target installs what it needs on its own.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# The SAM CLI pins its own boto3, so it lives in a venv of its own that the tests call.
SAM_CLI    := aws-sam-cli==1.170.0
SAM_VENV   := .venv-sam
SAM_STAMP  := $(SAM_VENV)/.installed-$(subst ==,-,$(SAM_CLI))
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# No network calls from the CDK CLI: notices and telemetry are off in cdk.json, this is the rest.
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: setup lint format test demo bench synth deploy clean

$(STAMP): requirements.txt requirements-dev.txt lambda_src/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(SAM_STAMP):
	rm -rf $(SAM_VENV)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet $(SAM_CLI)
	touch $@

setup: $(STAMP) $(NODE_STAMP) $(SAM_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: setup lint
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/python -m local demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks

synth: $(STAMP) $(NODE_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk synth

deploy: $(STAMP) $(NODE_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk deploy

clean:
	rm -rf $(VENV) $(SAM_VENV) node_modules cdk.out .build .pytest_cache .ruff_cache .hypothesis
