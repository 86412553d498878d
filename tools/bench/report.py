#!/usr/bin/python3
"""Formats the RESULT lines of rbm_bench and py_rbm_bench.py (read from a file or stdin)
into tools/bench_cpu.sh's table: throughput of each implementation per thread count and
PCD-k, rbm's ratios to scikit-learn and PyTorch, and rbm's step time against the time of
the same step's matrix products alone."""
import sys
from collections import defaultdict


def parse(lines):
    rows = []
    for line in lines:
        if not line.startswith("RESULT "):
            continue
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        rows.append(fields)
    return rows


def main():
    lines = open(sys.argv[1]).read().splitlines() if len(sys.argv) > 1 else sys.stdin.read().splitlines()
    rows = parse(lines)
    table = defaultdict(dict)  # (threads, k) -> name -> fields
    for r in rows:
        name = r["engine"]
        if name == "rbm":
            name = "rbm" if r.get("measure") == "1" else "rbm-bare"
        table[(int(r["threads"]), int(r["k"]))][name] = r

    def rate(cell, name):
        return float(cell[name]["ex_per_s"]) if name in cell else None

    def fmt(x, width=9):
        return f"{x:>{width},.0f}" if x is not None else f"{'-':>{width}}"

    def ratio(a, b):
        return f"{a / b:>6.2f}x" if a and b else f"{'-':>7}"

    print("examples/s (medians); 'rbm' = rbm's CPU engine as `rbm train` runs it (pseudo-likelihood and")
    print("reconstruction costs every step), 'rbm bare' = the same without the costs: the same work as")
    print("scikit-learn and the PyTorch loop, which compute none. Ratios: rbm bare / other (rbm / other).")
    print()
    head = (f"{'thr':>3} {'PCD':>4} {'rbm':>9} {'rbm bare':>9} {'sklearn':>9} {'torch':>9} "
            f"{'vs sklearn':>17} {'vs torch':>17}")
    print(head)
    print("-" * len(head))
    disturbed = []
    for (threads, k) in sorted(table):
        cell = table[(threads, k)]
        rbm, bare, sk, th = (rate(cell, n) for n in ("rbm", "rbm-bare", "sklearn", "torch"))
        print(f"{threads:>3} {k:>4} {fmt(rbm)} {fmt(bare)} {fmt(sk)} {fmt(th)} "
              f"{ratio(bare, sk)} ({ratio(rbm, sk).strip():>7}) {ratio(bare, th)} ({ratio(rbm, th).strip():>7})")
        if rbm and bare and rbm > bare:
            disturbed.append(f"{threads} thread(s) PCD-{k}")
    for row in disturbed:  # the costs only add work: other load slowed the bare timing
        print(f"warning: {row}: rbm bare slower than rbm with its costs, which does strictly more work;"
              " a disturbed timing: run again")
    print()
    print("rbm's step against its matrix products alone, timed in the same run on the same operands:")
    print("'products' = the step's sgemm calls as the engine makes them (blocks of columns, split over the")
    print("threads); 'as whole calls' = one OpenBLAS call per product, OpenBLAS threaded, for comparison.")
    print("Products are those of the step with every Gibbs product an sgemm call; once the chain's samples")
    print("are sparse the step sums W's rows at their ones instead, so step/products can fall below 1.")
    print("'all sgemm' = the same step with every product through sgemm, timed alternating with it.")
    head = (f"{'thr':>3} {'PCD':>4} {'costs':>5} {'step ms':>8} {'products ms':>12} {'as whole calls':>15} "
            f"{'step/products':>14} {'outside':>8} {'GFLOP/s':>8} {'all sgemm ms':>13} {'gain':>6}")
    print(head)
    print("-" * len(head))
    for (threads, k) in sorted(table):
        for name in ("rbm", "rbm-bare"):
            r = table[(threads, k)].get(name)
            if not r:
                continue
            step, gemm = float(r["step_ms"]), float(r["gemm_ms"])
            whole = float(r.get("whole_ms", "nan"))
            gflops = float(r["gflop"]) / (gemm * 1e-3) if "gflop" in r and gemm > 0 else float("nan")
            dense = float(r.get("dense_step_ms", "nan"))
            outside = f"{100 * float(r['outside']):.1f}%" if float(r["outside"]) >= 0 else "-"
            print(f"{threads:>3} {k:>4} {'yes' if name == 'rbm' else 'no':>5} {step:>8.3f} {gemm:>12.3f} {whole:>15.3f} "
                  f"{float(r['ratio']):>14.3f} {outside:>8} {gflops:>8.1f} {dense:>13.3f} "
                  f"{dense / step:>5.2f}x")


if __name__ == "__main__":
    main()
