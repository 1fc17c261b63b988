//! The `client_ip:` section → [`ClientIpConfig`]: the trusted proxies and the names of the client
//! identity headers. What the names may be is checked in `check.rs`.

use super::table::Table;
use super::{ClientIpConfig, Problems};
use crate::headers::forwarded::Cidr;

/// Reads `client_ip:` into `out`.
pub(super) fn read_client_ip(
    out: &mut ClientIpConfig,
    top: &mut Table<'_>,
    problems: &mut Problems,
) {
    let mut t = top.table("client_ip", problems);
    if let Some(items) = t.list(
        "trusted_proxies",
        "a list of addresses or ranges such as 10.0.0.0/8",
        problems,
    ) {
        out.trusted_proxies.clear();
        for (i, item) in items.iter().enumerate() {
            let key = format!("{}[{i}]", t.key_path("trusted_proxies"));
            let Some(text) = item.as_str() else {
                problems.push(
                    key,
                    "must be an address or range such as 10.0.0.0/8, quoted",
                );
                continue;
            };
            match Cidr::parse(text) {
                Ok(cidr) => out.trusted_proxies.push(cidr),
                Err(why) => problems.push(
                    key,
                    format!(
                        "{text:?} {why}; write an address (192.0.2.7) or a range (10.0.0.0/8, fd00::/8)"
                    ),
                ),
            }
        }
    }
    for (key, slot) in [
        ("real_ip_header", &mut out.real_ip_header),
        ("forwarded_for_header", &mut out.forwarded_for_header),
        ("forwarded_proto_header", &mut out.forwarded_proto_header),
        ("forwarded_host_header", &mut out.forwarded_host_header),
        ("request_id_header", &mut out.request_id_header),
    ] {
        if let Some(v) = t.field::<String>(key, "a header name", problems) {
            *slot = v;
        }
    }
    if let Some(v) = t.field::<bool>("forwarded", "true or false", problems) {
        out.forwarded = v;
    }
    t.finish(problems);
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn reads_ranges_and_names_and_lists_every_problem() {
        let c = Config::from_yaml(
            "client_ip:\n  trusted_proxies: [\"10.0.0.0/8\", \"192.0.2.7\", \"fd00::/8\"]\n  request_id_header: X-Trace-Id\n  forwarded: true\n",
        )
        .unwrap();
        assert_eq!(c.client_ip.trusted_proxies.len(), 3);
        assert_eq!(c.client_ip.request_id_header, "X-Trace-Id");
        assert!(c.client_ip.forwarded);
        let err = Config::from_yaml(
            "client_ip:\n  trusted_proxies: [\"10.0.0.1/8\", lan, 7]\n  real_ip: X\n  forwarded_for_header: \"X For\"\n  request_id_header: X-Flowgate-Id\n  forwarded_host_header: x-real-ip\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for key in [
            "client_ip.trusted_proxies[0]",
            "client_ip.trusted_proxies[1]",
            "client_ip.trusted_proxies[2]",
            "client_ip.real_ip",
            "client_ip.forwarded_for_header",
            "client_ip.request_id_header",
            "client_ip.forwarded_host_header",
        ] {
            assert!(text.contains(key), "{key} missing in {text}");
        }
        assert!(text.contains("did you mean `real_ip_header`"), "{text}");
        assert!(text.contains("bits set after the prefix"), "{text}");
    }
}
