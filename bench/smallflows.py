#!/usr/bin/env python3
"""Writes small-packet, many-flow captures for the analyzer benchmark, independently of
pcapd's own traffic generator (src/synth), so the figures do not rest on one generator.

    bench/smallflows.py dns  --packets 2000000 --seed 1 OUT.pcap
    bench/smallflows.py scan --packets 2250000 --seed 1 OUT.pcap
    bench/smallflows.py beacon --packets 1000000 --seed 1 OUT.pcap

dns:    DNS over UDP from 4,096 clients to 8 resolvers, a fresh source port per query (so
        about one flow per query and answer), A/AAAA/TXT/MX questions for random names,
        answers with 1-4 records, about 6% unanswered and 2% NXDOMAIN; ~6,500 queries/s.
scan:   one scanner sending SYNs to random hosts of a /16 and random ports; 25% answered by
        RST-ACK, 3% by SYN-ACK then the scanner's RST, the rest unanswered; ~10,000 pps.
beacon: 2,000 hosts each opening short TCP connections to a few servers every few seconds
        (handshake, 1 small request, 1 small answer, FIN both ways), some reset.

Ethernet/IPv4 frames, correct IP/UDP/TCP checksums, microsecond pcap. Deterministic per seed.
"""
import argparse
import heapq
import random
import struct
import sys

ETH_DST = bytes.fromhex("020000000002")
ETH_SRC = bytes.fromhex("020000000001")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ident):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, 64,
                      proto, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def pseudo(src, dst, proto, length):
    return src + dst + struct.pack("!BBH", 0, proto, length)


def udp(src, dst, sport, dport, data, ident):
    length = 8 + len(data)
    seg = struct.pack("!HHHH", sport, dport, length, 0) + data
    c = csum(pseudo(src, dst, 17, length) + seg) or 0xFFFF
    seg = seg[:6] + struct.pack("!H", c) + seg[8:]
    return ETH_DST + ETH_SRC + b"\x08\x00" + ipv4(src, dst, 17, seg, ident)


def tcp(src, dst, sport, dport, seq, ack, flags, data, ident, window=64240):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                      flags, window, 0, 0)
    seg = hdr + data
    c = csum(pseudo(src, dst, 6, len(seg)) + seg)
    seg = seg[:16] + struct.pack("!H", c) + seg[18:]
    return ETH_DST + ETH_SRC + b"\x08\x00" + ipv4(src, dst, 6, seg, ident)


FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16


class Pcap:
    def __init__(self, out):
        self.out = out
        self.count = 0
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

    def write(self, ts_us, frame):
        self.out.write(struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame),
                                   len(frame)))
        self.out.write(frame)
        self.count += 1


def addr(a, b, c, d):
    return bytes((a, b, c, d))


LABELS = [
    "www", "mail", "api", "cdn", "static", "login", "update", "time", "ns1", "img", "video",
    "ads", "track", "m", "shop", "docs", "git", "vpn", "edge", "assets",
]
TLDS = ["com", "net", "org", "io", "de", "fr", "co.uk", "info"]


def qname(rng):
    host = rng.choice(LABELS)
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 12)))
    parts = [host, word] + rng.choice(TLDS).split(".")
    if rng.random() < 0.2:
        parts.insert(0, "x%d" % rng.randint(0, 99999))
    return b"".join(bytes([len(p)]) + p.encode() for p in parts) + b"\0"


class Timeline:
    """Frames in time order: each new session starts a little after the previous one, and
    frames scheduled for later (answers, the rest of a connection) come out when their time
    has come."""

    def __init__(self, pcap, packets, rng, gap_us):
        self.pcap, self.packets, self.rng, self.gap_us = pcap, packets, rng, gap_us
        self.ts = 1_700_000_000_000_000
        self.pending = []
        self.ident = 0

    def next_id(self):
        self.ident += 1
        return self.ident

    def sessions(self):
        """Yields once per new session (at self.ts) until the capture is full."""
        while self.pcap.count < self.packets:
            self.ts += self.rng.randint(*self.gap_us)
            while self.pending and self.pending[0][0] <= self.ts and self.pcap.count < self.packets:
                t, _, frame = heapq.heappop(self.pending)
                self.pcap.write(t, frame)
            if self.pcap.count >= self.packets:
                return
            yield

    def now(self, frame):
        self.pcap.write(self.ts, frame)

    def later(self, t, frame):
        heapq.heappush(self.pending, (t, self.ident, frame))


def gen_dns(pcap, packets, rng):
    clients = [addr(10, 20, i >> 8, i & 0xFF) for i in range(4096)]
    resolvers = [addr(192, 0, 2, 53 + i) for i in range(8)]
    tl = Timeline(pcap, packets, rng, (50, 250))
    for _ in tl.sessions():
        c = rng.choice(clients)
        r = rng.choice(resolvers)
        sport = rng.randint(1024, 65535)
        qid = rng.randint(0, 65535)
        qtype = rng.choice((1, 1, 1, 28, 28, 16, 15))
        name = qname(rng)
        question = name + struct.pack("!HH", qtype, 1)
        query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question
        tl.now(udp(c, r, sport, 53, query, tl.next_id()))
        roll = rng.random()
        if roll < 0.06:
            continue
        if roll < 0.08:
            answer = struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question
        else:
            n = rng.randint(1, 4)
            records = b""
            for _ in range(n):
                if qtype == 28:
                    rdata = bytes(rng.getrandbits(8) for _ in range(16))
                elif qtype == 16:
                    txt = b"v=spf1 include:_spf.example.net ~all"
                    rdata = bytes([len(txt)]) + txt
                elif qtype == 15:
                    rdata = struct.pack("!H", 10) + b"\x02mx\xc0\x0c"
                else:
                    rdata = bytes(rng.getrandbits(8) for _ in range(4))
                records += b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, rng.randint(30, 86400),
                                                     len(rdata)) + rdata
            answer = struct.pack("!HHHHHH", qid, 0x8180, 1, n, 0, 0) + question + records
        tl.later(tl.ts + rng.randint(300, 40_000), udp(r, c, 53, sport, answer, tl.next_id()))


def gen_scan(pcap, packets, rng):
    scanner = addr(10, 99, 0, 7)
    ports = [21, 22, 23, 25, 53, 80, 110, 135, 139, 143, 443, 445, 993, 995, 1433, 3306, 3389,
             5432, 5900, 8080, 8443]
    tl = Timeline(pcap, packets, rng, (40, 160))
    for _ in tl.sessions():
        target = addr(172, 16, rng.randint(0, 255), rng.randint(1, 254))
        dport = rng.choice(ports) if rng.random() < 0.5 else rng.randint(1, 65535)
        sport = rng.randint(32768, 61000)
        seq = rng.getrandbits(32)
        tl.now(tcp(scanner, target, sport, dport, seq, 0, SYN, b"", tl.next_id(), 1024))
        roll = rng.random()
        delay = rng.randint(200, 20_000)
        if roll < 0.25:
            tl.later(tl.ts + delay, tcp(target, scanner, dport, sport, 0, seq + 1, RST | ACK, b"",
                                        tl.next_id(), 0))
        elif roll < 0.28:
            iss = rng.getrandbits(32)
            tl.later(tl.ts + delay, tcp(target, scanner, dport, sport, iss, seq + 1, SYN | ACK,
                                        b"", tl.next_id()))
            tl.later(tl.ts + delay + 50, tcp(scanner, target, sport, dport, seq + 1, 0, RST, b"",
                                             tl.next_id(), 0))


def gen_beacon(pcap, packets, rng):
    hosts = [addr(10, 30, i >> 8, i & 0xFF) for i in range(2000)]
    servers = [addr(198, 51, 100, 10 + i) for i in range(16)]
    tl = Timeline(pcap, packets, rng, (200, 1200))
    for _ in tl.sessions():
        c = rng.choice(hosts)
        s = rng.choice(servers)
        sport = rng.randint(1024, 65535)
        dport = rng.choice((80, 443, 8080, 4444))
        cs, ss = rng.getrandbits(32), rng.getrandbits(32)
        req = b"GET /beacon?id=%d HTTP/1.1\r\nHost: c2.example\r\n\r\n" % rng.randint(0, 10**9)
        resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        rtt = rng.randint(500, 30_000)
        steps = [
            (0, c, s, sport, dport, cs, 0, SYN, b""),
            (rtt, s, c, dport, sport, ss, cs + 1, SYN | ACK, b""),
            (rtt, c, s, sport, dport, cs + 1, ss + 1, ACK, b""),
            (50, c, s, sport, dport, cs + 1, ss + 1, PSH | ACK, req),
            (rtt, s, c, dport, sport, ss + 1, cs + 1 + len(req), PSH | ACK, resp),
        ]
        if rng.random() < 0.1:
            steps.append((100, c, s, sport, dport, cs + 1 + len(req), 0, RST, b""))
        else:
            steps += [
                (100, c, s, sport, dport, cs + 1 + len(req), ss + 1 + len(resp), FIN | ACK, b""),
                (rtt, s, c, dport, sport, ss + 1 + len(resp), cs + 2 + len(req), FIN | ACK, b""),
                (rtt, c, s, sport, dport, cs + 2 + len(req), ss + 2 + len(resp), ACK, b""),
            ]
        t = tl.ts
        for (dt, a, b, pa, pb, seq, ack, flags, data) in steps:
            t += dt
            tl.later(t, tcp(a, b, pa, pb, seq, ack, flags, data, tl.next_id()))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("dns", "scan", "beacon"))
    p.add_argument("out")
    p.add_argument("--packets", type=int, default=2_000_000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    with open(a.out, "wb") as f:
        pcap = Pcap(f)
        {"dns": gen_dns, "scan": gen_scan, "beacon": gen_beacon}[a.kind](pcap, a.packets, rng)
    print("%s: %d packets" % (a.out, pcap.count), file=sys.stderr)


if __name__ == "__main__":
    main()
