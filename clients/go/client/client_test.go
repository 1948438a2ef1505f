// Against the live gateway: RAGLINE_GRPC_ADDR (host:port, plaintext HTTP/2) and
// RAGLINE_API_KEY. tests/e2e/test_go_stubs.py runs these against the suite's stack.
package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ragline/ragline/clients/go/client"
	authv1 "github.com/ragline/ragline/clients/go/ragline/auth/v1"
	embedderv1 "github.com/ragline/ragline/clients/go/ragline/embedder/v1"
	ingestv1 "github.com/ragline/ragline/clients/go/ragline/ingest/v1"
)

func live(t *testing.T, opts ...client.Option) (*client.Client, string) {
	t.Helper()
	addr, key := os.Getenv("RAGLINE_GRPC_ADDR"), os.Getenv("RAGLINE_API_KEY")
	if addr == "" || key == "" {
		t.Skip("RAGLINE_GRPC_ADDR and RAGLINE_API_KEY name the gateway to call")
	}
	opts = append([]client.Option{client.WithInsecure()}, opts...)
	c, err := client.New(context.Background(), addr, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, key
}

func asError(t *testing.T, err error, code codes.Code) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *client.Error, got %T: %v", err, err)
	}
	if e.Code != code || status.Code(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	return e
}

func TestLiveAPIKeyThenJWT(t *testing.T) {
	c, key := live(t)
	ctx := context.Background()
	withKey, _ := live(t, client.WithAPIKey(key))
	if _, err := withKey.Embedder.ListEmbeddingModels(ctx, &embedderv1.ListEmbeddingModelsRequest{}); err != nil {
		t.Fatalf("ListEmbeddingModels with the API key: %v", err)
	}
	tok, err := withKey.Auth.CreateToken(ctx, &authv1.CreateTokenRequest{TtlSeconds: 300})
	if err != nil || tok.GetAccessToken() == "" {
		t.Fatalf("CreateToken: %v %v", tok, err)
	}
	withJWT, _ := live(t, client.WithBearerToken(tok.GetAccessToken()))
	models, err := withJWT.Embedder.ListEmbeddingModels(ctx, &embedderv1.ListEmbeddingModelsRequest{})
	if err != nil || len(models.GetModels()) == 0 {
		t.Fatalf("ListEmbeddingModels with the JWT: %v %v", models, err)
	}
	// No credentials: UNAUTHENTICATED, decoded.
	_, err = c.Embedder.ListEmbeddingModels(ctx, &embedderv1.ListEmbeddingModelsRequest{})
	asError(t, err, codes.Unauthenticated)
	// A forged JWT is refused too.
	forged, _ := live(t, client.WithBearerToken(tok.GetAccessToken()+"x"))
	_, err = forged.Embedder.ListEmbeddingModels(ctx, &embedderv1.ListEmbeddingModelsRequest{})
	asError(t, err, codes.Unauthenticated)
}

func TestLiveNotFoundDecoded(t *testing.T) {
	_, key := live(t)
	c, _ := live(t, client.WithAPIKey(key))
	name := fmt.Sprintf("go-client-missing-%d", time.Now().UnixNano())
	_, err := c.Ingest.GetCollection(context.Background(), &ingestv1.GetCollectionRequest{Collection: name})
	e := asError(t, err, codes.NotFound)
	if e.Reason != "COLLECTION_NOT_FOUND" || e.Domain != "ragline.dev" {
		t.Fatalf("want ErrorInfo COLLECTION_NOT_FOUND from ragline.dev, got %+v", e)
	}
	if !errors.Is(err, &client.Error{Code: codes.NotFound, Reason: "COLLECTION_NOT_FOUND"}) {
		t.Fatalf("errors.Is by code and reason failed on %v", err)
	}
}

func TestLiveInvalidArgumentNamesTheField(t *testing.T) {
	_, key := live(t)
	c, _ := live(t, client.WithAPIKey(key))
	_, err := c.Embedder.ListEmbeddingModels(context.Background(), &embedderv1.ListEmbeddingModelsRequest{PageToken: "not-a-token"})
	e := asError(t, err, codes.InvalidArgument)
	if e.Reason != "INVALID_PAGE_TOKEN" || len(e.FieldViolations) != 1 || e.FieldViolations[0].Field != "page_token" {
		t.Fatalf("want INVALID_PAGE_TOKEN with a page_token violation, got %+v", e)
	}
	if e.FieldViolations[0].Description == "" {
		t.Fatalf("field violation without a description: %+v", e)
	}
}

func TestLiveDefaultDeadline(t *testing.T) {
	_, key := live(t)
	// A default too short for any call: applied when the context has no deadline...
	c, _ := live(t, client.WithAPIKey(key), client.WithTimeout(time.Nanosecond))
	_, err := c.Embedder.ListEmbeddingModels(context.Background(), &embedderv1.ListEmbeddingModelsRequest{})
	asError(t, err, codes.DeadlineExceeded)
	// ...and the caller's own deadline wins over it.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.Embedder.ListEmbeddingModels(ctx, &embedderv1.ListEmbeddingModelsRequest{}); err != nil {
		t.Fatalf("with the caller's deadline: %v", err)
	}
}

func TestLiveWatchJobStreams(t *testing.T) {
	_, key := live(t)
	c, _ := live(t, client.WithAPIKey(key))
	ctx := context.Background()
	collection := fmt.Sprintf("go-client-%d", time.Now().UnixNano())
	started, err := c.Ingest.IngestDocuments(ctx, &ingestv1.IngestDocumentsRequest{
		Collection: collection,
		Documents:  []*ingestv1.DocumentInput{{Title: "Go", Content: "The Go client watches this job until it ends."}},
	})
	if err != nil {
		t.Fatalf("IngestDocuments: %v", err)
	}
	t.Cleanup(func() {
		_, _ = c.Ingest.DeleteCollection(context.Background(), &ingestv1.DeleteCollectionRequest{Collection: collection})
	})
	watch, err := c.Ingest.WatchJob(ctx, &ingestv1.WatchJobRequest{JobId: started.GetJobId()})
	if err != nil {
		t.Fatalf("WatchJob: %v", err)
	}
	var last *ingestv1.Job
	for {
		msg, err := watch.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("WatchJob.Recv: %v", err)
		}
		last = msg.GetJob()
	}
	if last.GetState() != ingestv1.JobState_JOB_STATE_SUCCEEDED || last.GetDocumentsDone() != 1 {
		t.Fatalf("the stream should end on the finished job, got %v", last)
	}
	// A stream's error is decoded too.
	missing, err := c.Ingest.WatchJob(ctx, &ingestv1.WatchJobRequest{JobId: "no-such-job"})
	if err == nil {
		_, err = missing.Recv()
	}
	asError(t, err, codes.NotFound)
}

func TestLiveRateLimitCarriesRetryDelay(t *testing.T) {
	_, key := live(t)
	admin, _ := live(t, client.WithAPIKey(key))
	ctx := context.Background()
	created, err := admin.Auth.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{
		Tenant: fmt.Sprintf("go-limited-%d", time.Now().UnixNano()),
		Scopes: []string{"ingest"},
		Tier:   "free",
	})
	if err != nil {
		t.Fatalf("CreateApiKey: %v", err)
	}
	limited, _ := live(t, client.WithAPIKey(created.GetKey()))
	// Free tier: 10 ingests a minute per key; a minute boundary may reset the window once.
	for i := 0; i < 25; i++ {
		_, err = limited.Ingest.IngestDocuments(ctx, &ingestv1.IngestDocumentsRequest{
			Collection: "limited",
			Documents:  []*ingestv1.DocumentInput{{Content: "A tiny document."}},
		})
		if err != nil {
			break
		}
	}
	e := asError(t, err, codes.ResourceExhausted)
	if e.Reason != "RATE_LIMITED" || e.RetryDelay <= 0 || e.RetryDelay > time.Minute || !e.Temporary() {
		t.Fatalf("want RATE_LIMITED with a retry delay of at most a minute, got %+v (delay %s, metadata %v)", e, e.RetryDelay, e.Metadata)
	}
}
