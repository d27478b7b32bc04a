package redistest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestPrefixIsOwn(t *testing.T) {
	a, b := Prefix(t, "rt-x"), Prefix(t, "rt-x")
	if a == b || !strings.HasPrefix(a, "rt-x-") || len(a) != len("rt-x-")+12 {
		t.Fatalf("prefixes %q %q", a, b)
	}
}

func TestDeadAddrRefuses(t *testing.T) {
	if c, err := net.DialTimeout("tcp", DeadAddr(t), time.Second); err == nil {
		c.Close()
		t.Fatal("something listens on the dead address")
	}
}

// TestPrivateStopsAndStarts: the private server answers, is gone once stopped, and answers
// again on the same address once started.
func TestPrivateStopsAndStarts(t *testing.T) {
	r := StartPrivate(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer rc.Close()
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return rc.Ping(ctx).Err()
	}
	if err := ping(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if err := ping(); err == nil {
		t.Fatal("a stopped server answered")
	}
	r.Start()
	if err := ping(); err != nil {
		t.Fatal(err)
	}
}

func TestAddrAnswers(t *testing.T) {
	addr := Addr(t)
	if URL(t) != "redis://"+addr+"/0" {
		t.Fatalf("url %q", URL(t))
	}
}
