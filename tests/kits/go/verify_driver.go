// Test driver: one job on stdin (tests/kits/README.md, "Job format") →
// examples/upstream/verify.go → one JSON answer on stdout.
package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"kitstest/flowgate"
)

type request struct {
	method, target string
	header         http.Header
}

func pairs(p flowgate.Pairs) [][2]string {
	if p == nil {
		return nil
	}
	out := [][2]string{}
	for _, kv := range p {
		out = append(out, [2]string{kv.Key, kv.Value})
	}
	return out
}

func main() {
	in, _ := io.ReadAll(os.Stdin)
	var secrets []string
	var requests []*request
	var now *int64
	tolerance := int64(300)
	acceptV1, replay := false, false
	for _, line := range strings.Split(string(in), "\n") {
		f := strings.Split(line, "\t")
		switch f[0] {
		case "secret":
			secrets = append(secrets, f[1])
		case "secret_unset":
			secrets = append(secrets, os.Getenv("FLOWGATE_KITS_UNSET"))
		case "now":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			now = &n
		case "tolerance":
			tolerance, _ = strconv.ParseInt(f[1], 10, 64)
		case "accept_v1":
			acceptV1 = true
		case "replay":
			replay = f[1] == "memory"
		case "request":
			requests = append(requests, &request{f[1], f[2], http.Header{}})
		case "header":
			h := requests[len(requests)-1].header
			h[f[1]] = append(h[f[1]], strings.Join(f[2:], "\t"))
		}
	}
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false)
	opts, err := flowgate.NewOptions(secrets)
	var cerr *flowgate.ConfigError
	if errors.As(err, &cerr) {
		_ = out.Encode(map[string]string{"config_error": cerr.Message})
		return
	}
	opts.Tolerance, opts.AcceptV1 = tolerance, acceptV1
	if now != nil {
		t := *now
		opts.Now = func() int64 { return t }
	}
	if replay {
		opts.Replay = flowgate.NewMemoryReplayCache(tolerance, 100000)
	}
	results := []any{}
	for _, r := range requests {
		t, err := flowgate.Verify(r.method, r.target, r.header, opts)
		var verr *flowgate.VerifyError
		if errors.As(err, &verr) {
			results = append(results, map[string]any{"ok": false, "reason": verr.Reason})
			continue
		}
		var discard, rid, ip any
		if t.Status == "discarded" {
			discard = t.DiscardReason
		}
		if t.RequestID != "" {
			rid = t.RequestID
		}
		if t.ClientIP != "" {
			ip = t.ClientIP
		}
		results = append(results, map[string]any{"ok": true, "result": map[string]any{
			"site": t.Site, "session": t.Session, "status": t.Status, "discard_reason": discard,
			"context": pairs(t.Context), "verified_prefill": pairs(t.VerifiedPrefill()),
			"browser_prefill": pairs(t.BrowserPrefill(true)), "request_id": rid,
			"client_ip": ip, "signed_at": t.SignedAt, "version": t.Version,
		}})
	}
	_ = out.Encode(map[string]any{"results": results})
}
