#!/usr/bin/env bash
# System packages the end-to-end tests drive: Debian's chromium + chromedriver (browser test) and
# PostgreSQL (the PostgreSQL-backed Dagster instance test). Installs only what is missing, and only
# where it can (root with apt-get); elsewhere it says what is missing and the tests that need it
# fail naming it (deselect them with PYTEST_ARGS='-m "not browser and not postgres"').
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "system-deps: missing ${missing[*]} (install them with apt-get as root);" \
        "the browser/postgres tests will fail until then" >&2
fi
