// Package coded holds the product's one coded error type and every error code that a
// client, an API caller or a plugin sees. The hub, the HTTP API, the connection guard,
// the token verifier and the plugin host map their refusals to an *Error; the codes a
// plugin shares with the SDK are defined in proto/plugin/v1/wire and named here.
package coded

import (
	"errors"
	"fmt"
	"time"

	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// Error is a refusal with the code the caller sees. Message is safe to show the caller.
// Status is the HTTP status where one applies (the HTTP API, a refused handshake);
// RetryAfter is set on rate limits. Cause is the underlying error, kept for logs and
// errors.Is, never shown to the caller (a token library's error may echo the token).
type Error struct {
	Code       string
	Message    string
	Status     int
	RetryAfter time.Duration
	Cause      error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns Cause.
func (e *Error) Unwrap() error { return e.Cause }

// New returns an *Error without an HTTP status.
func New(code, message string) *Error { return &Error{Code: code, Message: message} }

// Errorf returns an *Error whose message is formatted.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code carried by err, or def when err carries none.
func CodeOf(err error, def string) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return def
}

// Codes of the HTTP API ({success:false, error, code}); also of refused handshakes.
const (
	InvalidRequest              = "INVALID_REQUEST"
	Unauthorized                = "UNAUTHORIZED"
	Forbidden                   = "FORBIDDEN"
	NotFound                    = "NOT_FOUND"
	MethodNotAllowed            = "METHOD_NOT_ALLOWED"
	PayloadTooLarge             = "PAYLOAD_TOO_LARGE"
	RateLimited                 = "RATE_LIMITED"
	Internal                    = "INTERNAL_SERVER_ERROR"
	SignatureMissing            = "SIGNATURE_MISSING"
	SignatureInvalid            = "SIGNATURE_INVALID"
	SignatureVersionUnsupported = "SIGNATURE_VERSION_UNSUPPORTED"
	TimestampInvalid            = "TIMESTAMP_INVALID"
	NonceReused                 = "NONCE_REUSED"
)

// Codes of a refused connection: the handshake (HTTP) or CONNECT (connect_error data.code).
const (
	TooManyConnections      = "TOO_MANY_CONNECTIONS"
	TooManyConnectionsPerIP = "TOO_MANY_CONNECTIONS_PER_IP"
	RecoveryUserMismatch    = "RECOVERY_USER_MISMATCH"
	TokenMissing            = "TOKEN_MISSING"
	TokenMalformed          = "TOKEN_MALFORMED"
	TokenInvalidSignature   = "TOKEN_INVALID_SIGNATURE"
	TokenExpired            = "TOKEN_EXPIRED"
	TokenAlgNotAllowed      = "TOKEN_ALG_NOT_ALLOWED"
	TokenMissingClaim       = "TOKEN_MISSING_CLAIM"
	TokenInvalid            = "TOKEN_INVALID"
)

// Codes of the socket `error` event {event, message, code}.
const (
	InvalidPayload     = "INVALID_PAYLOAD"
	InvalidEventData   = "INVALID_EVENT_DATA"
	InvalidMessageData = "INVALID_MESSAGE_DATA"
	InvalidActionData  = "INVALID_ACTION_DATA"
	UnknownEvent       = "UNKNOWN_EVENT"
	TooManyPending     = "TOO_MANY_PENDING_REQUESTS"
	InvalidRoom        = wire.CodeInvalidRoom
	RoomLimit          = wire.CodeRoomLimit
)

// Codes shared with plugins (failed client:* replies and refused host calls).
const (
	NoHandler         = wire.CodeNoHandler
	PluginUnavailable = wire.CodePluginUnavailable
	PluginTimeout     = wire.CodePluginTimeout
	PluginError       = wire.CodePluginError
	UnknownSocket     = wire.CodeUnknownSocket
	InvalidEvent      = wire.CodeInvalidEvent
	HostUnavailable   = wire.CodeHostUnavailable
)
