//! FTP: a control connection to port 21 and one data connection per transfer, as vsftpd or
//! ProFTPD answer curl, wget or a desktop client. The control channel carries the banner,
//! USER/PASS (anonymous or a named user, some logins refused with 530), SYST, PWD, TYPE I,
//! then per transfer a mode command, PASV (227 with the data address and port), EPSV (229)
//! or, active, PORT/EPRT (200), the transfer command LIST, RETR or STOR (uploads by named
//! users only), 150, and 226 once the data connection has closed; QUIT and 221 last.
//!
//! The data connection is a separate TCP connection: passive, the client connects to the
//! port the 227/229 announced; active, the server connects from port 20 to the port PORT
//! announced. Its sender closes it. Every connection is built by the `TcpConn` of `tcp.rs`,
//! so sequence numbers, ACKs and faults behave as in the other sessions.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::packet::Endpoint;
use super::rng::Rng;
use super::session::{Outbox, Session};
use super::stream::ByteStream;
use super::tcp::{Dir, Ending, Faults, TcpConn, Turn};

/// Transfers per session at most; also the data ports reserved for the client.
pub const MAX_TRANSFERS: usize = 5;
/// vsftpd's `pasv_min_port`..`pasv_max_port` as often configured.
const PASSIVE_PORTS: (u64, u64) = (30_000, 31_000);
const FTP_DATA_PORT: u16 = 20;

const BANNERS: [&str; 3] = [
    "220 (vsFTPd 3.0.3)\r\n",
    "220 ProFTPD Server (Debian)\r\n",
    "220-Welcome to the example.com file archive.\r\n220-All transfers are logged.\r\n220 FTP server ready.\r\n",
];
const USERS: [&str; 4] = ["alice", "deploy", "backup", "webmaster"];
const DOWNLOADS: [&str; 6] = [
    "debian-12.5.0-amd64-netinst.iso",
    "README",
    "ls-lR.gz",
    "firmware-2.4.1.bin",
    "dataset-2024-04.csv.gz",
    "release-notes.pdf",
];
const UPLOADS: [&str; 4] = [
    "backup-2024-05-01.tar.gz",
    "site.zip",
    "export.csv",
    "db-dump.sql.gz",
];

/// How the data connection is set up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Pasv,
    Epsv,
    Port,
    Eprt,
}

/// What a transfer moves over the data connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transfer {
    List,
    Retr,
    Stor,
}

/// One thing the session does next.
enum Step {
    /// A control-channel turn; `begun` once its wait has been applied.
    Control { turn: Turn, begun: bool },
    /// The data connection's handshake.
    DataOpen(Box<TcpConn>),
    /// Data over the open data connection, `dir` relative to its initiator.
    DataSend { dir: Dir, stream: ByteStream },
    /// The data connection's teardown.
    DataClose(Ending),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Login,
    Transfers,
    Quit,
    Done,
}

/// The dialogue: steps queued one phase ahead.
struct Script {
    client: Endpoint,
    server: Endpoint,
    faults: Faults,
    data_ports: Vec<u16>,
    user: Option<&'static str>,
    refused: bool,
    transfers_left: u32,
    max_file: u64,
    phase: Phase,
    queue: VecDeque<Step>,
}

fn control(dir: Dir, text: impl Into<String>, delay: u64) -> Step {
    Step::Control {
        turn: Turn {
            dir,
            stream: ByteStream::new().bytes(text.into().into_bytes()),
            delay,
        },
        begun: false,
    }
}

/// `h1,h2,h3,h4,p1,p2` of PASV's 227 reply and of PORT.
pub fn host_port_text(ip: IpAddr, port: u16) -> String {
    let IpAddr::V4(v4) = ip else {
        unreachable!("PASV and PORT are IPv4 only; IPv6 uses EPSV and EPRT")
    };
    let o = v4.octets();
    format!(
        "{},{},{},{},{},{}",
        o[0],
        o[1],
        o[2],
        o[3],
        port >> 8,
        port & 0xFF
    )
}

/// A directory listing as `ls -l` prints it.
fn listing(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    for name in DOWNLOADS {
        let _ = write!(
            out,
            "-rw-r--r--    1 ftp      ftp      {:>10} Apr {:02} {:02}:{:02} {name}\r\n",
            rng.log_uniform(200, 700_000_000),
            rng.range(1, 30),
            rng.range(0, 23),
            rng.range(0, 59)
        );
    }
    out.push_str("drwxr-xr-x    2 ftp      ftp            4096 Mar 11 09:12 incoming\r\n");
    out.into_bytes()
}

impl Script {
    fn login(&mut self, rng: &mut Rng) {
        let q = &mut self.queue;
        q.push_back(control(
            Dir::ToClient,
            *rng.pick(&BANNERS),
            rng.range(200, 5_000),
        ));
        let (user, pass) = match self.user {
            Some(name) => (name, format!("{:x}", rng.next_u32())),
            None => (
                "anonymous",
                (*rng.pick(&["anonymous@", "ftp@example.com", "-wget@"])).to_string(),
            ),
        };
        q.push_back(control(
            Dir::ToServer,
            format!("USER {user}\r\n"),
            rng.range(100, 3_000),
        ));
        q.push_back(control(
            Dir::ToClient,
            "331 Please specify the password.\r\n",
            rng.range(100, 2_000),
        ));
        q.push_back(control(
            Dir::ToServer,
            format!("PASS {pass}\r\n"),
            rng.range(100, 800_000),
        ));
        if self.refused {
            q.push_back(control(
                Dir::ToClient,
                "530 Login incorrect.\r\n",
                rng.range(500_000, 3_000_000),
            ));
            self.phase = Phase::Quit;
            return;
        }
        q.push_back(control(
            Dir::ToClient,
            "230 Login successful.\r\n",
            rng.range(1_000, 50_000),
        ));
        for (command, reply) in [
            ("SYST", "215 UNIX Type: L8"),
            ("PWD", "257 \"/\" is the current directory"),
            ("TYPE I", "200 Switching to Binary mode."),
        ] {
            q.push_back(control(
                Dir::ToServer,
                format!("{command}\r\n"),
                rng.range(100, 3_000),
            ));
            q.push_back(control(
                Dir::ToClient,
                format!("{reply}\r\n"),
                rng.range(100, 2_000),
            ));
        }
        if self.user.is_none() || rng.chance(500) {
            q.push_back(control(Dir::ToServer, "CWD pub\r\n", rng.range(100, 3_000)));
            q.push_back(control(
                Dir::ToClient,
                "250 Directory successfully changed.\r\n",
                rng.range(100, 2_000),
            ));
        }
        self.phase = Phase::Transfers;
    }

    /// Queues one transfer: mode command, data connection, transfer command, replies.
    fn transfer(&mut self, rng: &mut Rng) {
        let Some(client_port) = self.data_ports.pop() else {
            return;
        };
        let v6 = self.server.ip.is_ipv6();
        let mode = match (v6, rng.range(0, 9)) {
            (false, 0..=4) => Mode::Pasv,
            (false, 5..=7) => Mode::Epsv,
            (false, _) => Mode::Port,
            (true, 0..=7) => Mode::Epsv,
            (true, _) => Mode::Eprt,
        };
        let transfer = match (self.user.is_some(), rng.range(0, 9)) {
            (_, 0..=1) => Transfer::List,
            (true, 2..=4) => Transfer::Stor,
            _ => Transfer::Retr,
        };
        let client_data = Endpoint {
            port: client_port,
            ..self.client
        };
        let passive = matches!(mode, Mode::Pasv | Mode::Epsv);
        let server_data = Endpoint {
            port: if passive {
                rng.range(PASSIVE_PORTS.0, PASSIVE_PORTS.1) as u16
            } else {
                FTP_DATA_PORT
            },
            ..self.server
        };
        let (command, reply) = match mode {
            Mode::Pasv => (
                "PASV".to_string(),
                format!(
                    "227 Entering Passive Mode ({}).",
                    host_port_text(server_data.ip, server_data.port)
                ),
            ),
            Mode::Epsv => (
                "EPSV".to_string(),
                format!(
                    "229 Entering Extended Passive Mode (|||{}|)",
                    server_data.port
                ),
            ),
            Mode::Port => (
                format!("PORT {}", host_port_text(client_data.ip, client_data.port)),
                "200 PORT command successful. Consider using PASV.".to_string(),
            ),
            Mode::Eprt => (
                format!("EPRT |2|{}|{}|", client_data.ip, client_data.port),
                "200 EPRT command successful. Consider using EPSV.".to_string(),
            ),
        };
        let (name, data, start, done) = match transfer {
            Transfer::List => {
                let list = listing(rng);
                (
                    String::new(),
                    ByteStream::new().bytes(list),
                    "150 Here comes the directory listing.".to_string(),
                    "226 Directory send OK.",
                )
            }
            Transfer::Retr => {
                let name = (*rng.pick(&DOWNLOADS)).to_string();
                let size = rng.log_uniform(500, self.max_file.max(500));
                (
                    name.clone(),
                    ByteStream::new().random(size),
                    format!("150 Opening BINARY mode data connection for {name} ({size} bytes)."),
                    "226 Transfer complete.",
                )
            }
            Transfer::Stor => {
                let size = rng.log_uniform(500, self.max_file.max(500));
                (
                    (*rng.pick(&UPLOADS)).to_string(),
                    ByteStream::new().random(size),
                    "150 Ok to send data.".to_string(),
                    "226 Transfer complete.",
                )
            }
        };
        let verb = match transfer {
            Transfer::List => "LIST".to_string(),
            Transfer::Retr => format!("RETR {name}"),
            Transfer::Stor => format!("STOR {name}"),
        };
        // The data connection's initiator is the client (passive) or the server (active);
        // the side holding the file sends it and closes.
        let (conn, from_initiator) = if passive {
            let conn = TcpConn::new(client_data, server_data, self.faults, rng);
            (conn, transfer == Transfer::Stor)
        } else {
            let conn = TcpConn::new(server_data, client_data, self.faults, rng);
            (conn, transfer != Transfer::Stor)
        };
        let (dir, ending) = if from_initiator {
            (Dir::ToServer, Ending::ClientFin)
        } else {
            (Dir::ToClient, Ending::ServerFin)
        };
        let q = &mut self.queue;
        if transfer == Transfer::Retr && rng.chance(400) {
            q.push_back(control(
                Dir::ToServer,
                format!("SIZE {name}\r\n"),
                rng.range(100, 3_000),
            ));
            q.push_back(control(
                Dir::ToClient,
                format!("213 {}\r\n", data.remaining()),
                rng.range(100, 2_000),
            ));
        }
        q.push_back(control(
            Dir::ToServer,
            format!("{command}\r\n"),
            rng.log_uniform(200, 2_000_000),
        ));
        q.push_back(control(
            Dir::ToClient,
            format!("{reply}\r\n"),
            rng.range(100, 2_000),
        ));
        let delay = rng.range(100, 2_000);
        if passive {
            q.push_back(Step::DataOpen(Box::new(conn)));
            q.push_back(control(Dir::ToServer, format!("{verb}\r\n"), delay));
            q.push_back(control(
                Dir::ToClient,
                format!("{start}\r\n"),
                rng.range(100, 2_000),
            ));
        } else {
            q.push_back(control(Dir::ToServer, format!("{verb}\r\n"), delay));
            q.push_back(control(
                Dir::ToClient,
                format!("{start}\r\n"),
                rng.range(100, 2_000),
            ));
            q.push_back(Step::DataOpen(Box::new(conn)));
        }
        q.push_back(Step::DataSend { dir, stream: data });
        q.push_back(Step::DataClose(ending));
        q.push_back(control(
            Dir::ToClient,
            format!("{done}\r\n"),
            rng.range(100, 5_000),
        ));
    }

    fn next(&mut self, rng: &mut Rng) -> Option<Step> {
        loop {
            if let Some(step) = self.queue.pop_front() {
                return Some(step);
            }
            match self.phase {
                Phase::Login => self.login(rng),
                Phase::Transfers if self.transfers_left > 0 && !self.data_ports.is_empty() => {
                    self.transfers_left -= 1;
                    self.transfer(rng);
                }
                Phase::Transfers => self.phase = Phase::Quit,
                Phase::Quit => {
                    self.queue.push_back(control(
                        Dir::ToServer,
                        "QUIT\r\n",
                        rng.log_uniform(200, 500_000),
                    ));
                    self.queue.push_back(control(
                        Dir::ToClient,
                        "221 Goodbye.\r\n",
                        rng.range(100, 2_000),
                    ));
                    self.phase = Phase::Done;
                }
                Phase::Done => return None,
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Running,
    Closed,
}

/// An FTP session: its control connection and, during a transfer, its data connection.
pub struct FtpSession {
    control: TcpConn,
    data: Option<Box<TcpConn>>,
    script: Script,
    current: Option<Step>,
    state: State,
}

impl FtpSession {
    /// `data_ports`: ephemeral ports of the client reserved for data connections (one per
    /// transfer, `MAX_TRANSFERS` at most are used).
    pub fn new(
        client: Endpoint,
        server: Endpoint,
        data_ports: Vec<u16>,
        faults: Faults,
        max_file: u64,
        rng: &mut Rng,
    ) -> Self {
        let control = TcpConn::new(client, server, faults, rng);
        let user = (!rng.chance(450)).then(|| rng.choose(&USERS));
        FtpSession {
            control,
            data: None,
            script: Script {
                client,
                server,
                faults,
                data_ports,
                user,
                refused: user.is_some() && rng.chance(100),
                transfers_left: rng.range(1, MAX_TRANSFERS as u64) as u32,
                max_file,
                phase: Phase::Login,
                queue: VecDeque::new(),
            },
            current: None,
            state: State::Connecting,
        }
    }
}

impl Session for FtpSession {
    fn refill(&mut self, out: &mut Outbox, rng: &mut Rng) -> bool {
        while out.is_empty() {
            match self.state {
                State::Connecting => {
                    self.control.handshake(out);
                    self.state = State::Running;
                    continue;
                }
                State::Closed => return false,
                State::Running => {}
            }
            let step = match self.current.take().or_else(|| self.script.next(rng)) {
                Some(step) => step,
                None => {
                    self.control.close(out, Ending::ServerFin, rng);
                    self.state = State::Closed;
                    continue;
                }
            };
            match step {
                Step::Control { mut turn, begun } => {
                    if !begun {
                        out.advance(match turn.dir {
                            Dir::ToServer => turn.delay,
                            Dir::ToClient => turn.delay + self.control.rtt(),
                        });
                    }
                    if !self.control.send(out, turn.dir, &mut turn.stream, rng) {
                        self.current = Some(Step::Control { turn, begun: true });
                    }
                }
                Step::DataOpen(mut conn) => {
                    out.advance(rng.range(100, 1_500));
                    conn.handshake(out);
                    self.data = Some(conn);
                }
                Step::DataSend { dir, mut stream } => {
                    let Some(conn) = self.data.as_mut() else {
                        unreachable!("data is sent only between DataOpen and DataClose")
                    };
                    if !conn.send(out, dir, &mut stream, rng) {
                        self.current = Some(Step::DataSend { dir, stream });
                    }
                }
                Step::DataClose(ending) => {
                    if let Some(mut conn) = self.data.take() {
                        conn.close(out, ending, rng);
                    }
                }
            }
        }
        true
    }

    fn wind_down(&mut self) {
        self.script.transfers_left = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_text_splits_the_port_into_two_bytes() {
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(host_port_text(ip, 30_000), "192,0,2,10,117,48");
    }
}
