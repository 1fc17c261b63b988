"""flowgate — sign a visitor context on the host site's server (Python 3.8+, with PyJWT:
``pip install PyJWT`` or Debian's ``python3-jwt``).

An unsigned ``data-visitor-context`` is built in the browser, so anyone can claim any
``ims_email``. On a site whose flowgate mode is ``optional`` or ``required``, sign the context
with the secret you share with flowgate: a standard JWT (HS256 by default) whose private claims
are the context, with ``aud`` = your site id, ``iat``, ``exp`` and a ``kid`` naming the key::

    from sign import sign_context
    token = sign_context(
        [("account_id", u.id), ("ims_username", u.name), ("ims_email", u.email)],
        "YOUR_SITEID",
        "key-2026-11",                                 # the kid configured in flowgate
        os.environ["FLOWGATE_SITE_KEY_2026_11"])       # the shared secret, from your secrets store
    # <script src=".../flowwidget.js" data-siteid="YOUR_SITEID"
    #         data-visitor-context-token="{{ token }}"></script>

The context is (key, value) pairs or a dict, in the order operators should see it. Keep
``ttl`` short (seconds). Rotation: add the new key to flowgate under a new kid, sign with it,
and remove the old kid from flowgate once no page can still hold a token signed with it.
"""

import time

import jwt

#: Claims flowgate treats as registered; they cannot be context keys.
REGISTERED_CLAIMS = ("iss", "sub", "aud", "exp", "nbf", "iat", "jti")


def sign_context(context, site_id, kid, secret, ttl=300, alg="HS256", now=None):
    """Signs ``context`` for ``site_id``; returns the compact JWT (a str)."""
    if alg not in ("HS256", "HS384", "HS512"):
        raise ValueError("flowgate accepts HS256, HS384 and HS512 only")
    if not secret:
        raise ValueError("no signing secret (an unset variable?)")
    payload = {}
    for key, value in (context.items() if hasattr(context, "items") else context):
        if key in REGISTERED_CLAIMS:
            raise ValueError("context key %s is a registered claim" % key)
        payload[key] = str(value)
    now = int(time.time()) if now is None else int(now)
    payload.update(aud=site_id, iat=now, exp=now + int(ttl))
    token = jwt.encode(payload, secret, algorithm=alg, headers={"kid": kid})
    return token.decode("ascii") if isinstance(token, bytes) else token
