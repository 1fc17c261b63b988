//! The `--redis` URL: which topology, which nodes, which credentials and database.
//!
//! ```text
//! redis://[user:pass@]host[:port][/db]                     standalone
//! rediss://…                                               standalone over TLS
//! redis+cluster://[user:pass@]host:port,host:port,…        Cluster (database 0 only)
//! redis+sentinel://[user:pass@]host:port,…/master[/db]     Sentinel (credentials are the master's)
//! ```
//! `rediss+cluster://` and `rediss+sentinel://` use TLS to every node. Errors name the part that
//! is wrong and never repeat the password.

use std::fmt;

use percent_encoding::percent_decode_str;

/// Port of a Redis data node when the URL leaves it out.
pub(crate) const DEFAULT_PORT: u16 = 6379;
/// Port of a Sentinel when the URL leaves it out.
pub(crate) const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// One `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// Host name or IP address (IPv6 without brackets).
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How the Redis deployment is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Topology {
    /// One server (or a proxy in front of several).
    Standalone(Node),
    /// Redis Cluster: the seed nodes; the rest is discovered.
    Cluster(Vec<Node>),
    /// Sentinel: the sentinels and the name of the master they watch.
    Sentinel {
        /// The sentinels to ask.
        sentinels: Vec<Node>,
        /// The monitored master's name.
        master: String,
    },
}

/// A parsed Redis URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RedisUrl {
    /// Where to connect.
    pub(crate) topology: Topology,
    /// TLS to every data node.
    pub(crate) tls: bool,
    /// ACL user name, if any.
    pub(crate) username: Option<String>,
    /// Password, if any; never printed.
    pub(crate) password: Option<String>,
    /// Database number (always 0 for Cluster).
    pub(crate) db: i64,
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("topology", &self.topology)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .finish()
    }
}

impl RedisUrl {
    /// A description for logs and health reports: scheme and nodes, no credentials.
    pub(crate) fn describe(&self) -> String {
        let tls = if self.tls { "s" } else { "" };
        let join = |nodes: &[Node]| {
            nodes
                .iter()
                .map(Node::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        match &self.topology {
            Topology::Standalone(node) => format!("redis{tls}://{node}/{}", self.db),
            Topology::Cluster(nodes) => format!("redis{tls}+cluster://{}", join(nodes)),
            Topology::Sentinel { sentinels, master } => {
                format!(
                    "redis{tls}+sentinel://{}/{master}/{}",
                    join(sentinels),
                    self.db
                )
            }
        }
    }
}

/// What is wrong with a Redis URL; the message names the part and the expected form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError {
    /// The URL with any password replaced by `***`.
    pub url: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid Redis URL `{}`: {}", self.url, self.reason)
    }
}

impl std::error::Error for UrlError {}

const FORMS: &str = "expected redis://host:port[/db], rediss://host:port[/db], \
                     redis+cluster://host:port,host:port,… or redis+sentinel://host:port,…/master-name";

/// Parses a Redis URL of any supported form.
pub(crate) fn parse(url: &str) -> Result<RedisUrl, UrlError> {
    let fail = |reason: String| UrlError {
        url: redact(url),
        reason,
    };
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(fail(format!("the URL is empty; {FORMS}")));
    }
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(fail(format!("missing scheme; {FORMS}")));
    };
    #[derive(PartialEq)]
    enum Kind {
        Standalone,
        Cluster,
        Sentinel,
    }
    let (kind, tls) = match scheme.to_ascii_lowercase().as_str() {
        "redis" => (Kind::Standalone, false),
        "rediss" => (Kind::Standalone, true),
        "redis+cluster" => (Kind::Cluster, false),
        "rediss+cluster" => (Kind::Cluster, true),
        "redis+sentinel" => (Kind::Sentinel, false),
        "rediss+sentinel" => (Kind::Sentinel, true),
        "unix" | "redis+unix" => {
            return Err(fail("Unix sockets are not supported; use TCP".into()));
        }
        other => return Err(fail(format!("unknown scheme `{other}`; {FORMS}"))),
    };
    if rest.contains('?') || rest.contains('#') {
        return Err(fail(
            "query parameters and fragments are not supported; set options in the config file"
                .into(),
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            let decode = |s: &str, what: &str| {
                percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| fail(format!("the {what} is not valid percent-encoded UTF-8")))
            };
            let user = decode(user, "user name")?;
            let pass = pass.map(|p| decode(p, "password")).transpose()?;
            (
                Some(user).filter(|u| !u.is_empty()),
                pass.filter(|p| !p.is_empty()),
            )
        }
    };
    let default_port = if kind == Kind::Sentinel {
        DEFAULT_SENTINEL_PORT
    } else {
        DEFAULT_PORT
    };
    if hosts.is_empty() {
        return Err(fail(format!("no host given; {FORMS}")));
    }
    let nodes = hosts
        .split(',')
        .map(|h| parse_node(h, default_port).map_err(&fail))
        .collect::<Result<Vec<_>, _>>()?;

    let segments: Vec<&str> = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let parse_db = |s: &str| {
        s.parse::<i64>()
            .ok()
            .filter(|db| *db >= 0)
            .ok_or_else(|| fail(format!("database `{s}` is not a number 0 or above")))
    };

    let (topology, db) = match kind {
        Kind::Standalone => {
            if nodes.len() > 1 {
                return Err(fail(format!(
                    "{scheme}:// takes one host, got {}; for several nodes use \
                     redis+cluster:// or redis+sentinel://",
                    nodes.len()
                )));
            }
            let db = match segments.as_slice() {
                [] => 0,
                [db] => parse_db(db)?,
                _ => return Err(fail("the path must be empty or a database number".into())),
            };
            let node = nodes
                .into_iter()
                .next()
                .ok_or_else(|| fail("no host".into()))?;
            (Topology::Standalone(node), db)
        }
        Kind::Cluster => {
            match segments.as_slice() {
                [] => {}
                ["0"] => {}
                [_] => {
                    return Err(fail(
                        "Redis Cluster only has database 0; remove the path".into(),
                    ));
                }
                _ => return Err(fail("a Cluster URL takes no path".into())),
            }
            (Topology::Cluster(nodes), 0)
        }
        Kind::Sentinel => {
            let (master, db) = match segments.as_slice() {
                [master] => (*master, 0),
                [master, db] => (*master, parse_db(db)?),
                [] => {
                    return Err(fail(
                        "missing master name; expected redis+sentinel://host:port,…/master-name"
                            .into(),
                    ));
                }
                _ => {
                    return Err(fail(
                        "the path must be /master-name or /master-name/db".into(),
                    ));
                }
            };
            let master = percent_decode_str(master)
                .decode_utf8()
                .map_err(|_| fail("the master name is not valid UTF-8".into()))?
                .into_owned();
            (
                Topology::Sentinel {
                    sentinels: nodes,
                    master,
                },
                db,
            )
        }
    };
    Ok(RedisUrl {
        topology,
        tls,
        username,
        password,
        db,
    })
}

fn parse_node(text: &str, default_port: u16) -> Result<Node, String> {
    if text.is_empty() {
        return Err("empty host in the host list (check for a stray comma)".into());
    }
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err(format!("host `{text}` has an unclosed `[`"));
        };
        match after {
            "" => (host, None),
            p => match p.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected `{p}` after `[{host}]`")),
            },
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("host `{text}` has no host name"));
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    if !host.chars().all(valid) {
        return Err(format!("host `{host}` is not a host name or IP address"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port `{p}` of host `{host}` is not a number 1-65535"))?,
    };
    Ok(Node {
        host: host.to_string(),
        port,
    })
}

/// The URL with the password (if any) replaced by `***`, for error messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        // A lone userinfo is taken as a user name, but may be a password typed without `:`.
        None => "***".to_string(),
    };
    format!("{scheme}://{shown}{}", &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: u16) -> Node {
        Node {
            host: host.into(),
            port,
        }
    }

    fn err(url: &str) -> String {
        parse(url).expect_err(url).to_string()
    }

    #[test]
    fn standalone_forms() {
        let u = parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!(u.topology, Topology::Standalone(node("127.0.0.1", 6380)));
        assert_eq!((u.db, u.tls), (2, false));
        let u = parse("rediss://cache.example.com").unwrap();
        assert_eq!(
            u.topology,
            Topology::Standalone(node("cache.example.com", 6379))
        );
        assert!(u.tls);
        let u = parse("redis://[::1]:7000/").unwrap();
        assert_eq!(u.topology, Topology::Standalone(node("::1", 7000)));
        assert_eq!(u.describe(), "redis://[::1]:7000/0");
    }

    #[test]
    fn credentials_are_decoded_and_never_shown() {
        let u = parse("redis://app:p%40ss:w@localhost:6379").unwrap();
        assert_eq!(u.username.as_deref(), Some("app"));
        assert_eq!(u.password.as_deref(), Some("p@ss:w"));
        assert!(!format!("{u:?}").contains("p@ss"));
        assert!(!u.describe().contains("p@ss"));
        let u = parse("redis://:secret@localhost").unwrap();
        assert_eq!((u.username, u.password.as_deref()), (None, Some("secret")));
        let e = err("redis://app:secret@localhost:99999");
        assert!(!e.contains("secret"), "{e}");
        assert!(e.contains("app:***@localhost:99999"), "{e}");
    }

    #[test]
    fn cluster_and_sentinel() {
        let u = parse("redis+cluster://a:7000,b:7001,[::1]:7002").unwrap();
        assert_eq!(
            u.topology,
            Topology::Cluster(vec![node("a", 7000), node("b", 7001), node("::1", 7002)])
        );
        let u = parse("redis+sentinel://s1,s2:26380/mymaster/3").unwrap();
        assert_eq!(
            u.topology,
            Topology::Sentinel {
                sentinels: vec![node("s1", 26379), node("s2", 26380)],
                master: "mymaster".into()
            }
        );
        assert_eq!(u.db, 3);
        assert_eq!(
            u.describe(),
            "redis+sentinel://s1:26379,s2:26380/mymaster/3"
        );
        assert!(parse("rediss+cluster://a:1").unwrap().tls);
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(err("").contains("empty"));
        assert!(err("localhost:6379").contains("missing scheme"));
        assert!(err("http://localhost").contains("unknown scheme `http`"));
        assert!(err("redis://a:1,b:2").contains("takes one host"));
        assert!(err("redis://localhost:abc").contains("port `abc` of host `localhost`"));
        assert!(err("redis://localhost:0").contains("not a number 1-65535"));
        assert!(err("redis://localhost/x").contains("database `x`"));
        assert!(err("redis://localhost/-1").contains("database `-1`"));
        assert!(err("redis+cluster://a:1,,b:2").contains("stray comma"));
        assert!(err("redis+cluster://a:1/3").contains("only has database 0"));
        assert!(err("redis+sentinel://s1:26379").contains("missing master name"));
        assert!(err("redis+sentinel://s1/m/x").contains("database `x`"));
        assert!(err("redis://localhost?timeout=1").contains("query parameters"));
        assert!(err("redis://").contains("no host"));
        assert!(err("redis://[::1").contains("unclosed"));
        assert!(err("redis://bad host").contains("not a host name"));
        assert!(err("unix:///tmp/redis.sock").contains("Unix sockets"));
    }
}
