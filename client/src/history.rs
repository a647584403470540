//! Input history kept across runs, in `chat-client/history` under the user's data directory
//! (`$XDG_DATA_HOME`, else `~/.local/share`, on Linux). rustyline reads and writes the file;
//! this decides where it is, which lines may go in it ([`keeps`]), and keeps a failing disk
//! from getting in the way of chatting.

use std::path::PathBuf;

use directories::ProjectDirs;
use rustyline::history::History;
use rustyline::{Editor, Helper};

/// Lines kept, in memory and in the file.
pub const MAX_LINES: usize = 1000;

/// The history file of this user, if the platform has a data directory.
pub fn default_path() -> Option<PathBuf> {
    ProjectDirs::from("", "", "chat-client").map(|dirs| dirs.data_dir().join("history"))
}

/// Commands whose arguments are passwords (PROTOCOL.md section 12).
const SECRET_COMMANDS: [&str; 3] = ["/register", "/password", "/unregister"];

/// May `line` go into the history (memory and file)? Not a command that carries a password,
/// however it is spelt (the server matches commands case-insensitively). The answer to a
/// `Password: ` prompt never gets this far: the caller knows it is one.
pub fn keeps(line: &str) -> bool {
    let word = line.trim_start().split([' ', '\t']).next().unwrap_or("");
    !SECRET_COMMANDS
        .iter()
        .any(|command| word.eq_ignore_ascii_case(command))
}

/// Where history goes, or nowhere (`--no-history-file`, no data directory, or a write failed).
pub struct HistoryFile {
    path: Option<PathBuf>,
}

impl HistoryFile {
    pub fn disabled() -> Self {
        Self { path: None }
    }

    /// Loads the history at `path` into the editor (none yet is fine).
    pub fn open<H: Helper, I: History>(path: PathBuf, editor: &mut Editor<H, I>) -> Self {
        if let Some(dir) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                warn(&path, &e.to_string());
                return Self::disabled();
            }
        }
        if path.exists() {
            if let Err(e) = editor.load_history(&path) {
                warn(&path, &e.to_string());
                return Self::disabled();
            }
        }
        Self { path: Some(path) }
    }

    /// Adds the lines added since the last call to the file; stops trying after a failure.
    pub fn save<H: Helper, I: History>(&mut self, editor: &mut Editor<H, I>) {
        if let Some(path) = &self.path {
            if let Err(e) = editor.append_history(path) {
                warn(path, &e.to_string());
                self.path = None;
            }
        }
    }
}

fn warn(path: &std::path::Path, error: &str) {
    eprintln!(
        "chat-client: history file {} not used: {error}",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::history::DefaultHistory;
    use rustyline::Config;

    fn editor() -> Editor<(), DefaultHistory> {
        let config = Config::builder()
            .max_history_size(MAX_LINES)
            .expect("history size")
            .build();
        Editor::with_config(config).expect("editor")
    }

    #[test]
    fn commands_with_passwords_are_not_kept() {
        for line in [
            "/register s3cretpass",
            "/REGISTER s3cretpass",
            "  /password old1pass new2pass",
            "/unregister\ts3cretpass",
            "/register",
        ] {
            assert!(!keeps(line), "{line}");
        }
        for line in [
            "hello",
            "/nick bob",
            "/registered",
            "//register as a message",
            "I forgot my /password",
            "/msg bob /register is the command",
        ] {
            assert!(keeps(line), "{line}");
        }
    }

    #[test]
    fn lines_survive_a_restart_and_the_file_keeps_the_last_1000() {
        let dir = std::env::temp_dir().join(format!("chat-client-history-{}", std::process::id()));
        let path = dir.join("nested").join("history");
        let mut first = editor();
        let mut file = HistoryFile::open(path.clone(), &mut first);
        for i in 0..MAX_LINES + 5 {
            first.add_history_entry(format!("line {i}")).expect("add");
            if i % 100 == 0 || i == MAX_LINES + 4 {
                file.save(&mut first);
            }
        }

        let mut second = editor();
        HistoryFile::open(path.clone(), &mut second);
        let history = second.history();
        assert_eq!(history.len(), MAX_LINES);
        let last = history
            .get(MAX_LINES - 1, rustyline::history::SearchDirection::Forward)
            .expect("read")
            .expect("entry");
        assert_eq!(last.entry, format!("line {}", MAX_LINES + 4));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
