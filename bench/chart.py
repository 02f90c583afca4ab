#!/usr/bin/env python3
"""Draws an SVG bar chart from a results table that bench/run.sh wrote.

    python3 bench/chart.py bench/results/DATE.tsv docs/benchmark-throughput.svg
    python3 bench/chart.py bench/results/DATE-tune.tsv docs/benchmark-workers.svg

A full run gives the service's requests per second next to pgbench's
transactions per second for the SQL the service sends, at 16 and at 64
connections, with the targets' references; a --tune run gives requests per
second for each WORKERS value. Only the standard library is used.
"""

import csv
import sys
from html import escape

GO_PING_RPS = 45000  # the constant bench/run.sh compares GET /ping with

SERVICE = "#1f5f99"
PGBENCH = "#9cc3e4"
EXTRA = "#e0a030"


def read_results(path):
    with open(path, newline="") as file:
        return {row["id"]: row for row in csv.DictReader(file, delimiter="\t")}


def rps(results, run_id):
    row = results.get(run_id)
    return float(row["rps"]) if row and row["rps"] else None


def full_groups(results):
    """(label, [(series, value, colour)]) for each case and concurrency."""
    cases = [
        # label, service run, pgbench with the service's SQL, reference
        ("GET /ping", "ping", None, "go"),
        ("GET /, 0 rows", "get-0", "pg-read-0", None),
        ("GET /, 10k rows", "get-10k", "pg-read-10k", None),
        ("GET /, 1M rows", "get-1m", "pg-read-1m", None),
        ("POST /send, new values", "send-unique", "pg-send-new", "pg-upsert-unique"),
        ("POST /send, one value", "send-hot", "pg-send-hot", None),
    ]
    groups = []
    for connections in (16, 64):
        for label, service, pgbench, reference in cases:
            bars = [("service", rps(results, f"{service}-{connections}"), SERVICE)]
            if pgbench:
                bars.append(("pgbench", rps(results, f"{pgbench}-{connections}"), PGBENCH))
            if reference == "go":
                # The Go original was measured at 64 connections only.
                if connections == 64:
                    bars.append(("reference", float(GO_PING_RPS), EXTRA))
            elif reference:
                bars.append(("reference", rps(results, f"{reference}-{connections}"), EXTRA))
            groups.append((f"{label} · {connections} conn.", bars))
    return groups


def tune_groups(results):
    """(label, bars) for each request and WORKERS value, averaged over passes."""
    workers = sorted({int(run_id.split("-")[1]) for run_id in results if run_id.startswith("tune-")})
    groups = []
    for label, suffix, colour in (
        ("GET /, 16 conn.", "get-16", SERVICE),
        ("POST /send, 16 conn.", "send-16", EXTRA),
        ("GET /ping, 64 conn.", "ping-64", PGBENCH),
    ):
        for count in workers:
            values = [rps(results, f"tune-{count}-{p}-{suffix}") for p in (1, 2)]
            values = [v for v in values if v is not None]
            mean = sum(values) / len(values) if values else None
            groups.append((f"{label} · WORKERS={count}", [("req/s", mean, colour)]))
    return groups


def svg_bars(title, groups, legend):
    label_width, bar_area, bar_height, gap = 250, 520, 14, 10
    top = 56
    height = top + sum(len(bars) * bar_height + gap for _, bars in groups) + 30
    width = label_width + bar_area + 90
    peak = max(value for _, bars in groups for _, value, _ in bars if value) or 1
    scale = bar_area / peak

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    x = 10
    for name, colour in legend:
        out.append(f'<rect x="{x}" y="32" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{x + 16}" y="42">{escape(name)}</text>')
        x += 24 + 7 * len(name)

    y = top
    for label, bars in groups:
        middle = y + len(bars) * bar_height / 2 + 4
        out.append(f'<text x="{label_width - 8}" y="{middle:.0f}" text-anchor="end">{escape(label)}</text>')
        for _, value, colour in bars:
            length = (value or 0) * scale
            out.append(
                f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height - 2}" fill="{colour}"/>'
            )
            text = "n/a" if value is None else f"{value:,.0f}"
            out.append(f'<text x="{label_width + length + 4:.1f}" y="{y + bar_height - 4}">{text}</text>')
            y += bar_height
        y += gap
    out.append(f'<line x1="{label_width}" y1="{top - 4}" x2="{label_width}" y2="{y}" stroke="#444"/>')
    out.append(
        f'<text x="{label_width}" y="{y + 16}" fill="#444">0</text>'
        f'<text x="{label_width + bar_area}" y="{y + 16}" fill="#444" text-anchor="middle">'
        f"{peak:,.0f} per second</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, target = sys.argv[1:]
    results = read_results(source)
    if any(run_id.startswith("tune-") for run_id in results):
        svg = svg_bars(
            "ping-roach: requests per second by WORKERS (pool = WORKERS), mean of two passes",
            tune_groups(results),
            [("GET /", SERVICE), ("POST /send, new values", EXTRA), ("GET /ping", PGBENCH)],
        )
    else:
        svg = svg_bars(
            "ping-roach on PostgreSQL: service req/s and pgbench tps for the same SQL",
            full_groups(results),
            [
                ("service (wrk)", SERVICE),
                ("pgbench, the service's SQL", PGBENCH),
                ("target: Go original (ping), insert only (POST)", EXTRA),
            ],
        )
    with open(target, "w") as file:
        file.write(svg)


if __name__ == "__main__":
    main()
