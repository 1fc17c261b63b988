// Package flowgate verifies a request the backend received from flowgate (Go 1.18+, standard
// library only: crypto/hmac and hmac.Equal). Copy this file into your backend.
//
// flowgate signs the whole request it forwards with HMAC-SHA256 and sends
// `X-Flowgate-Signature: t=<unix>,v2=<64 hex>` (`t=…,v1=…,v2=…` during a transition). The signed
// string v2 is, joined with "\n" (no newline at the end):
//
//	v2, t, request id, method, host, target, client address,
//	Site, Session, Status, Context, Prefill
//
// (README "Header signature"; the same as examples/upstream/verify.php). v1 (only with
// AcceptV1) is "v1", t, path, Site, Session, Status, Context, Prefill.
//
// Usage (net/http):
//
//	// Once: the same list as flowgate's FLOWGATE_SIGNING_SECRET (comma-separated, newest
//	// first). An empty list or a secret under 32 bytes is a *ConfigError here.
//	opts, err := flowgate.NewOptions(flowgate.SecretsFromEnv("FLOWGATE_SIGNING_SECRET"))
//	...
//	trusted, err := flowgate.VerifyHTTP(r, opts)
//	var verr *flowgate.VerifyError
//	if errors.As(err, &verr) {
//		log.Printf("flowgate headers rejected: %s", verr.Reason) // never log header values
//		trusted = nil                                            // treat as anonymous
//	}
//	if p := trusted.VerifiedPrefill(); p != nil { // nil unless the host site signed
//		if email, ok := p.Get("visitor_email"); ok { ... skip the email question ... }
//	}
//
// Rotation: list the new secret first and keep the old one until every flowgate instance signs
// with it; a signature made with any listed secret is accepted.
package flowgate

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ConfigError is a secret list or option that must not be verified with.
type ConfigError struct{ Message string }

func (e *ConfigError) Error() string { return e.Message }

// VerifyError says why a request was rejected; Reason is a stable snake_case name, the same in
// every kit: missing_signature | malformed_signature | unsupported_version | expired |
// bad_signature | replayed | bad_header.
type VerifyError struct{ Reason, Message string }

func (e *VerifyError) Error() string { return e.Reason + ": " + e.Message }

func reject(reason, message string) *VerifyError { return &VerifyError{reason, message} }

// ReplayCache remembers signed request ids: Seen atomically remembers one and says if it was known.
type ReplayCache interface {
	Seen(requestID string, t int64) bool
}

// MemoryReplayCache is an in-process ReplayCache: ids older than 2 × tolerance are forgotten,
// at most MaxEntries are kept. Safe for concurrent use.
type MemoryReplayCache struct {
	mu         sync.Mutex
	window     int64
	maxEntries int
	order      []string
	ids        map[string]int64
	newest     int64
}

// NewMemoryReplayCache makes a cache for the given tolerance (seconds) and size.
func NewMemoryReplayCache(tolerance int64, maxEntries int) *MemoryReplayCache {
	if maxEntries < 1 {
		maxEntries = 1
	}
	return &MemoryReplayCache{window: 2 * tolerance, maxEntries: maxEntries, ids: map[string]int64{}}
}

// Seen remembers requestID; true when it was already known.
func (c *MemoryReplayCache) Seen(requestID string, t int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t > c.newest {
		c.newest = t
	}
	for len(c.order) > 0 && c.ids[c.order[0]] < c.newest-c.window {
		delete(c.ids, c.order[0])
		c.order = c.order[1:]
	}
	if _, known := c.ids[requestID]; known {
		return true
	}
	for len(c.order) >= c.maxEntries {
		delete(c.ids, c.order[0])
		c.order = c.order[1:]
	}
	c.ids[requestID] = t
	c.order = append(c.order, requestID)
	return false
}

// Options says how to verify: secrets (checked once, by NewOptions) and settings.
type Options struct {
	secrets         [][]byte
	Tolerance       int64        // seconds either side of now; 300
	Now             func() int64 // the clock (tests); time.Now when nil
	Prefix          string       // "X-Flowgate-"
	AcceptV1        bool         // also accept a v1 signature when there is no v2 (transition only)
	Replay          ReplayCache  // refuse a request id seen before; nil: off
	RequestIDHeader string       // "X-Request-Id"
	ClientIPHeader  string       // "X-Real-IP"
}

// NewOptions checks the secrets (every secret currently accepted, newest first, each >= 32
// bytes) and returns the default settings.
func NewOptions(secrets []string) (*Options, error) {
	if len(secrets) == 0 {
		return nil, &ConfigError{"no verification secret given; use the list flowgate signs with (FLOWGATE_SIGNING_SECRET, newest first)"}
	}
	o := &Options{Tolerance: 300, Prefix: "X-Flowgate-", RequestIDHeader: "X-Request-Id", ClientIPHeader: "X-Real-IP"}
	for i, s := range secrets {
		if s == "" {
			return nil, &ConfigError{fmt.Sprintf("verification secret #%d is empty (an unset variable?)", i+1)}
		}
		if len(s) < 32 {
			return nil, &ConfigError{fmt.Sprintf("verification secret #%d is shorter than 32 bytes; flowgate refuses such secrets too", i+1)}
		}
		o.secrets = append(o.secrets, []byte(s))
	}
	return o, nil
}

// SecretsFromEnv reads a comma-separated secret list from the environment (blank entries skipped).
func SecretsFromEnv(name string) []string {
	var out []string
	for _, s := range strings.Split(os.Getenv(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Pair is one key and value of a decoded trusted header.
type Pair struct{ Key, Value string }

// Pairs is a decoded trusted header, in the order flowgate sent it.
type Pairs []Pair

// Get returns the value of key.
func (p Pairs) Get(key string) (string, bool) {
	for _, kv := range p {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// TrustedContext is what a verified request carries. Pre-fill only through VerifiedPrefill /
// BrowserPrefill.
type TrustedContext struct {
	Site, Session *string // nil when absent
	Status        string  // accepted | verified | unverified | absent | discarded
	DiscardReason string  // the edge's reason when discarded
	Context       Pairs   // a browser's claims unless Status is "verified"
	RequestID     string  // v2 only
	ClientIP      string  // v2 only
	SignedAt      int64
	Version       string // "v1" | "v2"
	prefill       Pairs
}

// VerifiedPrefill returns the pre-fill slots only when the host site signed the context
// (`accepted; verified`); nil otherwise (and on a nil receiver).
func (c *TrustedContext) VerifiedPrefill() Pairs {
	if c == nil || c.Status != "verified" {
		return nil
	}
	return c.prefill
}

// BrowserPrefill is for sites documented as `mode: off`: the browser-written pre-fill of a
// plain `accepted` status, when the caller says so. Never that of `accepted; unverified`.
func (c *TrustedContext) BrowserPrefill(acknowledgeUnsigned bool) Pairs {
	if c == nil || !acknowledgeUnsigned || (c.Status != "accepted" && c.Status != "verified") {
		return nil
	}
	return c.prefill
}

// VerifyHTTP verifies a net/http request as the server received it.
func VerifyHTTP(r *http.Request, o *Options) (*TrustedContext, error) {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h["Host"] = []string{r.Host} // net/http moves Host out of Header
	return Verify(r.Method, r.RequestURI, h, o)
}

// Verify verifies a request and decodes its trusted headers. target is '/path?query' exactly
// as received; header names in any case. The error is a *VerifyError.
func Verify(method, target string, header http.Header, o *Options) (*TrustedContext, error) {
	lower := map[string][]string{}
	for name, values := range header {
		k := strings.ToLower(name)
		lower[k] = append(lower[k], values...)
	}
	var dup *VerifyError
	get := func(name string) *string {
		values := lower[strings.ToLower(name)]
		if len(values) > 1 && dup == nil {
			dup = reject("bad_header", "header "+name+" occurs more than once")
		}
		if len(values) == 0 {
			return nil
		}
		return &values[0]
	}
	p := o.Prefix
	signature := get(p + "Signature")
	var values [5]*string
	for i, n := range []string{"Site", "Session", "Status", "Context", "Prefill"} {
		values[i] = get(p + n)
	}
	requestID, clientIP, host := get(o.RequestIDHeader), get(o.ClientIPHeader), get("Host")
	if dup != nil {
		return nil, dup
	}
	if signature == nil {
		return nil, reject("missing_signature", "signature header missing")
	}

	// t=<digits>,v1=<hex>,v2=<hex>: t once, each version at most once, unknown keys ignored.
	t := int64(-1)
	macs := map[string][]byte{}
	other := false
	for _, field := range strings.Split(*signature, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok {
			continue
		}
		switch {
		case name == "t":
			n, err := strconv.ParseInt(value, 10, 64)
			if t >= 0 || err != nil || len(value) > 18 || strings.TrimLeft(value, "0123456789") != "" {
				return nil, reject("malformed_signature", "signature timestamp malformed")
			}
			t = n
		case name == "v1" || name == "v2":
			mac, err := hex.DecodeString(value)
			if _, seen := macs[name]; seen || err != nil || len(value) != 64 {
				return nil, reject("malformed_signature", "signature "+name+" malformed")
			}
			macs[name] = mac
		case len(name) > 1 && name[0] == 'v' && strings.TrimLeft(name[1:], "0123456789") == "":
			other = true
		}
	}
	if t < 0 || (len(macs) == 0 && !other) {
		return nil, reject("malformed_signature", "signature needs t= and a version")
	}
	version := "v2"
	if _, ok := macs["v2"]; !ok {
		if _, ok := macs["v1"]; !ok || !o.AcceptV1 {
			return nil, reject("unsupported_version", "no signature version this verifier checks")
		}
		version = "v1"
	}

	path, query, hasQuery := strings.Cut(target, "?")
	if hasQuery && query == "" {
		target = path // an empty query signs as none
	}
	str := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	var signed bytes.Buffer
	signed.WriteString(version + "\n" + strconv.FormatInt(t, 10))
	var parts []string
	if version == "v2" {
		parts = []string{str(requestID), method, str(host), target, str(clientIP)}
	} else {
		parts = []string{path}
	}
	for _, v := range values {
		parts = append(parts, str(v))
	}
	for _, part := range parts {
		signed.WriteString("\n" + part)
	}
	ok := false
	for _, secret := range o.secrets {
		// hmac.Equal is constant-time; every secret is tried.
		m := hmac.New(sha256.New, secret)
		m.Write(signed.Bytes())
		ok = hmac.Equal(m.Sum(nil), macs[version]) || ok
	}
	if !ok {
		return nil, reject("bad_signature", "signature does not match the request")
	}

	now := time.Now().Unix()
	if o.Now != nil {
		now = o.Now()
	}
	if d := now - t; d > o.Tolerance || -d > o.Tolerance {
		return nil, reject("expired", fmt.Sprintf("signature is %d s from now", d))
	}

	c := &TrustedContext{Site: values[0], Session: values[1], SignedAt: t, Version: version}
	switch status := str(values[2]); status {
	case "accepted":
		c.Status = "accepted"
	case "accepted; verified":
		c.Status = "verified"
	case "accepted; unverified":
		c.Status = "unverified"
	case "absent", "":
		c.Status = "absent"
	default:
		reason := strings.TrimPrefix(status, "discarded; reason=")
		if reason == status || reason == "" {
			return nil, reject("bad_header", "unknown status")
		}
		c.Status, c.DiscardReason = "discarded", reason
	}
	var err error
	if c.Context, err = decodeObject(str(values[3])); err != nil {
		return nil, err
	}
	if c.prefill, err = decodeObject(str(values[4])); err != nil {
		return nil, err
	}
	if version == "v2" {
		c.RequestID, c.ClientIP = str(requestID), str(clientIP)
	}
	if o.Replay != nil {
		if version != "v2" {
			// v1 signs no request id: a replay could not be told apart.
			return nil, reject("unsupported_version", "replay protection needs v2")
		}
		if c.RequestID == "" {
			return nil, reject("bad_header", "no request id to check for replays")
		}
		if o.Replay.Seen(c.RequestID, t) {
			return nil, reject("replayed", "request id seen before")
		}
	}
	return c, nil
}

// decodeObject turns base64 of a JSON object of strings into ordered pairs ("" → none).
func decodeObject(value string) (Pairs, error) {
	bad := reject("bad_header", "trusted header cannot be decoded")
	out := Pairs{}
	if value == "" {
		return out, nil
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(value)
	if err != nil {
		return nil, bad
	}
	// Token by token, so the keys keep the order flowgate sent them in (a map would not).
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, bad
	}
	for dec.More() {
		k, err1 := dec.Token()
		v, err2 := dec.Token()
		key, ok1 := k.(string)
		val, ok2 := v.(string)
		if err1 != nil || err2 != nil || !ok1 || !ok2 {
			return nil, bad
		}
		out = append(out, Pair{key, val})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, bad
	}
	if _, err := dec.Token(); err == nil {
		return nil, bad // something after the object
	}
	return out, nil
}
