"""Turns bench/run.sh's raw wrk outputs into bench/results/<date>.md and a PNG chart.
Usage: report.py RAW_DIR OUT_PREFIX DURATION"""
import pathlib
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

raw, out, duration = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
NAMES = {
    "W0": "fixed response, authhost's HTTP stack (ceiling)",
    "W0B": "fixed response, plain hyper defaults (reference)",
    "W1": "check, valid token",
    "W2": "authorize, provider-backed service",
    "W3": "public-key",
    "W4": "check, no token",
    "W1M": "check, valid token, 1M users",
    "W2N": "authorize, permission-token cache off (plugin in a worker process)",
    "W2NI": "authorize, permission-token cache off, plugin in-process",
    "W2I": "authorize, provider-backed service, plugin in-process",
}


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def parse(path):
    text = path.read_text()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    rss = re.search(r"^rss_kb (\d+)", text, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": ms(p50.group(1)) if p50 else float("nan"),
        "p99": ms(p99.group(1)) if p99 else float("nan"),
        "rss_mb": int(rss.group(1)) / 1024 if rss else 0.0,
        "non2xx": int(errors.group(1)) if errors else 0,
    }


runs = {}
for f in raw.glob("*-*-*.txt"):
    label, system, conns = f.stem.split("-")
    runs[(label, system, int(conns))] = parse(f)
sign_1, verify_1, sign_all, verify_all, threads = (float(x) for x in (raw / "rsa.txt").read_text().split())
startup = (raw / "startup.txt").read_text().strip() if (raw / "startup.txt").exists() else "n/a"
conns_levels = sorted({c for (_, _, c) in runs})


def get(label, system, c):
    return runs.get((label, system, c))


def fmt_rps(r):
    return f"{r['rps']:,.0f}" if r else "–"


def fmt_ms(v):
    return f"{v:.2f}" if v == v else "–"


lines = [
    f"# authhost vs dgp-oauth2 1.3.4 — {out.name}",
    "",
    f"One machine, one run of `bench/run.sh`, wrk {duration}s per cell, everything on 127.0.0.1 "
    f"(wrk shares the {int(threads)} cores). Original: gunicorn, 5 sync workers, SQLite. authhost: "
    "release build, SQLite, sample provider plugin. 1k users unless noted. p50/p99 in ms, RSS in MB "
    "at the end of the cell (gunicorn: master + workers).",
    "",
    "## Ceilings",
    "",
    f"- RSA-2048 sign/s (aws-lc-rs): {sign_1:,.0f} on one core, {sign_all:,.0f} on {int(threads)} threads; "
    f"verify/s: {verify_1:,.0f} / {verify_all:,.0f}.",
    f"- Start-up to ready with the shipped plugins (median of 5): {startup} ms.",
    "",
    "## Throughput and latency",
    "",
    "| workload | conns | authhost req/s | p50 | p99 | RSS | original req/s | p50 | p99 | RSS | authhost/original | vs W0 |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]
SYSTEM = {"W0": "ceiling", "W0B": "bare"}
for label in ["W0", "W0B", "W1", "W2", "W2I", "W2N", "W2NI", "W3", "W4", "W1M"]:
    for c in conns_levels:
        a = get(label, SYSTEM.get(label, "authhost"), c)
        if not a:
            continue
        o = get(label, "original", c)
        w0 = get("W0", "ceiling", c)
        ratio = f"{a['rps'] / o['rps']:.1f}x" if o and o["rps"] else "–"
        vs_w0 = f"{a['rps'] / w0['rps']:.2f}" if w0 and w0["rps"] and label not in SYSTEM else "–"
        orow = [fmt_rps(o), fmt_ms(o["p50"]), fmt_ms(o["p99"]), f"{o['rss_mb']:.0f}"] if o else ["–"] * 4
        errs = f" ({a['non2xx']} non-2xx)" if a["non2xx"] else ""
        lines.append(
            f"| {label} {NAMES[label]} | {c} | {fmt_rps(a)}{errs} | {fmt_ms(a['p50'])} | {fmt_ms(a['p99'])} | "
            f"{a['rss_mb']:.0f} | " + " | ".join(orow) + f" | {ratio} | {vs_w0} |"
        )

# The targets, each with the numbers behind it.
def verdict(ok):
    return "met" if ok else "**not met**"


w1_64, o1_64, w0_64 = get("W1", "authhost", 64), get("W1", "original", 64), get("W0", "ceiling", 64)
w2_64 = get("W2", "authhost", 64)
def pair_ratios(folder, top, bottom):
    """a/b req/s of the back-to-back pairs `folder/top-i.txt` / `folder/bottom-i.txt`."""
    ratios = []
    for i in (1, 2, 3):
        pt, pb = raw / folder / f"{top}-{i}.txt", raw / folder / f"{bottom}-{i}.txt"
        if pt.exists() and pb.exists() and parse(pb)["rps"]:
            ratios.append(parse(pt)["rps"] / parse(pb)["rps"])
    return ratios


def median_of(ratios):
    return sorted(ratios)[len(ratios) // 2]


def listed(ratios):
    return ", ".join(f"{r:.2f}" for r in ratios)


targets = ["", "## Targets", ""]
if w1_64 and o1_64 and w0_64:
    r1, r0 = w1_64["rps"] / o1_64["rps"], w1_64["rps"] / w0_64["rps"]
    targets.append(f"- W1 ≥ 20× the original at 64 connections: {r1:.1f}× — {verdict(r1 >= 20)}")
    pairs = pair_ratios("pairs", "W1", "W0")
    if pairs:
        median = median_of(pairs)
        targets.append(
            f"- W1 ≥ 0.7× W0 at 64 connections: {median:.2f}× (median of {len(pairs)} back-to-back pairs: "
            + listed(pairs)
            + f"; the table's cells, minutes apart: {r0:.2f}) — {verdict(median >= 0.7)}"
        )
        r0 = median
    else:
        targets.append(f"- W1 ≥ 0.7× W0 at 64 connections: {r0:.2f}× — {verdict(r0 >= 0.7)}")
    w0b_64 = get("W0B", "bare", 64)
    if w0b_64:
        targets.append(
            f"  - against plain hyper with default settings (W0B, no header timeout, no connection cap): "
            f"{w1_64['rps'] / w0b_64['rps']:.2f}×; W0 itself is {w0_64['rps'] / w0b_64['rps']:.2f}× of W0B"
        )
    if r0 < 0.7:
        targets.append("  - measured cause and profile: docs/performance.md")
    targets.append(f"- W1 p99 ≤ 5 ms at 64 connections: {w1_64['p99']:.2f} ms — {verdict(w1_64['p99'] <= 5)}")
w2n_64 = get("W2N", "authhost", 64)
if w2n_64:
    r2 = w2n_64["rps"] / sign_all
    targets.append(
        f"- W2 with the cache off, plugin in a worker process (the default), ≥ 0.7× the RSA-sign ceiling "
        f"({sign_all:,.0f}/s) at 64 connections: {r2:.2f}× — {verdict(r2 >= 0.7)}"
    )
w2ni_64 = get("W2NI", "authhost", 64)
if w2ni_64:
    r2 = w2ni_64["rps"] / sign_all
    targets.append(
        f"- W2 with the cache off, plugin in-process, ≥ 0.8× the same ceiling: {r2:.2f}× — {verdict(r2 >= 0.8)}"
    )
if (raw / "plugin-call.txt").exists():
    in_us, proc_us = (float(x) for x in (raw / "plugin-call.txt").read_text().split())
    targets.append(
        f"- one plugin call, one caller: {in_us:.1f} µs in-process, {proc_us:.1f} µs in a worker process "
        f"(+{proc_us - in_us:.1f} µs per call for the isolation)"
    )
w2_pairs = pair_ratios("w2pairs", "W2", "W2I")
if w2_pairs:
    median = median_of(w2_pairs)
    targets.append(
        f"- W2 with the cache on at 64 connections, plugin in a worker process vs in-process (target: unchanged, "
        f"read as within 10%): {median:.2f}× (median of {len(w2_pairs)} back-to-back pairs: "
        + listed(w2_pairs)
        + f") — {verdict(median >= 0.9)}"
    )
# Issue 11's "W2 with the cache on and W1 unchanged", read literally: against the same figures
# before plugins ran in worker processes, each as a ratio to the HTTP ceiling W0 of its own run
# (runs on different days differ by ±30%; the ratio to the same run's ceiling does not drift
# with them). The committed runs before the isolation, all in-process, at 64 connections:
# bench/results/2026-11-27.md, 2026-11-28.md, 2026-11-30.md, 2026-11-30-after-crate-split.md.
BEFORE_ISOLATION = {"W2": (0.32, 0.27, 0.30, 0.35), "W1": (0.90, 0.78, 0.75, 0.83)}
w2i_64 = get("W2I", "authhost", 64)
if w0_64 and w2_64 and w1_64:
    w1_pairs = pair_ratios("pairs", "W1", "W0")
    for label, cell in (("W2", w2_64), ("W1", w1_64)):
        before = BEFORE_ISOLATION[label]
        now = cell["rps"] / w0_64["rps"]
        line = (
            f"- {label} at 64 connections vs W0 of the same run, plugins in worker processes, against "
            f"the same ratio before the isolation (in-process, single cells, {min(before):.2f}–{max(before):.2f}, "
            f"median {median_of(list(before)):.2f}): {now:.2f}"
        )
        if label == "W2" and w2i_64:
            line += f" (in-process today: {w2i_64['rps'] / w0_64['rps']:.2f})"
        if label == "W1" and w1_pairs:
            # W1 has back-to-back pairs against W0: steadier than two cells minutes apart.
            line += f" in the table's cells, {median_of(w1_pairs):.2f} in the back-to-back pairs"
            now = median_of(w1_pairs)  # the verdict follows the pairs, as the W1 ≥ 0.7× W0 target does
        targets.append(line + f" — {verdict(now >= 0.9 * median_of(list(before)))} (unchanged: within 10% of the median or above)")
for ex, au, what in (("W5", "W2", "cache on"), ("W5N", "W2N", "cache off")):
    ratios = pair_ratios("exchange", ex, au)
    if ratios:
        median = median_of(ratios)
        targets.append(
            f"- token exchange (POST token) vs authorize, {what}, 64 connections, within 10%: {median:.2f}× "
            f"(median of {len(ratios)} back-to-back pairs: " + listed(ratios)
            + f") — {verdict(median >= 0.9)}"
        )
login = pair_ratios("login", "W6", "W1")
if login:
    starts = [parse(raw / "login" / f"W6-{i}.txt")["rps"] for i in (1, 2, 3) if (raw / "login" / f"W6-{i}.txt").exists()]
    refused = sum(parse(raw / "login" / f"W6-{i}.txt")["non2xx"] for i in (1, 2, 3) if (raw / "login" / f"W6-{i}.txt").exists())
    targets.append(
        f"- login start (GET login/github, sealed cookie, nothing written) vs check with a valid token, 64 connections: "
        f"{median_of(login):.2f}× (median of {len(login)} back-to-back pairs: " + listed(login)
        + f"; login starts {', '.join(f'{r:,.0f}' for r in starts)} req/s, {refused} answered other than 2xx/3xx)"
    )
if w2_64:
    r2 = w2_64["rps"] / sign_all
    targets.append(f"- W2 with the cache on (default), same ceiling: {r2:.2f}× (higher is the point of the cache)")
for c in (1, 64):
    big, small = get("W1M", "authhost", c), get("W1", "authhost", c)
    if big and small:
        r = big["p50"] / small["p50"]
        targets.append(f"- W1 p50 with 1M users within 1.2× of 1k users (c={c}): {r:.2f}× — {verdict(r <= 1.2)}")
rss_cell = max(((r["rss_mb"], l, c) for (l, s, c), r in runs.items() if s == "authhost"), default=(0, "-", 0))
rss = rss_cell[0]
targets.append(
    f"- authhost RSS ≤ 64 MB under load: max {rss:.0f} MB (after {rss_cell[1]} at {rss_cell[2]} connections; RSS "
    f"does not shrink between cells) — {verdict(rss <= 64)}"
)
if startup != "n/a":
    targets.append(f"- start-up to ready ≤ 300 ms with the shipped plugins: {startup} ms — {verdict(int(startup) <= 300)}")
lines += targets

out.with_suffix(".md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))

# Chart: throughput and p99 per workload at the busiest common level, both systems.
c = 64 if 64 in conns_levels else conns_levels[-1]
labels = ["W1", "W2", "W3", "W4"]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
x = range(len(labels))
for i, (system, colour) in enumerate([("authhost", "#2a7ab0"), ("original", "#c0504d")]):
    rps = [(get(l, system, c) or {"rps": 0})["rps"] for l in labels]
    p99 = [(get(l, system, c) or {"p99": 0})["p99"] for l in labels]
    ax1.bar([v + i * 0.4 for v in x], rps, 0.4, label=system, color=colour)
    ax2.bar([v + i * 0.4 for v in x], p99, 0.4, label=system, color=colour)
w0 = get("W0", "ceiling", c)
if w0:
    ax1.axhline(w0["rps"], color="grey", linestyle="--", label="W0 ceiling")
ax1.axhline(sign_all, color="green", linestyle=":", label="RSA sign ceiling")
for ax, title in ((ax1, f"requests/s at {c} connections (log)"), (ax2, f"p99 latency, ms, at {c} connections (log)")):
    ax.set_xticks([v + 0.2 for v in x])
    ax.set_xticklabels([f"{l}\n{NAMES[l].split(',')[0]}" for l in labels], fontsize=8)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4)
fig.tight_layout()
fig.savefig(out.with_suffix(".png"), dpi=110)
