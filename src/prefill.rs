//! `ims_*` keys → the workflow engine's pre-fill slots.
//!
//! Only accepted pairs count, keys are case-sensitive, and a key is set only when its
//! sanitised value is non-empty. `ims_telephone` wins over `ims_phone`.

use crate::context::Context;

/// Slots filled by `ims_username`, in the fixed order.
pub const NAME_SLOTS: [&str; 3] = ["visitor_name", "username", "name"];
/// Slots filled by `ims_email`, in the fixed order.
pub const EMAIL_SLOTS: [&str; 2] = ["visitor_email", "email"];
/// Slots filled by `ims_telephone` (or `ims_phone`), in the fixed order.
pub const PHONE_SLOTS: [&str; 3] = ["visitor_phone", "phone", "custom1"];

/// Every pre-fill slot, in the fixed order of the contract.
pub const ALL_SLOTS: [&str; 8] = [
    NAME_SLOTS[0],
    NAME_SLOTS[1],
    NAME_SLOTS[2],
    EMAIL_SLOTS[0],
    EMAIL_SLOTS[1],
    PHONE_SLOTS[0],
    PHONE_SLOTS[1],
    PHONE_SLOTS[2],
];

/// Each of [`ALL_SLOTS`] with the value filling it: 0 the name, 1 the email, 2 the phone.
const SLOTS: [(&str, usize); 8] = {
    let filled_by = [0, 0, 0, 1, 1, 2, 2, 2];
    let mut table = [("", 0); 8];
    let mut i = 0;
    while i < table.len() {
        table[i] = (ALL_SLOTS[i], filled_by[i]);
        i += 1;
    }
    table
};

/// The pre-fill values found in one context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prefill<'a> {
    name: Option<&'a str>,
    email: Option<&'a str>,
    phone: Option<&'a str>,
}

/// Reads the pre-fill keys from the accepted pairs of `ctx`.
pub fn prefill(ctx: &Context) -> Prefill<'_> {
    let mut p = Prefill::default();
    let mut alias_phone = None;
    for (key, value) in ctx.pairs() {
        if value.is_empty() {
            continue;
        }
        match key {
            "ims_username" => p.name = Some(value),
            "ims_email" => p.email = Some(value),
            "ims_telephone" => p.phone = Some(value),
            "ims_phone" => alias_phone = Some(value),
            _ => {}
        }
    }
    p.phone = p.phone.or(alias_phone);
    p
}

impl<'a> Prefill<'a> {
    /// `(slot, value)` for every filled slot, in the fixed order of the contract.
    pub fn slots(&self) -> impl Iterator<Item = (&'static str, &'a str)> + Clone + use<'a> {
        // One flat table rather than chained `flat_map`s: this runs twice per accepted init
        // (the header's size, then its bytes), and the adapters cost ~75 instructions a slot.
        let values = [self.name, self.email, self.phone];
        SLOTS
            .iter()
            .filter_map(move |&(slot, which)| values[which].map(|v| (slot, v)))
    }

    /// Whether no slot is filled.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none() && self.phone.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::sanitize;
    use base64::Engine as _;

    fn slots(json: &str) -> Vec<(&'static str, String)> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        let ctx = sanitize(b64.as_bytes()).unwrap_or_default();
        prefill(&ctx)
            .slots()
            .map(|(s, v)| (s, v.to_owned()))
            .collect()
    }

    #[test]
    fn fixed_order_and_telephone_wins() {
        let got =
            slots(r#"{"ims_phone":"2","ims_email":"e@x","ims_telephone":"1","ims_username":"Jo"}"#);
        let want = [
            ("visitor_name", "Jo"),
            ("username", "Jo"),
            ("name", "Jo"),
            ("visitor_email", "e@x"),
            ("email", "e@x"),
            ("visitor_phone", "1"),
            ("phone", "1"),
            ("custom1", "1"),
        ];
        assert_eq!(got, want.map(|(s, v)| (s, v.to_owned())));
    }

    #[test]
    fn empty_telephone_falls_back_to_phone() {
        let got = slots(r#"{"ims_telephone":"","ims_phone":"2","IMS_email":"x"}"#);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|(_, v)| v == "2"));
    }

    #[test]
    fn missing_values_leave_gaps_in_order() {
        let got = slots(r#"{"ims_telephone":"5","ims_username":"Al"}"#);
        let names: Vec<_> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            names,
            [
                "visitor_name",
                "username",
                "name",
                "visitor_phone",
                "phone",
                "custom1"
            ]
        );
        let got = slots(r#"{"ims_email":"a@b"}"#);
        assert_eq!(
            got,
            [
                ("visitor_email", "a@b".to_owned()),
                ("email", "a@b".to_owned())
            ]
        );
    }

    #[test]
    fn nothing_set() {
        let ctx = sanitize(b"e30=").unwrap_or_default();
        assert!(prefill(&ctx).is_empty());
        assert_eq!(prefill(&ctx).slots().count(), 0);
    }
}
