// Package httpapi is the server's HTTP API on Fiber: push, broadcast, room and
// notification emits, status, health, plugin listing and Prometheus metrics, guarded by
// API keys with scopes, optional HMAC request signing, and per-key and per-IP rate limits.
// Every response carries X-Request-Id and every error has the SPEC's JSON shape.
package httpapi
