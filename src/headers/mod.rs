//! Trusted header names and values; anti-spoof matching; the header signature.
