//! End to end in headless Chromium through the real `flowgate demo`: the host page embeds the
//! widget, the widget sends the context, the edge validates and stores it, the sample backend's
//! workflow skips what the trusted pre-fill answers, and the operator panel shows the stored
//! context — as text.
//!
//! One screenshot per case in `target/browser-artifacts/`.
#![allow(clippy::unwrap_used)]

// The whole harness, named by path: `tests/browser/` beside this file confuses rustfmt.
#[path = "common/mod.rs"]
mod common;
#[path = "browser/harness.rs"]
mod harness;

use harness::{Browser, Demo};
use serde_json::{Value, json};

/// One demo process, one browser, on one demo page.
struct Page {
    demo: Demo,
    browser: Browser,
    /// Widget updates so far (init, reload, answer); the operator panel refreshes on each.
    updates: u32,
}

impl Page {
    /// Opens `/?<query>` on a fresh `flowgate demo` and waits for the chat and operator panel.
    async fn open(case: &str, query: &str) -> Page {
        let demo = Demo::start();
        let browser = Browser::start(case).await;
        browser.goto(&demo.url(&format!("/?{query}"))).await;
        let mut page = Page {
            demo,
            browser,
            updates: 0,
        };
        page.settled(1).await;
        page
    }

    /// Waits for widget generation `generation` and the operator panel's next refresh.
    async fn settled(&mut self, generation: u32) {
        self.updates += 1;
        self.browser.wait_widget(generation).await;
        let script = format!(
            "return document.getElementById('operator').getAttribute('data-updates') === '{}';",
            self.updates
        );
        self.browser
            .wait_js("the operator panel to refresh", &script)
            .await;
    }

    /// The step the widget asks now (`data-node` of its form), or "" when none.
    async fn step(&self) -> String {
        self.browser
            .js(
                "const f = document.querySelector('#ims-flow-widget form');
                 return f ? f.getAttribute('data-node') : '';",
                vec![],
            )
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The input names the widget shows now.
    async fn fields(&self) -> Vec<String> {
        let v = self
            .browser
            .js(
                "return Array.from(document.querySelectorAll('#ims-flow-widget input'))
                    .map(i => i.name);",
                vec![],
            )
            .await;
        serde_json::from_value(v).unwrap()
    }

    /// The chat transcript as shown: (from, text).
    async fn transcript(&self) -> Vec<(String, String)> {
        let v = self
            .browser
            .js(
                "return Array.from(document.querySelectorAll('#ims-flow-widget .imsfw-msg'))
                    .map(m => [m.classList.contains('imsfw-visitor') ? 'visitor' : 'bot',
                               m.textContent]);",
                vec![],
            )
            .await;
        serde_json::from_value(v).unwrap()
    }

    /// The rows of an operator table (`context`, `captured` or `analytics`), cell texts.
    async fn operator(&self, table: &str) -> Vec<Vec<String>> {
        let v = self
            .browser
            .js(
                "return Array.from(document.querySelectorAll('#operator-' + arguments[0] + ' tbody tr'))
                    .map(tr => Array.from(tr.cells).map(c => c.textContent));",
                vec![json!(table)],
            )
            .await;
        serde_json::from_value(v).unwrap()
    }

    async fn operator_status(&self) -> String {
        self.browser.text("#operator-status").await
    }

    /// Types the values into the widget's fields and sends them.
    async fn answer(&mut self, values: &[(&str, &str)], generation: u32) {
        for (field, value) in values {
            self.browser
                .type_into(&format!("#ims-flow-widget input[name={field}]"), value)
                .await;
        }
        self.browser.click("#ims-flow-widget .imsfw-send").await;
        self.settled(generation).await;
    }

    /// Every init URL the page requested so far (from the browser's resource timing).
    async fn init_urls(&self) -> Vec<String> {
        let v = self
            .browser
            .js(
                "return performance.getEntriesByType('resource').map(e => e.name)
                    .filter(n => n.includes('/public_FlowWidget/init'));",
                vec![],
            )
            .await;
        serde_json::from_value(v).unwrap()
    }

    /// Nothing executed that should not have: no dialog, no CSP violation, no image element.
    async fn assert_nothing_executed(&self) {
        assert_eq!(self.browser.alert_text().await, None, "an alert() ran");
        let violations = self
            .browser
            .js("return window.demoCspViolations;", vec![])
            .await;
        assert_eq!(violations, json!([]), "blocked inline code was injected");
        let images = self
            .browser
            .js("return document.images.length;", vec![])
            .await;
        assert_eq!(images, json!(0), "markup from a value became an element");
    }

    async fn finish(self) {
        self.browser.snapshot().await;
        self.browser.finish().await;
        drop(self.demo);
    }
}

fn rows(expected: &[&[&str]]) -> Vec<Vec<String>> {
    expected
        .iter()
        .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
        .collect()
}

const JANE_CONTEXT: &[&[&str]] = &[
    &["account_id", "USR-84920"],
    &["plan", "Pro"],
    &["last_order", "#ORD-20241122"],
    &["ims_username", "Jane Smith"],
    &["ims_email", "jane@example.com"],
];

/// A known visitor starts at the first unanswered step; the operator sees the stored context.
async fn assert_jane_prefilled(page: &Page) {
    assert_eq!(page.step().await, "contact");
    assert_eq!(page.fields().await, ["visitor_phone", "company"]);
    let transcript = page.transcript().await;
    assert_eq!(transcript[0].1, "Welcome back, Jane Smith!");
    assert!(
        transcript
            .iter()
            .all(|(_, t)| !t.contains("name?") && !t.contains("email")),
        "{transcript:?}"
    );
    assert_eq!(page.operator("context").await, rows(JANE_CONTEXT));
    assert_eq!(
        page.operator("captured").await,
        rows(&[
            &["visitor_name", "Jane Smith", "pre-filled"],
            &["visitor_email", "jane@example.com", "pre-filled"],
        ])
    );
    assert!(page.operator_status().await.starts_with("Status: accepted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_in_page_with_the_attribute_skips_name_and_email() {
    let mut page = Page::open("logged-in-attribute", "as=jane&via=attribute").await;
    assert_jane_prefilled(&page).await;
    let inits = page.init_urls().await;
    assert_eq!(inits.len(), 1);
    assert!(inits[0].contains("&visitor_context="), "{}", inits[0]);

    // The rest of the chat: the conditional routes on the pre-filled email (@example.com).
    page.answer(&[("visitor_phone", "+1 555 0100"), ("company", "Acme")], 1)
        .await;
    assert_eq!(page.step().await, "ask_order");
    page.answer(&[("order_number", "#ORD-20241122")], 1).await;
    assert_eq!(page.step().await, "");
    assert_eq!(
        page.transcript().await.last().unwrap().1,
        "Thanks, Jane Smith! That is all we need."
    );
    let analytics = page.operator("analytics").await;
    assert_eq!(analytics[0], ["ask_name", "1", "1"]);
    assert_eq!(analytics[1], ["ask_email", "1", "1"]);
    assert_eq!(analytics[2], ["contact", "1", "0"]);
    page.assert_nothing_executed().await;
    page.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_object_only_prefills_the_same_way() {
    let page = Page::open("config-object", "as=jane&via=config").await;
    assert_jane_prefilled(&page).await;
    let has_attr = page
        .browser
        .js(
            "return document.querySelector('script[data-visitor-context]') !== null;",
            vec![],
        )
        .await;
    assert_eq!(has_attr, json!(false));
    page.assert_nothing_executed().await;
    page.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_wins_over_the_config_object() {
    let page = Page::open("attribute-wins", "as=jane&via=both").await;
    let config = page
        .browser
        .js(
            "return window.imsFlowConfig.visitorContext.ims_username;",
            vec![],
        )
        .await;
    assert_eq!(config, json!("Sam Config"), "the page has both");
    assert_jane_prefilled(&page).await;
    page.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitor_sends_no_context_and_sees_every_step() {
    let mut page = Page::open("anonymous", "as=anonymous").await;
    let inits = page.init_urls().await;
    assert_eq!(inits.len(), 1);
    assert!(!inits[0].contains("visitor_context"), "{}", inits[0]);
    assert!(inits[0].contains("siteid=demo-site&jsSessionId="));

    assert_eq!(page.step().await, "ask_name");
    assert_eq!(
        page.operator("context").await,
        rows(&[&["No visitor context for this chat."]])
    );
    assert!(page.operator_status().await.starts_with("Status: absent"));

    page.answer(&[("visitor_name", "Ann Onymous")], 1).await;
    assert_eq!(page.step().await, "ask_email");
    page.answer(&[("visitor_email", "ann@elsewhere.org")], 1)
        .await;
    assert_eq!(page.fields().await, ["visitor_phone", "company"]);
    page.answer(&[("visitor_phone", "555"), ("company", "Self")], 1)
        .await;
    assert_eq!(page.step().await, "ask_question");
    page.answer(&[("question", "Do you ship to Mars?")], 1)
        .await;
    assert_eq!(page.step().await, "");
    let captured = page.operator("captured").await;
    assert_eq!(captured.len(), 5);
    assert!(captured.iter().all(|r| r[2] == "typed"), "{captured:?}");
    let analytics = page.operator("analytics").await;
    assert!(analytics.iter().all(|r| r[2] == "0"), "{analytics:?}");
    page.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_after_login_prefills_and_after_logout_clears() {
    let mut page = Page::open("reload-login-logout", "as=anonymous&via=config").await;
    assert_eq!(page.step().await, "ask_name");
    let session = page
        .browser
        .js("return window.imsFlowWidget.session().jsSessionId;", vec![])
        .await;

    // The single-page app signs Jane in and calls imsFlowWidget.reload().
    page.browser.click("#spa-login").await;
    page.settled(2).await;
    assert_jane_prefilled(&page).await;
    page.browser.screenshot("after-login").await;

    // Signing out re-inits without context: the edge forgets the stored identity.
    page.browser.click("#spa-logout").await;
    page.settled(3).await;
    assert_eq!(page.step().await, "ask_name");
    assert_eq!(
        page.operator("context").await,
        rows(&[&["No visitor context for this chat."]])
    );
    assert!(page.operator_status().await.starts_with("Status: absent"));
    assert!(
        !page
            .transcript()
            .await
            .iter()
            .any(|(_, t)| t.contains("Jane"))
    );

    let inits = page.init_urls().await;
    assert_eq!(inits.len(), 3);
    assert!(!inits[0].contains("visitor_context"));
    assert!(inits[1].contains("visitor_context="));
    assert!(!inits[2].contains("visitor_context"));
    let same = page
        .browser
        .js("return window.imsFlowWidget.session().jsSessionId;", vec![])
        .await;
    assert_eq!(same, session, "one chat session across login and logout");
    page.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_name_survives_end_to_end() {
    let name = "Zoë 山田 👩‍💻";
    let mut page = Page::open("unicode", "as=zoe").await;
    assert_eq!(
        page.browser.text("#signed-in").await,
        format!("Signed in as {name}")
    );
    assert_eq!(
        page.transcript().await[0].1,
        format!("Welcome back, {name}!")
    );
    // ims_telephone pre-fills visitor_phone: only the custom field is left in collect_info.
    assert_eq!(page.step().await, "contact");
    assert_eq!(page.fields().await, ["company"]);
    let context = page.operator("context").await;
    assert!(context.contains(&vec!["ims_username".to_owned(), name.to_owned()]));
    let company = "Ünïcødé 株式会社 🚀";
    page.answer(&[("company", company)], 1).await;
    assert_eq!(
        page.operator("captured").await,
        rows(&[
            &["visitor_name", name, "pre-filled"],
            &["visitor_email", "zoe@example.jp", "pre-filled"],
            &["visitor_phone", "+81 3-1234-5678", "pre-filled"],
            &["company", company, "typed"],
        ])
    );
    page.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_never_execute_and_show_as_text() {
    let payload = "<img src=x onerror=alert(1)>";
    let mut page = Page::open("hostile-values", "as=mallory").await;
    // The host page escaped the value it printed.
    assert_eq!(
        page.browser.text("#signed-in").await,
        format!("Signed in as {payload}")
    );
    // The edge stripped tags from the context; what is left is shown as text.
    assert_eq!(
        page.operator("context").await,
        rows(&[
            &["account_id", ""],
            &["crm_note", "&lt;img src=x onerror=alert(1)&gt;"],
            &["plan", "x' onmouseover='alert(1)"],
            &["ims_username", "Mallory "],
        ])
    );
    assert_eq!(page.step().await, "ask_email");
    // What the visitor types is not sanitised by the edge: it must still show as text.
    page.answer(&[("visitor_email", payload)], 1).await;
    page.answer(&[("visitor_phone", payload), ("company", payload)], 1)
        .await;
    let transcript = page.transcript().await;
    assert!(
        transcript.contains(&("visitor".to_owned(), payload.to_owned())),
        "{transcript:?}"
    );
    assert!(transcript.contains(&("visitor".to_owned(), format!("{payload}, {payload}"))));
    let captured = page.operator("captured").await;
    assert!(captured.contains(&vec![
        "visitor_email".to_owned(),
        payload.to_owned(),
        "typed".to_owned()
    ]));
    page.browser
        .js(
            "document.querySelector('#operator-context tbody td').dispatchEvent(
                 new MouseEvent('mouseover', {bubbles: true}));",
            vec![],
        )
        .await;
    page.assert_nothing_executed().await;
    let html: Value = page
        .browser
        .js("return document.body.innerHTML.includes('<img');", vec![])
        .await;
    assert_eq!(html, json!(false));
    page.finish().await;
}
