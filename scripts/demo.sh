#!/usr/bin/env bash
# npm run demo: installs and builds what is missing, then clones Debian's memcached with its
# example workload and prints original and clone side by side. Output: out/memcached/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --quiet
exec node dist/src/cli/index.js clone --workload examples/memcached/workload.yaml --out out/memcached "$@"
