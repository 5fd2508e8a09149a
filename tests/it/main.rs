//! The integration test binary `it`: one binary so the crate is linked once. Each module
//! covers one area; `accuracy` scores the builtin analyzer against Zeek's own logs.

mod accuracy;
