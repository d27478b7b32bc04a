package hub

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/rtserver/rtserver/core/internal/coded"
)

// codedError is a refusal with the code the client (or a plugin's host call) sees.
type codedError = coded.Error

func isObject(raw json.RawMessage) bool {
	for _, b := range raw {
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

func isBlank(s string) bool { return strings.TrimSpace(s) == "" }

func randomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
