# bodycamd developer entry points. Everything a fresh Debian machine with python3 needs is
# installed into .venv by the first target that wants it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PREFIX ?= /opt/bodycamd

.PHONY: run demo test test-slow lint typecheck pytest bench torture torture-short soak install \
	install-venv install-files clean

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

# Network to PyPI: resolves the Pi install for aarch64 and runs the pinned numpy with PyAV.
test-slow: $(STAMP)
	$(BIN)/pytest -m slow

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Not part of `make test`: kills the daemon 30 times at random moments and at every fsync of a
# segment roll, then verifies every recording and the audit trail (tests/torture/run.py).
torture: $(STAMP)
	$(BIN)/python -m tests.torture.run --kills 30

# Two kills (a random one, one mid-roll): about a minute here, over the ~30 s make test allows;
# the roll's every fsync is covered in make test by tests/evidence/test_roll_recovery.py.
torture-short: $(STAMP)
	$(BIN)/python -m tests.torture.run --kills 1 --points 10

# On the Pi: picamera2 and libcamera come from Raspberry Pi OS packages (python3-picamera2),
# which cannot be installed from PyPI, so the venv must see the system site-packages, and the
# constraints keep pip from replacing what those packages were built against (numpy 1.x).
# DESTDIR stages the files under another root (for packaging and the install test); the venv
# itself is not relocatable, so `install-venv` belongs on the machine that runs it.
DESTDIR    ?=
SYSCONFDIR ?= /etc
UNITDIR    ?= /etc/systemd/system
SYSUSERSDIR  ?= /usr/lib/sysusers.d
TMPFILESDIR  ?= /usr/lib/tmpfiles.d
PI_CONSTRAINTS ?= constraints/pi-bookworm.txt

install: install-venv install-files

install-venv:
	$(PYTHON) -m venv --system-site-packages $(DESTDIR)$(PREFIX)
	$(DESTDIR)$(PREFIX)/bin/python -m pip install --quiet --constraint $(PI_CONSTRAINTS) '.[pi]'

# Order matters: the user and group exist (sysusers) before the config is given to the group,
# and tmpfiles makes /etc/bodycamd and /var/lib/bodycamd before the first start.
install-files:
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	sed 's|/opt/bodycamd|$(PREFIX)|g; s|/etc/bodycamd|$(SYSCONFDIR)/bodycamd|g' \
		systemd/bodycamd.service > $(DESTDIR)$(UNITDIR)/bodycamd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/bodycamd.service
	install -m 0644 systemd/bodycamd.sysusers $(DESTDIR)$(SYSUSERSDIR)/bodycamd.conf
	sed 's|/etc/bodycamd|$(SYSCONFDIR)/bodycamd|g' systemd/bodycamd.tmpfiles \
		> $(DESTDIR)$(TMPFILESDIR)/bodycamd.conf
	chmod 0644 $(DESTDIR)$(TMPFILESDIR)/bodycamd.conf
	install -D -m 0644 docs/operations.md $(DESTDIR)$(PREFIX)/docs/operations.md
	systemd-sysusers --root=$(or $(DESTDIR),/) $(DESTDIR)$(SYSUSERSDIR)/bodycamd.conf
	systemd-tmpfiles --create --root=$(or $(DESTDIR),/) $(DESTDIR)$(TMPFILESDIR)/bodycamd.conf
	gid=$$(awk -F: '$$1 == "bodycamd" { print $$3 }' $(DESTDIR)/etc/group); \
	  test -n "$$gid" || { echo "install: group bodycamd missing after systemd-sysusers" >&2; exit 1; }; \
	  test -e $(DESTDIR)$(SYSCONFDIR)/bodycamd/bodycamd.toml || \
	  install -m 0640 -o 0 -g "$$gid" config/bodycamd.example.toml \
	    $(DESTDIR)$(SYSCONFDIR)/bodycamd/bodycamd.toml
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache .hypothesis
