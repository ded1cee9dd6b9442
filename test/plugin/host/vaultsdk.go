package main

// Vault's own plugin client. The checks below launch the bundled plugin with
// github.com/hashicorp/vault/sdk the way Vault mounts an external secrets
// engine of protocol 5: plugin.NewBackendV5 looks the plugin up in a catalog,
// pluginutil.PluginRunner starts it (go-plugin's SecureConfig checks the
// sha256, AutoMTLS, the environment Vault sets), and the sdk's gRPC backend
// client serves logical.Storage and the SystemView over go-plugin's own broker
// in Setup and converts logical.Request and logical.Response with the sdk's
// code. Only the catalog (vaultCatalog) is the host's: in Vault it is core
// code (vault/plugin_catalog.go), not part of the sdk.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"
	"github.com/hashicorp/vault/sdk/helper/wrapping"
	"github.com/hashicorp/vault/sdk/logical"
	vaultplugin "github.com/hashicorp/vault/sdk/plugin"
	"github.com/hashicorp/vault/sdk/plugin/pb"
	"google.golang.org/grpc"
)

const pluginName = "tvm"

// vaultCatalog stands in for Vault's plugin catalog: one registered plugin.
type vaultCatalog struct {
	runner  *pluginutil.PluginRunner
	clients []*plugin.Client
}

func (c *vaultCatalog) LookupPlugin(ctx context.Context, name string, typ consts.PluginType) (*pluginutil.PluginRunner, error) {
	return c.LookupPluginVersion(ctx, name, typ, "")
}

func (c *vaultCatalog) LookupPluginVersion(_ context.Context, name string, typ consts.PluginType, _ string) (*pluginutil.PluginRunner, error) {
	if name != c.runner.Name || typ != c.runner.Type {
		return nil, fmt.Errorf("no plugin %s of type %s in the catalog", name, typ)
	}
	return c.runner, nil
}

// NewPluginClient does what Vault's catalog does for a plugin that does not
// multiplex: run it with the sdk's runner, connect, and ask whether it multiplexes.
func (c *vaultCatalog) NewPluginClient(ctx context.Context, config pluginutil.PluginClientConfig) (pluginutil.PluginClient, error) {
	client, err := c.runner.RunConfig(ctx,
		pluginutil.Runner(config.Wrapper),
		pluginutil.PluginSets(config.PluginSets),
		pluginutil.HandshakeConfig(config.HandshakeConfig),
		pluginutil.Logger(config.Logger),
		pluginutil.MetadataMode(config.IsMetadataMode),
		pluginutil.AutoMTLS(config.AutoMTLS),
		pluginutil.MLock(config.MLock),
	)
	if err != nil {
		return nil, err
	}
	c.clients = append(c.clients, client)
	protocol, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, err
	}
	grpcClient, ok := protocol.(*plugin.GRPCClient)
	if !ok {
		client.Kill()
		return nil, errors.New("the plugin did not negotiate gRPC")
	}
	muxed, err := pluginutil.MultiplexingSupported(ctx, grpcClient.Conn, config.Name)
	if err != nil {
		client.Kill()
		return nil, err
	}
	if muxed {
		client.Kill()
		return nil, errors.New("the plugin claims multiplexing, which this host does not drive")
	}
	return &pluginClient{ClientProtocol: protocol, client: client, conn: grpcClient.Conn}, nil
}

func (c *vaultCatalog) ResponseWrapData(context.Context, map[string]interface{}, time.Duration, bool) (*wrapping.ResponseWrapInfo, error) {
	return nil, errors.New("response wrapping is not used with AutoMTLS")
}

func (c *vaultCatalog) MlockEnabled() bool { return false }

func (c *vaultCatalog) VaultVersion(context.Context) (string, error) { return "1.15.0-tvm-host", nil }

func (c *vaultCatalog) ClusterID(context.Context) (string, error) { return "tvm-host-cluster", nil }

func (c *vaultCatalog) DownloadExtractVerifyPlugin(context.Context, *pluginutil.PluginRunner) error {
	return errors.New("plugin downloads are not supported")
}

func (c *vaultCatalog) killAll() {
	for _, client := range c.clients {
		client.Kill()
	}
}

// pluginClient is the catalog's answer: go-plugin's client protocol and its gRPC connection.
type pluginClient struct {
	plugin.ClientProtocol
	client *plugin.Client
	conn   *grpc.ClientConn
}

func (p *pluginClient) Conn() grpc.ClientConnInterface { return p.conn }

func (p *pluginClient) Reload() error { return errors.New("reload is not supported") }

func (p *pluginClient) Close() error {
	p.client.Kill()
	return nil
}

// sdkRequest is the raw checks' request (newRequest: the same caller and
// mount), as the logical.Request Vault's router hands a backend.
func sdkRequest(op logical.Operation, path string, data map[string]interface{}) *logical.Request {
	req, err := pb.ProtoRequestToLogicalRequest(newRequest(string(op), path, "null"))
	if err != nil {
		panic(fmt.Sprintf("the host's own request does not translate: %v", err))
	}
	req.Data = data
	return req
}

func newCatalog(pluginPath string, sum []byte) *vaultCatalog {
	return &vaultCatalog{runner: &pluginutil.PluginRunner{
		Name:    pluginName,
		Type:    consts.PluginTypeSecrets,
		Command: pluginPath,
		Sha256:  sum,
	}}
}

func backendConfig(storage logical.Storage, logger hclog.Logger) *logical.BackendConfig {
	return &logical.BackendConfig{
		StorageView: storage,
		Logger:      logger,
		System: logical.StaticSystemView{
			DefaultLeaseTTLVal: 768 * time.Hour,
			MaxLeaseTTLVal:     768 * time.Hour,
			VersionString:      "1.15.0-tvm-host",
		},
		Config:      map[string]string{"plugin_name": pluginName, "plugin_type": consts.PluginTypeSecrets.String()},
		BackendUUID: "00000000-0000-4000-8000-000000000002",
	}
}

// sdkError is the message of an error or an error response, or nil.
func sdkError(resp *logical.Response, err error) error {
	if err != nil {
		return err
	}
	if resp != nil && resp.IsError() {
		return resp.Error()
	}
	return nil
}

func checkSdkSecret(resp *logical.Response, wantTTL, wantMax time.Duration) error {
	if resp == nil || resp.Secret == nil {
		return errors.New("no secret in the response")
	}
	s := resp.Secret
	if s.TTL != wantTTL || s.MaxTTL != wantMax || !s.Renewable {
		return fmt.Errorf("ttl %s max_ttl %s renewable %v, want %s %s true", s.TTL, s.MaxTTL, s.Renewable, wantTTL, wantMax)
	}
	if s.InternalData["secret_type"] == nil {
		return errors.New("internal_data has no secret_type")
	}
	return nil
}

// runVaultSDK adds the sdk client's checks to the checklist.
func runVaultSDK(c *checker, pluginPath string, verbose bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out io.Writer = io.Discard
	if verbose {
		out = os.Stderr
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "vault", Level: hclog.Trace, Output: out})
	file, err := os.ReadFile(pluginPath)
	if !c.check("vault sdk: read the plugin file for its catalog sha256", err) {
		return
	}
	sum := sha256.Sum256(file)

	wrong := newCatalog(pluginPath, make([]byte, sha256.Size))
	_, err = vaultplugin.NewBackendV5(ctx, pluginName, consts.PluginTypeSecrets, "", wrong, backendConfig(&logical.InmemStorage{}, logger))
	wrong.killAll()
	c.check("vault sdk: a catalog sha256 that does not match the file is refused before the plugin runs", func() error {
		if err == nil {
			return errors.New("the plugin was started")
		}
		if !strings.Contains(err.Error(), "checksum") {
			return fmt.Errorf("error %q does not name the checksum", err)
		}
		return nil
	}())

	catalog := newCatalog(pluginPath, sum[:])
	defer catalog.killAll()
	storage := &logical.InmemStorage{}
	conf := backendConfig(storage, logger)
	backend, err := vaultplugin.NewBackendV5(ctx, pluginName, consts.PluginTypeSecrets, "", catalog, conf)
	if !c.check("vault sdk: plugin.NewBackendV5 starts the plugin through pluginutil.PluginRunner (sha256 checked, AutoMTLS)", err) {
		return
	}
	c.check("vault sdk: negotiated protocol version 5, not multiplexed", func() error {
		if len(catalog.clients) != 1 {
			return fmt.Errorf("%d plugin processes started", len(catalog.clients))
		}
		if v := catalog.clients[0].NegotiatedVersion(); v != 5 {
			return fmt.Errorf("negotiated %d", v)
		}
		return nil
	}())
	if !c.check("vault sdk: Setup serves Storage and the SystemView over go-plugin's broker", backend.Setup(ctx, conf)) {
		return
	}
	c.check("vault sdk: Initialize", backend.Initialize(ctx, &logical.InitializationRequest{Storage: storage}))
	c.check("vault sdk: Type is a logical backend", func() error {
		if t := backend.Type(); t != logical.TypeLogical {
			return fmt.Errorf("type %v", t)
		}
		return nil
	}())
	c.check("vault sdk: SpecialPaths leave jwks unauthenticated", func() error {
		paths := backend.SpecialPaths()
		if paths == nil || !strings.Contains(","+strings.Join(paths.Unauthenticated, ",")+",", ",jwks,") {
			return fmt.Errorf("special paths %+v", paths)
		}
		return nil
	}())

	role := map[string]interface{}{"read": []string{"db://orders/*"}, "write": []string{"db://orders/outbox"}, "ttl": "5m", "max_ttl": "1h"}
	c.check("vault sdk: role write", sdkError(backend.HandleRequest(ctx, sdkRequest(logical.UpdateOperation, "roles/orders", role))))
	c.check("vault sdk: the role is in the storage Vault gave the plugin", func() error {
		keys, err := logical.CollectKeys(ctx, storage)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if entry, _ := storage.Get(ctx, k); entry != nil && strings.Contains(string(entry.Value), "db://orders/outbox") {
				return nil
			}
		}
		return fmt.Errorf("no stored role among %v", keys)
	}())

	creds, err := backend.HandleRequest(ctx, sdkRequest(logical.ReadOperation, "creds/orders", nil))
	credsOK := c.check("vault sdk: creds read answers a JWT and a secret of TTL 300s, MaxTTL 3600s, renewable", func() error {
		if err := sdkError(creds, err); err != nil {
			return err
		}
		if tok, _ := creds.Data["token"].(string); strings.Count(tok, ".") != 2 {
			return errors.New("no JWT in data")
		}
		return checkSdkSecret(creds, 5*time.Minute, time.Hour)
	}())
	if credsOK {
		// What Vault's expiration manager sends: the stored secret with the lease's issue time and the increment.
		secret := *creds.Secret
		secret.IssueTime = time.Now().Add(-time.Second)
		secret.Increment = 10 * time.Minute
		secret.LeaseID = ""
		renewed, err := backend.HandleRequest(ctx, logical.RenewRequest("creds/orders", &secret, nil))
		c.check("vault sdk: renew with increment 600s answers TTL 600s", func() error {
			if err := sdkError(renewed, err); err != nil {
				return err
			}
			return checkSdkSecret(renewed, 10*time.Minute, time.Hour)
		}())
		revoke := secret
		revoke.Increment = 0
		c.check("vault sdk: revoke", sdkError(backend.HandleRequest(ctx, logical.RevokeRequest("creds/orders", &revoke, nil))))
		c.check("vault sdk: revoke again", sdkError(backend.HandleRequest(ctx, logical.RevokeRequest("creds/orders", &revoke, nil))))
	}
	c.check("vault sdk: an unknown path is logical.ErrUnsupportedPath", func() error {
		_, err := backend.HandleRequest(ctx, sdkRequest(logical.ReadOperation, "no/such/path", nil))
		if !errors.Is(err, logical.ErrUnsupportedPath) {
			return fmt.Errorf("got %v", err)
		}
		return nil
	}())
	c.check("vault sdk: a caller mistake is an error response naming the field", func() error {
		resp, err := backend.HandleRequest(ctx, sdkRequest(logical.UpdateOperation, "roles/bad", map[string]interface{}{"ttl": "forever"}))
		e := sdkError(resp, err)
		if e == nil || !strings.Contains(e.Error(), "ttl") {
			return fmt.Errorf("got %v", e)
		}
		return nil
	}())
	backend.Cleanup(ctx)
	c.check("vault sdk: Cleanup ends the plugin process", func() error {
		deadline := time.Now().Add(5 * time.Second)
		for !catalog.clients[0].Exited() {
			if time.Now().After(deadline) {
				return errors.New("the process is still running")
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	}())
}
