//! One YAML mapping being read: which keys were asked for, so the rest can be reported as
//! unknown, with the nearest known key as a "did you mean".

use serde::de::DeserializeOwned;
use yaml_serde::{Mapping, Value};

use super::Problems;

/// One YAML mapping being read: remembers which keys were asked for, to report the rest.
pub(super) struct Table<'v> {
    path: String,
    map: Option<&'v Mapping>,
    seen: Vec<&'static str>,
}

impl<'v> Table<'v> {
    /// The file's top-level mapping.
    pub(super) fn root(value: &'v Value, problems: &mut Problems) -> Table<'v> {
        let map = match value {
            Value::Mapping(m) => Some(m),
            Value::Null => None,
            _ => {
                problems.push(
                    "file",
                    "the top level must be a mapping of keys (listen:, upstreams:, …)",
                );
                None
            }
        };
        Table {
            path: String::new(),
            map,
            seen: Vec::new(),
        }
    }

    pub(super) fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn raw(&mut self, key: &'static str) -> Option<&'v Value> {
        self.seen.push(key);
        self.map?.get(key).filter(|v| !v.is_null())
    }

    /// Reads one key; `None` when absent, `null`, or invalid (then a problem is recorded).
    pub(super) fn field<T: DeserializeOwned>(
        &mut self,
        key: &'static str,
        expected: &str,
        problems: &mut Problems,
    ) -> Option<T> {
        let v = self.raw(key)?;
        match yaml_serde::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(_) => {
                problems.push(self.key_path(key), format!("must be {expected}"));
                None
            }
        }
    }

    /// Opens a nested mapping; an absent or `null` one reads as empty.
    pub(super) fn table(&mut self, key: &'static str, problems: &mut Problems) -> Table<'v> {
        let path = self.key_path(key);
        let value = self.raw(key);
        Table::nested(path, value, "must be a mapping of keys", problems)
    }

    /// A mapping at `path` (a list item, a site); an absent or `null` one reads as empty, any
    /// other value is a problem worded `not_a_mapping`.
    pub(super) fn nested(
        path: String,
        value: Option<&'v Value>,
        not_a_mapping: &str,
        problems: &mut Problems,
    ) -> Table<'v> {
        let map = match value {
            None | Some(Value::Null) => None,
            Some(Value::Mapping(m)) => Some(m),
            Some(_) => {
                problems.push(path.clone(), not_a_mapping);
                None
            }
        };
        Table {
            path,
            map,
            seen: Vec::new(),
        }
    }

    /// Reads a list; `None` when absent, `null`, or not a list (then a problem is recorded).
    pub(super) fn list(
        &mut self,
        key: &'static str,
        expected: &str,
        problems: &mut Problems,
    ) -> Option<&'v Vec<Value>> {
        let v = self.raw(key)?;
        match v.as_sequence() {
            Some(seq) => Some(seq),
            None => {
                problems.push(self.key_path(key), format!("must be {expected}"));
                None
            }
        }
    }

    /// Reports every key of this mapping that was not read.
    pub(super) fn finish(self, problems: &mut Problems) {
        self.finish_with("remove or rename it", problems);
    }

    /// [`Table::finish`] with the fix its messages suggest.
    pub(super) fn finish_with(self, fix: &str, problems: &mut Problems) {
        let Some(map) = self.map else { return };
        for k in map.keys() {
            let name = match k.as_str() {
                Some(s) => s.to_owned(),
                None => format!("{k:?}"),
            };
            if self.seen.iter().any(|s| *s == name) {
                continue;
            }
            let hint = closest(&name, &self.seen)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            let known = self.seen.join(", ");
            problems.push(
                self.key_path(&name),
                format!("unknown key{hint} (known here: {known}); {fix}"),
            );
        }
    }
}

/// The known key nearest to a misspelt one, if it is close enough to be a likely typo: a few
/// edits away, or the key without its unit suffix (`leeway` for `leeway_seconds`).
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let suffix_dropped = |k: &str| {
        k.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('_'))
    };
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) || suffix_dropped(k))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}
