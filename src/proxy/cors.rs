//! CORS on the widget's routes, answered at the edge for sites that list their origins.
//!
//! The widget is loaded from the chat vendor's domain into the customer's page, so every real
//! embedding is cross-origin. For a site with `origins`, flowgate owns CORS on the init and
//! session routes: a preflight is answered here and never forwarded (allowed methods and
//! headers and a max age for a listed origin; nothing the browser could accept for any other),
//! and an actual response carries `Access-Control-Allow-Origin: <origin>` and `Vary: Origin`
//! (and `Access-Control-Allow-Credentials: true` when the site sets `credentials`) for a listed
//! origin, with whatever CORS headers the backend sent replaced. A site without `origins` is
//! left as it was: preflights go to the backend, its CORS headers pass through.

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::Session;

use super::params::{self, RawParams};
use crate::metrics::RouteKind;
use crate::trust::TrustPolicy;

/// Methods a listed origin may use on the widget's routes.
const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
/// Request headers a listed origin may send: the body type, and the session key of
/// `sessions.bind: key`.
const ALLOW_HEADERS: &str = "Content-Type, Flowgate-Session-Key";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// What flowgate does about CORS on one response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Cors {
    /// Not a widget route, or a site without `origins`: the backend's headers pass through.
    #[default]
    Untouched,
    /// The site lists its origins: flowgate's headers replace the backend's.
    Owned {
        /// The request's `Origin`, when the site lists it.
        allow: Option<String>,
        /// Whether credentials are allowed.
        credentials: bool,
    },
}

/// The CORS decision for a request on `route` (the site id from `raw`, its query's parameters).
pub(crate) fn decide(
    req: &RequestHeader,
    route: RouteKind,
    raw: &RawParams<'_>,
    trust: &TrustPolicy,
) -> Cors {
    if route == RouteKind::Other {
        return Cors::Untouched;
    }
    let Some(site) = raw.site.and_then(|s| params::decode_id(s).ok()) else {
        return Cors::Untouched;
    };
    let rules = trust.rules(&site);
    if rules.origins.is_none() {
        return Cors::Untouched;
    }
    let allow = req
        .headers
        .get(http::header::ORIGIN)
        .filter(|o| rules.lists_origin(o.as_bytes()))
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    Cors::Owned {
        allow,
        credentials: rules.credentials,
    }
}

/// Whether `req` is a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`).
pub(crate) fn is_preflight(req: &RequestHeader) -> bool {
    req.method == http::Method::OPTIONS
        && req.headers.contains_key(http::header::ORIGIN)
        && req
            .headers
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn set(resp: &mut ResponseHeader, cors: &Cors, preflight: bool) -> Result<()> {
    let Cors::Owned { allow, credentials } = cors else {
        return Ok(());
    };
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-max-age",
        "access-control-expose-headers",
    ] {
        resp.remove_header(name);
    }
    resp.append_header("Vary", "Origin")?;
    let Some(origin) = allow else {
        return Ok(());
    };
    resp.insert_header("Access-Control-Allow-Origin", origin.as_str())?;
    if *credentials {
        resp.insert_header("Access-Control-Allow-Credentials", "true")?;
    }
    if preflight {
        resp.insert_header("Access-Control-Allow-Methods", ALLOW_METHODS)?;
        resp.insert_header("Access-Control-Allow-Headers", ALLOW_HEADERS)?;
        resp.insert_header("Access-Control-Max-Age", MAX_AGE)?;
    }
    Ok(())
}

/// Puts flowgate's CORS headers on an upstream response (nothing for [`Cors::Untouched`]).
pub(crate) fn apply(cors: &Cors, resp: &mut ResponseHeader) -> Result<()> {
    set(resp, cors, false)
}

/// Answers a preflight at the edge: `204` with the CORS headers (none for an unlisted origin,
/// so the browser refuses the actual request).
pub(crate) async fn answer_preflight(session: &mut Session, cors: &Cors) -> Result<()> {
    let mut resp = ResponseHeader::build(204, Some(8))?;
    set(&mut resp, cors, true)?;
    resp.insert_header("Content-Length", "0")?;
    resp.insert_header("Cache-Control", "no-store")?;
    session.write_response_header(Box::new(resp), true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_headers_replace_the_backends() {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.insert_header("Access-Control-Allow-Origin", "*")
            .unwrap();
        let cors = Cors::Owned {
            allow: Some("https://shop.example.com".into()),
            credentials: true,
        };
        apply(&cors, &mut resp).unwrap();
        assert_eq!(
            resp.headers["access-control-allow-origin"],
            "https://shop.example.com"
        );
        assert_eq!(resp.headers["access-control-allow-credentials"], "true");
        assert_eq!(resp.headers["vary"], "Origin");
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.insert_header("Access-Control-Allow-Origin", "*")
            .unwrap();
        let refused = Cors::Owned {
            allow: None,
            credentials: false,
        };
        apply(&refused, &mut resp).unwrap();
        assert!(resp.headers.get("access-control-allow-origin").is_none());
    }
}
