#!/usr/bin/env bash
# Set-up, build and run for people and CI (README quick start, .ci/run).
#   cmake/xensim-dev.sh run        install what is missing, build, run the default scenario
#   cmake/xensim-dev.sh test       install what is missing, build, run every test (ctest)
#   cmake/xensim-dev.sh asan-test  the same under AddressSanitizer + UndefinedBehaviorSanitizer, built with
#                                  clang in build-asan (float-cast-overflow included, see CMakeLists.txt)
#   cmake/xensim-dev.sh bench      build in Release and run the benchmarks
#   cmake/xensim-dev.sh bench-scale [N...]  build in Release and run the scaling scenario (N guests, 64000
#                                  4 KiB QD32 reads in all; default N = 1 4 16 63 256): requests per host
#                                  second and peak RSS (cmake/scale-scenario.py, docs/performance.md)
#   cmake/xensim-dev.sh same-reports BASE_BINARY  every shipped scenario's report.json and stats.json from
#                                  BASE_BINARY and build/xensim, compared without the host section (and
#                                  the scaling scenario with 5 and 63 guests)
#   cmake/xensim-dev.sh fuzz       install clang + libFuzzer if missing, build the fuzz target in
#                                  build-fuzz and run it for XENSIM_FUZZ_SECONDS (default 60)
#   cmake/xensim-dev.sh callgrind  build in Release and print callgrind instructions per request on the
#                                  IDE DMA, PV block and 64-byte UDP_STREAM paths (docs/performance.md)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian 12 packages the build needs; only the missing ones are installed (idempotent).
PACKAGES=(cmake make g++ pkg-config libsystemc-dev libxen-dev nlohmann-json3-dev libboost-dev
          libgtest-dev libbenchmark-dev xenstore-utils libboost-context-dev parallel)
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
    cmake --build "$dir" -j "$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
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
bench-scale)
    shift
    install_missing
    BUILD_TARGET=xensim build build-release -DCMAKE_BUILD_TYPE=Release
    out=build-release/scale
    mkdir -p "$out"
    echo "guests requests wall_s requests_per_host_s peak_rss_mib"
    for n in "${@:-1 4 16 63 256}"; do
        for k in $n; do
            python3 cmake/scale-scenario.py "$k" "${XENSIM_SCALE_IOS:-64000}" >"$out/scale-$k.json"
            /usr/bin/time -f %M -o "$out/scale-$k.rss" ./build-release/xensim run "$out/scale-$k.json" \
                --out "$out/scale-$k" >/dev/null
            python3 - "$k" "$out/scale-$k/report.json" "$out/scale-$k.rss" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
ops, wall = sum(w["ops"] for w in r["workloads"]), r["host"]["wall_seconds"]
rss = int(open(sys.argv[3]).read().split()[-1]) / 1024
print(sys.argv[1], ops, round(wall, 3), int(ops / wall), round(rss, 1))
PY
        done
    done
    ;;
same-reports)
    base=${2:?usage: $0 same-reports BASE_BINARY}
    a=$(mktemp -d) b=$(mktemp -d) status=0
    # The shipped scenarios and the scaling case with a few guests and with many.
    python3 cmake/scale-scenario.py 5 2000 >"$a/scale-5.json"
    python3 cmake/scale-scenario.py 63 6300 >"$a/scale-63.json"
    for s in scenarios/*.json "$a/scale-5.json" "$a/scale-63.json"; do
        n=$(basename "$s" .json)
        "$base" run "$s" --out "$a/$n" >/dev/null 2>&1 || true
        ./build/xensim run "$s" --out "$b/$n" >/dev/null 2>&1 || true
        python3 - "$n" "$a/$n" "$b/$n" <<'PY' || status=1
import json, sys
def load(d, f):
    try:
        r = json.load(open(f"{d}/{f}"))
    except OSError:
        return None
    if f == "report.json":
        r.pop("host", None)
        r["scenario"].pop("file", None)
    return r
diff = [f for f in ("report.json", "stats.json") if load(sys.argv[2], f) != load(sys.argv[3], f)]
print(sys.argv[1], "DIFFERENT: " + " ".join(diff) if diff else "same")
sys.exit(1 if diff else 0)
PY
    done
    rm -rf "$a" "$b"
    exit $status
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
*)
    echo "usage: $0 run|test|asan-test|bench|bench-scale|same-reports BASE_BINARY|fuzz|callgrind" >&2
    exit 2
    ;;
esac
