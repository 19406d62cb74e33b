/// The cluster page: one self-contained document (no outside scripts, fonts or styles, so it
/// works on a machine with no network). It draws `/api/cluster` and redraws on every message of
/// `/api/updates` (server-sent events from the manager's event stream); nothing polls.
enum ClusterPageHTML {
    static let page = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>meshd cluster</title>
        <style>
          :root { color-scheme: light; font-family: system-ui, sans-serif; }
          body { margin: 0; background: #f3f4f6; color: #111827; }
          header { display: flex; align-items: baseline; gap: 1rem; padding: .8rem 1.2rem; background: #111827; color: #f9fafb; }
          header h1 { font-size: 1.1rem; margin: 0; }
          header .summary { font-size: .85rem; opacity: .85; }
          header .live { margin-left: auto; font-size: .8rem; }
          header .live.on::before { content: "●"; color: #34d399; margin-right: .3rem; }
          header .live.off::before { content: "●"; color: #f87171; margin-right: .3rem; }
          #services { display: flex; flex-wrap: wrap; gap: .5rem; padding: .8rem 1.2rem 0; }
          .service { border-radius: .4rem; padding: .3rem .6rem; font-size: .85rem; color: #111827; }
          .service .ports { opacity: .75; margin-left: .4rem; font-family: ui-monospace, monospace; font-size: .75rem; }
          #nodes { display: flex; gap: .8rem; padding: .8rem 1.2rem 1.2rem; align-items: flex-start; overflow-x: auto; }
          .node { background: #fff; border-radius: .5rem; min-width: 13rem; box-shadow: 0 1px 2px #0002; }
          .node > .head { padding: .6rem .7rem; border-bottom: 1px solid #e5e7eb; }
          .node .name { font-weight: 600; }
          .node .badges { font-size: .72rem; margin-top: .2rem; display: flex; gap: .3rem; flex-wrap: wrap; }
          .badge { background: #e5e7eb; border-radius: .25rem; padding: 0 .3rem; }
          .badge.leader { background: #fde68a; }
          .badge.down { background: #fecaca; }
          .node .traffic { font-size: .72rem; color: #4b5563; margin-top: .3rem; }
          .tasks { padding: .5rem; display: flex; flex-direction: column; gap: .35rem; min-height: 2rem; }
          .task { border-radius: .3rem; padding: .3rem .5rem; font-size: .8rem; border-left: .35rem solid; }
          .task .state { float: right; font-size: .7rem; opacity: .8; }
          .empty { color: #9ca3af; font-size: .8rem; padding: .3rem; }
          #error { color: #b91c1c; padding: 0 1.2rem; }
        </style>
        </head>
        <body>
        <header><h1>meshd</h1><span class="summary" id="summary"></span><span class="live off" id="live">connecting</span></header>
        <div id="error"></div>
        <div id="services"></div>
        <div id="nodes"></div>
        <script>
        "use strict";
        const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
        const bytes = n => n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KiB" : (n / 1048576).toFixed(1) + " MiB";
        let pending = null, inFlight = false, again = false;

        function draw(view) {
          const byNode = new Map(view.nodes.map(n => [n.id, []]));
          for (const t of view.tasks) if (byNode.has(t.node)) byNode.get(t.node).push(t);
          const hue = new Map(view.services.map(s => [s.name, s.hue]));
          document.getElementById("summary").textContent =
            view.nodes.length + " nodes · " + view.services.length + " services · " + view.tasks.length + " tasks";
          const services = document.getElementById("services");
          services.replaceChildren(...view.services.map(s => {
            const d = el("div", "service", s.name + (s.replicas !== undefined && s.replicas !== null ? " ×" + s.replicas : " (global)"));
            d.dataset.service = s.name;
            d.style.background = "hsl(" + s.hue + " 70% 85%)";
            if (s.ports.length) d.appendChild(el("span", "ports", s.ports.join(" ")));
            return d;
          }));
          const nodes = document.getElementById("nodes");
          nodes.replaceChildren(...view.nodes.map(n => {
            const col = el("section", "node");
            col.dataset.node = n.id;
            col.dataset.hostname = n.hostname;
            const head = el("div", "head");
            head.appendChild(el("div", "name", n.hostname));
            const badges = el("div", "badges");
            badges.appendChild(el("span", "badge", n.role));
            if (n.leader) badges.appendChild(el("span", "badge leader", "leader"));
            badges.appendChild(el("span", "badge" + (n.state === "ready" ? "" : " down"), n.state));
            if (n.availability !== "active") badges.appendChild(el("span", "badge down", n.availability));
            badges.appendChild(el("span", "badge", n.address));
            head.appendChild(badges);
            if (n.traffic) {
              let c = 0, b = 0;
              for (const v of Object.values(n.traffic)) { c += v.connections; b += v.bytes; }
              const t = el("div", "traffic", c + " connections · " + bytes(b) + " through its VIPs and ports");
              t.dataset.connections = c;
              head.appendChild(t);
            }
            col.appendChild(head);
            const list = el("div", "tasks");
            const tasks = byNode.get(n.id);
            if (!tasks.length) list.appendChild(el("div", "empty", "no tasks"));
            for (const t of tasks) {
              const d = el("div", "task", t.service + "." + (t.slot || t.node.slice(0, 6)));
              d.dataset.service = t.service;
              d.dataset.state = t.state;
              d.title = t.id;
              const h = hue.get(t.service) ?? 0;
              d.style.background = "hsl(" + h + " 70% 92%)";
              d.style.borderColor = "hsl(" + h + " 60% 45%)";
              d.appendChild(el("span", "state", t.state));
              list.appendChild(d);
            }
            col.appendChild(list);
            return col;
          }));
          document.body.dataset.drawn = String(Date.now());
        }

        // One fetch at a time; changes that arrive meanwhile fold into one more.
        async function refresh() {
          if (inFlight) { again = true; return; }
          inFlight = true;
          try {
            const r = await fetch("api/cluster", { cache: "no-store" });
            const body = await r.json();
            if (!r.ok) throw new Error(body.message || r.statusText);
            document.getElementById("error").textContent = "";
            draw(body);
          } catch (e) {
            document.getElementById("error").textContent = "cannot read the cluster: " + e.message;
          } finally {
            inFlight = false;
            if (again) { again = false; refresh(); }
          }
        }

        const live = document.getElementById("live");
        const updates = new EventSource("api/updates");
        updates.onopen = () => { live.className = "live on"; live.textContent = "live"; refresh(); };
        updates.onerror = () => { live.className = "live off"; live.textContent = "reconnecting"; };
        updates.onmessage = () => { clearTimeout(pending); pending = setTimeout(refresh, 20); };
        refresh();
        </script>
        </body>
        </html>
        """#
}
