package main

// A small stand-in for Vault's router and expiration manager: requests are
// built the way Vault builds pb.Request (data is json.Marshal of the map, so a
// read without data carries "null"), secrets are registered as leases, and
// renew/revoke send the stored secret back with the lease's issue time and the
// requested increment, as Vault's renewEntry/revokeEntry do.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/plugin/pb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const mountPoint = "tvm/"

type leaseEntry struct {
	path      string
	data      string
	secret    *pb.Secret
	issueTime time.Time
}

type expiration struct {
	mu     sync.Mutex
	leases map[string]*leaseEntry
}

func newExpiration() *expiration {
	return &expiration{leases: map[string]*leaseEntry{}}
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newRequest(operation, path, data string) *pb.Request {
	return &pb.Request{
		ID:                  randomID(),
		Operation:           operation,
		Path:                path,
		Data:                data,
		ClientToken:         "hmac-sha256:" + randomID(),
		ClientTokenAccessor: randomID(),
		DisplayName:         "token-host",
		MountPoint:          mountPoint,
		MountType:           "tvm",
		MountAccessor:       "tvm_0123abcd",
		EntityID:            "entity-host-1",
		Connection:          &pb.Connection{RemoteAddr: "127.0.0.1", RemotePort: 40000},
	}
}

func marshalData(data map[string]interface{}) (string, error) {
	b, err := json.Marshal(data)
	return string(b), err
}

// request sends one logical request and registers a returned secret as a lease.
func (s *session) request(ctx context.Context, operation, path string, data map[string]interface{}) (*pb.HandleRequestReply, string, error) {
	return s.requestAs(ctx, operation, path, data, "")
}

// requestAs is request from another identity (entity id), when entity is not empty.
func (s *session) requestAs(ctx context.Context, operation, path string, data map[string]interface{}, entity string) (*pb.HandleRequestReply, string, error) {
	raw, err := marshalData(data)
	if err != nil {
		return nil, "", err
	}
	return s.send(ctx, operation, path, raw, entity)
}

func (s *session) requestRaw(ctx context.Context, operation, path, raw string) (*pb.HandleRequestReply, string, error) {
	return s.send(ctx, operation, path, raw, "")
}

func (s *session) send(ctx context.Context, operation, path, raw, entity string) (*pb.HandleRequestReply, string, error) {
	req := newRequest(operation, path, raw)
	if entity != "" {
		req.EntityID = entity
	}
	reply, err := s.remote.backend.HandleRequest(ctx, &pb.HandleRequestArgs{Request: req})
	if err != nil {
		return nil, "", err
	}
	leaseID := ""
	if reply.Err == nil && reply.Response != nil && reply.Response.Secret != nil {
		leaseID = mountPoint + path + "/" + randomID()
		s.leases.mu.Lock()
		s.leases.leases[leaseID] = &leaseEntry{path: path, data: raw, secret: reply.Response.Secret, issueTime: time.Now()}
		s.leases.mu.Unlock()
	}
	return reply, leaseID, nil
}

func (s *session) lease(id string) (*leaseEntry, error) {
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	le, ok := s.leases.leases[id]
	if !ok {
		return nil, errors.New("no such lease")
	}
	return le, nil
}

func (s *session) secretFor(le *leaseEntry, increment time.Duration) (*pb.Secret, error) {
	secret := proto.Clone(le.secret).(*pb.Secret)
	if secret.LeaseOptions == nil {
		secret.LeaseOptions = &pb.LeaseOptions{}
	}
	secret.LeaseOptions.IssueTime = timestamppb.New(le.issueTime)
	secret.LeaseOptions.Increment = int64(increment)
	secret.LeaseID = ""
	return secret, nil
}

// renew renews a lease with an increment; the lease keeps the returned secret.
func (s *session) renew(ctx context.Context, leaseID string, increment time.Duration) (*pb.HandleRequestReply, error) {
	le, err := s.lease(leaseID)
	if err != nil {
		return nil, err
	}
	secret, err := s.secretFor(le, increment)
	if err != nil {
		return nil, err
	}
	req := newRequest("renew", le.path, le.data)
	req.Secret = secret
	reply, err := s.remote.backend.HandleRequest(ctx, &pb.HandleRequestArgs{Request: req})
	if err != nil {
		return nil, err
	}
	if reply.Err == nil && reply.Response != nil && reply.Response.Secret != nil {
		s.leases.mu.Lock()
		le.secret = reply.Response.Secret
		s.leases.mu.Unlock()
	}
	return reply, nil
}

// revoke revokes a lease; the lease stays known so a test can revoke again.
func (s *session) revoke(ctx context.Context, leaseID string) (*pb.HandleRequestReply, error) {
	le, err := s.lease(leaseID)
	if err != nil {
		return nil, err
	}
	secret, err := s.secretFor(le, 0)
	if err != nil {
		return nil, err
	}
	req := newRequest("revoke", le.path, le.data)
	req.Secret = secret
	return s.remote.backend.HandleRequest(ctx, &pb.HandleRequestArgs{Request: req})
}

// replyJSON renders a reply for the serve mode and for messages: JSON text
// fields decoded, int64 durations as decimal strings.
func replyJSON(reply *pb.HandleRequestReply, leaseID string) map[string]interface{} {
	out := map[string]interface{}{"lease_id": leaseID, "response": nil, "err": nil}
	if reply.Err != nil {
		out["err"] = map[string]interface{}{"type": reply.Err.ErrType, "msg": reply.Err.ErrMsg, "code": reply.Err.ErrCode}
	}
	if r := reply.Response; r != nil {
		resp := map[string]interface{}{"data_text": r.Data, "warnings": r.Warnings}
		var data interface{}
		if err := json.Unmarshal([]byte(r.Data), &data); err == nil {
			resp["data"] = data
		}
		if sec := r.Secret; sec != nil {
			secret := map[string]interface{}{"internal_data_text": sec.InternalData}
			var internal interface{}
			if err := json.Unmarshal([]byte(sec.InternalData), &internal); err == nil {
				secret["internal_data"] = internal
			}
			if lo := sec.LeaseOptions; lo != nil {
				secret["ttl_ns"] = formatInt(lo.TTL)
				secret["max_ttl_ns"] = formatInt(lo.MaxTTL)
				secret["increment_ns"] = formatInt(lo.Increment)
				secret["renewable"] = lo.Renewable
				if lo.IssueTime != nil {
					secret["issue_time"] = lo.IssueTime.AsTime().UTC().Format(time.RFC3339Nano)
				}
			}
			resp["secret"] = secret
		}
		out["response"] = resp
	}
	return out
}
