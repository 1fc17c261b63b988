//! What the kit needs of a request as the backend received it: method, target, headers.

/// A request as the backend received it.
pub trait SignedRequest {
    /// The method (`GET`).
    fn method(&self) -> &str;
    /// The request target as received: path and query (`/public_FlowWidget/init?siteid=…`),
    /// not percent-decoded.
    fn target(&self) -> &str;
    /// The value of header `name` (case-insensitive), or `None` when absent or not text.
    fn header(&self, name: &str) -> Option<&str>;
    /// How many times header `name` occurs (a signed header must occur at most once).
    fn header_count(&self, name: &str) -> usize {
        usize::from(self.header(name).is_some())
    }
    /// The `Host` value (for an HTTP/2 request, its `:authority`).
    fn host(&self) -> Option<&str> {
        self.header("host")
    }
}

fn target_of(uri: &http::Uri) -> &str {
    uri.path_and_query().map_or("/", |pq| pq.as_str())
}

fn host_of<'a>(headers: &'a http::HeaderMap, uri: &'a http::Uri) -> Option<&'a str> {
    headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

fn get<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl<B> SignedRequest for http::Request<B> {
    fn method(&self) -> &str {
        self.method().as_str()
    }
    fn target(&self) -> &str {
        target_of(self.uri())
    }
    fn header(&self, name: &str) -> Option<&str> {
        get(self.headers(), name)
    }
    fn header_count(&self, name: &str) -> usize {
        self.headers().get_all(name).iter().count()
    }
    fn host(&self) -> Option<&str> {
        host_of(self.headers(), self.uri())
    }
}

impl SignedRequest for http::request::Parts {
    fn method(&self) -> &str {
        self.method.as_str()
    }
    fn target(&self) -> &str {
        target_of(&self.uri)
    }
    fn header(&self, name: &str) -> Option<&str> {
        get(&self.headers, name)
    }
    fn header_count(&self, name: &str) -> usize {
        self.headers.get_all(name).iter().count()
    }
    fn host(&self) -> Option<&str> {
        host_of(&self.headers, &self.uri)
    }
}

/// A [`SignedRequest`] from a method, a target and any header lookup (a framework's own header
/// type, a CGI environment, a test table). The lookup should match names case-insensitively.
pub struct RequestView<'a, F> {
    method: &'a str,
    target: &'a str,
    lookup: F,
}

impl<'a, F> RequestView<'a, F>
where
    F: Fn(&str) -> Option<&'a str>,
{
    /// Wraps `method`, `target` (path and query as received) and `lookup` (`Host` included).
    pub fn new(method: &'a str, target: &'a str, lookup: F) -> Self {
        RequestView {
            method,
            target,
            lookup,
        }
    }
}

impl<'a, F> SignedRequest for RequestView<'a, F>
where
    F: Fn(&str) -> Option<&'a str>,
{
    fn method(&self) -> &str {
        self.method
    }
    fn target(&self) -> &str {
        self.target
    }
    fn header(&self, name: &str) -> Option<&str> {
        (self.lookup)(name)
    }
}
