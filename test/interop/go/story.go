// Debian's golang-github-armon-consul-api-dev (the old Go client, github.com/armon/consul-api) against a
// Phare agent: the service-discovery story through the unchanged client. Built in GOPATH mode with
// Debian's golang-go by test/interop/go-armon.test.ts, which asserts on the JSON this prints.
//
// Usage: story 127.0.0.1:<port>
//
// Every step records what the client saw (or its error text) so one incompatibility does not hide the
// others. Exit code 0 when the story ran to the end.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	consulapi "github.com/armon/consul-api"
)

func main() {
	cfg := consulapi.DefaultConfig()
	cfg.Address = os.Args[1]
	c, err := consulapi.NewClient(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := map[string]interface{}{}
	step := func(name string, fn func() (interface{}, error)) {
		v, err := fn()
		if err != nil {
			out[name] = map[string]string{"error": err.Error()}
			return
		}
		out[name] = v
	}
	ids := func(entries []*consulapi.ServiceEntry) []string {
		s := []string{}
		for _, e := range entries {
			s = append(s, e.Service.ID)
		}
		sort.Strings(s)
		return s
	}
	agent, catalog, health := c.Agent(), c.Catalog(), c.Health()

	// -- reads every client starts with
	step("leader", func() (interface{}, error) { return c.Status().Leader() })
	step("node_name", func() (interface{}, error) { return agent.NodeName() })
	step("members", func() (interface{}, error) {
		m, err := agent.Members(false)
		if err != nil {
			return nil, err
		}
		names := []string{}
		for _, x := range m {
			names = append(names, x.Name)
		}
		return names, nil
	})
	step("datacenters", func() (interface{}, error) { return catalog.Datacenters() })
	step("nodes_index", func() (interface{}, error) {
		_, meta, err := catalog.Nodes(nil)
		if err != nil {
			return nil, err
		}
		return map[string]interface{}{"index": meta.LastIndex, "known_leader": meta.KnownLeader}, nil
	})

	// -- register with a TTL check (the kinds this client knows: Script, Interval, TTL)
	step("register_web1", func() (interface{}, error) {
		return true, agent.ServiceRegister(&consulapi.AgentServiceRegistration{
			ID: "web-1", Name: "web", Tags: []string{"v1"}, Port: 8080,
			Check: &consulapi.AgentServiceCheck{TTL: "15s"},
		})
	})
	step("services", func() (interface{}, error) {
		s, err := agent.Services()
		if err != nil {
			return nil, err
		}
		w := s["web-1"]
		if w == nil {
			return nil, fmt.Errorf("web-1 missing: %v", s)
		}
		return map[string]interface{}{"Service": w.Service, "Tags": w.Tags, "Port": w.Port}, nil
	})
	step("check_initial", func() (interface{}, error) {
		ch, err := agent.Checks()
		if err != nil {
			return nil, err
		}
		return ch["service:web-1"].Status, nil
	})
	step("passing_initial", func() (interface{}, error) {
		e, _, err := health.Service("web", "", true, nil)
		return ids(e), err
	})
	step("pass", func() (interface{}, error) { return true, agent.PassTTL("service:web-1", "all good") })
	step("passing_after_pass", func() (interface{}, error) {
		e, _, err := health.Service("web", "", true, nil)
		return ids(e), err
	})
	step("check_after_pass", func() (interface{}, error) {
		ch, err := agent.Checks()
		if err != nil {
			return nil, err
		}
		x := ch["service:web-1"]
		return map[string]string{"Status": x.Status, "Output": x.Output, "ServiceID": x.ServiceID}, nil
	})
	step("warn", func() (interface{}, error) { return true, agent.WarnTTL("service:web-1", "slow") })
	step("tag_v1", func() (interface{}, error) {
		e, _, err := health.Service("web", "v1", false, nil)
		return ids(e), err
	})

	// -- a node-level check
	step("register_check", func() (interface{}, error) {
		return true, agent.CheckRegister(&consulapi.AgentCheckRegistration{
			ID: "mem", Name: "Memory", Notes: "from go",
			AgentServiceCheck: consulapi.AgentServiceCheck{TTL: "30s"},
		})
	})
	step("state_critical", func() (interface{}, error) {
		hc, _, err := health.State("critical", nil)
		if err != nil {
			return nil, err
		}
		s := []string{}
		for _, x := range hc {
			s = append(s, x.CheckID)
		}
		sort.Strings(s)
		return s, nil
	})

	// -- a blocking watch woken by a registration from another goroutine
	step("watch", func() (interface{}, error) {
		_, meta, err := health.Service("web", "", false, nil)
		if err != nil {
			return nil, err
		}
		go func() {
			time.Sleep(300 * time.Millisecond)
			_ = agent.ServiceRegister(&consulapi.AgentServiceRegistration{ID: "web-2", Name: "web", Port: 8081})
		}()
		t0 := time.Now()
		e, meta2, err := health.Service("web", "", false, &consulapi.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 5 * time.Second})
		if err != nil {
			return nil, err
		}
		return map[string]interface{}{
			"before": meta.LastIndex, "after": meta2.LastIndex, "ids": ids(e), "elapsed": time.Since(t0).Seconds(),
		}, nil
	})

	// -- an external node through the catalog; deregister sends the obsolete Address field
	step("catalog_register", func() (interface{}, error) {
		_, err := catalog.Register(&consulapi.CatalogRegistration{
			Node: "ext-redis", Address: "10.1.2.3",
			Service: &consulapi.AgentService{ID: "redis-1", Service: "redis", Tags: []string{"primary"}, Port: 6379},
			Check: &consulapi.AgentCheck{Node: "ext-redis", CheckID: "redis-alive", Name: "Redis alive",
				Status: "passing", ServiceID: "redis-1"},
		}, nil)
		return true, err
	})
	step("catalog_service", func() (interface{}, error) {
		s, _, err := catalog.Service("redis", "", nil)
		if err != nil {
			return nil, err
		}
		r := []map[string]interface{}{}
		for _, x := range s {
			r = append(r, map[string]interface{}{"Node": x.Node, "Address": x.Address, "ServiceID": x.ServiceID, "ServicePort": x.ServicePort})
		}
		return r, nil
	})
	step("health_redis", func() (interface{}, error) {
		e, _, err := health.Service("redis", "", true, nil)
		return ids(e), err
	})
	step("catalog_node", func() (interface{}, error) {
		n, _, err := catalog.Node("ext-redis", nil)
		if err != nil {
			return nil, err
		}
		keys := []string{}
		for k := range n.Services {
			keys = append(keys, k)
		}
		return map[string]interface{}{"Address": n.Node.Address, "Services": keys}, nil
	})
	step("catalog_deregister_service", func() (interface{}, error) {
		_, err := catalog.Deregister(&consulapi.CatalogDeregistration{Node: "ext-redis", ServiceID: "redis-1"}, nil)
		return true, err
	})
	step("catalog_after", func() (interface{}, error) {
		s, _, err := catalog.Service("redis", "", nil)
		return len(s), err
	})
	step("catalog_deregister_node", func() (interface{}, error) {
		_, err := catalog.Deregister(&consulapi.CatalogDeregistration{Node: "ext-redis"}, nil)
		return true, err
	})
	step("nodes_after", func() (interface{}, error) {
		n, _, err := catalog.Nodes(nil)
		if err != nil {
			return nil, err
		}
		s := []string{}
		for _, x := range n {
			s = append(s, x.Node)
		}
		return s, nil
	})

	// -- deregister
	step("deregister_web1", func() (interface{}, error) { return true, agent.ServiceDeregister("web-1") })
	step("deregister_check", func() (interface{}, error) { return true, agent.CheckDeregister("mem") })
	step("services_after", func() (interface{}, error) {
		s, err := agent.Services()
		if err != nil {
			return nil, err
		}
		keys := []string{}
		for k := range s {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys, nil
	})
	step("deregister_unknown", func() (interface{}, error) { return true, agent.ServiceDeregister("nope") })

	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
