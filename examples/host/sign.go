// Package flowgate signs a visitor context on the host site's server (Go 1.18+, with
// github.com/golang-jwt/jwt/v4, the maintained Go JWT library; Debian ships it as
// golang-github-golang-jwt-jwt-dev). Copy this file into your host application.
//
// An unsigned `data-visitor-context` is built in the browser, so anyone can claim any
// `ims_email`. On a site whose flowgate mode is `optional` or `required`, sign the context with
// the secret you share with flowgate: a standard JWT (HS256 by default) whose private claims are
// the context, with `aud` = your site id, `iat`, `exp` and a `kid` naming the key:
//
//	token, err := flowgate.SignContext(
//		[]flowgate.Claim{{"account_id", u.ID}, {"ims_username", u.Name}, {"ims_email", u.Email}},
//		"YOUR_SITEID",
//		"key-2026-11",                              // the kid configured in flowgate
//		[]byte(os.Getenv("FLOWGATE_SITE_KEY_2026_11")), // the shared secret
//		flowgate.SignOptions{})                      // HS256, 300 s, now
//	// <script src=".../flowwidget.js" data-siteid="YOUR_SITEID"
//	//         data-visitor-context-token="{{.Token}}"></script>
//
// Keep the TTL short. Rotation: add the new key to flowgate under a new kid, sign with it, and
// remove the old kid from flowgate once no page can still hold a token signed with it.
package flowgate

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// RegisteredClaims are the claims flowgate treats as registered; they cannot be context keys.
var RegisteredClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

// Claim is one context key and value.
type Claim struct{ Key, Value string }

// SignOptions: zero values mean HS256, 300 seconds, the clock.
type SignOptions struct {
	Alg string // HS256 | HS384 | HS512
	TTL time.Duration
	Now time.Time
}

// contextClaims keeps the context in the order given (jwt.MapClaims would sort it).
type contextClaims struct {
	context  []Claim
	aud      string
	iat, exp int64
}

func (c contextClaims) Valid() error { return nil }

func (c contextClaims) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for _, kv := range c.context {
		k, _ := json.Marshal(kv.Key)
		v, _ := json.Marshal(kv.Value)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
		b.WriteByte(',')
	}
	aud, _ := json.Marshal(c.aud)
	b.WriteString(`"aud":` + string(aud) + `,"iat":` + strconv.FormatInt(c.iat, 10) +
		`,"exp":` + strconv.FormatInt(c.exp, 10) + "}")
	return b.Bytes(), nil
}

// SignContext signs context for siteID with the key kid; the compact JWT.
func SignContext(context []Claim, siteID, kid string, secret []byte, o SignOptions) (string, error) {
	methods := map[string]jwt.SigningMethod{"": jwt.SigningMethodHS256, "HS256": jwt.SigningMethodHS256,
		"HS384": jwt.SigningMethodHS384, "HS512": jwt.SigningMethodHS512}
	method, ok := methods[o.Alg]
	if !ok {
		return "", errors.New("flowgate accepts HS256, HS384 and HS512 only")
	}
	if len(secret) == 0 {
		return "", errors.New("no signing secret (an unset variable?)")
	}
	for _, kv := range context {
		for _, r := range RegisteredClaims {
			if kv.Key == r {
				return "", errors.New("context key " + kv.Key + " is a registered claim")
			}
		}
	}
	now, ttl := o.Now, o.TTL
	if now.IsZero() {
		now = time.Now()
	}
	if ttl == 0 {
		ttl = 300 * time.Second
	}
	claims := contextClaims{context, siteID, now.Unix(), now.Add(ttl).Unix()}
	token := jwt.NewWithClaims(method, claims)
	token.Header["kid"] = kid
	return token.SignedString(secret)
}
