#!/usr/bin/env bash
# The formatters' checks: prettier for the TypeScript, clang-format for the C of runtime/ and
# loadgen/. `--fix` rewrites the files instead. A missing formatter fails with what to do.
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
[[ "${1:-}" == "--fix" ]] && fix=1
command -v clang-format >/dev/null || { echo "lint: clang-format not found: run scripts/bootstrap.sh (as root)" >&2; exit 2; }
[[ -x node_modules/.bin/prettier ]] || { echo "lint: prettier not installed: run npm ci" >&2; exit 2; }
ts=(src bench test)
mapfile -t c < <(git ls-files 'runtime/*.c' 'runtime/*.h' 'loadgen/*.c' 'loadgen/*.h' 'reuse/*.c' 'test/*.c')
if ((fix)); then
  node_modules/.bin/prettier --log-level warn --write "${ts[@]/%//**/*.ts}"
  clang-format -i "${c[@]}"
else
  node_modules/.bin/prettier --log-level warn --check "${ts[@]/%//**/*.ts}" || { echo "lint: TypeScript not formatted: run bash scripts/lint.sh --fix" >&2; exit 1; }
  clang-format --dry-run --Werror "${c[@]}" || { echo "lint: C not formatted: run bash scripts/lint.sh --fix" >&2; exit 1; }
fi
