#!/usr/bin/env python3
"""Writes the scaling scenario of issue 13 as JSON on stdout (docs/performance.md, "Scale").

    cmake/scale-scenario.py N [TOTAL_IOS]

N HVM guests, each with one null-model PV disk and one fio job of 4 KiB random reads at queue
depth 32 doing TOTAL_IOS / N I/Os (TOTAL_IOS defaults to 64000; the remainder goes to the first
guests, so the total is exact); 4 pCPUs; dom0 PV with 2 vCPUs. The scenario stops when every job
is done (the simulated-time limit is far away).
"""
import json
import sys


def scenario(n, total_ios):
    domains = [{"name": "dom0", "type": "pv", "vcpus": 2, "memory_mb": 1024}]
    workloads = []
    for i in range(n):
        name = f"guest{i + 1}"
        domains.append({
            "name": name,
            "type": "hvm",
            "vcpus": 1,
            "memory_mb": 512,
            "disks": [{"vdev": "xvda", "sectors": 16777216, "model": "null"}],
        })
        ios = total_ios // n + (1 if i < total_ios % n else 0)
        workloads.append({
            "type": "fio",
            "name": f"randread-{name}",
            "guest": name,
            "rw": "randread",
            "bs": 4096,
            "iodepth": 32,
            "number_ios": ios,
        })
    return {
        "name": f"scale-{n}",
        "description": f"{n} guests, each a null PV disk and fio randread 4k QD32; {total_ios} I/Os in all "
                       "(issue 13's scaling case, cmake/scale-scenario.py)",
        "platform": {"pcpus": 4, "cpu_mhz": 2100, "seed": 1},
        "domains": domains,
        "workloads": workloads,
        "stop": {"sim_time_ms": 1000000},
    }


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    n = int(sys.argv[1])
    total = int(sys.argv[2]) if len(sys.argv) == 3 else 64000
    if n < 1 or total < n:
        sys.exit("scale-scenario.py: need N >= 1 and TOTAL_IOS >= N")
    json.dump(scenario(n, total), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
