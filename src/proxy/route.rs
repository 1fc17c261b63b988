//! Which kind of route a request path is: init, session, or anything else.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::config::{PathMatch, RoutesConfig};
use crate::metrics::RouteKind;

/// The compiled route table.
#[derive(Debug, Clone)]
pub(crate) struct Routes {
    init_path: String,
    init_match: PathMatch,
    session_prefixes: Vec<String>,
}

impl Routes {
    /// Builds the table from the validated configuration.
    pub(crate) fn new(config: &RoutesConfig) -> Routes {
        Routes {
            init_path: config.init_path.clone(),
            init_match: config.init_match,
            session_prefixes: config.session_prefixes.clone(),
        }
    }

    /// Classifies a request path (without its query).
    ///
    /// A percent-encoded path is decoded first, so `/public_FlowWidget/%69nit` is the init
    /// route just as the backend will see it. Matching is case-sensitive.
    pub(crate) fn classify(&self, path: &str) -> RouteKind {
        let path: Cow<'_, str> = if path.contains('%') {
            percent_decode_str(path).decode_utf8_lossy()
        } else {
            Cow::Borrowed(path)
        };
        let is_init = match self.init_match {
            PathMatch::Exact => path == self.init_path,
            PathMatch::Prefix => path.starts_with(&self.init_path),
        };
        if is_init {
            RouteKind::Init
        } else if self.session_prefixes.iter().any(|p| path.starts_with(p)) {
            RouteKind::Session
        } else {
            RouteKind::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn default_routes() {
        let r = Routes::new(&Config::default().routes);
        assert_eq!(r.classify("/public_FlowWidget/init"), RouteKind::Init);
        assert_eq!(r.classify("/public_FlowWidget/%69nit"), RouteKind::Init);
        assert_eq!(r.classify("/public_FlowWidget/init/x"), RouteKind::Session);
        assert_eq!(
            r.classify("/public_FlowWidget/chat/send"),
            RouteKind::Session
        );
        assert_eq!(r.classify("/public_FlowWidget/"), RouteKind::Session);
        assert_eq!(r.classify("/public_FlowWidget"), RouteKind::Other);
        assert_eq!(r.classify("/public_flowwidget/init"), RouteKind::Other);
        assert_eq!(r.classify("/"), RouteKind::Other);
    }

    #[test]
    fn prefix_init_match() {
        let mut c = Config::default().routes;
        c.init_match = PathMatch::Prefix;
        let r = Routes::new(&c);
        assert_eq!(r.classify("/public_FlowWidget/init/v2"), RouteKind::Init);
    }
}
