"""Test driver: one job on stdin (tests/kits/README.md, "Job format") ->
examples/upstream/verify.py -> one JSON answer on stdout."""
import json
import os
import sys

# The kits are read from the source tree: leave no __pycache__ beside them.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "upstream"))
import verify as flowgate  # noqa: E402

secrets, settings, replay, requests = [], {}, None, []
for line in sys.stdin.read().split("\n"):
    f = line.split("\t")
    if f[0] == "secret":
        secrets.append(f[1])
    elif f[0] == "secret_unset":
        secrets.append(os.environ.get("FLOWGATE_KITS_UNSET"))
    elif f[0] == "now":
        settings["now"] = int(f[1])
    elif f[0] == "tolerance":
        settings["tolerance"] = int(f[1])
    elif f[0] == "accept_v1":
        settings["accept_v1"] = True
    elif f[0] == "replay":
        replay = f[1]
    elif f[0] == "request":
        requests.append((f[1], f[2], []))
    elif f[0] == "header":
        requests[-1][2].append((f[1], "\t".join(f[2:])))
try:
    if replay == "memory":
        settings["replay"] = flowgate.MemoryReplayCache(settings.get("tolerance", 300))
    options = flowgate.Options(secrets, **settings)
except flowgate.ConfigError as e:
    print(json.dumps({"config_error": str(e)}))
    sys.exit(0)


def pairs(d):
    return None if d is None else [[k, v] for k, v in d.items()]


results = []
for method, target, headers in requests:
    try:
        t = flowgate.verify(method, target, headers, options)
        results.append({"ok": True, "result": {
            "site": t.site, "session": t.session, "status": t.status,
            "discard_reason": t.discard_reason, "context": pairs(t.context),
            "verified_prefill": pairs(t.verified_prefill()),
            "browser_prefill": pairs(t.browser_prefill(True)), "request_id": t.request_id,
            "client_ip": t.client_ip, "signed_at": t.signed_at, "version": t.version}})
    except flowgate.VerifyError as e:
        results.append({"ok": False, "reason": e.reason})
print(json.dumps({"results": results}))
