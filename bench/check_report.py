#!/usr/bin/env python3
"""Checks a report made by bench/report.py against the results files it was made from (scripts/test
runs it on the smoke runs' results):

    bench/check_report.py RESULTS_DIR REPORT_DIR [BENCHMARK ...]

- README.md exists, has a section for every results file, and every image it links is there; every
  SVG in the directory is linked;
- every SVG parses as XML, is an <svg> with a viewBox, and has data marks;
- the plots show the measured values: each bar is the median the benchmark wrote and the dots and
  CDF points are its samples, value for value;
- report.json carries every metric of every results file with its value, and the right verdict for
  each metric that has a goal and a value; README.md shows every metric that has a value;
- each BENCHMARK named on the command line has a results file in the report.
Exits 1 with every problem found.
"""

import json
import os
import re
import sys
import xml.dom.minidom

# The plots report.py must make for a benchmark when its results are there.
PLOTS = {
    "converge": ["converge-scale.svg", "converge-failure.svg"],
    "vip": ["vip.svg"],
    "dns": ["dns.svg"],
    "nft-load": ["nft-load.svg"],
    "ipvs-load": ["ipvs-load.svg"],
}


def close(a, b):
    return a is not None and b is not None and abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def marks(doc, tag, cls, series=None):
    out = []
    for e in doc.getElementsByTagName(tag):
        if e.getAttribute("class") != cls:
            continue
        # "SERIES@GROUP" picks one group's marks of a series.
        key = e.getAttribute("data-series") + ("@" + e.getAttribute("data-group") if "@" in (series or "") else "")
        if series is not None and key != series:
            continue
        out.append(e)
    return out


def values(doc, tag, cls, series=None):
    return sorted(float(e.getAttribute("data-value")) for e in marks(doc, tag, cls, series))


def expect_samples(problems, name, doc, tag, series, samples):
    got = values(doc, tag, "sample", series)
    want = sorted(float(s) for s in samples if s is not None)
    if len(got) != len(want) or not all(close(a, b) for a, b in zip(got, want)):
        problems.append(f"{name}: {series!r} shows {got}, the results have {want}")


def expect_bar(problems, name, doc, series, value):
    bars = marks(doc, "rect", "bar", series)
    if len(bars) != 1 or not close(float(bars[0].getAttribute("data-value")), value):
        problems.append(f"{name}: bar {series!r} is {[b.getAttribute('data-value') for b in bars]}, the results say {value}")


def check_plot(problems, bench, r, name, doc):
    if bench == "converge" and name == "converge-scale.svg":
        expect_samples(problems, name, doc, "circle", "every LB and DNS", r["scale_samples_s"])
        replicas = r["replicas"]
        expect_samples(problems, name, doc, "circle", f"API: {replicas}/{replicas} running", r["api_samples_s"])
    elif bench == "converge":
        expect_samples(problems, name, doc, "circle", "out of every LB", r["failure_samples_s"])
    elif bench == "vip":
        for mode, group in [("keepalive", "keep-alive"), ("close", "Connection: close")]:
            for side, series in [("vip", "VIP"), ("direct", "direct"), ("haproxy", "haproxy")]:
                bars = [b for b in marks(doc, "rect", "bar", series) if b.getAttribute("data-group") == group]
                want = r[f"{mode}_{side}_rps"]
                if len(bars) != 1 or not close(float(bars[0].getAttribute("data-value")), want):
                    problems.append(f"{name}: {group} {series!r} bar is {[b.getAttribute('data-value') for b in bars]}, the results say {want}")
                expect_samples(problems, name, doc, "circle", series + "@" + group, [s["rps"] for s in r["samples"][mode][side]])
    elif bench == "dns":
        expect_bar(problems, name, doc, "meshd", r["meshd_qps"])
        expect_bar(problems, name, doc, "dnsmasq", r["dnsmasq_qps"])
        expect_samples(problems, name, doc, "circle", "meshd", r["meshd_qps_samples"])
        expect_samples(problems, name, doc, "circle", "dnsmasq", r["dnsmasq_qps_samples"])
    elif bench == "nft-load":
        expect_bar(problems, name, doc, "MeshKernel", r["mesh_cold_s"])
        expect_bar(problems, name, doc, "nft -f", r["nft_cold_s"])
        expect_samples(problems, name, doc, "circle", "MeshKernel", r["mesh_cold_samples_s"])
        expect_samples(problems, name, doc, "circle", "nft -f", r["nft_cold_samples_s"])
    elif bench == "ipvs-load":
        expect_bar(problems, name, doc, "MeshKernel", r["mesh_s"])
        expect_bar(problems, name, doc, "ipvsadm -R", r["ipvsadm_s"])
        expect_samples(problems, name, doc, "circle", "MeshKernel", r["mesh_samples_s"])
        expect_samples(problems, name, doc, "circle", "ipvsadm -R", r["ipvsadm_samples_s"])


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    results_dir, out = argv[1], argv[2]
    problems = []
    results = {}
    for f in sorted(os.listdir(results_dir)):
        if f.endswith(".json"):
            with open(os.path.join(results_dir, f)) as fh:
                r = json.load(fh)
            results[r["benchmark"]] = (f, r)
    for b in argv[3:]:
        if b not in results:
            problems.append(f"no results file for {b} in {results_dir}")

    readme = os.path.join(out, "README.md")
    md = open(readme).read() if os.path.exists(readme) else ""
    if not md:
        problems.append(f"{readme}: missing or empty")
    linked = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md))
    svgs = {f for f in os.listdir(out) if f.endswith(".svg")} if os.path.isdir(out) else set()
    for link in sorted(linked - svgs):
        problems.append(f"README.md links {link}, which is not there")
    for f in sorted(svgs - linked):
        problems.append(f"{f} is not linked from README.md")

    docs = {}
    for f in sorted(svgs):
        try:
            doc = xml.dom.minidom.parse(os.path.join(out, f))
        except Exception as e:  # any parse error is the finding
            problems.append(f"{f}: not well-formed XML ({e})")
            continue
        root = doc.documentElement
        if root.tagName != "svg" or root.getAttribute("xmlns") != "http://www.w3.org/2000/svg" or not root.getAttribute("viewBox"):
            problems.append(f"{f}: root is <{root.tagName}>, not an <svg> with a namespace and a viewBox")
        if not (marks(doc, "rect", "bar") or marks(doc, "path", "cdf")):
            problems.append(f"{f}: no data marks")
        docs[f] = doc

    report = {}
    try:
        with open(os.path.join(out, "report.json")) as fh:
            report = json.load(fh)["benchmarks"]
    except (OSError, ValueError, KeyError) as e:
        problems.append(f"report.json: {e}")

    for bench, (f, r) in sorted(results.items()):
        if not re.search(rf"^## {re.escape(bench)}: ", md, re.M):
            problems.append(f"README.md has no section for {bench}")
        copy = os.path.join(out, "data", f)
        if not os.path.exists(copy) or json.load(open(copy)) != r:
            problems.append(f"data/{f} is not a copy of {os.path.join(results_dir, f)}")
        for name in PLOTS.get(bench, []):
            if name not in docs:
                problems.append(f"{bench}: no {name}")
                continue
            try:
                check_plot(problems, bench, r, name, docs[name])
            except (KeyError, ValueError) as e:
                problems.append(f"{name}: {e!r}")
        got = report.get(bench, {}).get("metrics", [])
        if len(got) != len(r["metrics"]):
            problems.append(f"report.json: {bench} has {len(got)} metrics, the results {len(r['metrics'])}")
        for want, have in zip(r["metrics"], got):
            if want["name"] != have.get("name") or want.get("value") != have.get("value"):
                problems.append(f"report.json: {bench} metric {want['name']!r} = {want.get('value')}, report says {have.get('value')}")
            if "goal" in want and want.get("value") is not None:
                v, limit = want["value"], want["limit"]
                verdict = {"<=": v <= limit, "<": v < limit, ">=": v >= limit, ">": v > limit, "==": v == limit}.get(want["goal"])
                if have.get("met") is not verdict:
                    problems.append(f"report.json: {bench} metric {want['name']!r} = {v} against {want['goal']} {limit}: verdict {have.get('met')}")
            if want.get("value") is not None and want["name"].replace("|", "\\|") not in md:
                problems.append(f"README.md does not show {bench} metric {want['name']!r}")

    if problems:
        print("check_report: " + "\n  ".join([f"{len(problems)} problem(s):"] + problems), file=sys.stderr)
        return 1
    print(f"check_report: {out}: {len(results)} benchmark(s), {len(docs)} SVG(s), every plotted value matches its results file")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
