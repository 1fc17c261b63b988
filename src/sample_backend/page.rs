//! The demo's host page: an example shop that embeds the widget the way the product docs show
//! (the `data-visitor-context` attribute, the `window.imsFlowConfig` object, or both), beside an
//! operator's "Visitor Context" panel. Also the widget's static files.
//!
//! Everything the page interpolates is escaped here (attribute and text: `htmlspecialchars`
//! with `ENT_QUOTES`; inside the inline config script: JSON with `<`, `>`, `&`, U+2028 and U+2029
//! escaped). The page is served with a strict Content-Security-Policy: scripts only from this
//! origin or with the response's nonce, no inline handlers or styles.

use std::fmt::Write as _;

use base64::Engine as _;

/// The site id the demo page uses.
pub const DEMO_SITE: &str = "demo-site";

/// The widget script's stable path.
pub const WIDGET_JS: &str = "/widget/visitor-context.js";

/// A page that a person can open: who is "logged in", and how the page passes the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Persona {
    /// The `?as=` value.
    pub(crate) id: &'static str,
    /// Shown in the page header.
    pub(crate) display: &'static str,
    /// The context the host page's server would build for this visitor (None: anonymous).
    pub(crate) context: Option<&'static str>,
}

/// The context of the product docs' example: a logged-in customer (the demo's Jane, and the
/// first `curl` line `flowgate demo` prints).
pub const SAMPLE_CONTEXT: &str = r##"{"account_id":"USR-84920","plan":"Pro","last_order":"#ORD-20241122","ims_username":"Jane Smith","ims_email":"jane@example.com"}"##;

/// The demo's visitors.
pub(crate) const PERSONAS: [Persona; 4] = [
    Persona {
        id: "jane",
        display: "Jane Smith",
        context: Some(SAMPLE_CONTEXT),
    },
    Persona {
        id: "zoe",
        display: "Zoë 山田 👩‍💻",
        context: Some(
            r#"{"account_id":"USR-00042","plan":"Team","ims_username":"Zoë 山田 👩‍💻","ims_email":"zoe@example.jp","ims_telephone":"+81 3-1234-5678"}"#,
        ),
    },
    Persona {
        id: "mallory",
        display: "<img src=x onerror=alert(1)>",
        context: Some(
            r#"{"account_id":"<img src=x onerror=alert(1)>","crm_note":"&amp;lt;img src=x onerror=alert(1)&amp;gt;","plan":"x' onmouseover='alert(1)","ims_username":"Mallory <img src=x onerror=alert(1)>"}"#,
        ),
    },
    Persona {
        id: "anonymous",
        display: "not signed in",
        context: None,
    },
];

/// The context a "both" page puts in the config object, to show that the attribute wins.
pub(crate) const CONFIG_CONTEXT: &str = r#"{"account_id":"USR-CONFIG","plan":"Free","ims_username":"Sam Config","ims_email":"sam@config.example"}"#;

/// How the page hands the context to the widget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// `data-visitor-context` on the script tag (the docs' recommended option).
    Attribute,
    /// `window.imsFlowConfig.visitorContext`.
    Config,
    /// Both; the attribute wins.
    Both,
}

impl Via {
    fn parse(s: &str) -> Via {
        match s {
            "config" => Via::Config,
            "both" => Via::Both,
            _ => Via::Attribute,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Via::Attribute => "attribute",
            Via::Config => "config",
            Via::Both => "both",
        }
    }
}

/// `htmlspecialchars($s, ENT_QUOTES, 'UTF-8')`.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#039;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON text made safe inside an inline `<script>` element.
fn script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A fresh nonce for one response's Content-Security-Policy.
pub(crate) fn nonce() -> String {
    let mut bytes = [0u8; 18];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: a page without its inline config still works (the attribute wins).
        return "unavailable".to_owned();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The Content-Security-Policy the demo pages are served with.
pub(crate) fn csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; \
         img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The host page for `?as=<persona>&via=<attribute|config|both>`.
pub(crate) fn host_page(query: &str, nonce: &str) -> String {
    let mut persona_id = "jane";
    let mut via = Via::Attribute;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("as", v)) => persona_id = v,
            Some(("via", v)) => via = Via::parse(v),
            _ => {}
        }
    }
    let persona = PERSONAS
        .iter()
        .find(|p| p.id == persona_id)
        .unwrap_or(&PERSONAS[0]);

    let attr_context = match via {
        Via::Attribute | Via::Both => persona.context,
        Via::Config => None,
    };
    let config_context = match via {
        Via::Config => persona.context,
        Via::Both => Some(CONFIG_CONTEXT),
        Via::Attribute => None,
    };

    let mut tag = format!("<script src=\"{WIDGET_JS}\"");
    if via != Via::Config {
        let _ = write!(tag, " data-siteid=\"{}\"", escape_html(DEMO_SITE));
    }
    if let Some(ctx) = attr_context {
        let _ = write!(tag, "\n        data-visitor-context='{}'", escape_html(ctx));
    }
    tag.push_str("></script>");

    let mut config = format!("{{\"siteid\":\"{DEMO_SITE}\"");
    if let Some(ctx) = config_context {
        let _ = write!(config, ",\"visitorContext\":{ctx}");
    }
    config.push('}');
    let config_script = if via == Via::Attribute {
        String::new()
    } else {
        format!(
            "<script nonce=\"{}\">window.imsFlowConfig = {};</script>",
            escape_html(nonce),
            script_json(&config)
        )
    };

    let mut nav = String::new();
    for p in &PERSONAS {
        let current = if p.id == persona.id {
            " aria-current=\"page\""
        } else {
            ""
        };
        let label = match p.id {
            "anonymous" => "Anonymous visitor",
            "mallory" => "Hostile values",
            _ => p.display,
        };
        let _ = write!(
            nav,
            "<a href=\"/?as={}&amp;via={}\"{current}>{}</a>",
            p.id,
            via.as_str(),
            escape_html(label)
        );
    }
    let mut vias = String::new();
    for (v, label) in [
        (Via::Attribute, "data-visitor-context"),
        (Via::Config, "window.imsFlowConfig"),
        (Via::Both, "both (attribute wins)"),
    ] {
        let current = if v == via {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            vias,
            "<a href=\"/?as={}&amp;via={}\"{current}>{}</a>",
            persona.id,
            v.as_str(),
            escape_html(label)
        );
    }

    let embed = format!("{config_script}\n{tag}");
    let signed_in = match persona.context {
        Some(_) => format!("Signed in as {}", persona.display),
        None => "Not signed in".to_owned(),
    };
    let login = PERSONAS[0].context.unwrap_or("{}");
    include_str!("../../widget/demo/index.html")
        .replace("{{signed_in}}", &escape_html(&signed_in))
        .replace("{{persona_nav}}", &nav)
        .replace("{{via_nav}}", &vias)
        .replace("{{embed_source}}", &escape_html(&embed))
        .replace("{{login_context}}", &escape_html(login))
        .replace("{{embed}}", &embed)
}

/// The widget's and the demo page's static files: (path, content type, body).
pub(crate) const ASSETS: [(&str, &str, &str); 4] = [
    (
        WIDGET_JS,
        "text/javascript; charset=utf-8",
        include_str!("../../widget/visitor-context.js"),
    ),
    (
        "/widget/visitor-context.css",
        "text/css; charset=utf-8",
        include_str!("../../widget/visitor-context.css"),
    ),
    (
        "/demo/demo.js",
        "text/javascript; charset=utf-8",
        include_str!("../../widget/demo/demo.js"),
    ),
    (
        "/demo/demo.css",
        "text/css; charset=utf-8",
        include_str!("../../widget/demo/demo.css"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_htmlspecialchars_ent_quotes() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#039;&amp;&#039;&lt;/a&gt;"
        );
    }

    #[test]
    fn hostile_values_stay_inside_the_attribute_and_the_script() {
        let page = host_page("as=mallory&via=both", "n0nce");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("data-visitor-context='{&quot;account_id&quot;:&quot;&lt;img"));
        assert!(page.contains("x&#039; onmouseover=&#039;alert(1)"));
        let page = host_page("as=mallory&via=config", "n0nce");
        assert!(!page.contains("<img"));
        assert!(page.contains("\\u003cimg src=x onerror=alert(1)\\u003e"));
        assert!(page.contains("<script nonce=\"n0nce\">window.imsFlowConfig = "));
    }

    #[test]
    fn page_variants() {
        let attr = host_page("as=jane", "n");
        assert!(attr.contains("data-visitor-context='"));
        assert!(!attr.contains("window.imsFlowConfig ="));
        let anon = host_page("as=anonymous&via=attribute", "n");
        assert!(!anon.contains("data-visitor-context='"));
        let both = host_page("as=zoe&via=both", "n");
        assert!(both.contains("Sam Config"));
        assert!(both.contains("Zoë 山田 👩‍💻"));
        let unknown = host_page("as=%3Cx%3E&via=%3Cy%3E", "n");
        assert!(unknown.contains("Jane Smith"));
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 24);
    }
}
