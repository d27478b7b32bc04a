package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/metrics"
)

func BenchmarkKeyLookup10(b *testing.B) {
	var keys []Key
	for i := 0; i < 10; i++ {
		keys = append(keys, Key{Name: fmt.Sprint("k", i), Secret: fmt.Sprint("secret-", i), Scopes: []string{"*"}})
	}
	ring, err := newKeyRing(keys)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ring.lookup("secret-9") == nil {
			b.Fatal("not found")
		}
	}
}

func BenchmarkSignV2_1KB(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	for b.Loop() {
		expectedMAC([]byte(secretAll), SignatureV2, "POST", "/api/push", "1625097600000", "abc123", body)
	}
}

// BenchmarkPushBridge is one POST /api/push through net/http, the bridge and Fiber,
// with a key check, a rate limit and a signature, over loopback.
func BenchmarkPushBridge(b *testing.B) {
	api, err := New(Options{Keys: testKeys(), RequestsPerMinute: 1 << 30, MaxBodyBytes: 1 << 20}, &countingHub{}, metrics.New(), nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	b.Cleanup(srv.Close)
	client := &http.Client{}
	b.Cleanup(client.CloseIdleConnections)
	body := []byte(`{"userId":"alice","event":"e","data":{"n":1}}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		nonce := strconv.Itoa(i)
		req, _ := http.NewRequest("POST", srv.URL+"/api/push", bytes.NewReader(body))
		req.Header.Set(headerAPIKey, secretAll)
		req.Header.Set(headerRequestTimestamp, ts)
		req.Header.Set(headerRequestNonce, nonce)
		req.Header.Set(headerSignatureVersion, SignatureV2)
		req.Header.Set(headerSignature, Sign(secretAll, SignatureV2, "POST", "/api/push", ts, nonce, body))
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

// countingHub keeps nothing, unlike fakeHub, so long runs do not grow.
type countingHub struct{ n atomic.Int64 }

func (h *countingHub) PushToUser(string, string, json.RawMessage) int { h.n.Add(1); return 1 }
func (h *countingHub) Broadcast(string, json.RawMessage) int          { return 0 }
func (h *countingHub) EmitToRoom(string, string, json.RawMessage) int { return 0 }
func (h *countingHub) Stats() Stats                                   { return Stats{} }
