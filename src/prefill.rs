//! `ims_*` keys → the workflow engine's pre-fill slots.
