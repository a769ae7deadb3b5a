#!/usr/bin/env bash
# Sandbox spawn benchmark: installs bubblewrap if missing (needs root for
# apt-get), then runs benches/sandbox_spawn.rs in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
    else
        echo "bubblewrap is not installed and cannot be installed here; the comparison will be skipped" >&2
    fi
fi
exec cargo bench --bench sandbox_spawn "$@"
