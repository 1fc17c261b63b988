//! The trusted `Prefill` header → the values of the documented pre-fill slots.

use std::fmt;

use base64::Engine as _;

use super::PREFILL_SLOTS;

/// Pre-fill values by slot, as carried by the trusted `Prefill` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefill {
    slots: Vec<(&'static str, String)>,
}

/// Why a `Prefill` header value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefillError {
    /// Not standard padded base64.
    Base64,
    /// Not a JSON object.
    Json,
}

impl fmt::Display for PrefillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrefillError::Base64 => "pre-fill header is not base64",
            PrefillError::Json => "pre-fill header is not a JSON object",
        })
    }
}

impl std::error::Error for PrefillError {}

impl Prefill {
    /// No pre-fill at all (an anonymous visitor).
    pub fn none() -> Self {
        Self::default()
    }

    /// Builds pre-fill from (slot, value) pairs; unknown slots and empty values are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut slots: Vec<(&'static str, String)> = Vec::new();
        for (slot, value) in pairs {
            let Some(known) = PREFILL_SLOTS.iter().find(|s| **s == slot) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            match slots.iter_mut().find(|(s, _)| s == known) {
                Some(existing) => existing.1 = value.to_owned(),
                None => slots.push((known, value.to_owned())),
            }
        }
        slots.sort_by_key(|(s, _)| PREFILL_SLOTS.iter().position(|k| k == s));
        Prefill { slots }
    }

    /// Reads the `Prefill` header value: standard base64 of a JSON object slot → string value.
    /// An empty header value is no pre-fill.
    pub fn from_header(value: &str) -> Result<Self, PrefillError> {
        if value.is_empty() {
            return Ok(Self::none());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| PrefillError::Base64)?;
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes).map_err(|_| PrefillError::Json)?;
        Ok(Self::from_pairs(
            object
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v))),
        ))
    }

    /// The value for a field name, when that name is a pre-fill slot with a value.
    pub fn get(&self, field_name: &str) -> Option<&str> {
        self.slots
            .iter()
            .find(|(s, _)| *s == field_name)
            .map(|(_, v)| v.as_str())
    }

    /// Slot → value, in the fixed slot order.
    pub fn slots(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.slots.iter().map(|(s, v)| (*s, v.as_str()))
    }

    /// True when no slot has a value.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
