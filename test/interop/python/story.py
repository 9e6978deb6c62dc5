"""A Debian python Consul client against a Phare agent: the service-discovery story, unchanged client.

Runs with python3-consul (python-consul 0.7.1, installed) or python3-consul2 (python-consul2 0.1.5, unpacked
privately and put first on PYTHONPATH): both are the `consul` module with the same API.

Usage: /usr/bin/python3 story.py http://127.0.0.1:<port>

Runs every step, records what the client saw, and prints one JSON object on stdout. The node test
(test/interop/python-consul.test.ts) asserts on it. A step that raises records its error text instead
of stopping the story, so one incompatibility does not hide the others. Exit code: 0 when the story
ran to the end, 3 when `consul` cannot be imported (the caller skips), 1 on an unexpected crash.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

try:
    import consul
except ImportError:  # the node test turns this into a skip
    print(json.dumps({"skip": "python3-consul is not installed for /usr/bin/python3"}))
    sys.exit(3)


class Backend:
    """A real HTTP backend whose answer can be switched between 200 and 503."""

    def __init__(self):
        self.status = 503
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = ("status %d" % outer.status).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/health" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def main():
    url = urlparse(sys.argv[1])
    c = consul.Consul(host=url.hostname, port=url.port)
    out = {"consul_version": getattr(consul, "__version__", "?")}

    def step(name, fn):
        try:
            out[name] = fn()
        except Exception as e:  # record, keep going
            out[name] = {"error": "%s: %s" % (type(e).__name__, e)}

    def ids(entries):
        return sorted(e["Service"]["ID"] for e in entries or [])

    def statuses(entries):
        return {e["Service"]["ID"]: {ch["CheckID"]: ch["Status"] for ch in e["Checks"]} for e in entries or []}

    backend = Backend()

    # -- reads every client starts with
    step("leader", lambda: c.status.leader())
    step("peers", lambda: c.status.peers())
    step("datacenters", lambda: c.catalog.datacenters())
    step("self", lambda: {
        "Datacenter": c.agent.self()["Config"]["Datacenter"],
        "NodeName": c.agent.self()["Config"]["NodeName"],
        "leader_addr": c.agent.self()["Stats"]["consul"]["leader_addr"],
    })
    step("members", lambda: [m["Name"] for m in c.agent.members()])
    step("state_any_fresh", lambda: [(ch["CheckID"], ch["ServiceID"]) for ch in c.health.state("any")[1]])

    # -- register with an HTTP check against a real backend (critical -> passing)
    step("register_web1", lambda: c.agent.service.register(
        "web", service_id="web-1", port=8080, tags=["v1", "blue"],
        check=consul.Check.http(backend.url, interval="1s")))
    step("agent_services", lambda: {k: {"Service": v["Service"], "Tags": v["Tags"], "Port": v["Port"]}
                                     for k, v in c.agent.services().items()})
    step("health_initial", lambda: statuses(c.health.service("web")[1]))
    step("passing_initial", lambda: ids(c.health.service("web", passing=True)[1]))
    backend.status = 200

    def wait_passing(want):
        deadline = time.time() + 15
        seen = None
        while time.time() < deadline:
            seen = ids(c.health.service("web", passing=True)[1])
            if seen == want:
                return seen
            time.sleep(0.1)
        return seen

    step("passing_after_200", lambda: wait_passing(["web-1"]))
    step("http_check_output", lambda: c.agent.checks().get("service:web-1", {}).get("Output"))

    # -- tags
    step("register_web2", lambda: c.agent.service.register("web", service_id="web-2", port=8081, tags=["v2", "blue"]))
    step("catalog_tag_v1", lambda: [s["ServiceID"] for s in c.catalog.service("web", tag="v1")[1]])
    step("catalog_tag_blue", lambda: [s["ServiceID"] for s in c.catalog.service("web", tag="blue")[1]])
    step("health_tag_v2", lambda: ids(c.health.service("web", tag="v2")[1]))
    step("catalog_services", lambda: {k: sorted(v) for k, v in c.catalog.services()[1].items()})

    # -- TTL check driven from Python (0.7.1 sends GET to check/pass|warn|fail)
    step("register_ttl", lambda: c.agent.check.register(
        "web-2 ttl", check=consul.Check.ttl("10s"), check_id="ttl-web-2", service_id="web-2", notes="from python"))
    step("ttl_initial", lambda: c.agent.checks()["ttl-web-2"]["Status"])
    step("ttl_pass", lambda: c.agent.check.ttl_pass("ttl-web-2", notes="all good"))
    step("ttl_after_pass", lambda: {k: c.agent.checks()["ttl-web-2"][k] for k in ("Status", "Output", "Notes", "ServiceID")})
    step("ttl_warn", lambda: c.agent.check.ttl_warn("ttl-web-2", notes="slow"))
    step("ttl_after_warn", lambda: {k: c.agent.checks()["ttl-web-2"][k] for k in ("Status", "Output")})
    step("ttl_fail", lambda: c.agent.check.ttl_fail("ttl-web-2", notes="down"))
    step("ttl_after_fail", lambda: {k: c.agent.checks()["ttl-web-2"][k] for k in ("Status", "Output")})
    step("ttl_pass_again", lambda: c.agent.check.ttl_pass("ttl-web-2"))
    step("health_checks_web", lambda: sorted(ch["CheckID"] for ch in c.health.checks("web")[1]))
    step("health_node", lambda: [ch["CheckID"] for ch in c.health.node(out["self"]["NodeName"])[1]]
         if isinstance(out.get("self"), dict) and "NodeName" in out["self"] else None)

    # -- maintenance, as python-consul sends it: enable is a Python bool (requests sends "True"/"False")
    step("maint_on_bool", lambda: c.agent.service.maintenance("web-2", True, reason="deploy"))
    step("maint_check_bool", lambda: (c.agent.checks().get("_service_maintenance:web-2") or {}).get("Status"))
    step("maint_off_bool", lambda: c.agent.service.maintenance("web-2", False))
    step("maint_on_str", lambda: c.agent.service.maintenance("web-2", "true", reason="deploy"))
    step("maint_check_str", lambda: {k: (c.agent.checks().get("_service_maintenance:web-2") or {}).get(k)
                                     for k in ("Status", "Notes")})
    step("maint_passing_ids", lambda: ids(c.health.service("web", passing=True)[1]))
    step("maint_off_str", lambda: c.agent.service.maintenance("web-2", "false"))
    step("node_maint_on_bool", lambda: c.agent.maintenance(True, reason="node work"))
    step("node_maint_check", lambda: (c.agent.checks().get("_node_maintenance") or {}).get("Status"))
    step("node_maint_off_bool", lambda: c.agent.maintenance(False))

    # -- blocking query woken by another thread's registration
    def blocking_woken():
        c.agent.service.register("api", service_id="api-1", port=9001)
        idx, _ = c.health.service("api")
        other = consul.Consul(host=url.hostname, port=url.port)
        t = threading.Timer(0.5, lambda: other.agent.service.register("api", service_id="api-2", port=9002))
        t.start()
        t0 = time.time()
        idx2, data = c.health.service("api", index=idx, wait="5s")
        elapsed = time.time() - t0
        t.join()
        return {"index_before": int(idx), "index_after": int(idx2), "ids": ids(data), "elapsed": elapsed}

    step("blocking_woken", blocking_woken)

    def blocking_not_woken():
        idx, _ = c.health.service("api")
        other = consul.Consul(host=url.hostname, port=url.port)
        t = threading.Timer(0.3, lambda: other.agent.service.register("unrelated", service_id="unrelated-1"))
        t.start()
        t0 = time.time()
        idx2, data = c.health.service("api", index=idx, wait="1s")
        elapsed = time.time() - t0
        t.join()
        return {"index_before": int(idx), "index_after": int(idx2), "ids": ids(data), "elapsed": elapsed}

    step("blocking_not_woken", blocking_not_woken)

    # -- Patroni's registration: service ID "scope/name", an HTTP check with DeregisterCriticalServiceAfter,
    # enable_tag_override; deregister puts the ID into the path with its "/" unescaped
    def patroni():
        check = consul.Check.http(backend.url, "5s", deregister="300s")
        ok = c.agent.service.register("pg-cluster", service_id="pg-cluster/node1", address="127.0.0.1",
                                      port=5432, tags=["primary", "master"], check=check,
                                      enable_tag_override=True)
        svc = c.agent.services().get("pg-cluster/node1") or {}
        entries = c.health.service("pg-cluster")[1]
        gone = c.agent.service.deregister("pg-cluster/node1")
        return {"registered": ok, "id": svc.get("ID"), "tags": svc.get("Tags"),
                "enable_tag_override": svc.get("EnableTagOverride"),
                "health_ids": ids(entries), "deregistered": gone,
                "after": ids(c.health.service("pg-cluster")[1])}

    step("patroni", patroni)

    # -- a 404 this client treats as data: it reads X-Consul-Index from it (KeyError without it)
    def kv_missing():
        index, data = c.kv.get("phare/no/such/key")
        return {"index_is_number": str(index).isdigit() and int(index) >= 2, "data": data}

    step("kv_missing", kv_missing)

    # -- deregister (0.7.1 sends GET, 0.1.5 PUT), including an unknown ID (404 -> False, no exception)
    step("deregister_web1", lambda: c.agent.service.deregister("web-1"))
    step("deregister_unknown", lambda: c.agent.service.deregister("no-such-service"))
    step("services_after_deregister", lambda: sorted(c.agent.services().keys()))
    step("catalog_web_after", lambda: [s["ServiceID"] for s in c.catalog.service("web")[1]])
    step("check_deregister", lambda: c.agent.check.deregister("ttl-web-2"))
    step("checks_after", lambda: sorted(c.agent.checks().keys()))
    step("catalog_nodes", lambda: [(n["Node"], n["Address"]) for n in c.catalog.nodes()[1]])
    step("catalog_node", lambda: sorted(c.catalog.node(out["self"]["NodeName"])[1]["Services"].keys())
         if isinstance(out.get("self"), dict) and "NodeName" in out["self"] else None)
    # a 400 surfaces as BadRequest
    step("bad_request", lambda: c.agent.service.register(""))

    backend.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
