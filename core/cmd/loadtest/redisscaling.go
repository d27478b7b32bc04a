package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The redis-scaling scenario measures what Redis spends on cluster pub/sub as nodes are
// added, to predict larger clusters: S subscriber connections stand for S nodes, each on
// the all-node channel and on rooms' channels of its own like a node of this product; one
// publisher sends room-message-sized broadcasts one at a time (as a node does at a modest
// rate), and Redis' own CPU (INFO cpu, getrusage, microseconds) is read before and after.
func init() {
	extraScenarios = append(extraScenarios, scenario{"redis-scaling", (*runner).redisScaling})
}

// redisScalingOptions size the scenario; tests make them small.
var redisScalingOpts = struct {
	subscribers []int // S values
	messages    int   // P, published per S and kind
	rooms       int   // room channels each subscriber holds besides the all-node channel
	payload     int   // bytes per message: a room message of the cluster scenario, encoded
}{[]int{1, 2, 4, 8, 16, 32}, 20000, 100, 128}

const (
	scalingDepth = 50
	scalingAll   = "socket.io#/#"
	scalingRoom  = "socket.io#/#room-%d-%d#" // subscriber, room
)

func (r *runner) redisScaling(ctx context.Context) ([]row, error) {
	const name = "redis-scaling"
	o := redisScalingOpts
	rds, err := startRedis(ctx)
	if err != nil {
		return nil, err
	}
	defer rds.stop()
	pub, err := newRespConn(rds.addr())
	if err != nil {
		return nil, err
	}
	defer pub.close()
	payload := strings.Repeat("x", o.payload)

	var rows []row
	var xs, ys, ysPiped []float64
	for _, s := range o.subscribers {
		subs := make([]*scalingSub, 0, s)
		stop := func() {
			for _, sb := range subs {
				sb.close()
			}
		}
		for i := range s {
			chs := []string{scalingAll}
			for j := range o.rooms {
				chs = append(chs, fmt.Sprintf(scalingRoom, i, j))
			}
			sb, err := newScalingSub(rds.addr(), "SUBSCRIBE", chs)
			if err != nil {
				stop()
				return nil, err
			}
			subs = append(subs, sb)
		}
		// Everyone's channel: every subscriber receives each message.
		all, err := r.publishRun(ctx, pub, subs, subs, scalingAll, payload, o.messages, 1)
		if err != nil {
			stop()
			return nil, err
		}
		allPiped, err := r.publishRun(ctx, pub, subs, subs, scalingAll, payload, o.messages, scalingDepth)
		if err != nil {
			stop()
			return nil, err
		}
		// A room with a member on one node only: one subscriber receives it.
		one, err := r.publishRun(ctx, pub, subs, subs[:1], fmt.Sprintf(scalingRoom, 0, 0), payload, o.messages, 1)
		stop()
		if err != nil {
			return nil, err
		}
		// The same room message with S nodes of the classic Node adapter, which subscribe to
		// the pattern and so receive every room's messages.
		subs = subs[:0]
		for range s {
			sb, err := newScalingSub(rds.addr(), "PSUBSCRIBE", []string{scalingAll + "*"})
			if err != nil {
				stop()
				return nil, err
			}
			subs = append(subs, sb)
		}
		pat, err := r.publishRun(ctx, pub, subs, subs, fmt.Sprintf(scalingRoom, 0, 0), payload, o.messages, 1)
		stop()
		if err != nil {
			return nil, err
		}
		xs, ys, ysPiped = append(xs, float64(s)), append(ys, all), append(ysPiped, allPiped)
		rows = append(rows,
			info(name, fmt.Sprintf("S=%d: Redis CPU per message to all S", s), fmt.Sprintf("%.2f µs", all)),
			info(name, fmt.Sprintf("S=%d: Redis CPU per message to all S, %d in flight", s, scalingDepth), fmt.Sprintf("%.2f µs", allPiped)),
			info(name, fmt.Sprintf("S=%d: Redis CPU per message to a room on 1 node", s), fmt.Sprintf("%.2f µs", one)),
			info(name, fmt.Sprintf("S=%d: Redis CPU per room message, S nodes on the pattern", s), fmt.Sprintf("%.2f µs", pat)))
	}
	a, b := fitLine(xs, ys)
	rows = append(rows,
		info(name, "fit: Redis CPU per message = a + b x subscribed nodes", fmt.Sprintf("a = %.2f µs, b = %.2f µs", a, b)),
		info(name, "predicted, all-node channel, 10 / 100 nodes", fmt.Sprintf("%.1f / %.1f µs per message", a+10*b, a+100*b)))
	a, b = fitLine(xs, ysPiped)
	rows = append(rows,
		info(name, fmt.Sprintf("fit, %d in flight", scalingDepth), fmt.Sprintf("a = %.2f µs, b = %.2f µs", a, b)),
		info(name, fmt.Sprintf("predicted, %d in flight, 10 / 100 nodes", scalingDepth), fmt.Sprintf("%.1f / %.1f µs per message", a+10*b, a+100*b)))
	return rows, nil
}

// publishRun publishes n messages on ch one at a time, waits until every subscriber in want
// has them, and returns Redis' CPU per message in microseconds.
// depth is how many PUBLISH are in flight: 1 is a node publishing now and then, each
// message its own event-loop turn; more lets Redis write several messages to a subscriber
// in one system call, as under a high message rate.
func (r *runner) publishRun(ctx context.Context, pub *respConn, all, want []*scalingSub, ch, payload string, n, depth int) (float64, error) {
	for _, sb := range all {
		sb.got.Store(0)
	}
	cpu0, err := pub.redisCPU()
	if err != nil {
		return 0, err
	}
	for i := 0; i < n; i += depth {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		batch := min(depth, n-i)
		for range batch {
			if err := pub.write("PUBLISH", ch, payload); err != nil {
				return 0, err
			}
		}
		for range batch {
			got, err := pub.reply()
			if err != nil {
				return 0, err
			}
			if got != strconv.Itoa(len(want)) {
				return 0, fmt.Errorf("PUBLISH %s reached %v subscribers, want %d", ch, got, len(want))
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, sb := range want {
		for sb.got.Load() < int64(n) {
			if err := sb.failed(); err != nil {
				return 0, err
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return 0, fmt.Errorf("subscriber has %d of %d messages", sb.got.Load(), n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	cpu1, err := pub.redisCPU()
	if err != nil {
		return 0, err
	}
	return float64(cpu1-cpu0) / float64(n), nil
}

// fitLine is the least-squares line y = a + b x.
func fitLine(xs, ys []float64) (a, b float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy = sx+xs[i], sy+ys[i]
		sxx, sxy = sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	if d := n*sxx - sx*sx; d != 0 {
		b = (n*sxy - sx*sy) / d
	}
	return (sy - b*sx) / n, b
}

// respConn is a plain RESP2 connection: the scenario measures Redis, so the client side is
// kept as thin as it can be.
type respConn struct {
	c  net.Conn
	rd *bufio.Reader
}

func newRespConn(addr string) (*respConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &respConn{c: c, rd: bufio.NewReaderSize(c, 64<<10)}, nil
}

func (c *respConn) close() { c.c.Close() }

func (c *respConn) write(args ...string) error {
	b := make([]byte, 0, 64)
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	_, err := c.c.Write(b)
	return err
}

// do sends a command and returns its reply, flattened to a string.
func (c *respConn) do(args ...string) (string, error) {
	if err := c.write(args...); err != nil {
		return "", err
	}
	v, err := c.reply()
	if err != nil {
		return "", err
	}
	return fmt.Sprint(v), nil
}

// reply reads one RESP2 value: a string, an int as its digits, or a slice of values.
func (c *respConn) reply() (any, error) {
	line, err := c.rd.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, errors.New("short RESP line")
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '+', ':':
		return body, nil
	case '-':
		return nil, errors.New("redis: " + body)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.rd, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, max(n, 0))
		for range n {
			v, err := c.reply()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected RESP type %q", line[0])
}

// redisCPU is Redis' user+system CPU so far in microseconds, from INFO cpu.
func (c *respConn) redisCPU() (int64, error) {
	s, err := c.do("INFO", "cpu")
	if err != nil {
		return 0, err
	}
	var total float64
	for _, key := range []string{"used_cpu_sys:", "used_cpu_user:"} {
		i := strings.Index(s, key)
		if i < 0 {
			return 0, fmt.Errorf("INFO cpu lacks %s", key)
		}
		v := s[i+len(key):]
		if j := strings.IndexAny(v, "\r\n"); j >= 0 {
			v = v[:j]
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu %s%s: %w", key, v, err)
		}
		total += f
	}
	return int64(total * 1e6), nil
}

// scalingSub is one subscriber connection (a node) counting the messages it receives.
type scalingSub struct {
	conn *respConn
	got  atomic.Int64
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// newScalingSub subscribes with cmd (SUBSCRIBE or PSUBSCRIBE) to chs.
func newScalingSub(addr, cmd string, chs []string) (*scalingSub, error) {
	c, err := newRespConn(addr)
	if err != nil {
		return nil, err
	}
	sb := &scalingSub{conn: c, done: make(chan struct{})}
	if err := c.write(append([]string{cmd}, chs...)...); err != nil {
		c.close()
		return nil, err
	}
	for range chs {
		if _, err := c.reply(); err != nil {
			c.close()
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
	}
	go sb.read()
	return sb, nil
}

func (sb *scalingSub) read() {
	defer close(sb.done)
	for {
		v, err := sb.conn.reply()
		if err != nil {
			sb.mu.Lock()
			sb.err = err
			sb.mu.Unlock()
			return
		}
		if m, ok := v.([]any); ok && (len(m) == 3 && m[0] == "message" || len(m) == 4 && m[0] == "pmessage") {
			sb.got.Add(1)
		}
	}
}

func (sb *scalingSub) failed() error {
	select {
	case <-sb.done:
		sb.mu.Lock()
		defer sb.mu.Unlock()
		return fmt.Errorf("subscriber: %w", sb.err)
	default:
		return nil
	}
}

func (sb *scalingSub) close() {
	sb.conn.close()
	<-sb.done
}
