# The two commands of the README, and the service controls they build on.
# Every target installs what it needs first (deploy/install.sh is idempotent).
SHELL := /bin/bash
VENV  := .venv/bin

.PHONY: install up down status demo test

install:
	@bash deploy/install.sh

up: install
	@bash deploy/services.sh up

demo: up
	@$(VENV)/ducats demo

test: up
	@$(VENV)/lint-imports --no-cache
	@$(VENV)/mypy
	@$(VENV)/pytest $(PYTEST_ARGS)

status:
	@bash deploy/services.sh status

down:
	@bash deploy/services.sh down
