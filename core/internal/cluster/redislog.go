package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"
)

// redisLogger sends go-redis' own messages (a failed dial, a pool retry) to the node's
// structured log instead of the standard logger's stderr. They come at every attempt while
// Redis is away, and the adapter already reports that state once as a warning, so they
// are kept at debug level.
type redisLogger struct{ target *atomic.Pointer[hclog.Logger] }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	if l := r.target.Load(); l != nil {
		(*l).Debug(fmt.Sprintf(format, v...))
	}
}

var (
	redisLogOnce   sync.Once
	redisLogTarget atomic.Pointer[hclog.Logger]
)

// setRedisLogger makes l receive go-redis' messages. go-redis has one logger per process,
// written without a lock, so it is set once and only the target behind it changes: the
// last adapter built wins.
func setRedisLogger(l hclog.Logger) {
	named := l.Named("redis")
	redisLogTarget.Store(&named)
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{&redisLogTarget}) })
}
