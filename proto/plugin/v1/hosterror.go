package pluginv1

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// HostError is how the core's Host service refuses a call: a gRPC status whose code
// tells the kind of failure to any gRPC client, with one detail, an Error, that
// carries the exact code (wire.Code*) and message for the SDK (HostErrorOf).
func HostError(code, message string) error {
	st := status.New(grpcCode(code), message)
	if d, err := st.WithDetails(&Error{Code: code, Message: message}); err == nil {
		st = d
	}
	return st.Err()
}

// HostErrorOf returns the code and message of an error made by HostError; ok is false
// for any other error.
func HostErrorOf(err error) (code, message string, ok bool) {
	st, isStatus := status.FromError(err)
	if !isStatus {
		return "", "", false
	}
	for _, d := range st.Details() {
		if e, isErr := d.(*Error); isErr {
			return e.GetCode(), e.GetMessage(), true
		}
	}
	return "", "", false
}

func grpcCode(code string) codes.Code {
	switch code {
	case wire.CodeUnknownSocket:
		return codes.NotFound
	case wire.CodeInvalidRoom, wire.CodeInvalidEvent:
		return codes.InvalidArgument
	case wire.CodeRoomLimit:
		return codes.ResourceExhausted
	case wire.CodeHostUnavailable:
		return codes.Unavailable
	}
	return codes.FailedPrecondition
}
