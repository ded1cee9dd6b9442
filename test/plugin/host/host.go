// Command tvm-host is a conformance host for the tvm Vault plugin. It plays
// Vault's part with HashiCorp's go-plugin client library:
// it launches the plugin file as Vault does (magic cookie, protocol versions,
// AutoMTLS), serves an in-memory Storage and a SystemView over the broker with
// TLS that requires and verifies the plugin's client certificate, and drives
// pb.Backend like Vault's router and expiration manager do.
//
// Modes (-mode):
//
//	conformance   run the checklist, print "PASS name" / "FAIL name: why", exit 1 on any failure
//	serve         set up, then answer JSON-line commands on stdin (see serve.go)
//	no-client-cert    dial the plugin without a client certificate; it must refuse and keep serving
//	wrong-broker-ca   serve the broker with a CA that does not know the plugin's certificate;
//	                  Setup must fail with a clear error and the plugin keep serving
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/hashicorp/vault/sdk/plugin/pb"
)

var handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "VAULT_BACKEND_PLUGIN",
	MagicCookieValue: "6669da05-b1c8-4f49-97d9-c8e5bed98e20",
}

// backendPlugin is the host side of the "backend" plugin: it only builds clients.
type backendPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (backendPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the host does not serve the backend")
}

func (backendPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return &remote{broker: broker, conn: conn, backend: pb.NewBackendClient(conn)}, nil
}

// remote is a dispensed plugin: the connection and the broker.
type remote struct {
	broker  *plugin.GRPCBroker
	conn    *grpc.ClientConn
	backend pb.BackendClient
}

// session is one launched plugin process.
type session struct {
	client     *plugin.Client
	config     *plugin.ClientConfig
	remote     *remote
	socketDir  string
	storage    *memStorage
	startup    time.Duration
	brokerPeer *peerRecorder
	brokerSrv  *grpc.Server
	leases     *expiration
	logs       *bytes.Buffer
}

// peerRecorder keeps the client certificates presented on the broker connection.
type peerRecorder struct {
	mu    sync.Mutex
	certs [][]byte
}

func (p *peerRecorder) record(raw [][]byte, _ [][]*x509.Certificate) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(raw) > 0 {
		p.certs = append(p.certs, raw[0])
	}
	return nil
}

func (p *peerRecorder) seen() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.certs...)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// launch starts the plugin exactly as Vault does and dispenses the backend.
func launch(pluginPath string, versions []int, extraEnv []string, verbose bool) (*session, error) {
	socketDir, err := os.MkdirTemp("", "tvm-host-")
	if err != nil {
		return nil, err
	}
	sets := map[int]plugin.PluginSet{}
	for _, v := range versions {
		sets[v] = plugin.PluginSet{"backend": backendPlugin{}}
	}
	cmd := exec.Command(pluginPath)
	cmd.Env = append(cmd.Env, "PLUGIN_UNIX_SOCKET_DIR="+socketDir)
	cmd.Env = append(cmd.Env, extraEnv...)
	logs := &bytes.Buffer{}
	var out = io.Discard
	if verbose {
		out = os.Stderr
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "tvm-host",
		Level:  hclog.Trace,
		Output: &syncBuffer{buf: logs},
	})
	if verbose {
		logger = hclog.New(&hclog.LoggerOptions{Name: "tvm-host", Level: hclog.Trace, Output: out})
	}
	config := &plugin.ClientConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: sets,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           logger,
		StartTimeout:     20 * time.Second,
	}
	client := plugin.NewClient(config)
	started := time.Now()
	proto, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, err
	}
	raw, err := proto.Dispense("backend")
	if err != nil {
		client.Kill()
		return nil, err
	}
	return &session{
		client:     client,
		config:     config,
		remote:     raw.(*remote),
		socketDir:  socketDir,
		storage:    newMemStorage(),
		startup:    time.Since(started),
		brokerPeer: &peerRecorder{},
		leases:     newExpiration(),
		logs:       logs,
	}, nil
}

// hardenedTLS is the broker server's TLS: the host's AutoMTLS certificate,
// requiring a client certificate that chains to the plugin's handshake
// certificate, as go-plugin's own broker does; served here so that the
// checklist can see the certificate the plugin presents.
func (s *session) hardenedTLS(clientCAs *x509.CertPool) *tls.Config {
	cfg := s.config.TLSConfig.Clone()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	if clientCAs != nil {
		cfg.ClientCAs = clientCAs
	} else {
		cfg.ClientCAs = s.config.TLSConfig.RootCAs
	}
	cfg.VerifyPeerCertificate = s.brokerPeer.record
	return cfg
}

// serveBroker accepts a broker id and serves Storage and SystemView on it.
func (s *session) serveBroker(clientCAs *x509.CertPool) (uint32, error) {
	id := s.remote.broker.NextId()
	listener, err := s.remote.broker.Accept(id)
	if err != nil {
		return 0, err
	}
	srv := grpcServer(s.hardenedTLS(clientCAs))
	pb.RegisterStorageServer(srv, s.storage)
	pb.RegisterSystemViewServer(srv, &systemView{})
	s.brokerSrv = srv
	go srv.Serve(listener)
	return id, nil
}

func grpcServer(cfg *tls.Config) *grpc.Server {
	return grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
}

// setup does what Vault's mount does: broker, Setup, Initialize.
func (s *session) setup(ctx context.Context) (*pb.SetupReply, error) {
	id, err := s.serveBroker(nil)
	if err != nil {
		return nil, err
	}
	return s.remote.backend.Setup(ctx, &pb.SetupArgs{BrokerID: id, Config: map[string]string{"plugin_name": "tvm"}, BackendUUID: "00000000-0000-4000-8000-000000000001"})
}

// serverCert returns the certificate the plugin's server presents.
func (s *session) serverCert(ctx context.Context) ([]byte, error) {
	var p peer.Peer
	if _, err := s.remote.backend.Type(ctx, &pb.Empty{}, grpc.Peer(&p)); err != nil {
		return nil, err
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return nil, errors.New("the plugin's connection is not TLS")
	}
	return info.State.PeerCertificates[0].Raw, nil
}

func (s *session) socketPath() string {
	if rc := s.client.ReattachConfig(); rc != nil && rc.Addr != nil {
		return rc.Addr.String()
	}
	return ""
}

func (s *session) close() {
	s.client.Kill()
	if s.brokerSrv != nil {
		s.brokerSrv.Stop()
	}
	os.RemoveAll(s.socketDir)
}

func main() {
	mode := flag.String("mode", "conformance", "conformance | serve | no-client-cert | wrong-broker-ca")
	pluginPath := flag.String("plugin", "", "path of the bundled plugin file")
	verbose := flag.Bool("v", false, "log go-plugin's client to stderr")
	flag.Parse()
	if *pluginPath == "" {
		fmt.Fprintln(os.Stderr, "tvm-host: -plugin is required")
		os.Exit(2)
	}
	abs, _ := filepath.Abs(*pluginPath)
	var code int
	switch *mode {
	case "conformance":
		code = runConformance(abs, *verbose)
	case "serve":
		code = runServe(abs, *verbose)
	case "no-client-cert":
		code = runNoClientCert(abs, *verbose)
	case "wrong-broker-ca":
		code = runWrongBrokerCA(abs, *verbose)
	default:
		fmt.Fprintf(os.Stderr, "tvm-host: unknown mode %q\n", *mode)
		code = 2
	}
	os.Exit(code)
}

// dialPlain dials the plugin's socket with TLS but no client certificate.
func dialPlain(ctx context.Context, path string, roots *x509.CertPool) (*grpc.ClientConn, error) {
	creds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "localhost"})
	return grpc.DialContext(ctx, path,
		grpc.WithTransportCredentials(creds),
		grpc.WithBlock(),
		grpc.WithDialer(func(addr string, timeout time.Duration) (net.Conn, error) {
			return net.DialTimeout("unix", addr, timeout)
		}))
}
