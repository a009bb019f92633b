//! Headless Chromium driven over the DevTools protocol, for tests where a
//! person clicks: it types into forms and presses buttons, and its cookies,
//! `Origin` headers and redirects are the browser's own. The protocol runs
//! over `--remote-debugging-pipe` (commands on fd 3, answers on fd 4, each a
//! JSON message ended by NUL), so no WebSocket client is needed. Blocking:
//! call it from `spawn_blocking`.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One page in a headless Chromium.
pub struct Browser {
    child: Child,
    commands: std::io::PipeWriter,
    answers: Receiver<Value>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn launch(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (their_commands, commands) = std::io::pipe().unwrap();
        let (answers_reader, their_answers) = std::io::pipe().unwrap();
        let (read_fd, write_fd) = (their_commands.as_raw_fd(), their_answers.as_raw_fd());
        let mut command = Command::new(binary);
        command
            .args(["--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--remote-debugging-pipe"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2).
        unsafe { command.pre_exec(move || onto_3_and_4(read_fd, write_fd)) };
        let child = command.spawn().expect("chromium starts");
        drop((their_commands, their_answers));
        let (sender, answers) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(answers_reader);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop();
                if let Ok(value) = serde_json::from_slice(&message)
                    && sender.send(value).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        let mut browser = Browser { child, commands, answers, session: String::new(), next_id: 0, _profile: profile };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}), false);
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["result"]["targetId"], "flatten": true}),
            false,
        );
        let session = attached["result"]["sessionId"].as_str();
        browser.session = session.unwrap_or_else(|| panic!("no page session: {target} {attached}")).to_owned();
        browser
    }

    /// Sends one command (to the page's session, or to the browser) and waits for its answer.
    fn call(&mut self, method: &str, params: Value, in_page: bool) -> Value {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if in_page {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).expect("chromium reads its commands");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = self.answers.recv_timeout(left).unwrap_or_else(|_| panic!("chromium did not answer {method}"));
            if answer["id"] == json!(self.next_id) {
                return answer;
            }
        }
    }

    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}), true);
    }

    /// The value of a JavaScript expression in the page; `None` while the page
    /// is between documents or the expression threw.
    pub fn eval(&mut self, expression: &str) -> Option<Value> {
        let answer = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true}), true);
        let result = answer.get("result")?;
        if result.get("exceptionDetails").is_some() {
            return None;
        }
        result["result"].get("value").cloned()
    }

    /// Waits until `condition` (JavaScript) is true in a fully loaded page.
    pub fn wait_for(&mut self, what: &str, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let expression = format!("document.readyState === 'complete' && !!({condition})");
        while self.eval(&expression) != Some(json!(true)) {
            assert!(Instant::now() < deadline, "the page never showed {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page's HTML as rendered now.
    pub fn dom(&mut self) -> String {
        self.eval("document.documentElement.outerHTML").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the child: the command pipe on fd 3, the answer pipe on fd 4, as
/// `--remote-debugging-pipe` expects. Copied above 10 first, so neither
/// source can be overwritten by the other's `dup2`.
fn onto_3_and_4(read_fd: RawFd, write_fd: RawFd) -> std::io::Result<()> {
    // SAFETY: plain fd syscalls on descriptors this process owns.
    unsafe {
        let read_high = libc::fcntl(read_fd, libc::F_DUPFD, 10);
        let write_high = libc::fcntl(write_fd, libc::F_DUPFD, 10);
        if read_high < 0 || write_high < 0 || libc::dup2(read_high, 3) < 0 || libc::dup2(write_high, 4) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
