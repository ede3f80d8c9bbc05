"""Plots of a benchmark record, called by the harness in its plot venv.

    python plot.py RESULTS_DIR

Reads results.csv and latency.csv in RESULTS_DIR and writes there:
- throughput-<workload>.png: median rows/s by batch size, a line per server, one panel per stream count;
- latency-cdf.png: the lock-step round trip CDF, a line per server, one panel per batch size.
"""

import csv
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SERVERS = ["echo", "fletch-go", "fletch-python", "pyarrow", "arrow-udf", "databend"]
MATRIX = ["identity_int64", "identity_utf8", "add_int64", "upper", "plus_one"]


def color(server):
    return f"C{SERVERS.index(server) if server in SERVERS else len(SERVERS)}"


def throughput(rows, out):
    by = defaultdict(list)  # (workload, streams, server) -> [(batch_rows, rows_per_s)]
    for r in rows:
        if r["workload"] in MATRIX and r["status"] == "ok" and r["rows_per_s"]:
            key = (r["workload"], int(r["streams"]), r["server"])
            by[key].append((int(r["batch_rows"]), float(r["rows_per_s"])))
    for workload in MATRIX:
        streams = sorted({k[1] for k in by if k[0] == workload})
        if not streams:
            continue
        fig, axes = plt.subplots(
            1, len(streams), figsize=(5.5 * len(streams), 4.2), sharey=True, squeeze=False
        )
        for ax, n in zip(axes[0], streams, strict=True):
            for server in sorted({k[2] for k in by if k[:2] == (workload, n)}, key=SERVERS.index):
                pts = sorted(by[(workload, n, server)])
                xs, ys = [p[0] for p in pts], [p[1] for p in pts]
                ax.plot(xs, ys, marker="o", label=server, color=color(server))
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("rows per batch")
            ax.set_title(f"{workload}, {n} stream{'s' if n > 1 else ''}")
            ax.grid(True, which="both", alpha=0.3)
        axes[0][0].set_ylabel("rows/s (median)")
        axes[0][-1].legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(out / f"throughput-{workload}.png", dpi=110)
        plt.close(fig)


def latency(rows, out):
    by = defaultdict(list)  # (batch_rows, server) -> [(us, quantile)]
    for r in rows:
        by[(int(r["batch_rows"]), r["server"])].append((float(r["us"]), float(r["quantile"])))
    sizes = sorted({k[0] for k in by})
    if not sizes:
        return
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4.2), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        for server in sorted({k[1] for k in by if k[0] == size}, key=SERVERS.index):
            pts = sorted(by[(size, server)], key=lambda p: p[1])
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=server, color=color(server))
        ax.set_xscale("log")
        ax.set_xlabel("round trip per batch, µs")
        ax.set_title(f"lock-step, {size} row{'s' if size > 1 else ''} per batch")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("fraction of batches")
    axes[0][-1].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "latency-cdf.png", dpi=110)
    plt.close(fig)


def main():
    out = Path(sys.argv[1])
    with open(out / "results.csv", newline="") as f:
        throughput(list(csv.DictReader(f)), out)
    with open(out / "latency.csv", newline="") as f:
        latency(list(csv.DictReader(f)), out)


if __name__ == "__main__":
    main()
