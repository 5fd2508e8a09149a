//! Fuzz target: what a client sends before it is trusted. The request envelope parser
//! (`Request::parse`), the burp status query sanitiser, and the frame header reader over the
//! raw bytes. A returned error is fine; a panic, overflow or runaway allocation is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcapd::protocol::burp::StatusQuery;
use pcapd::protocol::frame::read_frame_header;
use pcapd::protocol::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(Request::Query { query, .. }) = Request::parse(data) {
        let _ = StatusQuery::parse(&query);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut reader = data;
        let _ = read_frame_header(&mut reader, true).await;
    });
});
