package cluster

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// newClient connects to Redis as the options say: through redis (a single server, a master
// that Sentinels watch, or a Redis Cluster; config.Cluster.RedisOptions builds it), or else
// through the one server of url. Each caller gets options of its own, so the timeout set
// here does not leak into the caller's.
func newClient(url string, opts *redis.UniversalOptions, dialTimeout time.Duration) (redis.UniversalClient, error) {
	var o redis.UniversalOptions
	if opts != nil {
		o = *opts
	} else {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, errors.New("cluster: redis_url is not a Redis URL")
		}
		o = redis.UniversalOptions{
			Addrs:     []string{opt.Addr},
			DB:        opt.DB,
			Username:  opt.Username,
			Password:  opt.Password,
			TLSConfig: opt.TLSConfig,
			Protocol:  opt.Protocol,
		}
	}
	if len(o.Addrs) == 0 {
		return nil, errors.New("cluster: no Redis address")
	}
	// A Redis Cluster client appends the nodes it discovers to the Addrs slice it was
	// given: each client gets a copy, so that the adapter's and the recovery store's clients,
	// built from one options value, never write into one array (or the caller's).
	o.Addrs = slices.Clone(o.Addrs)
	o.DialTimeout = dialTimeout
	return redis.NewUniversalClient(&o), nil
}

// numSub is PUBSUB NUMSUB over the whole deployment. On Redis Cluster each node answers
// for its own clients only, and nodes of this product are subscribed through whichever
// node go-redis picked, so the counts of every node (masters and replicas) are summed; a
// single server or a Sentinel-watched master answers for everyone.
func numSub(ctx context.Context, c redis.UniversalClient, channels ...string) (map[string]int64, error) {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return c.PubSubNumSub(ctx, channels...).Result()
	}
	var mu sync.Mutex
	sum := make(map[string]int64, len(channels))
	err := cc.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		m, err := node.PubSubNumSub(ctx, channels...).Result()
		if err != nil {
			return err
		}
		mu.Lock()
		for ch, n := range m {
			sum[ch] += n
		}
		mu.Unlock()
		return nil
	})
	return sum, err
}
