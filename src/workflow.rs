//! The reference workflow engine: `form_field`, `collect_info` and `conditional` nodes with pre-fill.
