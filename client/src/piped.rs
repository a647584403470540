//! Piped mode: standard input or output is not a terminal, so a script is talking.
//!
//! Every input line is sent as it is read; at the end of input the client sends `/quit` and
//! prints everything the server sends until it closes, so
//! `printf 'alice\nhi\n' | chat-client` logs in, says hi, and leaves. Lines are sent without
//! waiting for answers; which of them were names is worked out afterwards from the server's
//! answers (see [`crate::session`]). If input ends before any name was accepted the client
//! cannot quit (`/quit` is not a command before login), so it closes and fails instead.
//! A `Password: ` prompt (PROTOCOL.md section 12) is answered like `Username: `, by the next
//! input line; nothing is printed back.
//!
//! Standard input is read on a thread of its own that feeds the same event channel as the
//! socket reader, so the main thread never sits in a blocking read when the server goes away.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chat_common::wire::PASSWORD_PROMPT;
use signal_hook::consts::SIGINT;

use crate::connection::{Connection, Output, Reader};
use crate::session::{describe, is_quit, Event, Session};
use crate::style::Style;
use crate::transport::Transport;

const POLL: Duration = Duration::from_millis(50);
/// After the end of input, time for the server to answer the names sent.
const LOGIN_WAIT: Duration = Duration::from_secs(10);
/// After `/quit`, time for the server to send the rest and close.
const QUIT_WAIT: Duration = Duration::from_secs(10);

/// Runs the session; returns the exit status.
pub fn run(transport: Transport, name: Option<String>, style: Style) -> anyhow::Result<u8> {
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGINT, Arc::clone(&interrupted))?;
    let session = Arc::new(Session::default());
    let (events_tx, events) = mpsc::channel();
    Reader {
        transport: transport.clone(),
        output: Output::Stdout,
        style,
        session: Arc::clone(&session),
        events: events_tx.clone(),
        bell: false,
        on_close: Box::new(|| {}),
    }
    .spawn()?;
    spawn_stdin_reader(events_tx)?;

    let mut conn = Connection::new(transport);
    // A person typing with stdout redirected still wants to see the login prompt.
    let show_prompts = io::stdin().is_terminal();
    let mut input_ended: Option<Instant> = None;
    let mut quit_at: Option<Instant> = None;
    if let Some(name) = name {
        session.login().attempt(&name);
        let _ = conn.send(&name);
    }
    loop {
        let event = match events.recv_timeout(POLL) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            // Both senders are gone: the reader has already reported its close.
            Err(RecvTimeoutError::Disconnected) => return Ok(1),
        };
        match event {
            Some(Event::Closed(closed)) => return Ok(closed.report()),
            Some(Event::Input(line)) if input_ended.is_none() && quit_at.is_none() => {
                session.login().attempt(&line);
                if is_quit(&line) {
                    session.mark_quit();
                    quit_at = Some(Instant::now());
                }
                // A failed send means the connection is gone; the reader will say so.
                let _ = conn.send(&line);
            }
            Some(Event::InputEnd) => {
                input_ended.get_or_insert_with(Instant::now);
            }
            Some(Event::Prompt(prompt)) if show_prompts => {
                eprint!("{prompt}");
                let _ = io::stderr().flush();
            }
            Some(Event::PasswordPrompt) if show_prompts => {
                eprint!("{PASSWORD_PROMPT}");
                let _ = io::stderr().flush();
            }
            Some(_) | None => {}
        }
        if interrupted.swap(false, Ordering::SeqCst) {
            if quit_at.is_some() {
                conn.close();
                return Ok(0);
            }
            input_ended.get_or_insert_with(Instant::now);
        }

        // Past the end of input (or an explicit /quit): leave as soon as the login allows.
        if let Some(since) = quit_at {
            if since.elapsed() > QUIT_WAIT {
                eprintln!("chat-client: the server did not close the connection");
                conn.close();
                return Ok(0);
            }
            if out_of_names(&session) {
                return Ok(give_up(&conn));
            }
        } else if let Some(since) = input_ended {
            if session.logged_in() || since.elapsed() > LOGIN_WAIT {
                session.mark_quit();
                quit_at = Some(Instant::now());
                let _ = conn.send("/quit");
            } else if out_of_names(&session) {
                return Ok(give_up(&conn));
            }
        }
    }
}

fn out_of_names(session: &Session) -> bool {
    session.login().out_of_names()
}

fn give_up(conn: &Connection) -> u8 {
    conn.close();
    eprintln!("chat-client: input ended before the server accepted a name");
    1
}

/// Reads standard input line by line (CRLF or LF, lossy UTF-8) into the event channel.
fn spawn_stdin_reader(events: Sender<Event>) -> io::Result<()> {
    thread::Builder::new()
        .name("stdin-reader".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match stdin.read_until(b'\n', &mut buf) {
                    Ok(0) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\n', '\r']);
                        if events.send(Event::Input(line.to_owned())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        eprintln!("chat-client: cannot read input: {}", describe(&e));
                        break;
                    }
                }
            }
            let _ = events.send(Event::InputEnd);
        })?;
    Ok(())
}
