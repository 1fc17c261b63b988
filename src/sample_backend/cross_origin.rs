//! The demo's second origin: a customer's page on another port that embeds the widget from the
//! proxy exactly as a real site does (`<script src="https://chat…/widget/visitor-context.js"
//! data-siteid=… data-visitor-context="<?= htmlspecialchars(json_encode($ctx)) ?>">`), so the
//! demo itself goes through the cross-origin path: CORS answered by the edge, the origin rule.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::page::{DEMO_SITE, SAMPLE_CONTEXT, WIDGET_JS, escape_html};

/// The host page, embedding the widget served by `proxy` (`http://host:port`).
pub(crate) fn host_page(proxy: &str) -> String {
    let context = escape_html(SAMPLE_CONTEXT);
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>A customer's shop (another origin)</title></head>
<body>
<h1>A customer's shop on another origin</h1>
<p>The chat below is loaded from {proxy}: every request it makes is cross-origin.</p>
<script src="{proxy}{WIDGET_JS}" data-siteid="{DEMO_SITE}" data-visitor-context="{context}"></script>
</body>
</html>
"#,
        proxy = escape_html(proxy),
    )
}

/// Serves the host page on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    proxy: String,
    shutdown: impl Future<Output = ()>,
) {
    let page = Bytes::from(host_page(&proxy));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = &mut shutdown => return,
        };
        let page = page.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req| {
                let page = page.clone();
                async move {
                    let resp = Response::builder()
                        .status(StatusCode::OK)
                        .header("Content-Type", "text/html; charset=utf-8")
                        .header("Cache-Control", "no-store")
                        .body(Full::new(page))
                        .unwrap_or_default();
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
