//! Fuzz target: the lines pcapd reads from its children. `pcapd worker` lines
//! (`WorkerMessage::parse`) and the burp dialect (`BurpLine`, the start-up handshake and a
//! query's exchange, fed the input split into lines). A child that writes anything must
//! get an error (and be replaced), never a panic in the daemon.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcapd::protocol::burp::{BurpLine, Handshake, QueryExchange, StatusQuery};
use pcapd::protocol::worker::WorkerMessage;

fuzz_target!(|data: &[u8]| {
    let _ = WorkerMessage::parse(data);
    let mut handshake = Handshake::new();
    let query = StatusQuery::parse("c:").expect("a valid query");
    let mut with_markers = QueryExchange::new(&query, true);
    let mut without = QueryExchange::new(&query, false);
    for line in data.split(|&b| b == b'\n') {
        let _ = BurpLine::parse(line);
        let _ = handshake.on_line(line);
        let _ = with_markers.on_line(line);
        let _ = without.on_line(line);
    }
});
