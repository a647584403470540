//! The protocol-level helpers of [`Client`]: prompt, login, expectations, barriers.

use std::io::{self, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use super::{is_word_prefix, Client, End};
use crate::{parse_who, show, PROMPT, T};

impl Client {
    /// Waits for `* NAME joined` (pattern `^\* NAME joined\b`).
    pub fn expect_joined(&mut self, name: &str) {
        let prefix = format!("* {name} joined");
        self.expect_line(&format!("`{prefix}`"), |l| is_word_prefix(l, &prefix));
    }

    /// Reads up to and including the prompt `Username: ` and returns the lines before it.
    pub fn expect_prompt(&mut self) -> Vec<String> {
        match self.prompt_or_line(|_| false) {
            Ok(lines) => lines,
            Err(_) => unreachable!("no line stops the wait"),
        }
    }

    /// Reads up to the prompt (`Ok(lines before it)`) or up to a line for which `stop` is true
    /// (`Err(lines up to and including it)`), whichever comes first.
    pub fn prompt_or_line(
        &mut self,
        stop: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, Vec<String>> {
        self.prompt_of_or_line(PROMPT, stop)
    }

    /// Reads up to and including another prompt (`Password: `) and returns the lines before it.
    pub fn expect_prompt_of(&mut self, prompt: &[u8]) -> Vec<String> {
        match self.prompt_of_or_line(prompt, |_| false) {
            Ok(lines) => lines,
            Err(_) => unreachable!("no line stops the wait"),
        }
    }

    fn prompt_of_or_line(
        &mut self,
        prompt: &[u8],
        stop: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, Vec<String>> {
        let deadline = Instant::now() + T;
        let mut before = Vec::new();
        loop {
            if self.buf.starts_with(prompt) {
                self.buf.drain(..prompt.len());
                return Ok(before);
            }
            if !prompt.starts_with(&self.buf) {
                if let Some(line) = self.take_line() {
                    let line = self.utf8(line);
                    let done = stop(&line);
                    before.push(line);
                    if done {
                        return Err(before);
                    }
                    continue;
                }
            }
            if let Err(end) = self.fill(deadline) {
                let shown = String::from_utf8_lossy(prompt);
                let mut s = format!("the prompt `{shown}` (lines before it: {before:?})");
                if end == End::Timeout && self.buf.starts_with(prompt.trim_ascii_end()) {
                    s.push_str(" -- the exact bytes are the prompt without line ending");
                }
                self.lost(end, &s, T)
            }
        }
    }

    /// Waits for the prompt, sends `name`, and reads the welcome line (a `* ` line naming it).
    pub fn login(&mut self, name: &str) -> String {
        let before = self.expect_prompt();
        if let Some(bad) = before.iter().find(|l| !l.starts_with("* ")) {
            panic!(
                "{}: only `* ` banner lines may come before the prompt, got {bad:?}\n{}",
                self.label,
                self.context()
            );
        }
        self.set_label(name);
        self.send_line(name);
        let line = self.next_line();
        if !(line.starts_with("* ") && line.contains(name)) {
            panic!(
                "{name}: expected a `* ` welcome line naming {name:?} after login, got {line:?}\n{}",
                self.context()
            );
        }
        line
    }

    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.try_send_raw(bytes) {
            panic!(
                "{}: sending {}: {e}\n{}",
                self.label,
                show(bytes),
                self.context()
            );
        }
    }

    /// Sends `text` and a LF.
    pub fn send_line(&mut self, text: &str) {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        self.send_raw(&bytes);
    }

    /// Half-closes: the server sees EOF, we can still read.
    pub fn shutdown_write(&mut self) {
        self.stream
            .shutdown(Shutdown::Write)
            .expect("shutdown(Write)");
    }

    /// Closes with SO_LINGER 0, so the server gets a RST instead of a FIN.
    pub fn reset(self) {
        socket2::SockRef::from(&self.stream)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER 0");
        drop(self);
    }

    /// Reads until the server closes (EOF or reset) and returns the bytes that came before.
    pub fn expect_closed(&mut self) -> Vec<u8> {
        self.expect_closed_within(T)
    }

    pub fn expect_closed_within(&mut self, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.fill(deadline) {
                Ok(_) => {
                    // Bound what we hold: a stuck client may get megabytes before the close.
                    if self.buf.len() > 1 << 20 {
                        let keep = self.buf.split_off(self.buf.len() - 4096);
                        self.buf = keep;
                    }
                }
                Err(End::Timeout) => self.lost(End::Timeout, "the connection to close", timeout),
                Err(_) => return std::mem::take(&mut self.buf),
            }
        }
    }

    /// Fails if any byte is unread or arrives within `dur` (used sparingly: it costs `dur`).
    pub fn assert_silent(&mut self, dur: Duration) {
        let deadline = Instant::now() + dur;
        let unread = if self.buf.is_empty() {
            self.fill(deadline)
        } else {
            Ok(self.buf.len())
        };
        match unread {
            Err(End::Timeout) => {}
            Ok(_) => panic!(
                "{}: expected nothing for {dur:?}, got {}\n{}",
                self.label,
                show(&self.buf),
                self.context()
            ),
            Err(end) => self.lost(end, "silence", dur),
        }
    }

    /// Reads for `dur` and fails if a complete line matching `pred` arrived. Lines are left
    /// unread, so later expectations still see them.
    pub fn assert_no_line_matching(
        &mut self,
        what: &str,
        dur: Duration,
        pred: impl Fn(&str) -> bool,
    ) {
        let deadline = Instant::now() + dur;
        while self.fill(deadline).is_ok() {}
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        let complete = match text.rfind('\n') {
            Some(i) => &text[..i],
            None => "",
        };
        if let Some(bad) = complete
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .find(|l| !l.is_empty() && pred(l))
        {
            panic!(
                "{}: got {bad:?}, which should not come ({what})\n{}",
                self.label,
                self.context()
            );
        }
    }

    /// Sends `/who` and returns the lines that arrived before its reply: a barrier that shows
    /// everything the server queued for this client before it handled the command.
    pub fn sync(&mut self) -> Vec<String> {
        self.send_line("/who");
        let deadline = Instant::now() + T;
        let mut before = Vec::new();
        loop {
            match self.try_next_line_bytes(deadline) {
                Ok(line) => {
                    let line = self.utf8(line);
                    if parse_who(&line).is_some() {
                        return before;
                    }
                    before.push(line);
                }
                Err(end) => self.lost(end, "the reply to /who", T),
            }
        }
    }
}
