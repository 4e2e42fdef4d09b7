//! A loopback SMTP server that records what it receives: the sink email tests send to.
//!
//! It speaks enough of RFC 5321 for a real client (lettre): the greeting, EHLO/HELO,
//! MAIL FROM, RCPT TO, DATA (dot-unstuffed, ended by `<CRLF>.<CRLF>`), RSET, NOOP, QUIT.
//! [`SmtpSink::set_down`] makes it answer every new connection with `421` (a server that
//! is temporarily unavailable), so retries can be tested.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent after DATA (headers and body, CRLF line ends).
    pub data: String,
}

impl Received {
    /// The message's plain-text part (the whole body of a single-part message), with
    /// quoted-printable decoded; None when there is no readable text part.
    pub fn text(&self) -> Option<String> {
        let (head, body) = self.data.split_once("\r\n\r\n")?;
        let head_lower = head.to_ascii_lowercase();
        if !head_lower.contains("multipart/") {
            return Some(decode_part(&head_lower, body));
        }
        // The first text/plain part of a (possibly nested) multipart body.
        let start = body.to_ascii_lowercase().find("content-type: text/plain")?;
        let part = &body[start..];
        let (part_head, rest) = part.split_once("\r\n\r\n")?;
        let end = rest.find("\r\n--").unwrap_or(rest.len());
        Some(decode_part(&part_head.to_ascii_lowercase(), &rest[..end]))
    }

    /// The value of the first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut out: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = out.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if out.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                out = Some(v.trim().to_string());
            }
        }
        out
    }
}

/// The running sink.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    ip: std::net::IpAddr,
    received: Arc<Mutex<Vec<Received>>>,
    down: Arc<AtomicBool>,
}

impl SmtpSink {
    /// Listens on 127.0.0.1, on a free port, until the test ends.
    pub async fn start() -> SmtpSink {
        SmtpSink::start_on("127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("bind the SMTP sink")
    }

    /// Listens on `addr` (a loopback address: it relays nothing and keeps what it is sent)
    /// until the process ends; for `keel-fake paynow --smtp`.
    pub async fn start_on(addr: std::net::SocketAddr) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let sink = SmtpSink {
            port: local.port(),
            ip: local.ip(),
            received: Arc::default(),
            down: Arc::default(),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(stream).await;
                });
            }
        });
        Ok(sink)
    }

    /// `smtp://127.0.0.1:{port}`: what a host puts in `[email] smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://{}", std::net::SocketAddr::new(self.ip, self.port))
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every message received so far, in order, leaving the sink empty.
    pub fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// While down, every connection is refused with `421`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        if self.down.load(Ordering::SeqCst) {
            write
                .write_all(b"421 keel-testkit unavailable, try again later\r\n")
                .await?;
            return Ok(());
        }
        write.write_all(b"220 keel-testkit ESMTP sink\r\n").await?;
        let mut from = String::new();
        let mut to = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_string();
            let upper = command.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-keel-testkit\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            } else if upper.starts_with("HELO") {
                b"250 keel-testkit\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                from = address(&command["MAIL FROM:".len()..]);
                to.clear();
                b"250 OK\r\n"
            } else if upper.starts_with("RCPT TO:") {
                to.push(address(&command["RCPT TO:".len()..]));
                b"250 OK\r\n"
            } else if upper == "DATA" {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 4.5.2).
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                self.received
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Received {
                        from: from.clone(),
                        to: std::mem::take(&mut to),
                        data,
                    });
                b"250 OK queued\r\n"
            } else if upper == "RSET" || upper == "NOOP" {
                b"250 OK\r\n"
            } else if upper == "QUIT" {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                b"502 command not implemented\r\n"
            };
            write.write_all(reply).await?;
        }
    }
}

/// `<a@b>` (with parameters after it) to `a@b`.
fn address(text: &str) -> String {
    let t = text.trim();
    match (t.find('<'), t.find('>')) {
        (Some(a), Some(b)) if a < b => t[a + 1..b].to_string(),
        _ => t.split_whitespace().next().unwrap_or_default().to_string(),
    }
}

/// A part's body as text: quoted-printable decoded when its header says so; base64 parts and
/// others are returned as they are.
fn decode_part(head_lower: &str, body: &str) -> String {
    if !head_lower.contains("content-transfer-encoding: quoted-printable") {
        return body.to_owned();
    }
    let bytes = body.replace("=\r\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'=', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(data: &str) -> Received {
        Received {
            from: "billing@example.com".into(),
            to: vec!["tendai@example.co.zw".into()],
            data: data.replace('\n', "\r\n"),
        }
    }

    #[test]
    fn the_text_part_of_a_multipart_message_is_read_with_quoted_printable_decoded() {
        let m = received(
            "Subject: Receipt\nContent-Type: multipart/alternative; boundary=\"b1\"\n\n\
             --b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n\
             Paid: US$25.00 =E2=80=94 thank you. A long line that was=\n wrapped.\n\
             --b1\nContent-Type: text/html\n\n<p>Paid</p>\n--b1--\n",
        );
        assert_eq!(
            m.text().unwrap(),
            "Paid: US$25.00 \u{2014} thank you. A long line that was wrapped."
        );
        assert_eq!(m.header("subject").as_deref(), Some("Receipt"));
    }

    #[test]
    fn a_single_part_message_is_its_body() {
        let m = received("Subject: Hi\nContent-Type: text/plain\n\nHello\nthere");
        assert_eq!(m.text().unwrap(), "Hello\r\nthere");
    }
}
