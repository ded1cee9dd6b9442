package main

// The serve mode: the host launches and sets up the plugin, prints
// {"ready":true,...}, then answers one JSON command per stdin line with one
// JSON line on stdout. Commands ({"id":n,"cmd":...}):
//
//	request   {operation, path, data?, entity_id?} -> {reply}
//	raw       {operation, path, data_text}       -> {reply}   (data sent verbatim)
//	renew     {lease_id, increment_s}            -> {reply}
//	revoke    {lease_id}                         -> {reply}
//	exists    {path}                             -> {check_found, exists}
//	storage   {}                                 -> {entries: {key: text}}
//	bench     {operation, path, n}               -> {n, total_ns}
//	shutdown  {}                                 -> {exit_ns}, then the host exits

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/plugin/pb"
)

type command struct {
	ID         int                    `json:"id"`
	Cmd        string                 `json:"cmd"`
	Operation  string                 `json:"operation"`
	Path       string                 `json:"path"`
	Data       map[string]interface{} `json:"data"`
	DataText   string                 `json:"data_text"`
	LeaseID    string                 `json:"lease_id"`
	IncrementS int64                  `json:"increment_s"`
	EntityID   string                 `json:"entity_id"`
	N          int                    `json:"n"`
}

func formatInt(v int64) string { return strconv.FormatInt(v, 10) }

func runServe(pluginPath string, verbose bool) int {
	started := time.Now()
	s, err := launch(pluginPath, []int{4, 5}, nil, verbose)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tvm-host: launch: %v\n", err)
		return 1
	}
	defer s.close()
	ctx := context.Background()
	setup, err := s.setup(ctx)
	if err != nil || setup.Err != "" {
		fmt.Fprintf(os.Stderr, "tvm-host: setup: %v %s\n", err, setup.GetErr())
		return 1
	}
	if init, err := s.remote.backend.Initialize(ctx, &pb.InitializeArgs{}); err != nil || init.Err != nil {
		fmt.Fprintf(os.Stderr, "tvm-host: initialize: %v %v\n", err, init.GetErr())
		return 1
	}
	out := json.NewEncoder(os.Stdout)
	out.Encode(map[string]interface{}{
		"ready":      true,
		"startup_ns": formatInt(int64(s.startup)),
		"setup_ns":   formatInt(int64(time.Since(started))),
		"negotiated": s.client.NegotiatedVersion(),
		"socket":     s.socketPath(),
	})
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	for in.Scan() {
		var c command
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			out.Encode(map[string]interface{}{"error": "bad command: " + err.Error()})
			continue
		}
		res := map[string]interface{}{}
		var reply *pb.HandleRequestReply
		leaseID := ""
		switch c.Cmd {
		case "request":
			reply, leaseID, err = s.requestAs(ctx, c.Operation, c.Path, c.Data, c.EntityID)
		case "raw":
			reply, leaseID, err = s.requestRaw(ctx, c.Operation, c.Path, c.DataText)
		case "renew":
			reply, err = s.renew(ctx, c.LeaseID, time.Duration(c.IncrementS)*time.Second)
		case "revoke":
			reply, err = s.revoke(ctx, c.LeaseID)
		case "exists":
			var r *pb.HandleExistenceCheckReply
			r, err = s.remote.backend.HandleExistenceCheck(ctx, &pb.HandleExistenceCheckArgs{Request: newRequest("create", c.Path, "null")})
			if err == nil {
				res["check_found"], res["exists"] = r.CheckFound, r.Exists
			}
		case "storage":
			entries := map[string]string{}
			for k, v := range s.storage.snapshot() {
				entries[k] = string(v)
			}
			res["entries"] = entries
			s.storage.mu.Lock()
			calls := map[string]int{}
			for k, v := range s.storage.calls {
				calls[k] = v
			}
			s.storage.mu.Unlock()
			res["calls"] = calls
		case "bench":
			t0 := time.Now()
			for i := 0; i < c.N && err == nil; i++ {
				var r *pb.HandleRequestReply
				data := "null"
				if c.Data != nil {
					data, _ = marshalData(c.Data)
				}
				r, err = s.remote.backend.HandleRequest(ctx, &pb.HandleRequestArgs{Request: newRequest(c.Operation, c.Path, data)})
				if err == nil && r.Err != nil {
					err = fmt.Errorf("bench request failed: %v", r.Err)
				}
			}
			res["n"], res["total_ns"] = c.N, formatInt(int64(time.Since(t0)))
		case "shutdown":
			t0 := time.Now()
			s.client.Kill()
			res["exit_ns"] = formatInt(int64(time.Since(t0)))
			res["exited"] = s.client.Exited()
			res["id"] = c.ID
			out.Encode(res)
			return 0
		default:
			err = fmt.Errorf("unknown command %q", c.Cmd)
		}
		res["id"] = c.ID
		if err != nil {
			res["grpc_error"] = err.Error()
		}
		if reply != nil {
			for k, v := range replyJSON(reply, leaseID) {
				res[k] = v
			}
		}
		out.Encode(res)
	}
	return 0
}
