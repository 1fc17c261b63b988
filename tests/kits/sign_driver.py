"""Test driver: ``sign_driver.py SITE KID TTL NOW key=value…`` with the secret in
FLOWGATE_KITS_SECRET -> examples/host/sign.py -> the token on stdout."""
import os
import sys

# The kits are read from the source tree: leave no __pycache__ beside them.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "host"))
from sign import sign_context  # noqa: E402

site, kid, ttl, now = sys.argv[1:5]
context = [tuple(p.split("=", 1)) for p in sys.argv[5:]]
print(sign_context(context, site, kid, os.environ["FLOWGATE_KITS_SECRET"], ttl=int(ttl), now=int(now)))
