//! The verification kit for the chat backend: check flowgate's signature, decode its headers.
