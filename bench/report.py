#!/usr/bin/env python3
"""The benchmark report: reads the results files meshbench writes with `--json` and makes SVG plots
and a Markdown summary of them.

    bench/report.py RESULTS_DIR OUT_DIR

RESULTS_DIR holds one JSON file per benchmark (`meshbench <benchmark> --json FILE`); `bench/run --report
OUT_DIR` runs every benchmark into a fresh results directory and then this. OUT_DIR gets README.md
(the summary, linking the plots), one SVG per plot, report.json (every metric with its goal and
whether it was met) and data/ (a copy of the results files the report was made from).

Every number shown is read from the results files: the medians, ratios and samples are what the
benchmark measured, and a goal is the operator and limit the benchmark wrote next to its metric.
Whether a goal is met is decided here. Python's standard library only: the SVG is written by hand.
"""

import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from xml.sax.saxutils import escape

# The order of the report; a benchmark missing from the results is listed as not run.
ORDER = ["converge", "vip", "overlay", "dns", "nft-load", "ipvs-load", "neigh-fdb", "apply", "agent", "scale", "gossip", "taskstart", "failover", "manager", "esp"]
TITLES = {
    "converge": "Cluster convergence (3 meshd daemons)",
    "vip": "Service VIP throughput vs direct vs haproxy",
    "overlay": "Overlay (VXLAN) throughput vs the underlay",
    "dns": "Embedded DNS vs dnsmasq",
    "nft-load": "nftables cold load vs nft -f",
    "ipvs-load": "IPVS load vs ipvsadm -R",
    "neigh-fdb": "Neighbours and FDB entries vs iproute2",
    "apply": "Reconciler apply latency",
    "agent": "Agent gossip path to the kernel",
    "scale": "10,000 services x 10 backends on one node: cold start, added backend, VIP latency",
    "gossip": "Gossip dissemination, detection, bandwidth",
    "taskstart": "Task start to listening: runc container vs host process",
    "failover": "Manager failover on etcd: meshd leader vs etcd leader SIGKILL",
    "manager": "Manager cost as the store grows: service create latency and idle CPU, SQLite and etcd",
    "esp": "Encrypted (ESP) vs plain overlay, and a key rotation under load (VM lane)",
}
OPS = {
    "<=": lambda v, l: v <= l,
    "<": lambda v, l: v < l,
    ">=": lambda v, l: v >= l,
    ">": lambda v, l: v > l,
    "==": lambda v, l: v == l,
}
OP_TEXT = {"<=": "≤", "<": "<", ">=": "≥", ">": ">", "==": "="}
MESHD = "#2b6cb0"
OTHERS = ["#dd6b20", "#718096", "#38a169"]


def attr(s):
    """Text for a double-quoted XML attribute."""
    return escape(s, {'"': "&quot;"})


class ReportError(Exception):
    pass


def load(results_dir):
    """{benchmark: results} from every *.json in the directory that names its benchmark."""
    out = {}
    names = sorted(f for f in os.listdir(results_dir) if f.endswith(".json"))
    for name in names:
        path = os.path.join(results_dir, name)
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ReportError(f"{path}: not JSON ({e})")
        bench = data.get("benchmark") if isinstance(data, dict) else None
        if not bench:
            raise ReportError(f"{path}: no \"benchmark\" key (written by an older meshbench?)")
        if bench in out:
            raise ReportError(f"{path}: a second results file for {bench}")
        if not isinstance(data.get("metrics"), list):
            raise ReportError(f"{path}: no \"metrics\" list")
        data["_file"] = name
        out[bench] = data
    if not out:
        raise ReportError(f"{results_dir}: no results files (*.json)")
    return out


def judge(metric):
    """True/False when the metric has a goal and a value, else None."""
    op, limit, value = metric.get("goal"), metric.get("limit"), metric.get("value")
    if op is None or limit is None or value is None:
        return None
    if op not in OPS:
        raise ReportError(f"metric {metric.get('name')!r}: unknown goal operator {op!r}")
    return OPS[op](value, limit)


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    a = abs(v)
    if unit == "" and v == int(v):  # a count
        return f"{int(v):,}"
    if a >= 1000:
        s = f"{v:,.0f}"
    elif a >= 100:
        s = f"{v:.0f}"
    elif a >= 10:
        s = f"{v:.1f}"
    elif a >= 1 or a == 0:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3f}"
    if unit == "×":
        return s + "×"
    return f"{s} {unit}".strip()


def goal_text(m):
    if m.get("goal") is None:
        return ""
    unit = m.get("unit", "")
    return f"{OP_TEXT.get(m['goal'], m['goal'])} {m['limit']:g}" + ("×" if unit == "×" else f" {unit}".rstrip())


def met_text(ok):
    return {True: "✅ met", False: "❌ missed", None: ""}[ok]


def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return None
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


# --- SVG -------------------------------------------------------------------------------------------

W, H = 680, 380
ML, MR, MT, MB = 78, 24, 48, 64


def nice_ticks(hi, count=5):
    """0 … a round number at or above hi, in round steps."""
    if hi <= 0 or not math.isfinite(hi):
        hi = 1
    raw = hi / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    top = math.ceil(hi / step - 1e-9) * step
    n = int(round(top / step))
    return [i * step for i in range(n + 1)]


def tick_label(v):
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


class SVG:
    def __init__(self, title, subtitle=""):
        self.parts = []
        self.title = title
        self.subtitle = subtitle

    def add(self, s):
        self.parts.append(s)

    def text(self, x, y, s, size=12, anchor="start", weight="normal", fill="#1a202c", rotate=None, cls=None):
        t = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
        c = f' class="{cls}"' if cls else ""
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'fill="{fill}"{t}{c}>{escape(s)}</text>'
        )

    def render(self):
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
            'font-family="Helvetica, Arial, sans-serif">'
        )
        body = [f'<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>']
        body.append(f'<text x="{W / 2}" y="20" font-size="15" text-anchor="middle" font-weight="bold">{escape(self.title)}</text>')
        if self.subtitle:
            body.append(f'<text x="{W / 2}" y="37" font-size="11" text-anchor="middle" fill="#4a5568">{escape(self.subtitle)}</text>')
        return head + "\n" + "\n".join(body + self.parts) + "\n</svg>\n"


def y_axis(svg, ticks, label, fmt_tick=tick_label):
    top = ticks[-1]
    for t in ticks:
        y = MT + (H - MT - MB) * (1 - t / top)
        svg.add(f'<line x1="{ML}" y1="{y:.1f}" x2="{W - MR}" y2="{y:.1f}" stroke="#e2e8f0"/>')
        svg.text(ML - 6, y + 4, fmt_tick(t), size=11, anchor="end")
    svg.add(f'<line x1="{ML}" y1="{MT}" x2="{ML}" y2="{H - MB}" stroke="#4a5568"/>')
    svg.add(f'<line x1="{ML}" y1="{H - MB}" x2="{W - MR}" y2="{H - MB}" stroke="#4a5568"/>')
    svg.text(18, MT + (H - MT - MB) / 2, label, size=12, anchor="middle", rotate=-90)


def bar_chart(title, subtitle, ylabel, groups, series, unit, note=""):
    """groups: [(group label, {series name: (median, [samples])})]; series: [(name, colour)].
    A bar is the median the benchmark reported; a dot is one round."""
    svg = SVG(title, subtitle)
    hi = 0
    for _, values in groups:
        for med, samples in values.values():
            hi = max([hi, med or 0] + [s for s in samples if s is not None])
    ticks = nice_ticks(hi * 1.12)
    top = ticks[-1]
    y_axis(svg, ticks, ylabel)
    plot_w = W - ML - MR
    gw = plot_w / len(groups)
    bw = min(70, gw * 0.8 / len(series))
    scale = (H - MT - MB) / top
    for gi, (glabel, values) in enumerate(groups):
        gx = ML + gi * gw + (gw - bw * len(series)) / 2
        for si, (name, colour) in enumerate(series):
            if name not in values:
                continue
            med, samples = values[name]
            x = gx + si * bw
            if med is not None:
                h = med * scale
                svg.add(
                    f'<rect class="bar" data-group="{attr(glabel)}" data-series="{attr(name)}" data-value="{med!r}" '
                    f'x="{x + 3:.1f}" y="{H - MB - h:.1f}" width="{bw - 6:.1f}" height="{h:.1f}" fill="{colour}" opacity="0.85"/>'
                )
                # The median inside the bar's top, clear of the dots (above it when the bar is too short).
                inside = h > 22
                svg.text(
                    x + bw / 2, H - MB - h + (15 if inside else -5), fmt(med), size=10, anchor="middle",
                    weight="bold", fill="#ffffff" if inside else "#1a202c")
            for k, s in enumerate(samples):
                if s is None:
                    continue
                jitter = (k - (len(samples) - 1) / 2) * min(4, (bw - 16) / max(1, len(samples)))
                svg.add(
                    f'<circle class="sample" data-group="{attr(glabel)}" data-series="{attr(name)}" data-value="{s!r}" '
                    f'cx="{x + bw / 2 + jitter:.1f}" '
                    f'cy="{H - MB - s * scale:.1f}" r="2.6" fill="#1a202c" opacity="0.75"/>'
                )
            svg.text(x + bw / 2, H - MB + 15, name, size=11, anchor="middle")
        if len(groups) > 1 or glabel:
            svg.text(ML + gi * gw + gw / 2, H - MB + 34, glabel, size=12, anchor="middle", weight="bold")
    svg.text(W - MR, H - 8, f"bars: median ({unit}); dots: each round", size=10, anchor="end", fill="#4a5568")
    if note:
        svg.text(ML, H - 8, note, size=11, weight="bold")
    return svg.render()


def cdf_chart(title, subtitle, xlabel, series, goal=None):
    """series: [(name, colour, [samples])]; goal: (label, x) drawn as a dashed line."""
    svg = SVG(title, subtitle)
    hi = max([s for _, _, xs in series for s in xs if s is not None] + [goal[1] if goal else 0])
    xt = nice_ticks(hi * 1.05)
    xmax = xt[-1]
    pw, ph = W - ML - MR, H - MT - MB

    def px(v):
        return ML + pw * v / xmax

    def py(f):
        return MT + ph * (1 - f)

    for f in [0, 0.25, 0.5, 0.75, 1.0]:
        svg.add(f'<line x1="{ML}" y1="{py(f):.1f}" x2="{W - MR}" y2="{py(f):.1f}" stroke="#e2e8f0"/>')
        svg.text(ML - 6, py(f) + 4, f"{f:g}", size=11, anchor="end")
    for t in xt:
        svg.add(f'<line x1="{px(t):.1f}" y1="{H - MB}" x2="{px(t):.1f}" y2="{H - MB + 4}" stroke="#4a5568"/>')
        svg.text(px(t), H - MB + 17, tick_label(t), size=11, anchor="middle")
    svg.add(f'<line x1="{ML}" y1="{MT}" x2="{ML}" y2="{H - MB}" stroke="#4a5568"/>')
    svg.add(f'<line x1="{ML}" y1="{H - MB}" x2="{W - MR}" y2="{H - MB}" stroke="#4a5568"/>')
    svg.text(W - MR, H - MB + 36, xlabel, size=12, anchor="end")
    svg.text(18, MT + ph / 2, "fraction of runs ≤ x", size=12, anchor="middle", rotate=-90)
    if goal:
        gx = px(goal[1])
        svg.add(f'<line class="goal" x1="{gx:.1f}" y1="{MT}" x2="{gx:.1f}" y2="{H - MB}" stroke="#c53030" stroke-dasharray="5,4"/>')
        svg.text(gx + 4, MT + 12, goal[0], size=11, fill="#c53030")
    legend = []
    for name, colour, xs in series:
        xs = sorted(x for x in xs if x is not None)
        if not xs:
            continue
        n = len(xs)
        d = f"M{px(0):.1f},{py(0):.1f} H{px(xs[0]):.1f}"
        for k, x in enumerate(xs):
            d += f" H{px(x):.1f} V{py((k + 1) / n):.1f}"
        d += f" H{px(xmax):.1f}"
        svg.add(f'<path class="cdf" data-series="{attr(name)}" d="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for k, x in enumerate(xs):
            svg.add(
                f'<circle class="sample" data-series="{attr(name)}" data-value="{x!r}" cx="{px(x):.1f}" '
                f'cy="{py((k + 1) / n):.1f}" r="3" fill="{colour}"/>'
            )
        legend.append((colour, f"{name} (n = {n}, p50 {fmt(median(xs), 's')})"))
    # The legend goes under the axis, clear of the curves (two rows fit in the margin).
    for i, (colour, label) in enumerate(legend):
        ly = H - MB + 33 + 16 * i
        svg.add(f'<line x1="{ML}" y1="{ly:.1f}" x2="{ML + 22}" y2="{ly:.1f}" stroke="{colour}" stroke-width="3"/>')
        svg.text(ML + 28, ly + 4, label, size=11)
    return svg.render()


# --- the plots each benchmark gets ------------------------------------------------------------------


def goal_of(results, prefix):
    """(op, limit) of the first metric whose name starts with prefix and has a goal."""
    for m in results["metrics"]:
        if m["name"].startswith(prefix) and m.get("goal") is not None:
            return m["goal"], m["limit"]
    return None


def need(results, *keys):
    for k in keys:
        if k not in results:
            raise ReportError(f"{results['_file']}: no {k!r} (written by an older meshbench?)")
    return [results[k] for k in keys]


def plots_converge(r):
    scale, api, failure = need(r, "scale_samples_s", "api_samples_s", "failure_samples_s")
    replicas, runs = need(r, "replicas", "runs")
    out = {}
    g = goal_of(r, "scale") or (None, None)
    out["converge-scale.svg"] = (
        f"Scale 2 → {replicas}: convergence CDF",
        cdf_chart(
            f"Scale 2 → {replicas}: time from the API call's return",
            f"3 meshd daemons, {runs} run(s): every node's LB and DNS hold all {replicas} vs the API reporting {replicas} running",
            "seconds",
            [("every LB and DNS", MESHD, scale), (f"API: {replicas}/{replicas} running", OTHERS[0], api)],
            goal=(f"goal p99 {OP_TEXT.get(g[0], '')} {g[1]:g} s", g[1]) if g[1] is not None else None,
        ),
    )
    g = goal_of(r, "worker SIGKILL") or (None, None)
    out["converge-failure.svg"] = (
        "Worker SIGKILL: convergence CDF",
        cdf_chart(
            "Worker SIGKILL: until no balancer sends to its tasks",
            f"3 meshd daemons, {runs} run(s): node 3's daemon killed, time until nodes 1 and 2 dropped its tasks",
            "seconds",
            [("out of every LB", MESHD, failure)],
            goal=(f"goal p99 {OP_TEXT.get(g[0], '')} {g[1]:g} s", g[1]) if g[1] is not None else None,
        ),
    )
    return out


def plots_vip(r):
    (samples,) = need(r, "samples")
    groups = []
    for mode, label in [("keepalive", "keep-alive"), ("close", "Connection: close")]:
        values = {}
        for side, name in [("vip", "VIP"), ("direct", "direct"), ("haproxy", "haproxy")]:
            (med,) = need(r, f"{mode}_{side}_rps")
            values[name] = (med, [s.get("rps") for s in samples.get(mode, {}).get(side, [])])
        groups.append((label, values))
    sub = f"wrk -c{r.get('connections', '?')}, {r.get('seconds', '?')} s per run, {r.get('rounds', '?')} round(s), lb {r.get('lb', '?')}"
    return {
        "vip.svg": (
            "VIP req/s vs direct vs haproxy",
            bar_chart(
                "Requests per second: service VIP vs direct vs haproxy",
                sub,
                "requests per second",
                groups,
                [("VIP", MESHD), ("direct", OTHERS[1]), ("haproxy", OTHERS[0])],
                "req/s",
                note="VIP / direct: keep-alive {}, close {}".format(
                    *(fmt(v, "×") for v in need(r, "keepalive_vip_vs_direct", "close_vip_vs_direct"))
                ),
            ),
        )
    }


def plots_dns(r):
    mq, dq, ms, ds, names = need(r, "meshd_qps", "dnsmasq_qps", "meshd_qps_samples", "dnsmasq_qps_samples", "names")
    return {
        "dns.svg": (
            "DNS qps vs dnsmasq",
            bar_chart(
                "DNS peak queries per second: meshd vs dnsmasq",
                f"dnsperf, {names:,} names, {r.get('rounds', '?')} round(s) of {r.get('seconds', '?')} s",
                "queries per second",
                [("", {"meshd": (mq, ms), "dnsmasq": (dq, ds)})],
                [("meshd", MESHD), ("dnsmasq", OTHERS[0])],
                "qps",
                note=f"meshd / dnsmasq: {fmt(need(r, 'ratio')[0], '×')}",
            ),
        )
    }


def plots_nft(r):
    m, n, ms, ns, services, backends = need(r, "mesh_cold_s", "nft_cold_s", "mesh_cold_samples_s", "nft_cold_samples_s", "services", "backends")
    return {
        "nft-load.svg": (
            "nftables cold load vs nft -f",
            bar_chart(
                "nftables cold load: MeshKernel batch vs nft -f",
                f"{services:,} services × {backends} backends, fresh namespace per side per round, {r.get('rounds', '?')} round(s)",
                "seconds",
                [("", {"MeshKernel": (m, ms), "nft -f": (n, ns)})],
                [("MeshKernel", MESHD), ("nft -f", OTHERS[0])],
                "s",
                note=f"MeshKernel takes {fmt(need(r, 'ratio_cold')[0], '×')} nft -f's time",
            ),
        )
    }


def plots_ipvs(r):
    m, a, services, dests = need(r, "mesh_s", "ipvsadm_s", "services", "destinations")
    return {
        "ipvs-load.svg": (
            "IPVS load vs ipvsadm -R",
            bar_chart(
                "IPVS load: MeshKernel vs ipvsadm -R",
                f"{services:,} services × {dests} destinations (VM lane, qemu TCG: compare the ratio)",
                "seconds",
                [("", {"MeshKernel": (m, r.get("mesh_samples_s", [])), "ipvsadm -R": (a, r.get("ipvsadm_samples_s", []))})],
                [("MeshKernel", MESHD), ("ipvsadm -R", OTHERS[0])],
                "s",
                note=f"MeshKernel takes {fmt(need(r, 'ratio')[0], '×')} ipvsadm's time",
            ),
        )
    }


PLOTS = {"converge": plots_converge, "vip": plots_vip, "dns": plots_dns, "nft-load": plots_nft, "ipvs-load": plots_ipvs}


# --- the report -------------------------------------------------------------------------------------


def git_commit(path):
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def metric_table(rows, with_bench=False):
    head = ("| benchmark " if with_bench else "") + "| metric | value | goal | verdict |"
    sep = ("|---" if with_bench else "") + "|---|---:|---|---|"
    lines = [head, sep]
    for bench, m, ok in rows:
        cells = ([f"[{bench}](#{bench})"] if with_bench else []) + [
            m["name"].replace("|", "\\|"),
            fmt(m.get("value"), m.get("unit", "")),
            goal_text(m),
            met_text(ok),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_report(results, results_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    data_dir = os.path.join(out_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    benches = [b for b in ORDER if b in results] + sorted(b for b in results if b not in ORDER)
    quick = sorted(b for b in benches if results[b].get("quick"))

    judged = {b: [(b, m, judge(m)) for m in results[b]["metrics"]] for b in benches}
    plots = {}
    for b in benches:
        if b in PLOTS:
            plots[b] = PLOTS[b](results[b])
            for name, (_, svg) in plots[b].items():
                with open(os.path.join(out_dir, name), "w") as f:
                    f.write(svg)
        shutil.copyfile(os.path.join(results_dir, results[b]["_file"]), os.path.join(data_dir, results[b]["_file"]))

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = git_commit(os.path.dirname(os.path.abspath(__file__)))
    md = ["# meshd benchmark report", ""]
    md.append(
        f"Made {now} by `bench/report.py` from {len(benches)} results file(s) in `{results_dir}`"
        + (f", commit `{commit}`" if commit else "")
        + f"; host kernel {platform.release()}, {os.cpu_count()} CPU(s)."
    )
    md.append("Each benchmark runs meshd's way and its comparison side by side in one run; the machines are shared, so the ratios")
    md.append("are what carries over from one run to another, not the absolute times (see `bench/README.md`).")
    md.append("")
    if quick:
        md.append(f"> **Smoke run** (`--quick`: small sizes, one round) for {', '.join(quick)}: these numbers are not results.")
        md.append("")
    missing = [b for b in ORDER if b not in results]
    if missing:
        md.append(f"Not in this run: {', '.join(missing)}.")
        md.append("")

    goals = [row for b in benches for row in judged[b] if row[2] is not None]
    met = sum(1 for row in goals if row[2])
    md.append("## Goals")
    md.append("")
    md.append(f"{met} of {len(goals)} goals met.")
    md.append("")
    md += metric_table(goals, with_bench=True)
    md.append("")

    for b in benches:
        r = results[b]
        md.append(f'<a id="{b}"></a>')
        md.append(f"## {b}: {TITLES.get(b, b)}")
        md.append("")
        for name, (alt, _) in plots.get(b, {}).items():
            md.append(f"![{alt}]({name})")
            md.append("")
        md += metric_table(judged[b])
        md.append("")
        if b == "gossip" and isinstance(r.get("dissemination"), list):
            md.append("| N | loss | meshd | SWIM/Serf model | ratio |")
            md.append("|---:|---:|---:|---:|---:|")
            for d in r["dissemination"]:
                ratio = d["meshd_s"] / d["model_s"] if d.get("model_s") else None
                md.append(
                    f"| {d['n']:,} | {d['loss'] * 100:.0f}% | {fmt(d['meshd_s'], 's')} | {fmt(d['model_s'], 's')} | {fmt(ratio, '×')} |"
                )
            md.append("")
        md.append(f"Data: [data/{r['_file']}](data/{r['_file']})" + (" (smoke run)" if r.get("quick") else ""))
        md.append("")

    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(md))
    summary = {
        "generated": now,
        "commit": commit,
        "goals_met": met,
        "goals": len(goals),
        "benchmarks": {
            b: {
                "quick": bool(results[b].get("quick")),
                "file": "data/" + results[b]["_file"],
                "plots": sorted(plots.get(b, {})),
                "metrics": [dict(m, met=ok) for _, m, ok in judged[b]],
            }
            for b in benches
        },
    }
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    return summary


def main(argv):
    if len(argv) != 3 or argv[1].startswith("-"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        results = load(argv[1])
        summary = write_report(results, argv[1], argv[2])
    except (ReportError, OSError) as e:
        print(f"report: {e}", file=sys.stderr)
        return 1
    plots = sum(len(b["plots"]) for b in summary["benchmarks"].values())
    print(
        f"report: {len(summary['benchmarks'])} benchmark(s), {plots} plot(s), "
        f"{summary['goals_met']}/{summary['goals']} goals met → {os.path.join(argv[2], 'README.md')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
