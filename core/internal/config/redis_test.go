package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestClusterSentinel: a sentinel block joins the cluster and becomes go-redis' failover
// options, with the master's and the Sentinels' credentials kept apart.
func TestClusterSentinel(t *testing.T) {
	clearEnv(t)
	c, err := Parse([]byte(`cluster {
  sentinel {
    master_name       = "mymaster"
    addrs             = ["10.0.0.1:26379", "10.0.0.2:26379"]
    username          = "app"
    password          = "master-secret"
    sentinel_password = "sentinel-secret"
    db                = 2
  }
}
`), "f.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cluster.Enabled() {
		t.Fatal("a sentinel block does not join the cluster")
	}
	o, err := c.Cluster.RedisOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.MasterName != "mymaster" || !slices.Equal(o.Addrs, []string{"10.0.0.1:26379", "10.0.0.2:26379"}) ||
		o.Username != "app" || o.Password != "master-secret" || o.SentinelPassword != "sentinel-secret" ||
		o.DB != 2 || o.IsClusterMode || o.TLSConfig != nil {
		t.Fatalf("options: %+v", o)
	}
}

// TestClusterRedisCluster: a redis_cluster block becomes cluster-mode options, also with a
// single seed address (which go-redis would otherwise take for a single server).
func TestClusterRedisCluster(t *testing.T) {
	clearEnv(t)
	c, err := Parse([]byte("cluster {\n  redis_cluster {\n    addrs = [\"10.0.0.1:7000\"]\n    tls = true\n  }\n}\n"), "f.hcl")
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.Cluster.RedisOptions()
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cluster.Enabled() || !o.IsClusterMode || o.MasterName != "" || o.TLSConfig == nil ||
		!slices.Equal(o.Addrs, []string{"10.0.0.1:7000"}) {
		t.Fatalf("options: %+v", o)
	}
}

// TestClusterRedisURLOptions: redis_url keeps its meaning; no setting means no Redis.
func TestClusterRedisURLOptions(t *testing.T) {
	clearEnv(t)
	c, err := Parse([]byte("cluster {\n  redis_url = \"redis://u:p@127.0.0.1:6390/3\"\n}\n"), "f.hcl")
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.Cluster.RedisOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.IsClusterMode || o.MasterName != "" || o.DB != 3 || o.Password != "p" ||
		!slices.Equal(o.Addrs, []string{"127.0.0.1:6390"}) {
		t.Fatalf("options: %+v", o)
	}
	if o, err := Default().Cluster.RedisOptions(); o != nil || err != nil {
		t.Fatalf("default: %+v, %v", o, err)
	}
}

// TestClusterRedisErrors: mistakes in how Redis is reached point at their line.
func TestClusterRedisErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		line int
		want string
	}{
		{"url and sentinel", "cluster {\n  redis_url = \"redis://h:1\"\n  sentinel {\n    master_name = \"m\"\n    addrs = [\"h:26379\"]\n  }\n}\n", 3, "cluster.sentinel conflicts with cluster.redis_url"},
		{"sentinel and cluster", "cluster {\n  sentinel {\n    master_name = \"m\"\n    addrs = [\"h:26379\"]\n  }\n  redis_cluster {\n    addrs = [\"h:7000\"]\n  }\n}\n", 6, "cluster.redis_cluster conflicts with cluster.sentinel"},
		{"no master name", "cluster {\n  sentinel {\n    addrs = [\"h:26379\"]\n  }\n}\n", 2, "master_name"},
		{"no sentinel addrs", "cluster {\n  sentinel {\n    master_name = \"m\"\n  }\n}\n", 2, "sentinel.addrs"},
		{"bad sentinel addr", "cluster {\n  sentinel {\n    master_name = \"m\"\n    addrs = [\"h:26379\", \"nope\"]\n  }\n}\n", 4, `"nope"`},
		{"negative db", "cluster {\n  sentinel {\n    master_name = \"m\"\n    addrs = [\"h:26379\"]\n\n    db = -1\n  }\n}\n", 6, "db"},
		{"empty cluster addrs", "cluster {\n  redis_cluster {\n    addrs = []\n  }\n}\n", 3, "redis_cluster.addrs"},
		{"bad cluster port", "cluster {\n  redis_cluster {\n\n    addrs = [\"h:0\"]\n  }\n}\n", 4, `"h:0"`},
		{"unknown attribute", "cluster {\n  sentinel {\n    master = \"m\"\n  }\n}\n", 3, "master"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			path := filepath.Join(t.TempDir(), "file.hcl")
			if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *config.Error: %v", err, err)
			}
			msg := err.Error()
			if loc := "file.hcl:" + strconv.Itoa(tc.line) + ","; !strings.Contains(msg, loc) {
				t.Errorf("error does not mention %s:\n%s", loc, msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error does not mention %q:\n%s", tc.want, msg)
			}
		})
	}
}
