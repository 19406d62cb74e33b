#!/usr/bin/env python3
"""Drives a real headless Chromium at meshd's cluster page and checks it shows the cluster live.

Talks the DevTools protocol over --remote-debugging-pipe (NUL-framed JSON on fds 3 and 4), so it
needs nothing beyond Python's standard library and Debian's chromium. Loads the page, waits for
the node columns and the service's tasks, runs the given scale command, measures how long until
the page shows the new count, saves a screenshot, and prints one JSON object with what it saw.
Exits non-zero, naming what was missing, when any check fails.
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, chromium, width, height):
        self.profile = tempfile.mkdtemp(prefix="meshd-page-")
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()

        def wire():
            # The child's fd 3 is what it reads commands from, fd 4 where it writes replies.
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            # Python's own descriptors are close-on-exec; the two dup2'd in `wire` are not.
            preexec_fn=wire, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.out = os.fdopen(to_chrome_w, "wb", buffering=0)
        self.inp = os.fdopen(from_chrome_r, "rb", buffering=0)
        self.buffer = b""
        self.next_id = 0

    def call(self, method, params=None, session=None, timeout=20.0):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\0" not in self.buffer:
                chunk = self.inp.read(65536)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe during {method}")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise RuntimeError(f"{method}: no reply within {timeout} s")

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--nodes", type=int, required=True, help="node columns the page must show")
    ap.add_argument("--service", required=True)
    ap.add_argument("--before", type=int, required=True, help="tasks of the service shown before the scale")
    ap.add_argument("--after", type=int, required=True, help="tasks shown once the scale is on the page")
    ap.add_argument("--scale", required=True, help="the command that scales the service (run with sh -c)")
    ap.add_argument("--within", type=float, default=2.0, help="seconds the page may take to show the scale")
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--traffic-at-least", type=int, default=0,
                    help="wait (10 s at most) for a node whose reported connections reach this")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args()

    b = Browser(args.chromium, 1280, 800)
    result = {"url": args.url}
    try:
        target = b.call("Target.createTarget", {"url": args.url})["targetId"]
        session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

        def js(expr):
            r = b.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)
            return r.get("result", {}).get("value")

        count_js = "document.querySelectorAll('.task[data-service=%s]').length" % json.dumps(args.service)
        live_js = "document.getElementById('live') && document.getElementById('live').textContent"

        def wait(cond, seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if cond():
                    return True
                time.sleep(0.02)
            return cond()

        if not wait(lambda: js("document.querySelectorAll('section.node').length") == args.nodes
                    and js(count_js) == args.before and js(live_js) == "live", 20):
            raise RuntimeError("the page never showed %d nodes, %d tasks of %s and a live stream: nodes=%s tasks=%s live=%s" % (
                args.nodes, args.before, args.service, js("document.querySelectorAll('section.node').length"),
                js(count_js), js(live_js)))
        result["nodes"] = js("Array.from(document.querySelectorAll('section.node')).map(n => n.dataset.hostname)")
        result["before"] = js(count_js)

        start = time.monotonic()
        scale = subprocess.run(["sh", "-c", args.scale], capture_output=True, text=True, timeout=60)
        if scale.returncode != 0:
            raise RuntimeError(f"the scale command failed: {scale.stderr}{scale.stdout}")
        shown = wait(lambda: js(count_js) == args.after, args.within + 5)
        elapsed = time.monotonic() - start
        result["after"] = js(count_js)
        result["elapsed_ms"] = round(elapsed * 1000)
        # The tasks keep their states coming: give them a moment so the picture shows them running.
        wait(lambda: js("Array.from(document.querySelectorAll('.task[data-service=%s]')).every(t => t.dataset.state === 'running')"
                        % json.dumps(args.service)), 10)
        result["states"] = js("Array.from(document.querySelectorAll('.task')).map(t => t.dataset.state)")
        traffic_js = "Array.from(document.querySelectorAll('.traffic')).map(t => Number(t.dataset.connections))"
        if args.traffic_at_least:
            wait(lambda: any(v >= args.traffic_at_least for v in (js(traffic_js) or [])), 10)
        result["traffic"] = js(traffic_js)
        shot = b.call("Page.captureScreenshot", {"format": "png"}, session=session)
        with open(args.screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        result["screenshot"] = args.screenshot
        print(json.dumps(result))
        if not shown:
            raise RuntimeError("the page shows %s tasks of %s, not %d" % (result["after"], args.service, args.after))
        if elapsed > args.within:
            raise RuntimeError("the scale took %.2f s to reach the page (limit %.1f s)" % (elapsed, args.within))
    except Exception as e:
        print(json.dumps(result))
        print(f"page-check: {e}", file=sys.stderr)
        return 1
    finally:
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
