# Install (if needed) and set the project's environment, in one: `source scripts/setup.sh`.
# The same as `bash scripts/install.sh && source scripts/env.sh`: it changes no shell option.
# Extra arguments go to install.sh (--deploy: also the deployment test tools).
if bash "$(dirname "${BASH_SOURCE[0]:-$0}")/install.sh" "$@"; then
    . "$(dirname "${BASH_SOURCE[0]:-$0}")/env.sh"
else
    echo "setup.sh: error: the install failed (see above); the environment is unchanged" >&2
    return 1 2>/dev/null || exit 1
fi
