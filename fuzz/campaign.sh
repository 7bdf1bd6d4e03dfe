#!/usr/bin/env bash
# Runs fuzz campaigns on stable Rust (no sanitizer) and prints one Markdown table row per
# target, for the table in README.md:
#
#   fuzz/campaign.sh RUNS TARGET...      e.g. fuzz/campaign.sh 10000000 token explain
#
# Each target starts from its committed seeds (corpus/TARGET, read only) with a scratch
# directory for what libFuzzer finds, and stops after RUNS executions. A crash fails the
# row and leaves the input under artifacts/TARGET: commit it to corpus/TARGET so the
# ordinary test suite replays it, then fix the code.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
[ $# -ge 2 ] || { echo "usage: $0 RUNS TARGET..." >&2; exit 2; }
runs=$1
shift
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- .. 2>/dev/null)" ]; then commit="$commit+changes"; fi
status=0
for target in "$@"; do
    scratch=$(mktemp -d)
    log=$(mktemp "${TMPDIR:-/tmp}/fuzz-$target.XXXXXX")
    t0=$(date +%s)
    if cargo fuzz run -s none "$target" "$scratch" "corpus/$target" -- \
        -runs="$runs" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 >"$log" 2>&1; then
        result="no crash"
    else
        result="FAILED: $log"
        status=1
    fi
    secs=$(($(date +%s) - t0))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    printf '| `%s` | %s | %s s | %s | `%s` | %s |\n' \
        "$target" "${execs:-?}" "$secs" "$(date -u +%Y-%m-%d)" "$commit" "$result"
    rm -rf "$scratch"
done
exit $status
