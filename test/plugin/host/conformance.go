package main

// The conformance checklist: what Vault relies on, checked against the
// bundled plugin through go-plugin's own client.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hashicorp/vault/sdk/helper/pluginutil"
	"github.com/hashicorp/vault/sdk/plugin/pb"
)

type checker struct {
	failed int
	passed int
}

func (c *checker) check(name string, err error) bool {
	if err != nil {
		c.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return false
	}
	c.passed++
	fmt.Printf("PASS %s\n", name)
	return true
}

func jsonObject(text, what string) (map[string]interface{}, error) {
	if text == "" {
		return nil, fmt.Errorf("%s is the empty string", what)
	}
	var v map[string]interface{}
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object: %v (%q)", what, err, text)
	}
	return v, nil
}

func okReply(reply *pb.HandleRequestReply, err error) error {
	if err != nil {
		return err
	}
	if reply.Err != nil {
		return fmt.Errorf("protocol error type %d: %s", reply.Err.ErrType, reply.Err.ErrMsg)
	}
	if reply.Response != nil {
		data, jerr := jsonObject(reply.Response.Data, "response data")
		if jerr != nil {
			return jerr
		}
		if msg, ok := data["error"]; ok {
			return fmt.Errorf("error response: %v", msg)
		}
	}
	return nil
}

// checkSecret verifies a returned secret: JSON internal data, exact ns ttls, issue_time.
func checkSecret(reply *pb.HandleRequestReply, wantTTL, wantMax time.Duration, wantIssue *time.Time) error {
	if reply.Response == nil || reply.Response.Secret == nil {
		return fmt.Errorf("no secret in the response")
	}
	sec := reply.Response.Secret
	internal, err := jsonObject(sec.InternalData, "internal_data")
	if err != nil {
		return err
	}
	if internal["secret_type"] == nil {
		return fmt.Errorf("internal_data has no secret_type")
	}
	lo := sec.LeaseOptions
	if lo == nil {
		return fmt.Errorf("no lease options")
	}
	if time.Duration(lo.TTL) != wantTTL {
		return fmt.Errorf("TTL is %d ns, want exactly %d", lo.TTL, int64(wantTTL))
	}
	if wantMax > 0 && time.Duration(lo.MaxTTL) != wantMax {
		return fmt.Errorf("MaxTTL is %d ns, want exactly %d", lo.MaxTTL, int64(wantMax))
	}
	if !lo.Renewable {
		return fmt.Errorf("not renewable")
	}
	if lo.IssueTime == nil {
		return fmt.Errorf("issue_time is not set")
	}
	issued := lo.IssueTime.AsTime()
	if wantIssue != nil {
		if d := issued.Sub(*wantIssue); d > time.Millisecond || d < -time.Millisecond {
			return fmt.Errorf("issue_time %s, want the lease's %s", issued, *wantIssue)
		}
	} else if d := time.Since(issued); d < -5*time.Second || d > 30*time.Second {
		return fmt.Errorf("issue_time %s is not now", issued)
	}
	return nil
}

func runConformance(pluginPath string, verbose bool) int {
	c := &checker{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	s, err := launch(pluginPath, []int{3, 4, 5}, nil, verbose)
	if !c.check("launch through go-plugin with AutoMTLS (magic cookie, versions 3,4,5 offered)", err) {
		return 1
	}
	stderr := &bytes.Buffer{}
	_ = stderr
	defer s.close()
	fmt.Printf("INFO startup_ms %.1f\n", float64(s.startup)/1e6)

	c.check("negotiated protocol version 5", func() error {
		if v := s.client.NegotiatedVersion(); v != 5 {
			return fmt.Errorf("negotiated %d", v)
		}
		return nil
	}())
	socket := s.socketPath()
	c.check("listens on a unix socket in PLUGIN_UNIX_SOCKET_DIR", func() error {
		if !strings.HasPrefix(socket, s.socketDir+"/") {
			return fmt.Errorf("socket %q is not in %q", socket, s.socketDir)
		}
		if fi, err := os.Stat(socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("%q is not a socket", socket)
		}
		return nil
	}())
	c.check("health: service plugin is SERVING (go-plugin Ping)", func() error {
		proto, err := s.client.Client()
		if err != nil {
			return err
		}
		return proto.Ping()
	}())
	c.check("Type is 1 (a secrets engine)", func() error {
		r, err := s.remote.backend.Type(ctx, &pb.Empty{})
		if err != nil {
			return err
		}
		if r.Type != 1 {
			return fmt.Errorf("type %d", r.Type)
		}
		return nil
	}())
	c.check("multiplexing answered as not supported", func() error {
		r, err := pluginutil.NewPluginMultiplexingClient(s.remote.conn).MultiplexingSupport(ctx, &pluginutil.MultiplexingSupportRequest{})
		if err != nil {
			return err
		}
		if r.Supported {
			return fmt.Errorf("claims multiplexing support")
		}
		return nil
	}())
	c.check("HandleRequest before Setup is refused, not a crash", func() error {
		_, err := s.remote.backend.HandleRequest(ctx, &pb.HandleRequestArgs{Request: newRequest("read", "config", "null")})
		if status.Code(err) != codes.FailedPrecondition {
			return fmt.Errorf("got %v, want FailedPrecondition", err)
		}
		return nil
	}())

	setup, err := s.setup(ctx)
	c.check("Setup over the broker (Storage and SystemView served with client-cert TLS)", func() error {
		if err != nil {
			return err
		}
		if setup.Err != "" {
			return fmt.Errorf("setup error: %s", setup.Err)
		}
		return nil
	}())
	c.check("the plugin presents its handshake certificate on the broker connection", func() error {
		server, err := s.serverCert(ctx)
		if err != nil {
			return err
		}
		seen := s.brokerPeer.seen()
		if len(seen) == 0 {
			return fmt.Errorf("no client certificate was presented")
		}
		for _, raw := range seen {
			if !bytes.Equal(raw, server) {
				return fmt.Errorf("the broker client certificate differs from the handshake certificate")
			}
		}
		cert, err := x509.ParseCertificate(server)
		if err != nil {
			return err
		}
		if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "localhost" || !cert.IsCA {
			return fmt.Errorf("certificate SAN %v CA %v", cert.DNSNames, cert.IsCA)
		}
		hasClient, hasServer := false, false
		for _, u := range cert.ExtKeyUsage {
			hasClient = hasClient || u == x509.ExtKeyUsageClientAuth
			hasServer = hasServer || u == x509.ExtKeyUsageServerAuth
		}
		if !hasClient || !hasServer {
			return fmt.Errorf("extended key usage lacks client or server auth")
		}
		return nil
	}())
	c.check("Initialize", func() error {
		r, err := s.remote.backend.Initialize(ctx, &pb.InitializeArgs{})
		if err != nil {
			return err
		}
		if r.Err != nil {
			return fmt.Errorf("%s", r.Err.ErrMsg)
		}
		return nil
	}())
	c.check("SpecialPaths: jwks, .well-known/* and revocations unauthenticated", func() error {
		r, err := s.remote.backend.SpecialPaths(ctx, &pb.Empty{})
		if err != nil {
			return err
		}
		got := strings.Join(r.Paths.GetUnauthenticated(), ",")
		for _, want := range []string{"jwks", ".well-known/*", "revocations"} {
			if !strings.Contains(","+got+",", ","+want+",") {
				return fmt.Errorf("unauthenticated %q lacks %q", got, want)
			}
		}
		return nil
	}())

	role := map[string]interface{}{"read": []string{"db://orders/*"}, "write": []string{"db://orders/outbox"}, "ttl": "5m", "max_ttl": "1h", "audiences": []string{"orders-api"}}
	c.check("role write (update roles/orders)", okReply(func() (*pb.HandleRequestReply, error) {
		r, _, err := s.request(ctx, "update", "roles/orders", role)
		return r, err
	}()))
	c.check("storage holds what the engine wrote (through the broker)", func() error {
		snap := s.storage.snapshot()
		found := false
		for k, v := range snap {
			if strings.Contains(k, "orders") && strings.Contains(string(v), "db://orders/outbox") {
				found = true
			}
		}
		if !found {
			keys := []string{}
			for k := range snap {
				keys = append(keys, k)
			}
			return fmt.Errorf("no stored role entry; keys %v", keys)
		}
		return nil
	}())
	c.check("existence check on roles/orders", func() error {
		r, err := s.remote.backend.HandleExistenceCheck(ctx, &pb.HandleExistenceCheckArgs{Request: newRequest("create", "roles/orders", "null")})
		if err != nil {
			return err
		}
		if !r.CheckFound || !r.Exists {
			return fmt.Errorf("check_found %v exists %v", r.CheckFound, r.Exists)
		}
		return nil
	}())
	c.check("role read answers JSON data", okReply(func() (*pb.HandleRequestReply, error) {
		r, _, err := s.request(ctx, "read", "roles/orders", nil)
		if err == nil && r.Response == nil {
			return nil, fmt.Errorf("no response")
		}
		return r, err
	}()))

	creds, leaseID, err := s.request(ctx, "read", "creds/orders", nil)
	c.check("creds read: JSON data with a token", func() error {
		if err := okReply(creds, err); err != nil {
			return err
		}
		data, err := jsonObject(creds.Response.Data, "data")
		if err != nil {
			return err
		}
		if tok, _ := data["token"].(string); strings.Count(tok, ".") != 2 {
			return fmt.Errorf("no JWT in data")
		}
		return nil
	}())
	c.check("creds secret: internal_data JSON, TTL 300s and MaxTTL 3600s in exact ns, issue_time set", func() error {
		if creds == nil {
			return fmt.Errorf("no creds")
		}
		return checkSecret(creds, 5*time.Minute, time.Hour, nil)
	}())

	time.Sleep(1100 * time.Millisecond)
	if leaseID != "" {
		le, _ := s.lease(leaseID)
		issued := le.issueTime
		renewed, err := s.renew(ctx, leaseID, 10*time.Minute)
		c.check("renew with increment 600s returns the secret with TTL 600s exactly and the lease's issue_time", func() error {
			if err := okReply(renewed, err); err != nil {
				return err
			}
			return checkSecret(renewed, 10*time.Minute, time.Hour, &issued)
		}())
		c.check("renew returns a fresh token", func() error {
			if renewed == nil || renewed.Response == nil {
				return fmt.Errorf("no response")
			}
			a, _ := jsonObject(creds.Response.Data, "data")
			b, _ := jsonObject(renewed.Response.Data, "data")
			if a["token"] == b["token"] {
				return fmt.Errorf("the same token came back")
			}
			return nil
		}())
		r1, err1 := s.revoke(ctx, leaseID)
		c.check("revoke", okReply(r1, err1))
		r2, err2 := s.revoke(ctx, leaseID)
		c.check("revoke again is idempotent", okReply(r2, err2))
		c.check("a revoked token introspects inactive", func() error {
			a, _ := jsonObject(creds.Response.Data, "data")
			r, _, err := s.request(ctx, "update", "introspect", map[string]interface{}{"token": a["token"]})
			if err := okReply(r, err); err != nil {
				return err
			}
			d, _ := jsonObject(r.Response.Data, "data")
			if d["active"] != false {
				return fmt.Errorf("introspection says %v", d)
			}
			return nil
		}())
	}

	c.check("rollback is answered", okReply(func() (*pb.HandleRequestReply, error) {
		r, _, err := s.request(ctx, "rollback", "", map[string]interface{}{"immediate": false})
		return r, err
	}()))
	c.check("help is answered with JSON help text", func() error {
		r, _, err := s.request(ctx, "help", "creds/orders", nil)
		if err := okReply(r, err); err != nil {
			return err
		}
		d, _ := jsonObject(r.Response.Data, "data")
		if h, _ := d["help"].(string); h == "" {
			return fmt.Errorf("no help text")
		}
		return nil
	}())
	c.check("unauthenticated jwks read answers JSON", okReply(func() (*pb.HandleRequestReply, error) {
		r, _, err := s.request(ctx, "read", "jwks", nil)
		return r, err
	}()))
	c.check("unknown path answers the UnsupportedPath protocol error", func() error {
		r, _, err := s.request(ctx, "read", "no/such/path", nil)
		if err != nil {
			return err
		}
		if r.Err == nil || r.Err.ErrType != 6 {
			return fmt.Errorf("got %+v", r.Err)
		}
		return nil
	}())
	c.check("unknown operation answers UnsupportedOperation", func() error {
		r, _, err := s.request(ctx, "patch", "roles/orders", nil)
		if err != nil {
			return err
		}
		if r.Err == nil || r.Err.ErrType != 5 {
			return fmt.Errorf("got %+v", r.Err)
		}
		return nil
	}())
	c.check("malformed request data: a clear 400-style error response, no crash", func() error {
		r, _, err := s.requestRaw(ctx, "update", "roles/bad", "{not json")
		if err != nil {
			return err
		}
		if r.Response == nil {
			return fmt.Errorf("no error response: %+v", r.Err)
		}
		d, err := jsonObject(r.Response.Data, "data")
		if err != nil {
			return err
		}
		if msg, _ := d["error"].(string); !strings.Contains(msg, "malformed") {
			return fmt.Errorf("error %q", msg)
		}
		return nil
	}())
	c.check("caller mistakes answer an error response naming the field", func() error {
		r, _, err := s.request(ctx, "update", "roles/bad", map[string]interface{}{"ttl": "forever"})
		if err != nil {
			return err
		}
		if r.Response == nil {
			return fmt.Errorf("no error response: %+v", r.Err)
		}
		d, _ := jsonObject(r.Response.Data, "data")
		if msg, _ := d["error"].(string); !strings.Contains(msg, "ttl") {
			return fmt.Errorf("error %q", msg)
		}
		return nil
	}())
	c.check("the plugin is still healthy after the bad requests", func() error {
		proto, err := s.client.Client()
		if err != nil {
			return err
		}
		return proto.Ping()
	}())
	c.check("Setup again with the broker's ConnInfo sent after the Setup call; state survives in storage", func() error {
		id := s.remote.broker.NextId()
		type result struct {
			reply *pb.SetupReply
			err   error
		}
		done := make(chan result, 1)
		go func() {
			r, err := s.remote.backend.Setup(ctx, &pb.SetupArgs{BrokerID: id})
			done <- result{r, err}
		}()
		time.Sleep(300 * time.Millisecond)
		listener, err := s.remote.broker.Accept(id)
		if err != nil {
			return err
		}
		srv := grpcServer(s.hardenedTLS(nil))
		pb.RegisterStorageServer(srv, s.storage)
		pb.RegisterSystemViewServer(srv, &systemView{})
		go srv.Serve(listener)
		defer srv.Stop()
		r := <-done
		if r.err != nil {
			return r.err
		}
		if r.reply.Err != "" {
			return fmt.Errorf("setup error: %s", r.reply.Err)
		}
		if init, err := s.remote.backend.Initialize(ctx, &pb.InitializeArgs{}); err != nil || init.Err != nil {
			return fmt.Errorf("initialize: %v %v", err, init.GetErr())
		}
		reply, _, err := s.request(ctx, "read", "creds/orders", nil)
		if err := okReply(reply, err); err != nil {
			return err
		}
		return checkSecret(reply, 5*time.Minute, time.Hour, nil)
	}())
	c.check("InvalidateKey", func() error {
		_, err := s.remote.backend.InvalidateKey(ctx, &pb.InvalidateKeyArgs{Key: "roles/orders"})
		return err
	}())
	c.check("Cleanup, after which requests are refused", func() error {
		if _, err := s.remote.backend.Cleanup(ctx, &pb.Empty{}); err != nil {
			return err
		}
		_, err := s.remote.backend.HandleRequest(ctx, &pb.HandleRequestArgs{Request: newRequest("read", "roles/orders", "null")})
		if status.Code(err) != codes.FailedPrecondition {
			return fmt.Errorf("got %v", err)
		}
		return nil
	}())
	c.check("stderr lines are hclog JSON that go-plugin parses", func() error {
		logs := s.logs.String()
		if !strings.Contains(logs, "plugin serving") {
			return fmt.Errorf("the plugin's start-up log line was not relayed: %q", logs)
		}
		if strings.Contains(logs, `"@message"`) {
			return fmt.Errorf("a plugin log line was not parsed as hclog JSON")
		}
		return nil
	}())
	t0 := time.Now()
	s.client.Kill()
	killed := time.Since(t0)
	c.check("Shutdown (GRPCController) ends the process promptly and removes the socket", func() error {
		if !s.client.Exited() {
			return fmt.Errorf("the process has not exited")
		}
		if killed > 1900*time.Millisecond {
			return fmt.Errorf("took %s: graceful shutdown did not happen (go-plugin force-kills after 2s)", killed)
		}
		if _, err := os.Stat(socket); !os.IsNotExist(err) {
			return fmt.Errorf("the socket %s is still there", socket)
		}
		return nil
	}())
	runVaultSDK(c, pluginPath, verbose)
	fmt.Printf("%d passed, %d failed\n", c.passed, c.failed)
	if c.failed > 0 {
		return 1
	}
	return 0
}

func runNoClientCert(pluginPath string, verbose bool) int {
	c := &checker{}
	s, err := launch(pluginPath, []int{5}, nil, verbose)
	if !c.check("launch", err) {
		return 1
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := dialPlain(ctx, s.socketPath(), s.config.TLSConfig.RootCAs)
	c.check("a connection without a client certificate is refused", func() error {
		if err == nil {
			defer conn.Close()
			if _, rerr := pb.NewBackendClient(conn).Type(context.Background(), &pb.Empty{}); rerr == nil {
				return fmt.Errorf("the plugin served a client without a certificate")
			}
		}
		return nil
	}())
	c.check("the plugin keeps serving its real host", func() error {
		_, err := s.remote.backend.Type(context.Background(), &pb.Empty{})
		return err
	}())
	fmt.Printf("%d passed, %d failed\n", c.passed, c.failed)
	if c.failed > 0 {
		return 1
	}
	return 0
}

func runWrongBrokerCA(pluginPath string, verbose bool) int {
	c := &checker{}
	s, err := launch(pluginPath, []int{5}, nil, verbose)
	if !c.check("launch", err) {
		return 1
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A pool with only the host's own certificate: the plugin's certificate does not chain to it.
	other := x509.NewCertPool()
	hostCert, perr := x509.ParseCertificate(s.config.TLSConfig.Certificates[0].Certificate[0])
	if perr == nil {
		other.AddCert(hostCert)
	}
	id, err := s.serveBroker(other)
	if !c.check("broker served with a CA that does not know the plugin", err) {
		return 1
	}
	reply, err := s.remote.backend.Setup(ctx, &pb.SetupArgs{BrokerID: id})
	c.check("Setup fails with a clear error instead of hanging or crashing", func() error {
		if err != nil {
			return fmt.Errorf("transport error %v, want a SetupReply with err", err)
		}
		if reply.Err == "" {
			return fmt.Errorf("setup succeeded though the broker refused the plugin's certificate")
		}
		fmt.Printf("INFO setup error: %s\n", reply.Err)
		return nil
	}())
	c.check("the plugin keeps serving", func() error {
		_, err := s.remote.backend.Type(ctx, &pb.Empty{})
		return err
	}())
	fmt.Printf("%d passed, %d failed\n", c.passed, c.failed)
	if c.failed > 0 {
		return 1
	}
	return 0
}
