package httpapi

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/rtserver/rtserver/core/internal/coded"
)

// Error codes of the JSON error body; the client sees them in "code".
const (
	CodeInvalidRequest              = coded.InvalidRequest
	CodeUnauthorized                = coded.Unauthorized
	CodeForbidden                   = coded.Forbidden
	CodeNotFound                    = coded.NotFound
	CodeMethodNotAllowed            = coded.MethodNotAllowed
	CodePayloadTooLarge             = coded.PayloadTooLarge
	CodeRateLimited                 = coded.RateLimited
	CodeInternal                    = coded.Internal
	CodeSignatureMissing            = coded.SignatureMissing
	CodeSignatureInvalid            = coded.SignatureInvalid
	CodeSignatureVersionUnsupported = coded.SignatureVersionUnsupported
	CodeTimestampInvalid            = coded.TimestampInvalid
	CodeNonceReused                 = coded.NonceReused
)

const (
	internalErrorMessage = "Internal server error"
	rateLimitedMessage   = "Rate limit exceeded"
)

// Headers the API reads or writes.
const (
	headerRequestID          = "X-Request-Id"
	headerAPIKey             = "X-API-Key"
	headerRetryAfter         = "Retry-After"
	headerRateLimitLimit     = "X-RateLimit-Limit"
	headerRateLimitRemaining = "X-RateLimit-Remaining"
	headerRateLimitReset     = "X-RateLimit-Reset"
	headerRequestTimestamp   = "X-Request-Timestamp"
	headerRequestNonce       = "X-Request-Nonce"
	headerSignatureVersion   = "X-Signature-Version"
	headerSignature          = "X-Signature"
)

// apiError is a refusal the client sees as {success:false,error,code,requestId}. Message
// is written for the client and never carries internals.
// apiError is the product's coded error; Status is the answer's HTTP status, and
// RetryAfter, set for 429, becomes "retryAfter" (whole seconds, at least 1).
type apiError = coded.Error

func errInvalid(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: msg}
}

func errUnauthorized(code, msg string) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: code, Message: msg}
}

var (
	errNotFound = &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "Not found"}
	errMethod   = &apiError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Message: "Method not allowed"}
	errTooLarge = &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge, Message: "Request body too large"}
	errInternal = &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: internalErrorMessage}
	errForbid   = &apiError{Status: http.StatusForbidden, Code: CodeForbidden, Message: "API key not allowed for this endpoint"}
)

// errorBody is the SPEC's error shape; retryAfter only on 429.
type errorBody struct {
	Success    bool   `json:"success"`
	Error      string `json:"error"`
	Code       string `json:"code"`
	RetryAfter *int64 `json:"retryAfter,omitempty"`
	RequestID  string `json:"requestId"`
}

// toAPIError maps any error reaching the edge to what the client may see: our own
// apiErrors as they are, Fiber's status errors by status, everything else as a bare 500
// so no internal text leaks.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case http.StatusNotFound:
			return errNotFound
		case http.StatusMethodNotAllowed:
			return errMethod
		case http.StatusRequestEntityTooLarge:
			return errTooLarge
		case http.StatusRequestHeaderFieldsTooLarge:
			return &apiError{Status: fe.Code, Code: CodeInvalidRequest, Message: "Request headers too large"}
		case http.StatusRequestTimeout:
			return &apiError{Status: fe.Code, Code: CodeInvalidRequest, Message: "Request timeout"}
		case http.StatusBadRequest:
			// fasthttp's parse errors carry its own text; the client gets a fixed one.
			return errInvalid("Malformed HTTP request")
		}
	}
	return errInternal
}

// RefusalBody makes the answer to a request the HTTP server refused before any handler
// saw it (engineio.HTTPServer.RefusalBody): the API's own error body
// {success:false,error,code,requestId}, and the request id in X-Request-Id, on every
// listener. Headers over the limit get 431 with INVALID_REQUEST, as when Fiber refuses
// them.
func RefusalBody(status int, message string) ([]byte, http.Header) {
	code := CodeInvalidRequest
	switch status {
	case http.StatusMethodNotAllowed:
		code = CodeMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		code = CodePayloadTooLarge
	}
	id := requestID("")
	body, err := json.Marshal(errorBody{Error: message, Code: code, RequestID: id})
	if err != nil {
		body = []byte(`{"success":false,"error":"Invalid request","code":"INVALID_REQUEST"}`)
	}
	return body, http.Header{headerRequestID: {id}}
}

// retryAfterSeconds rounds up so a client that waits that long is really let through.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// writeError writes e as the JSON error body with the request's id. It resets any body
// already written by a handler that failed half way.
func writeError(c *fiber.Ctx, e *apiError, requestID string) {
	body := errorBody{Success: false, Error: e.Message, Code: e.Code, RequestID: requestID}
	if e.Status == http.StatusTooManyRequests {
		s := retryAfterSeconds(e.RetryAfter)
		body.RetryAfter = &s
		c.Set(headerRetryAfter, strconv.FormatInt(s, 10))
	}
	c.Response().ResetBody()
	if err := c.Status(e.Status).JSON(body); err != nil {
		// Encoding this fixed struct cannot fail; keep a valid body anyway.
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		c.Response().SetBodyString(`{"success":false,"error":"Internal server error","code":"INTERNAL_SERVER_ERROR"}`)
	}
}
