#!/usr/bin/env bash
# Set-up, build and run for people and CI (README quick start, .ci/run).
#   cmake/xensim-dev.sh run        install what is missing, build, run the default scenario
#   cmake/xensim-dev.sh test       install what is missing, build, run every test (ctest)
#   cmake/xensim-dev.sh asan-test  the same under AddressSanitizer + UndefinedBehaviorSanitizer, built with
#                                  clang in build-asan (float-cast-overflow included, see CMakeLists.txt)
#   cmake/xensim-dev.sh bench      build in Release and run the benchmarks
#   cmake/xensim-dev.sh fuzz       install clang + libFuzzer if missing, build the fuzz target in
#                                  build-fuzz and run it for XENSIM_FUZZ_SECONDS (default 60)
#   cmake/xensim-dev.sh callgrind  build in Release and print callgrind instructions per request on the
#                                  IDE DMA, PV block and 64-byte UDP_STREAM paths (docs/performance.md)
#   cmake/xensim-dev.sh same-reports BASE_BINARY
#                                  run every shipped scenario with BASE_BINARY and ./build/xensim and
#                                  say per scenario whether the reports (host section removed) are the same
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian 12 packages the build needs; only the missing ones are installed (idempotent).
PACKAGES=(cmake make g++ pkg-config libsystemc-dev libxen-dev nlohmann-json3-dev libboost-dev
          libgtest-dev libbenchmark-dev xenstore-utils)
# The asan-test and fuzz phases: clang 14 and its runtime libraries (libclang_rt.fuzzer, asan, ubsan).
CLANG_PACKAGES=(clang libclang-rt-14-dev)

install_missing() {  # install_missing [PACKAGE...] (default: PACKAGES)
    local want=("$@") missing=()
    [ $# -eq 0 ] && want=("${PACKAGES[@]}")
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "xensim: installing ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

build() {  # build DIR [cmake args...]
    local dir=$1
    shift
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

# callgrind_per_request NAME BIG SMALL SCENARIO COUNT_KEY [--set ...]: the instructions of a run with
# BIG requests minus those of a run with SMALL, divided by BIG - SMALL, so that boot and teardown cancel.
callgrind_per_request() {
    local name=$1 big=$2 small=$3 scenario=$4 key=$5
    shift 5
    local out n ir=()
    out=$(mktemp -d)
    for n in "$big" "$small"; do
        valgrind --tool=callgrind --callgrind-out-file="$out/cg.$n" ./build-release/xensim bench "$scenario" \
            "$@" --set "$key=$n" --set stop.sim_time_ms=100000 >/dev/null 2>"$out/log.$n"
        ir+=("$(sed -n 's/^summary: *//p' "$out/cg.$n")")
    done
    awk -v name="$name" -v big="$big" -v small="$small" -v a="${ir[0]}" -v b="${ir[1]}" 'BEGIN {
        printf "%-26s %12.0f instructions per request  (%d requests: %.0f, %d: %.0f)\n",
               name, (a - b) / (big - small), big, a, small, b }'
    rm -rf "$out"
}

cmd=${1:-}
case "$cmd" in
run)
    install_missing
    build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    ./build/xensim run scenarios/evtchn-pingpong.json --out xensim-out
    ;;
test)
    install_missing
    build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    ctest --test-dir build --output-on-failure -j "$(nproc)"
    ;;
asan-test)
    install_missing
    install_missing "${CLANG_PACKAGES[@]}"
    # clang, named on the command line so that a build-asan configured earlier with g++ is reconfigured.
    build build-asan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DXENSIM_SANITIZE=ON \
        -DXENSIM_BUILD_BENCHMARKS=OFF
    # LeakSanitizer does not scan thread stacks (use_stacks=0): SystemC runs processes on coroutine
    # stacks that the main thread switches between, and LSan's scan of the main thread's stack then
    # takes a coroutine's range for it and faults ("Tracer caught signal 11", reproducible in about
    # half the model tests). Leaks are still found in the heap and globals.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=use_stacks=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-asan --output-on-failure -j "$(nproc)"
    ;;
bench)
    install_missing
    build build-release -DCMAKE_BUILD_TYPE=Release
    ./build-release/tests/xensim_benchmarks
    ./build-release/xensim bench scenarios/evtchn-pingpong.json --set workloads.0.round_trips=200000 --set stop.sim_time_ms=100000
    # PV block: 4 KiB random reads at QD32 on a null disk (docs/performance.md).
    ./build-release/xensim bench scenarios/blk-randread-4k-qd32.json --set 'domains.1.disks.0.model="null"' \
        --set domains.1.disks.0.sectors=16777216 --set workloads.0.number_ios=1000000 --set stop.sim_time_ms=100000
    # PV network: 64-byte UDP_STREAM packets from a guest to the wire (docs/performance.md).
    ./build-release/xensim bench scenarios/net-udp-stream-64.json --set workloads.0.number=1000000 \
        --set stop.sim_time_ms=100000
    ;;
fuzz)
    install_missing
    install_missing "${CLANG_PACKAGES[@]}"
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXENSIM_FUZZ=ON \
        -DXENSIM_BUILD_BENCHMARKS=OFF >/dev/null
    cmake --build build-fuzz -j "$(nproc)" --target xenstore_fuzz
    # New inputs go to a scratch corpus; the checked-in seeds stay as they are. A crash exits non-zero
    # and leaves crash-* in build-fuzz/.
    mkdir -p build-fuzz/corpus-xenstore
    (cd build-fuzz && ./tests/xenstore_fuzz -max_total_time="${XENSIM_FUZZ_SECONDS:-60}" -print_final_stats=1 \
        corpus-xenstore ../tests/fuzz/corpus)
    ;;
callgrind)
    install_missing
    install_missing valgrind
    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build-release -j "$(nproc)" --target xensim  # only the simulator is measured
    echo "callgrind instructions per request = (Ir of N requests - Ir of a small run) / (N - small):"
    echo "boot and teardown cancel; the figure is stable across runs, unlike wall time."
    # Emulated IDE DMA 4 KiB random reads, QD1, null disk (docs/performance.md, issue 5).
    callgrind_per_request "IDE DMA 4K" 5000 500 scenarios/ide-vs-pv-4k-randread.json workloads.0.number_ios \
        --set 'domains.1.disks.0.model="null"'
    # PV block 4 KiB random reads at QD32, null disk (issue 4).
    callgrind_per_request "PV block 4K QD32 null" 50000 5000 scenarios/blk-randread-4k-qd32.json \
        workloads.0.number_ios --set 'domains.1.disks.0.model="null"' --set domains.1.disks.0.sectors=16777216
    # PV network: 64-byte UDP_STREAM packets, guest to wire (issue 12).
    callgrind_per_request "PV net UDP_STREAM 64" 50000 5000 scenarios/net-udp-stream-64.json workloads.0.number
    ;;
same-reports)
    base=${2:?usage: $0 same-reports BASE_BINARY}
    out=$(mktemp -d)
    for s in scenarios/*.json; do
        n=$(basename "$s" .json)
        "$base" run "$s" --out "$out/a/$n" >/dev/null 2>&1 || true
        ./build/xensim run "$s" --out "$out/b/$n" >/dev/null 2>&1 || true
        python3 - "$n" "$out/a/$n" "$out/b/$n" <<'PY'
import json, sys
name, a, b = sys.argv[1:4]
def load(d):
    r = json.load(open(d + '/report.json'))
    r.pop('host', None)
    r['scenario'].pop('file', None)
    return r, json.load(open(d + '/stats.json'))
try:
    same = load(a) == load(b)
except (OSError, ValueError) as e:
    same = False
print(name, 'same' if same else 'DIFFERENT')
PY
    done | tee "$out/result"
    status=0
    grep -q DIFFERENT "$out/result" && status=1
    rm -rf "$out"
    exit "$status"
    ;;
*)
    echo "usage: $0 run|test|asan-test|bench|fuzz|callgrind|same-reports BASE_BINARY" >&2
    exit 2
    ;;
esac
