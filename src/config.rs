//! Configuration file → validated [`Config`]; every problem is reported with its key and a fix.
