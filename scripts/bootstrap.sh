#!/usr/bin/env bash
# Installs and builds what Twin needs on a fresh Debian machine. Idempotent: each step is
# skipped when its result is already there. --quiet prints only what it does.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=0
[[ "${1:-}" == "--quiet" ]] && quiet=1
say() { echo "[bootstrap] $*" >&2; }

# Debian packages: the tracers, the simulator, the compiler, the C formatter, and the real
# targets of the examples.
PKGS=(bpftrace valgrind strace gcc make libc6-dev linux-libc-dev binutils clang-format memcached redis-server nginx-light apache2 postgresql-15 iproute2 python3)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages: ${missing[*]}; run this script as root (or install them) and try again"
    exit 2
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # The packaged servers must not start as system services: Twin starts its own instances.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# bpftrace reads tracepoints through tracefs.
if [[ ! -d /sys/kernel/tracing/events && $(id -u) -eq 0 ]]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || say "could not mount tracefs: profiling will say so"
fi

# Node packages, pinned by the lock file.
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "npm ci"
  npm ci --no-audit --no-fund --no-progress --loglevel=error >/dev/null
fi

# TypeScript.
if [[ ! -f dist/src/cli/index.js ]] || [[ -n "$(find src test bench tsconfig.json -newer dist/.built 2>/dev/null | head -1)" ]] || [[ ! -f dist/.built ]]; then
  ((quiet)) || say "compiling TypeScript"
  rm -rf dist
  npx tsc -p tsconfig.json
  touch dist/.built
fi

# C: the load generator, the clone runtime and the reuse tool (a Valgrind tool of Twin's own).
make -s -C loadgen >/dev/null
make -s -C runtime >/dev/null
make -s -C reuse >/dev/null
((quiet)) || say "ready"
