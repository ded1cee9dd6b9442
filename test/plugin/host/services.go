package main

// The services Vault serves to a plugin over the broker: an in-memory Storage
// with Vault's list semantics, and a SystemView with fixed answers.

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin/pb"
)

type memStorage struct {
	pb.UnimplementedStorageServer
	mu    sync.Mutex
	data  map[string][]byte
	calls map[string]int
}

func newMemStorage() *memStorage {
	return &memStorage{data: map[string][]byte{}, calls: map[string]int{}}
}

func (m *memStorage) count(op string) {
	m.calls[op]++
}

func (m *memStorage) List(_ context.Context, args *pb.StorageListArgs) (*pb.StorageListReply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count("list")
	seen := map[string]bool{}
	for k := range m.data {
		if !strings.HasPrefix(k, args.Prefix) {
			continue
		}
		rest := k[len(args.Prefix):]
		if i := strings.Index(rest, "/"); i >= 0 {
			rest = rest[:i+1]
		}
		seen[rest] = true
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return &pb.StorageListReply{Keys: keys}, nil
}

func (m *memStorage) Get(_ context.Context, args *pb.StorageGetArgs) (*pb.StorageGetReply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count("get")
	v, ok := m.data[args.Key]
	if !ok {
		return &pb.StorageGetReply{}, nil
	}
	return &pb.StorageGetReply{Entry: &pb.StorageEntry{Key: args.Key, Value: append([]byte(nil), v...)}}, nil
}

func (m *memStorage) Put(_ context.Context, args *pb.StoragePutArgs) (*pb.StoragePutReply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count("put")
	if args.Entry == nil || args.Entry.Key == "" {
		return &pb.StoragePutReply{Err: "put without a key"}, nil
	}
	m.data[args.Entry.Key] = append([]byte(nil), args.Entry.Value...)
	return &pb.StoragePutReply{}, nil
}

func (m *memStorage) Delete(_ context.Context, args *pb.StorageDeleteArgs) (*pb.StorageDeleteReply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count("delete")
	delete(m.data, args.Key)
	return &pb.StorageDeleteReply{}, nil
}

// snapshot copies the stored entries.
func (m *memStorage) snapshot() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]byte, len(m.data))
	for k, v := range m.data {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

type systemView struct {
	pb.UnimplementedSystemViewServer
}

func (systemView) DefaultLeaseTTL(context.Context, *pb.Empty) (*pb.TTLReply, error) {
	return &pb.TTLReply{TTL: int64(768 * time.Hour)}, nil
}

func (systemView) MaxLeaseTTL(context.Context, *pb.Empty) (*pb.TTLReply, error) {
	return &pb.TTLReply{TTL: int64(768 * time.Hour)}, nil
}

func (systemView) Tainted(context.Context, *pb.Empty) (*pb.TaintedReply, error) {
	return &pb.TaintedReply{}, nil
}

func (systemView) CachingDisabled(context.Context, *pb.Empty) (*pb.CachingDisabledReply, error) {
	return &pb.CachingDisabledReply{}, nil
}

func (systemView) ReplicationState(context.Context, *pb.Empty) (*pb.ReplicationStateReply, error) {
	return &pb.ReplicationStateReply{}, nil
}

func (systemView) MlockEnabled(context.Context, *pb.Empty) (*pb.MlockEnabledReply, error) {
	return &pb.MlockEnabledReply{}, nil
}

func (systemView) LocalMount(context.Context, *pb.Empty) (*pb.LocalMountReply, error) {
	return &pb.LocalMountReply{}, nil
}

func (systemView) PluginEnv(context.Context, *pb.Empty) (*pb.PluginEnvReply, error) {
	return &pb.PluginEnvReply{PluginEnvironment: &logical.PluginEnvironment{VaultVersion: "1.15.0-tvm-host"}}, nil
}
