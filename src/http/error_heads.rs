//! JSON bodies for the answers actix-http writes on its own.
//!
//! When a request head cannot be parsed (400), is over actix-http's 128 KiB
//! buffer or 96 headers (431), or does not arrive in time (408), actix-http's
//! h1 dispatcher answers itself, before any service of ours runs, with an
//! empty body (`BoxBody::new(())` in `h1/dispatcher.rs`), and closes the
//! connection. Neither actix-http 3.20 nor actix-web 4.18 offers a hook for
//! those answers: no error handler, no middleware sees them. So each
//! connection's stream is wrapped in `JsonErrorHeads`, which passes every byte
//! through except one shape: a response head at the very end of a write with
//! one of those statuses and nothing but `content-length: 0`, `connection`
//! and `date` headers. No answer of the app has that shape (each carries at
//! least `x-request-id`), and the dispatcher writes nothing after it. That
//! head is replaced by the same status with a `{"error": "…"}` body, the
//! write is reported as done in full (the original byte count), and the
//! replacement is written out before any flush or shutdown completes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's stream whose bodiless dispatcher error answers become JSON.
pub struct JsonErrorHeads<T> {
    io: T,
    /// The replacement answer not yet accepted by `io`.
    pending: Vec<u8>,
}

impl<T> JsonErrorHeads<T> {
    pub fn new(io: T) -> Self {
        JsonErrorHeads { io, pending: Vec::new() }
    }
}

impl<T: AsyncWrite + Unpin> JsonErrorHeads<T> {
    /// Writes out the replacement answer, if any; ready once it is all accepted.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            match ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => drop(self.pending.drain(..n)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrorHeads<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrorHeads<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        match trailing_error_head(buf) {
            // Bytes before the head first, so that a short write never splits the head.
            Some((start, _)) if start > 0 => Pin::new(&mut this.io).poll_write(cx, &buf[..start]),
            Some((_, replacement)) => {
                this.pending = replacement;
                // Errors and readiness are met again at flush or shutdown.
                let _ = this.poll_pending(cx);
                Poll::Ready(Ok(buf.len()))
            }
            None => Pin::new(&mut this.io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// Longer than any head the dispatcher writes for these answers.
const LONGEST_HEAD: usize = 512;

/// What the error says for each status the dispatcher answers on its own.
fn message(status: &[u8]) -> Option<&'static str> {
    Some(match status {
        b"400" => "the request is not valid HTTP/1.1",
        b"408" => "the request head did not arrive in time",
        b"431" => "the request head is too large (at most 128 KiB and 96 headers)",
        _ => return None,
    })
}

/// Where `buf` ends with a bodiless dispatcher error head, its start and the
/// JSON answer to send instead (same status line, `connection` and `date`).
fn trailing_error_head(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    // The head is about 120 bytes; only the tail of a large write is searched.
    let from = buf.len().saturating_sub(LONGEST_HEAD);
    let start = from + find_last(&buf[from..], b"HTTP/1.")?;
    let head = &buf[start..buf.len() - 2];
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next()?;
    let error = message(status_line.get(9..12)?)?;
    let mut kept = Vec::new();
    let mut bodiless = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (line[..colon].to_ascii_lowercase(), line[colon + 1..].trim_ascii());
        match name.as_slice() {
            b"content-length" if value == b"0" => bodiless = true,
            b"connection" | b"date" => kept.push(line),
            _ => return None,
        }
    }
    if !bodiless {
        return None;
    }
    let body = serde_json::json!({ "error": error }).to_string();
    let mut answer = status_line.to_vec();
    answer.extend_from_slice(b"\r\ncontent-type: application/json\r\n");
    answer.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    for line in kept {
        answer.extend_from_slice(line);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(body.as_bytes());
    Some((start, answer))
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const DATE: &str = "date: Mon, 04 May 2026 10:00:00 GMT";

    fn bare(status: &str) -> String {
        format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n{DATE}\r\n\r\n")
    }

    #[test]
    fn the_dispatchers_bare_answers_become_json_with_their_status() {
        for (status, code) in
            [("400 Bad Request", "400"), ("431 Request Header Fields Too Large", "431"), ("408 Request Timeout", "408")]
        {
            let (start, answer) = trailing_error_head(bare(status).as_bytes()).unwrap();
            let answer = String::from_utf8(answer).unwrap();
            let (head, body) = answer.split_once("\r\n\r\n").unwrap();
            assert_eq!(start, 0);
            assert!(head.starts_with(&format!("HTTP/1.1 {code} ")), "{head}");
            assert!(head.contains("\r\ncontent-type: application/json\r\n") && head.contains(DATE), "{head}");
            assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())), "{head}");
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }

    #[test]
    fn answers_of_the_app_pass_untouched() {
        let app = format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: 1\r\n{DATE}\r\n\r\n");
        let with_body = format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n{DATE}\r\n\r\n{{}}");
        let ok = format!("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n{DATE}\r\n\r\n");
        for bytes in [app, with_body, ok, bare("400 Bad Request")[..20].to_owned()] {
            assert!(trailing_error_head(bytes.as_bytes()).is_none(), "{bytes:?}");
        }
    }

    #[test]
    fn an_error_head_after_an_earlier_answer_is_found_at_its_start() {
        let earlier = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n{DATE}\r\n\r\n{{}}");
        let buf = format!("{earlier}{}", bare("400 Bad Request"));
        assert_eq!(trailing_error_head(buf.as_bytes()).unwrap().0, earlier.len());
    }

    #[tokio::test]
    async fn the_stream_reports_the_original_length_and_sends_the_json() {
        let (server, mut client) = tokio::io::duplex(4096);
        let mut wrapped = JsonErrorHeads::new(server);
        let earlier = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n{DATE}\r\n\r\n{{}}");
        let buf = format!("{earlier}{}", bare("431 Request Header Fields Too Large"));
        let mut written = 0;
        while written < buf.len() {
            written += wrapped.write(&buf.as_bytes()[written..]).await.unwrap();
        }
        assert_eq!(written, buf.len());
        wrapped.shutdown().await.unwrap();
        let mut received = String::new();
        client.read_to_string(&mut received).await.unwrap();
        let rest = received.strip_prefix(&earlier).unwrap();
        assert!(rest.starts_with("HTTP/1.1 431 ") && rest.ends_with("}"), "{rest}");
    }
}
