package client

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// RetryPolicy says how WithRetry retries a unary call that failed with UNAVAILABLE or
// RESOURCE_EXHAUSTED. The server's RetryInfo (or retry-after) delay is used when it sent
// one; otherwise the wait doubles from InitialBackoff up to MaxBackoff, with jitter. A
// retry never outlives the call's deadline: when the wait would pass it, the last error
// is returned at once.
type RetryPolicy struct {
	MaxAttempts    int           // attempts in all, the first included (default 3)
	InitialBackoff time.Duration // default 100 ms
	MaxBackoff     time.Duration // default 5 s
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 3
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 5 * time.Second
	}
	return p
}

func withDefaultDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || d == 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

func deadlineUnaryInterceptor(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		ctx, cancel := withDefaultDeadline(ctx, d)
		defer cancel()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// A stream's default deadline is released when the stream ends (its last RecvMsg).
func deadlineStreamInterceptor(d time.Duration) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		ctx, cancel := withDefaultDeadline(ctx, d)
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			cancel()
			return nil, err
		}
		return &cancelOnEnd{ClientStream: cs, cancel: cancel}, nil
	}
}

type cancelOnEnd struct {
	grpc.ClientStream
	cancel context.CancelFunc
}

func (s *cancelOnEnd) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.cancel()
	}
	return err
}

// callMetadata collects headers and trailers: a refusal from the gateway itself (ext_authz,
// rate limit) is a trailers-only reply whose retry-after may sit in either.
func callMetadata(opts []grpc.CallOption) ([]grpc.CallOption, func() metadata.MD) {
	var header, trailer metadata.MD
	opts = append(opts, grpc.Header(&header), grpc.Trailer(&trailer))
	return opts, func() metadata.MD { return metadata.Join(header, trailer) }
}

func errorUnaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	opts, md := callMetadata(opts)
	err := invoker(ctx, method, req, reply, cc, opts...)
	return DecodeError(err, md())
}

func errorStreamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, DecodeError(err, nil)
	}
	return &decodingStream{ClientStream: cs}, nil
}

type decodingStream struct{ grpc.ClientStream }

func (s *decodingStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	return DecodeError(err, s.Trailer())
}

func (s *decodingStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err == nil || errors.Is(err, io.EOF) {
		return err // io.EOF: the real status comes from RecvMsg
	}
	return DecodeError(err, nil)
}

func retryUnaryInterceptor(policy *RetryPolicy) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if policy == nil {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		p := policy.withDefaults()
		backoff := p.InitialBackoff
		for attempt := 1; ; attempt++ {
			callOpts, md := callMetadata(opts)
			err := DecodeError(invoker(ctx, method, req, reply, cc, callOpts...), md())
			var e *Error
			if err == nil || attempt >= p.MaxAttempts || !errors.As(err, &e) || !retryable(e.Code) {
				return err
			}
			wait := e.RetryDelay
			if wait == 0 {
				// Full jitter: replicas that failed together do not come back together.
				wait = time.Duration(rand.Int64N(int64(backoff)) + 1)
				backoff = min(2*backoff, p.MaxBackoff)
			}
			if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
				return err
			}
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return err
			case <-timer.C:
			}
		}
	}
}

func retryable(c codes.Code) bool {
	return c == codes.Unavailable || c == codes.ResourceExhausted
}
