# bodycamd developer entry points. Everything a fresh Debian machine with python3 needs is
# installed into .venv by the first target that wants it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PREFIX ?= /opt/bodycamd

.PHONY: run demo test lint typecheck pytest bench torture soak install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,ingest,demo]'
	$(BIN)/python -m pip install --quiet --no-deps 'picamera2>=0.3.20,<0.4'
	touch $@

run: $(STAMP)
	$(BIN)/bodycamd run --config config/dev.toml

# A whole shift, camera to back end, in ./var/demo (recreated each run): docs/demo.md.
demo: $(STAMP)
	$(BIN)/python -m bodycamd.demo --out var/demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# 60 s of abuse of the control API against a recording daemon (not part of `make test`)
soak: $(STAMP)
	$(BIN)/python -m tests.soak

bench: $(STAMP)
	$(BIN)/python -m bench

# Not part of `make test`: kills the daemon 30 times at random moments and at every fsync of a
# segment roll, then verifies every recording and the audit trail (tests/torture/run.py).
torture: $(STAMP)
	$(BIN)/python -m tests.torture.run --kills 30

# On the Pi: picamera2 and libcamera come from Raspberry Pi OS packages (python3-picamera2),
# which cannot be installed from PyPI, so the venv must see the system site-packages.
install:
	$(PYTHON) -m venv --system-site-packages $(PREFIX)
	$(PREFIX)/bin/python -m pip install --quiet '.[pi]'
	install -D -m 0644 systemd/bodycamd.service /etc/systemd/system/bodycamd.service
	install -D -m 0644 systemd/bodycamd.sysusers /usr/lib/sysusers.d/bodycamd.conf
	install -D -m 0644 systemd/bodycamd.tmpfiles /usr/lib/tmpfiles.d/bodycamd.conf
	test -e /etc/bodycamd/bodycamd.toml || install -D -m 0640 config/bodycamd.example.toml /etc/bodycamd/bodycamd.toml
	systemd-sysusers /usr/lib/sysusers.d/bodycamd.conf
	systemd-tmpfiles --create /usr/lib/tmpfiles.d/bodycamd.conf
	systemctl daemon-reload

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache .hypothesis
