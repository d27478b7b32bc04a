package hub

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/rtserver/rtserver/core/internal/dispatch"
)

// codedError is a refusal with the code the client sees.
type codedError struct {
	Code    string
	Message string
}

func (e *codedError) Error() string { return e.Code + ": " + e.Message }

// As makes the refusal a *dispatch.Error for errors.As: a plugin's host call refused by
// these checks reaches the plugin with its code.
func (e *codedError) As(target any) bool {
	t, ok := target.(**dispatch.Error)
	if ok {
		*t = &dispatch.Error{Code: e.Code, Message: e.Message}
	}
	return ok
}

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
