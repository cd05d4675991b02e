#!/usr/bin/env bash
# Idempotent: makes sure Debian's headless browser for the UI tests is installed:
#   /usr/bin/chromium (package chromium) and /usr/bin/chromedriver (package chromium-driver).
# - both present: one line, exit 0;
# - missing, and root (or password-less sudo) with apt-get: installs them non-interactively
#   (--no-install-recommends: ~26 packages instead of ~126; `apt-get update` only when the
#   install fails without it);
# - otherwise: says what is missing and exits 0. The browser tests then skip locally and fail
#   when CI=true (the tests decide, not this script). A failed install also exits 0, with the
#   apt log's last lines, for the same reason.
set -uo pipefail

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver
PACKAGES=(chromium chromium-driver)
say() { echo "[browser-deps] $*"; }

if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
    say "present: $("$CHROMIUM" --version 2>/dev/null | head -n1 || echo "$CHROMIUM"), $CHROMEDRIVER"
    exit 0
fi

missing=()
[ -x "$CHROMIUM" ] || missing+=("$CHROMIUM (package chromium)")
[ -x "$CHROMEDRIVER" ] || missing+=("$CHROMEDRIVER (package chromium-driver)")
missing_text="$(printf '%s, ' "${missing[@]}")"
missing_text="${missing_text%, }"

if ! command -v apt-get >/dev/null 2>&1; then
    say "missing: $missing_text; no apt-get on this machine, install Chromium and its driver by hand."
    say "The browser tests skip without them (and fail when CI=true)."
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    say "missing: $missing_text; installing needs root. Run: sudo apt-get install ${PACKAGES[*]}"
    say "The browser tests skip without them (and fail when CI=true)."
    exit 0
fi

log="$(mktemp -t browser-deps.XXXXXX.log)"
run_apt() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        -o DPkg::Lock::Timeout=300 "$@" >>"$log" 2>&1
}
apt_install() {
    local from shown="" pid
    from=$(($(wc -l <"$log") + 1))
    run_apt install --no-install-recommends "${PACKAGES[@]}" &
    pid=$!
    # A progress line per phase, read from this attempt's part of apt's log while it runs.
    while kill -0 "$pid" 2>/dev/null; do
        if [ -z "$shown" ] && tail -n +"$from" "$log" | grep -q '^Need to get'; then
            shown=get
            say "downloading $(tail -n +"$from" "$log" | grep -m1 '^Need to get' | sed 's/^Need to get //; s/ of archives.*//; s/\.$//')"
        elif [ "$shown" = get ] && tail -n +"$from" "$log" | grep -q '^Setting up'; then
            shown=setup; say "unpacking and configuring"
        fi
        sleep 1
    done
    wait "$pid"
}

say "missing: $missing_text; installing ${PACKAGES[*]} with apt-get (log: $log)"
started=$SECONDS
if ! apt_install; then
    say "install failed; refreshing the package lists (apt-get update) and retrying"
    if run_apt update; then
        apt_install
    else
        false
    fi
fi
status=$?
if [ "$status" -ne 0 ] || [ ! -x "$CHROMIUM" ] || [ ! -x "$CHROMEDRIVER" ]; then
    say "installing ${PACKAGES[*]} failed (apt-get exit $status) after $((SECONDS - started)) s; last lines of $log:"
    tail -n 15 "$log" | sed 's/^/    /'
    say "The browser tests skip without them (and fail when CI=true)."
    exit 0
fi
say "installed $("$CHROMIUM" --version 2>/dev/null | head -n1) and $("$CHROMEDRIVER" --version 2>/dev/null | cut -d' ' -f1-2) in $((SECONDS - started)) s"
rm -f "$log"
exit 0
