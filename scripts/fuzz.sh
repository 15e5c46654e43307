#!/usr/bin/env bash
# Bounded coverage-guided fuzzing of nats-mini's protocol parsers (client and route) and
# CONNECT/subject handling.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 60 s for each of: parser connect route
#
# Runs on the stable toolchain and needs only rustup's stable Rust, a C++ compiler (g++) and
# crates.io: libfuzzer-sys builds libFuzzer from source with the cc crate, and the
# SanitizerCoverage instrumentation comes from stable `-C` options — the very flags that
# `cargo fuzz build --sanitizer none` passes, so `cargo fuzz run --sanitizer none parser`
# (cargo-fuzz is optional) shares this build.
#
# Each target runs for SECONDS with an RSS limit and a per-allocation limit (an unbounded
# allocation is a failure, even one whose pages are never touched), a maximum input length, the checked-in seeds (fuzz/seeds/<target>) and a temporary working
# corpus (set FUZZ_CORPUS_KEEP=1 to keep it in fuzz/corpus/<target> instead). Crashes land in
# fuzz/artifacts/<target>/ with the log; the script prints the input in hex and exits 1.
# Reproduce one with: fuzz/target/<host>/release/<target> <crash-file>
#
# Cost on a 2-core machine: the instrumented build takes about 1-1.5 min from scratch (less
# when only the broker changed), then SECONDS per target.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$REPO/fuzz"
SECS="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(parser connect route)
RSS_LIMIT_MB="${FUZZ_RSS_LIMIT_MB:-512}"
# One allocation larger than this is a failure too (see fuzz/fuzz_targets/alloc_limit.rs): the
# targets use max_payload <= 1 MiB, so nothing legitimate comes near it.
MALLOC_LIMIT_MB="${FUZZ_MALLOC_LIMIT_MB:-64}"

case "$SECS" in
    '' | *[!0-9]* | 0) echo "usage: $0 [SECONDS>0] [TARGET...]" >&2; exit 2 ;;
esac

max_len() {
    case "$1" in
        parser) echo 4096 ;;
        connect) echo 1024 ;;
        route) echo 4096 ;;
        *) echo "fuzz: unknown target '$1' (known: parser connect route)" >&2; exit 2 ;;
    esac
}
for t in "${TARGETS[@]}"; do max_len "$t" >/dev/null; done

command -v cargo >/dev/null || { echo "fuzz: cargo not found (install rustup stable)" >&2; exit 2; }
command -v c++ >/dev/null || command -v g++ >/dev/null || command -v clang++ >/dev/null ||
    { echo "fuzz: a C++ compiler is needed to build libFuzzer (apt-get install g++)" >&2; exit 2; }

HOST="$(rustc -vV | sed -n 's/^host: //p')"
# The instrumentation `cargo fuzz --sanitizer none` uses, all stable rustc options. `--target`
# keeps it off build scripts and proc-macros (serde_derive), which run inside the compiler.
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
-Cllvm-args=-sanitizer-coverage-stack-depth \
-Cdebug-assertions \
-Ccodegen-units=1"
unset CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
export CARGO_TARGET_DIR="$FUZZ/target"
# A panic's backtrace goes to the log (the fuzz binaries are built with line tables).
export RUST_BACKTRACE=1

echo "fuzz: building ${TARGETS[*]} (instrumented, $HOST, target dir fuzz/target)"
t0=$SECONDS
bins=()
for t in "${TARGETS[@]}"; do bins+=(--bin "$t"); done
cargo build --release --manifest-path "$FUZZ/Cargo.toml" --target "$HOST" "${bins[@]}"
echo "fuzz: build took $((SECONDS - t0)) s"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

failed=0
summaries=()
for t in "${TARGETS[@]}"; do
    bin="$CARGO_TARGET_DIR/$HOST/release/$t"
    art="$FUZZ/artifacts/$t"
    rm -rf "$art"
    mkdir -p "$art"
    if [ "${FUZZ_CORPUS_KEEP:-0}" = 1 ]; then
        corpus="$FUZZ/corpus/$t"
    else
        corpus="$WORK/corpus-$t"
    fi
    mkdir -p "$corpus"
    log="$art/fuzz.log"
    dict=()
    [ -f "$FUZZ/$t.dict" ] && dict=(-dict="$FUZZ/$t.dict")
    echo "fuzz: running $t for ${SECS} s (max_len $(max_len "$t"), rss limit ${RSS_LIMIT_MB} MB, malloc limit ${MALLOC_LIMIT_MB} MB)"
    rc=0
    # The first corpus directory receives new inputs; the seeds are only read.
    "$bin" -max_total_time="$SECS" -rss_limit_mb="$RSS_LIMIT_MB" \
        -malloc_limit_mb="$MALLOC_LIMIT_MB" -max_len="$(max_len "$t")" \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" \
        "$corpus" "$FUZZ/seeds/$t" >"$log" 2>&1 || rc=$?

    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)"
    last="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
    corp="$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")"
    if [ -z "$execs" ]; then
        execs="$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")"
    fi

    crashes=("$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*)
    found=()
    for c in "${crashes[@]}"; do [ -e "$c" ] && found+=("$c"); done
    if [ "$rc" -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
        failed=1
        status="FAILED (exit $rc)"
        {
            echo "fuzz: $t FAILED (exit $rc); full log: $log"
            grep -E -A6 'panicked at' "$log" | head -24 || true
            grep -E '^==[0-9]+== ERROR|^SUMMARY' "$log" || true
            echo "fuzz: backtrace frames in this repository:"
            grep -E -B1 "^ +at (\./)?(fuzz|broker)/|^ +at $REPO/" "$log" | grep -v -E '^--$' | head -30 || true
        } >&2
        for c in "${found[@]}"; do
            echo "fuzz: $t input $c ($(wc -c <"$c") bytes), hex:" >&2
            { od -An -v -tx1 "$c" | tr -d ' \n' | head -c 8192 || true; } >&2
            echo >&2
            echo "fuzz: reproduce with: $bin $c" >&2
        done
    else
        status="ok"
    fi
    summaries+=("fuzz: $t $status: ${execs:-?} execs (${rate:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?} inputs, peak rss ${rss:-?} MB, limit ${SECS} s")
done

printf '%s\n' "${summaries[@]}"
exit "$failed"
