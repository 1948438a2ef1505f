package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// FieldViolation names one bad field of a request (google.rpc.BadRequest).
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a failed call with the server's google.rpc.Status details decoded. Every error
// a Client's calls return is one (find it with errors.As); status.Code(err) works too.
type Error struct {
	Code    codes.Code
	Message string
	// Reason is ErrorInfo.reason (UPPER_SNAKE, e.g. COLLECTION_NOT_FOUND); Domain is
	// ErrorInfo.domain ("ragline.dev" for the services); Metadata is ErrorInfo.metadata.
	Reason   string
	Domain   string
	Metadata map[string]string
	// FieldViolations are the BadRequest details: which request fields were wrong.
	FieldViolations []FieldViolation
	// RetryDelay is how long the server asks the caller to wait (RetryInfo, else the
	// Retry-After or x-ratelimit-reset header in seconds); zero when it said nothing.
	RetryDelay time.Duration

	status *status.Status
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ragline: %s", e.Code)
	if e.Reason != "" {
		fmt.Fprintf(&b, " %s", e.Reason)
	}
	fmt.Fprintf(&b, ": %s", e.Message)
	for _, v := range e.FieldViolations {
		fmt.Fprintf(&b, " [%s: %s]", v.Field, v.Description)
	}
	return b.String()
}

// GRPCStatus keeps status.Code / status.FromError working on a wrapped error.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Is matches another *Error by code and reason, so errors.Is(err, &client.Error{Code:
// codes.NotFound, Reason: "COLLECTION_NOT_FOUND"}) reads as intended (an empty Reason
// matches any).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.Reason == "" || t.Reason == e.Reason)
}

// Temporary tells whether waiting and trying again may succeed.
func (e *Error) Temporary() bool {
	return e.Code == codes.Unavailable || e.Code == codes.ResourceExhausted
}

// DecodeError turns any error from a gRPC call into *Error (nil stays nil; an error that
// carries no gRPC status is returned unchanged). Trailer may be nil; its retry-after is the
// fallback for a RetryInfo the server did not send.
func DecodeError(err error, trailer metadata.MD) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			e.Reason, e.Domain, e.Metadata = d.GetReason(), d.GetDomain(), d.GetMetadata()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.FieldViolations = append(e.FieldViolations, FieldViolation{v.GetField(), v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				e.RetryDelay = d.GetRetryDelay().AsDuration()
			}
		}
	}
	// The gateway's own rate-limit reply to a native gRPC call has no details: its headers
	// say it (x-envoy-ratelimited, and Retry-After or x-ratelimit-reset in seconds).
	if e.Reason == "" && e.Code == codes.ResourceExhausted && len(trailer.Get("x-envoy-ratelimited")) > 0 {
		e.Reason = "RATE_LIMITED"
	}
	for _, header := range []string{"retry-after", "x-ratelimit-reset"} {
		if e.RetryDelay == 0 {
			e.RetryDelay = seconds(trailer.Get(header))
		}
	}
	return e
}

func seconds(values []string) time.Duration {
	for _, v := range values {
		if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs > 0 {
			return time.Duration(secs) * time.Second
		}
	}
	return 0
}
