// Calls the live gateway over gRPC with the generated stubs, as a Go client would:
// RAGLINE_GRPC_ADDR (host:port of the gateway, plaintext HTTP/2) and RAGLINE_API_KEY.
// tests/e2e/test_go_stubs.py runs it against the suite's stack.
package ragline_test

import (
	"context"
	"os"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	embedderv1 "github.com/ragline/ragline/clients/go/ragline/embedder/v1"
	ingestv1 "github.com/ragline/ragline/clients/go/ragline/ingest/v1"
)

func dial(t *testing.T) (*grpc.ClientConn, string) {
	t.Helper()
	addr, key := os.Getenv("RAGLINE_GRPC_ADDR"), os.Getenv("RAGLINE_API_KEY")
	if addr == "" || key == "" {
		t.Skip("RAGLINE_GRPC_ADDR and RAGLINE_API_KEY name the gateway to call")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, key
}

func withKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

func TestListEmbeddingModelsWithTheKey(t *testing.T) {
	conn, key := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := embedderv1.NewEmbedderServiceClient(conn)
	reply, err := client.ListEmbeddingModels(withKey(ctx, key), &embedderv1.ListEmbeddingModelsRequest{PageSize: 1})
	if err != nil {
		t.Fatalf("ListEmbeddingModels: %v", err)
	}
	if len(reply.GetModels()) != 1 || reply.GetNextPageToken() == "" {
		t.Fatalf("page of 1 with a next page expected, got %v", reply)
	}
	first := reply.GetModels()[0]
	if first.GetName() == "" || first.GetProvider() == embedderv1.EmbeddingProvider_EMBEDDING_PROVIDER_UNSPECIFIED {
		t.Fatalf("model without name or provider: %v", first)
	}
	rest, err := client.ListEmbeddingModels(withKey(ctx, key), &embedderv1.ListEmbeddingModelsRequest{
		PageToken: reply.GetNextPageToken(),
	})
	if err != nil {
		t.Fatalf("ListEmbeddingModels, next page: %v", err)
	}
	for _, m := range rest.GetModels() {
		if m.GetName() == first.GetName() {
			t.Fatalf("%s on both pages", m.GetName())
		}
	}
}

func TestNotFoundCarriesErrorInfo(t *testing.T) {
	conn, key := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := ingestv1.NewIngestServiceClient(conn)
	name := "go-missing-" + time.Now().Format("150405.000000")
	_, err := client.GetCollection(withKey(ctx, key), &ingestv1.GetCollectionRequest{Collection: name})
	st := status.Convert(err)
	if st.Code() != codes.NotFound {
		t.Fatalf("want NOT_FOUND, got %v", err)
	}
	var info *errdetails.ErrorInfo
	for _, detail := range st.Details() {
		if d, ok := detail.(*errdetails.ErrorInfo); ok {
			info = d
		}
	}
	if info == nil || info.GetReason() != "COLLECTION_NOT_FOUND" {
		t.Fatalf("want ErrorInfo COLLECTION_NOT_FOUND in the details, got %v", st.Details())
	}
}

func TestWithoutAKeyIsUnauthenticated(t *testing.T) {
	conn, _ := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := embedderv1.NewEmbedderServiceClient(conn).ListEmbeddingModels(ctx, &embedderv1.ListEmbeddingModelsRequest{})
	if code := status.Code(err); code != codes.Unauthenticated {
		t.Fatalf("want UNAUTHENTICATED, got %v", err)
	}
}
