#!/usr/bin/env bash
# Make .env name this checkout's Dagster instance (DAGSTER_HOME=<dir>), leaving every other line
# as it is; the file is not written at all when it already says so.
set -euo pipefail
home="$1"
line="DAGSTER_HOME=${home}"
if [[ -f .env ]] && grep -qxF "${line}" .env; then
  exit 0
fi
tmp="$(mktemp .env.XXXXXX)"
if [[ -f .env ]]; then
  grep -v '^DAGSTER_HOME=' .env > "${tmp}" || true
fi
echo "${line}" >> "${tmp}"
if [[ -f .env ]]; then chmod --reference=.env "${tmp}"; fi
mv "${tmp}" .env
