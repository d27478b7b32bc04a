package config

import (
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Sentinel reaches the Redis master that a group of Redis Sentinels watch, following it
// when they fail over. Username and Password are the master's (and its replicas');
// SentinelUsername and SentinelPassword are the Sentinels' own, when they require one.
type Sentinel struct {
	MasterName       string
	Addrs            []string // host:port of each Sentinel
	Username         string
	Password         string
	SentinelUsername string
	SentinelPassword string
	DB               int
	TLS              bool
}

// RedisCluster reaches a Redis Cluster: Addrs are seed nodes, the client learns the rest.
type RedisCluster struct {
	Addrs    []string // host:port of one or more of the cluster's nodes
	Username string
	Password string
	TLS      bool
}

// RedisOptions are go-redis' universal client options for the cluster settings: a single
// server (RedisURL), a Sentinel-watched master, or a Redis Cluster; nil when the node is
// alone. The timeouts are left to the caller.
func (c Cluster) RedisOptions() (*redis.UniversalOptions, error) {
	switch {
	case c.Sentinel != nil:
		s := c.Sentinel
		o := &redis.UniversalOptions{
			MasterName:       s.MasterName,
			Addrs:            s.Addrs,
			Username:         s.Username,
			Password:         s.Password,
			SentinelUsername: s.SentinelUsername,
			SentinelPassword: s.SentinelPassword,
			DB:               s.DB,
		}
		if s.TLS {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		return o, nil
	case c.RedisCluster != nil:
		rc := c.RedisCluster
		o := &redis.UniversalOptions{
			Addrs:    rc.Addrs,
			Username: rc.Username,
			Password: rc.Password,
			// One seed address is enough for a cluster; without this go-redis would take a
			// single address for a single server.
			IsClusterMode: true,
		}
		if rc.TLS {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		return o, nil
	case c.RedisURL != "":
		opt, err := redis.ParseURL(c.RedisURL)
		if err != nil {
			// url.Error repeats the URL, password included: keep only its cause.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, err
		}
		return &redis.UniversalOptions{
			Addrs:     []string{opt.Addr},
			DB:        opt.DB,
			Username:  opt.Username,
			Password:  opt.Password,
			TLSConfig: opt.TLSConfig,
			Protocol:  opt.Protocol,
		}, nil
	}
	return nil, nil
}

// validateRedis checks how the cluster reaches Redis: at most one of redis_url, sentinel
// and redis_cluster, each complete.
func (v *validator) validateRedis(cl Cluster) {
	var set []string
	if cl.RedisURL != "" {
		set = append(set, "cluster.redis_url")
	}
	if cl.Sentinel != nil {
		set = append(set, "cluster.sentinel")
	}
	if cl.RedisCluster != nil {
		set = append(set, "cluster.redis_cluster")
	}
	if len(set) > 1 {
		v.failAt(set[1], nil, "%s conflicts with %s: write one way to reach Redis (redis_url for one server, a sentinel block for Sentinel, a redis_cluster block for Redis Cluster).", set[1], set[0])
	}
	if cl.RedisURL != "" {
		if _, err := cl.RedisOptions(); err != nil && cl.Sentinel == nil && cl.RedisCluster == nil {
			v.fail("cluster.redis_url", "redis_url is not a Redis URL (%v); write e.g. \"redis://127.0.0.1:6379/0\", or \"\" for a single node.", err)
		}
	}
	if s := cl.Sentinel; s != nil {
		if strings.TrimSpace(s.MasterName) == "" {
			v.failAt("cluster.sentinel.master_name", []string{"cluster.sentinel"}, "sentinel.master_name must name the master the Sentinels watch (the name in their \"sentinel monitor\" line, e.g. \"mymaster\").")
		}
		v.addrs("cluster.sentinel.addrs", "sentinel", s.Addrs, "127.0.0.1:26379")
		if s.DB < 0 {
			v.fail("cluster.sentinel.db", "sentinel.db %d must be 0 or more.", s.DB)
		}
	}
	if rc := cl.RedisCluster; rc != nil {
		v.addrs("cluster.redis_cluster.addrs", "redis_cluster", rc.Addrs, "127.0.0.1:7000")
	}
}

// addrs checks a non-empty list of host:port addresses.
func (v *validator) addrs(path, block string, addrs []string, example string) {
	if len(addrs) == 0 {
		v.failAt(path, []string{path[:strings.LastIndexByte(path, '.')]}, "%s.addrs must list at least one host:port, e.g. [\"%s\"].", block, example)
		return
	}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			v.fail(path, "%s.addrs entry %q is not a host:port address, e.g. %q.", block, a, example)
		}
	}
}
