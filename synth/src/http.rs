//! HTTP/1.1 conversations over one TCP connection: GET and POST requests with Host,
//! User-Agent and Content-Length bodies; responses with Content-Length or chunked bodies
//! (200, 301, 304, 404); keep-alive with several exchanges; `Connection: close` on the last
//! request of some connections, in which case the server closes.

use std::fmt::Write as _;

use super::rng::Rng;
use super::stream::ByteStream;
use super::tcp::{Dir, Ending, TcpApp, Turn};

const USER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "curl/8.5.0",
    "python-requests/2.31.0",
];
const SERVERS: [&str; 4] = ["nginx/1.24.0", "Apache/2.4.58 (Debian)", "envoy", "Caddy"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Resource {
    Page,
    Script,
    Download,
    Json,
}

impl Resource {
    fn content_type(self) -> &'static str {
        match self {
            Resource::Page => "text/html; charset=utf-8",
            Resource::Script => "application/javascript",
            Resource::Download => "application/octet-stream",
            Resource::Json => "application/json",
        }
    }
}

/// What the server will answer to the request just sent.
struct ResponsePlan {
    head: String,
    body: ByteStream,
}

pub struct HttpApp {
    host: String,
    user_agent: &'static str,
    server: &'static str,
    requests_left: u32,
    pending: Option<ResponsePlan>,
    server_closes: bool,
    client_resets: bool,
    max_body: u64,
    first: bool,
}

impl HttpApp {
    pub fn new(host: &str, max_body: u64, rng: &mut Rng) -> Self {
        let requests = if rng.chance(300) {
            1
        } else {
            rng.range(2, 8) as u32
        };
        HttpApp {
            host: host.to_string(),
            user_agent: rng.choose(&USER_AGENTS),
            server: rng.choose(&SERVERS),
            requests_left: requests,
            pending: None,
            server_closes: rng.chance(400),
            client_resets: rng.chance(50),
            max_body,
            first: true,
        }
    }

    fn request(&mut self, rng: &mut Rng, now: u64) -> (ByteStream, ResponsePlan) {
        let last = self.requests_left == 0;
        let resource = *rng.pick(&[
            Resource::Page,
            Resource::Script,
            Resource::Download,
            Resource::Download,
            Resource::Json,
        ]);
        let post = resource == Resource::Json && rng.chance(500);
        let path = match resource {
            Resource::Page => (*rng.pick(&[
                "/",
                "/index.html",
                "/about",
                "/news/latest",
                "/search?q=pcap",
            ]))
            .to_string(),
            Resource::Script => format!("/static/app.{:08x}.js", rng.next_u32()),
            Resource::Download => format!("/downloads/blob-{:05}.bin", rng.range(1, 99_999)),
            Resource::Json => format!("/api/v1/items?page={}", rng.range(1, 40)),
        };
        let mut head = String::with_capacity(256);
        let method = if post { "POST" } else { "GET" };
        let _ = write!(
            head,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\n",
            self.host, self.user_agent
        );
        head.push_str("Accept: */*\r\nAccept-Encoding: identity\r\n");
        let conditional = !post && resource != Resource::Json && rng.chance(100);
        if conditional {
            let _ = write!(head, "If-None-Match: \"{:x}\"\r\n", rng.next_u32());
        }
        let mut request = ByteStream::new();
        if post {
            let upload = rng.chance(150);
            let body_len = if upload {
                rng.log_uniform(10_000, self.max_body.max(10_000))
            } else {
                rng.range(20, 1_500)
            };
            let content_type = if upload {
                "application/octet-stream"
            } else {
                "application/json"
            };
            let _ = write!(
                head,
                "Content-Type: {content_type}\r\nContent-Length: {body_len}\r\n"
            );
            head.push_str(if last && self.server_closes {
                "Connection: close\r\n\r\n"
            } else {
                "Connection: keep-alive\r\n\r\n"
            });
            request = request.bytes(head.into_bytes());
            request = if upload {
                request.random(body_len)
            } else {
                request.bytes(json_body(body_len as usize, rng))
            };
        } else {
            head.push_str(if last && self.server_closes {
                "Connection: close\r\n\r\n"
            } else {
                "Connection: keep-alive\r\n\r\n"
            });
            request = request.bytes(head.into_bytes());
        }
        let response = self.response(resource, conditional, last, rng, now);
        (request, response)
    }

    fn response(
        &self,
        resource: Resource,
        conditional: bool,
        last: bool,
        rng: &mut Rng,
        now: u64,
    ) -> ResponsePlan {
        let (status, reason) = if conditional {
            (304, "Not Modified")
        } else if rng.chance(40) {
            (404, "Not Found")
        } else if rng.chance(25) {
            (301, "Moved Permanently")
        } else {
            (200, "OK")
        };
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "HTTP/1.1 {status} {reason}\r\nServer: {}\r\nDate: {}\r\n",
            self.server,
            http_date(now / 1_000_000)
        );
        let connection = if last && self.server_closes {
            "close"
        } else {
            "keep-alive"
        };
        if status == 304 {
            let _ = write!(
                head,
                "ETag: \"{:x}\"\r\nConnection: {connection}\r\n\r\n",
                rng.next_u32()
            );
            return ResponsePlan {
                head,
                body: ByteStream::new(),
            };
        }
        if status != 200 {
            if status == 301 {
                let _ = write!(head, "Location: https://{}/\r\n", self.host);
            }
            let body = format!("<html><head><title>{status} {reason}</title></head><body><h1>{reason}</h1></body></html>\n");
            let _ = write!(
                head,
                "Content-Type: text/html\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
                body.len()
            );
            return ResponsePlan {
                head,
                body: ByteStream::new().bytes(body.into_bytes()),
            };
        }
        let textual = matches!(resource, Resource::Page | Resource::Json);
        let size_cap = if resource == Resource::Json {
            64_000
        } else {
            self.max_body
        };
        let size = rng.log_uniform(200, size_cap.max(200));
        let _ = write!(
            head,
            "Content-Type: {}\r\nCache-Control: max-age=3600\r\n",
            resource.content_type()
        );
        if textual && size <= 65_536 && rng.chance(250) {
            let _ = write!(
                head,
                "Transfer-Encoding: chunked\r\nConnection: {connection}\r\n\r\n"
            );
            let text = if resource == Resource::Json {
                json_body(size as usize, rng)
            } else {
                html_body(size as usize)
            };
            return ResponsePlan {
                head,
                body: ByteStream::new().bytes(chunked(&text, rng)),
            };
        }
        let _ = write!(
            head,
            "Content-Length: {size}\r\nConnection: {connection}\r\n\r\n"
        );
        let body = match resource {
            Resource::Page => {
                let prefix = html_prefix();
                let pre = (prefix.len() as u64).min(size);
                ByteStream::new()
                    .bytes(prefix[..pre as usize].to_vec())
                    .text(size - pre)
            }
            Resource::Json => ByteStream::new().bytes(json_body(size as usize, rng)),
            Resource::Script => ByteStream::new().text(size),
            // Opaque bytes under an opaque type: a dissector that trusted a media type
            // (image/jpeg, video/mp4) would report random content as malformed.
            Resource::Download => ByteStream::new().random(size),
        };
        ResponsePlan { head, body }
    }
}

impl TcpApp for HttpApp {
    fn next_turn(&mut self, rng: &mut Rng, now: u64) -> Option<Turn> {
        if let Some(plan) = self.pending.take() {
            return Some(Turn {
                dir: Dir::ToClient,
                stream: ByteStream::new()
                    .bytes(plan.head.into_bytes())
                    .append(plan.body),
                delay: rng.log_uniform(100, 80_000),
            });
        }
        if self.requests_left == 0 {
            return None;
        }
        self.requests_left -= 1;
        let delay = if self.first {
            rng.range(50, 2_000)
        } else {
            rng.log_uniform(1_000, 3_000_000)
        };
        self.first = false;
        let (request, response) = self.request(rng, now + delay);
        self.pending = Some(response);
        Some(Turn {
            dir: Dir::ToServer,
            stream: request,
            delay,
        })
    }

    fn wind_down(&mut self) {
        self.requests_left = 0;
    }

    fn ending(&self) -> Ending {
        if self.server_closes {
            Ending::ServerFin
        } else if self.client_resets {
            Ending::ClientRst
        } else {
            Ending::ClientFin
        }
    }
}

fn html_prefix() -> &'static [u8] {
    b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Synthetic page</title></head><body>\n"
}

/// An HTML document of exactly `len` bytes (shorter than the skeleton only if `len` is).
fn html_body(len: usize) -> Vec<u8> {
    let mut body = html_prefix().to_vec();
    let tail = b"</body></html>\n";
    let mut filler = ByteStream::new().text(len.saturating_sub(body.len() + tail.len()) as u64);
    let mut rng = Rng::new(0);
    while !filler.is_empty() {
        filler.fill(&mut body, usize::MAX, &mut rng);
    }
    body.extend_from_slice(tail);
    body.truncate(len);
    body
}

/// A JSON array of items, padded or cut to exactly `len` bytes while staying valid when
/// `len` allows a closing bracket.
fn json_body(len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut body = String::from("[");
    while body.len() + 80 < len {
        if body.len() > 1 {
            body.push(',');
        }
        let _ = write!(
            body,
            "{{\"id\":{},\"name\":\"item-{:06x}\",\"price\":{}.{:02}}}",
            rng.range(1, 99_999),
            rng.next_u32() & 0xFF_FFFF,
            rng.range(1, 999),
            rng.range(0, 99)
        );
    }
    body.push(']');
    while body.len() < len {
        body.push(' ');
    }
    let mut bytes = body.into_bytes();
    bytes.truncate(len);
    bytes
}

/// HTTP/1.1 chunked encoding of `body` in chunks of a few KB, with the terminating chunk.
fn chunked(body: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut rest = body;
    while !rest.is_empty() {
        let take = (rng.range(512, 8192) as usize).min(rest.len());
        out.extend_from_slice(format!("{take:x}\r\n").as_bytes());
        out.extend_from_slice(&rest[..take]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[take..];
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// RFC 7231 IMF-fixdate, e.g. `Wed, 01 May 2024 12:00:00 GMT`.
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut stream: ByteStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rng = Rng::new(0);
        while !stream.is_empty() {
            stream.fill(&mut out, 4096, &mut rng);
        }
        out
    }

    #[test]
    fn http_date_matches_known_instants() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_714_564_800), "Wed, 01 May 2024 12:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn chunked_encoding_decodes_back_to_the_body() {
        let mut rng = Rng::new(4);
        let body = html_body(20_000);
        assert_eq!(body.len(), 20_000);
        let encoded = chunked(&body, &mut rng);
        let mut decoded = Vec::new();
        let mut rest = &encoded[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                assert_eq!(rest, b"\r\n");
                break;
            }
            decoded.extend_from_slice(&rest[..size]);
            assert_eq!(&rest[size..size + 2], b"\r\n");
            rest = &rest[size + 2..];
        }
        assert_eq!(decoded, body);
    }

    #[test]
    fn every_response_declares_the_body_it_carries() {
        let mut rng = Rng::new(11);
        for _ in 0..200 {
            let mut app = HttpApp::new("www.example.com", 100_000, &mut rng);
            while let Some(turn) = app.next_turn(&mut rng, 1_714_564_800_000_000) {
                let bytes = drain(turn.stream);
                let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                let head = std::str::from_utf8(&bytes[..split]).unwrap();
                let body = &bytes[split..];
                assert!(head.contains("\r\n"), "{head}");
                if turn.dir == Dir::ToServer {
                    assert!(head.contains("Host: www.example.com\r\n"));
                    assert!(head.contains("User-Agent: "));
                }
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map(|v| v.parse::<usize>().unwrap());
                match length {
                    Some(n) => assert_eq!(body.len(), n, "{head}"),
                    None if head.contains("Transfer-Encoding: chunked") => {
                        assert!(body.ends_with(b"0\r\n\r\n"))
                    }
                    None => assert!(body.is_empty(), "{head}"),
                }
            }
        }
    }
}
