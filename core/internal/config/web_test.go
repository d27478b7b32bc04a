package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDemoAndClientSettings(t *testing.T) {
	clearEnv(t)
	c, err := Parse([]byte(`
socketio {
  serve_client = false
  client_dir   = "/srv/client"
}
demo {
  path              = "/demo/"
  dir               = "/srv/demo"
  token_ttl         = "5m"
  tokens_per_minute = 2
}
`), "f.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.SocketIO.ServeClient || c.SocketIO.ClientDir != "/srv/client" {
		t.Errorf("socketio: %+v", c.SocketIO)
	}
	want := Demo{Enabled: true, Path: "/demo/", Dir: "/srv/demo", TokenTTL: 5 * time.Minute, TokensPerMinute: 2}
	if c.Demo != want {
		t.Errorf("demo %+v, want %+v", c.Demo, want)
	}
	if !c.DemoOn() {
		t.Error("demo off in development")
	}
	c.Environment = "production"
	if c.DemoOn() {
		t.Error("demo on in production")
	}
}

func TestDemoMistakes(t *testing.T) {
	cases := []struct {
		name, src string
		line      int
		want      string
	}{
		{"path without slash", "demo {\n  path = \"demo\"\n}\n", 2, "demo.path"},
		{"path inside socketio", "demo {\n  path = \"/socket.io/x/\"\n}\n", 2, "socketio.path"},
		{"long token ttl", "demo {\n\n  token_ttl = \"2h\"\n}\n", 3, "token_ttl"},
		{"zero tokens", "demo {\n  tokens_per_minute = 0\n}\n", 2, "tokens_per_minute"},
		{"empty client dir", "socketio {\n  client_dir = \"\"\n}\n", 2, "client_dir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			path := filepath.Join(t.TempDir(), "file.hcl")
			if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if loc := "file.hcl:" + strconv.Itoa(tc.line) + ","; !strings.Contains(msg, loc) || !strings.Contains(msg, tc.want) {
				t.Errorf("error lacks %s or %q:\n%s", loc, tc.want, msg)
			}
		})
	}
}
