//! Streaming JSON object visitor: document order, duplicates, depth, scalars → PHP strings.
