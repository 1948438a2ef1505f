// The retry and deadline plumbing against an in-process gRPC server on loopback, which
// can fail on purpose in ways the live stack cannot be made to.
package client_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ragline/ragline/clients/go/client"
	embedderv1 "github.com/ragline/ragline/clients/go/ragline/embedder/v1"
)

// flaky fails its first `failures` calls with UNAVAILABLE and a RetryInfo, then answers.
type flaky struct {
	embedderv1.UnimplementedEmbedderServiceServer
	failures int32
	calls    atomic.Int32
	seen     chan callSeen
}

type callSeen struct {
	auth        []string
	hasDeadline bool
}

func (f *flaky) ListEmbeddingModels(ctx context.Context, _ *embedderv1.ListEmbeddingModelsRequest) (*embedderv1.ListEmbeddingModelsResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	_, hasDeadline := ctx.Deadline()
	select {
	case f.seen <- callSeen{auth: md.Get("authorization"), hasDeadline: hasDeadline}:
	default:
	}
	if f.calls.Add(1) <= f.failures {
		st, _ := status.New(codes.Unavailable, "draining").WithDetails(
			&errdetails.ErrorInfo{Reason: "UNAVAILABLE", Domain: "ragline.dev"},
			&errdetails.RetryInfo{RetryDelay: durationpb.New(20 * time.Millisecond)},
		)
		return nil, st.Err()
	}
	return &embedderv1.ListEmbeddingModelsResponse{Models: []*embedderv1.EmbeddingModel{{Name: "m"}}}, nil
}

func serve(t *testing.T, f *flaky) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	embedderv1.RegisterEmbedderServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestRetryHonoursRetryInfo(t *testing.T) {
	f := &flaky{failures: 2, seen: make(chan callSeen, 8)}
	c, err := client.New(context.Background(), serve(t, f), client.WithInsecure(),
		client.WithAPIKey("rl_test_k"), client.WithRetry(client.RetryPolicy{MaxAttempts: 3}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Embedder.ListEmbeddingModels(context.Background(), &embedderv1.ListEmbeddingModelsRequest{}); err != nil {
		t.Fatalf("third attempt should succeed: %v", err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("want 3 attempts, got %d", n)
	}
	for i := 0; i < 3; i++ {
		s := <-f.seen
		if len(s.auth) != 1 || s.auth[0] != "Bearer rl_test_k" || !s.hasDeadline {
			t.Fatalf("attempt %d: want the key and a deadline on the wire, got %+v", i+1, s)
		}
	}
}

func TestRetryGivesUpWithTheDecodedError(t *testing.T) {
	f := &flaky{failures: 100, seen: make(chan callSeen, 8)}
	c, err := client.New(context.Background(), serve(t, f), client.WithInsecure(),
		client.WithRetry(client.RetryPolicy{MaxAttempts: 2}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Embedder.ListEmbeddingModels(context.Background(), &embedderv1.ListEmbeddingModelsRequest{})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != codes.Unavailable || e.RetryDelay != 20*time.Millisecond || !e.Temporary() {
		t.Fatalf("want UNAVAILABLE with a 20ms RetryInfo, got %#v", err)
	}
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("want 2 attempts, got %d", n)
	}
}

func TestNoRetryUnlessAsked(t *testing.T) {
	f := &flaky{failures: 1, seen: make(chan callSeen, 8)}
	c, err := client.New(context.Background(), serve(t, f), client.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Embedder.ListEmbeddingModels(context.Background(), &embedderv1.ListEmbeddingModelsRequest{})
	if status.Code(err) != codes.Unavailable || f.calls.Load() != 1 {
		t.Fatalf("want one UNAVAILABLE attempt, got %v after %d", err, f.calls.Load())
	}
}

func TestCredentialNeedsTLSUnlessInsecure(t *testing.T) {
	f := &flaky{seen: make(chan callSeen, 8)}
	// Default transport is TLS: a plaintext server cannot complete the handshake, and the
	// key is never sent in clear.
	c, err := client.New(context.Background(), serve(t, f), client.WithAPIKey("rl_test_k"),
		client.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Embedder.ListEmbeddingModels(context.Background(), &embedderv1.ListEmbeddingModelsRequest{})
	if err == nil || f.calls.Load() != 0 {
		t.Fatalf("a TLS client reached a plaintext server: %v", err)
	}
}
