//! The answers of `inspect --jsonl`, written directly, byte for byte what serde_json writes.

use serde::ser::{SerializeMap, Serializer as _};
use serde_json::value::RawValue;

use super::scan::find_escape;
use crate::context::{Context, Discard};
use crate::headers::write_json_string_with;
use crate::prefill::prefill;

/// Appends `{"id":…,"pairs":…,"prefill":…,"reason":…}`, as serde_json writes it.
pub(super) fn write_answer(
    buf: &mut Vec<u8>,
    id: &[u8],
    ctx: &Context,
    result: Result<(), Discard>,
) {
    buf.extend_from_slice(br#"{"id":"#);
    buf.extend_from_slice(id);
    let reason = match result {
        Ok(()) => {
            buf.extend_from_slice(br#","pairs":["#);
            for (i, (key, value)) in ctx.pairs().enumerate() {
                buf.extend_from_slice(if i == 0 { b"[" } else { b",[" });
                write_string(buf, key);
                buf.push(b',');
                write_string(buf, value);
                buf.push(b']');
            }
            buf.extend_from_slice(br#"],"prefill":{"#);
            for (i, (slot, value)) in prefill(ctx).slots().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_string(buf, slot);
                buf.push(b':');
                write_string(buf, value);
            }
            buf.extend_from_slice(br#"},"reason":null}"#);
            return;
        }
        Err(reason) => reason,
    };
    buf.extend_from_slice(br#","pairs":null,"prefill":{},"reason":"#);
    write_string(buf, reason.as_str());
    buf.push(b'}');
}

pub(super) fn write_error(buf: &mut Vec<u8>, id: Option<&RawValue>, message: &str) {
    let mut ser = serde_json::Serializer::new(&mut *buf);
    // Serialising into a Vec cannot fail; the `let _` keeps clippy quiet without unwrap.
    let _ = (|| -> serde_json::Result<()> {
        let mut map = ser.serialize_map(Some(2))?;
        map.serialize_entry("id", id.unwrap_or(RawValue::NULL))?;
        map.serialize_entry("error", message)?;
        SerializeMap::end(map)
    })();
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it, searching long strings with
/// the AVX2 scan.
fn write_string(out: &mut Vec<u8>, s: &str) {
    write_json_string_with(out, s, find_escape);
}
