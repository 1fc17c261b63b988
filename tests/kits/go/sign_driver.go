// Test driver: `sign_driver SITE KID TTL NOW key=value…` with the secret in
// FLOWGATE_KITS_SECRET → examples/host/sign.go → the token on stdout.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"kitstest/flowgate"
)

func main() {
	ttl, _ := strconv.ParseInt(os.Args[3], 10, 64)
	now, _ := strconv.ParseInt(os.Args[4], 10, 64)
	var context []flowgate.Claim
	for _, p := range os.Args[5:] {
		k, v, _ := strings.Cut(p, "=")
		context = append(context, flowgate.Claim{Key: k, Value: v})
	}
	token, err := flowgate.SignContext(context, os.Args[1], os.Args[2],
		[]byte(os.Getenv("FLOWGATE_KITS_SECRET")),
		flowgate.SignOptions{TTL: time.Duration(ttl) * time.Second, Now: time.Unix(now, 0)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(token)
}
