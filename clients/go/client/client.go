// Package client is a thin Go client for the ragline v1 gRPC API.
//
// It dials the gateway once and hands out the generated service clients with the
// caller's credentials attached to every call (API key or JWT), a default deadline for
// calls whose context has none, errors decoded into *Error (usable with errors.As), and,
// if asked, retries of UNAVAILABLE / RESOURCE_EXHAUSTED that honour the server's RetryInfo.
//
//	c, err := client.New(ctx, "localhost:8000", client.WithAPIKey(key), client.WithInsecure())
//	if err != nil { ... }
//	defer c.Close()
//	hits, err := c.Retriever.Search(ctx, &retrieverv1.SearchRequest{Collection: "docs", Query: "q"})
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	analyticsv1 "github.com/ragline/ragline/clients/go/ragline/analytics/v1"
	authv1 "github.com/ragline/ragline/clients/go/ragline/auth/v1"
	chatv1 "github.com/ragline/ragline/clients/go/ragline/chat/v1"
	embedderv1 "github.com/ragline/ragline/clients/go/ragline/embedder/v1"
	ingestv1 "github.com/ragline/ragline/clients/go/ragline/ingest/v1"
	retrieverv1 "github.com/ragline/ragline/clients/go/ragline/retriever/v1"
	systemv1 "github.com/ragline/ragline/clients/go/ragline/system/v1"
)

// APIVersion is the API this client speaks; Version is the client's own release, whose major
// is the API's (as the Python and TypeScript SDKs: 1.x speaks v1).
const (
	APIVersion = "v1"
	Version    = "1.0.0"
)

// DefaultTimeout bounds a call whose context has no deadline, unless WithTimeout says otherwise.
const DefaultTimeout = 30 * time.Second

// Client holds one connection to the gateway and a typed client per service. It is safe
// for concurrent use; Close it when done.
type Client struct {
	Embedder  embedderv1.EmbedderServiceClient
	Retriever retrieverv1.RetrieverServiceClient
	Ingest    ingestv1.IngestServiceClient
	Chat      chatv1.ChatServiceClient
	Auth      authv1.AuthServiceClient
	System    systemv1.SystemServiceClient
	Analytics analyticsv1.AnalyticsServiceClient

	conn *grpc.ClientConn
}

type options struct {
	token     string
	tlsConfig *tls.Config
	plaintext bool
	timeout   time.Duration
	retry     *RetryPolicy
	dialOpts  []grpc.DialOption
}

// Option configures New.
type Option func(*options)

// WithAPIKey sends the key (rl_live_… / rl_test_…) as `Authorization: Bearer <key>` on every call.
func WithAPIKey(key string) Option { return func(o *options) { o.token = key } }

// WithBearerToken sends a JWT (from Auth.CreateToken) as `Authorization: Bearer <jwt>` on
// every call. The gateway verifies it without calling the auth service.
func WithBearerToken(jwt string) Option { return func(o *options) { o.token = jwt } }

// WithTLS dials with TLS using cfg (nil: the system roots). TLS is the default.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.tlsConfig, o.plaintext = cfg, false
	}
}

// WithInsecure dials plaintext HTTP/2, as `make run` serves on localhost:8000. Credentials
// are then sent in clear text: only for a gateway on the same host.
func WithInsecure() Option { return func(o *options) { o.plaintext, o.tlsConfig = true, nil } }

// WithTimeout sets the deadline given to a call whose context has none (default
// DefaultTimeout; 0 leaves such calls unbounded). A context's own deadline always wins.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithRetry retries unary calls that fail with UNAVAILABLE or RESOURCE_EXHAUSTED (see
// RetryPolicy). Off by default: a retried write is only safe when the method is
// idempotent or carries an idempotency key, which the caller knows and this client does not.
func WithRetry(p RetryPolicy) Option { return func(o *options) { o.retry = &p } }

// WithDialOptions passes extra grpc.DialOptions (interceptors, a custom dialer, …).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// New connects to the gateway at target ("host:port") lazily: the first call dials, so New
// fails only on bad options. ctx is reserved for future eager checks and is not retained.
func New(_ context.Context, target string, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if target == "" {
		return nil, errors.New("ragline client: empty target")
	}
	if o.timeout < 0 {
		return nil, fmt.Errorf("ragline client: negative timeout %s", o.timeout)
	}
	var transport credentials.TransportCredentials
	if o.plaintext {
		transport = insecure.NewCredentials()
	} else {
		cfg := o.tlsConfig
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		transport = credentials.NewTLS(cfg)
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithUserAgent("ragline-go/" + Version),
		// Outermost first: the deadline covers every retry, errors are decoded last.
		grpc.WithChainUnaryInterceptor(
			errorUnaryInterceptor,
			deadlineUnaryInterceptor(o.timeout),
			retryUnaryInterceptor(o.retry),
		),
		grpc.WithChainStreamInterceptor(errorStreamInterceptor, deadlineStreamInterceptor(o.timeout)),
	}
	if o.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer{token: o.token, secure: !o.plaintext}))
	}
	dial = append(dial, o.dialOpts...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("ragline client: %w", err)
	}
	return &Client{
		Embedder:  embedderv1.NewEmbedderServiceClient(conn),
		Retriever: retrieverv1.NewRetrieverServiceClient(conn),
		Ingest:    ingestv1.NewIngestServiceClient(conn),
		Chat:      chatv1.NewChatServiceClient(conn),
		Auth:      authv1.NewAuthServiceClient(conn),
		System:    systemv1.NewSystemServiceClient(conn),
		Analytics: analyticsv1.NewAnalyticsServiceClient(conn),
		conn:      conn,
	}, nil
}

// Conn is the underlying connection, for stubs this package does not list.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection; calls in flight fail with CANCELED.
func (c *Client) Close() error { return c.conn.Close() }

// bearer attaches the credential per call (grpc.PerRPCCredentials), so one connection can
// serve any number of goroutines and the token never sits in a context a caller logs.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity refuses to send a credential over plaintext unless the caller
// chose WithInsecure explicitly.
func (b bearer) RequireTransportSecurity() bool { return b.secure }
