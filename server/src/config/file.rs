//! Layering the settings: command line over the `--config` TOML file over `CHAT_*` environment
//! variables over defaults.
//!
//! clap already knows every option, its type and its checks, so the file is not parsed into a
//! struct of its own: its keys are checked against clap's options and turned into arguments
//! (`max-clients = 20000` becomes `--max-clients=20000`), put in front of the real command line
//! only for options the command line does not give, and with the environment switched off for
//! them. clap then parses the whole once more, with all its checks. A value the file got wrong
//! is reported with the file's name and line.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};

use super::Config;

/// Options that make no sense as a file key.
pub(super) const NOT_IN_FILE: [&str; 4] = ["help", "version", "config", "check-config"];

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A bad command line or environment variable: clap prints it (with the usage) and exits.
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// The file is missing, is not TOML, or has a key or value that is wrong.
    #[error("{0}")]
    File(String),
}

/// Every option with its environment variable: `--max-clients` reads `CHAT_MAX_CLIENTS`.
pub(super) fn command() -> Command {
    Config::command().mut_args(|arg| match arg.get_long() {
        Some(long) if !NOT_IN_FILE.contains(&long) || long == "config" => {
            let var = format!("CHAT_{}", long.to_uppercase().replace('-', "_"));
            // `--help` names the variable but never shows its value (a Redis password).
            let arg = arg.env(var).hide_env_values(true);
            match arg.get_action() {
                // CHAT_NO_WEB=1, yes, on, true (or 0, no, off, false).
                ArgAction::SetTrue => arg.value_parser(clap::builder::BoolishValueParser::new()),
                // CHAT_TRUSTED=10.0.0.0/8,::1
                ArgAction::Append => arg.value_delimiter(','),
                _ => arg,
            }
        }
        _ => arg,
    })
}

/// The settings, and where each came from (for `--check-config`).
pub struct Settings {
    pub config: Config,
    pub matches: ArgMatches,
    /// Ids of the options the file gave.
    pub from_file: HashSet<String>,
}

/// The settings from `args` (the program's name first), its `--config` file and the
/// environment.
pub fn load(args: &[OsString]) -> Result<Settings, LoadError> {
    let matches = command().try_get_matches_from(args)?;
    let Some(path) = matches.get_one::<PathBuf>("config").cloned() else {
        let config = Config::from_arg_matches(&matches)?;
        let from_file = HashSet::new();
        return Ok(Settings {
            config,
            matches,
            from_file,
        });
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| LoadError::File(format!("cannot read {}: {e}", path.display())))?;
    let file = SettingsFile::parse(&path, &text)?;
    let (mut argv, from_file) = file.arguments(&matches)?;
    argv.insert(
        0,
        args.first()
            .cloned()
            .unwrap_or_else(|| "chat-server".into()),
    );
    argv.extend(args.iter().skip(1).cloned());
    // The file wins over the environment: its options do not read their variables.
    let command = command().mut_args(|arg| {
        if from_file.contains(arg.get_id().as_str()) {
            arg.env(None)
        } else {
            arg
        }
    });
    let matches = command
        .try_get_matches_from(&argv)
        .map_err(|e| file.explain(e))?;
    let config = Config::from_arg_matches(&matches)?;
    Ok(Settings {
        config,
        matches,
        from_file,
    })
}

/// The settings again, for a reload: `Err` says why the running ones stay.
pub fn reload(args: &[OsString]) -> Result<Config, String> {
    load(args).map(|s| s.config).map_err(|e| match e {
        LoadError::Usage(e) => first_line(&e.to_string()),
        LoadError::File(e) => e,
    })
}

fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// A parsed `--config` file: each key with its value and line.
struct SettingsFile {
    path: PathBuf,
    entries: BTreeMap<String, (toml::Value, usize)>,
}

impl SettingsFile {
    fn parse(path: &Path, text: &str) -> Result<Self, LoadError> {
        let at = |what: String| LoadError::File(format!("{}: {what}", path.display()));
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map_or(0, |span| line_at(text, span.start));
            at(format!("line {line}: not TOML: {}", e.message().trim_end()))
        })?;
        let spans = toml::de::DeTable::parse(text).map_err(|e| at(e.to_string()))?;
        let line_of = |key: &str| {
            spans
                .get_ref()
                .keys()
                .find(|k| k.get_ref() == key)
                .map_or(0, |k| line_at(text, k.span().start))
        };
        let known: HashSet<String> = command()
            .get_arguments()
            .filter_map(|arg| arg.get_long().map(str::to_owned))
            .filter(|long| !NOT_IN_FILE.contains(&long.as_str()))
            .collect();
        let mut entries = BTreeMap::new();
        for (key, value) in table {
            let line = line_of(&key);
            if !known.contains(&key) {
                let hint = if known.contains(&key.replace('_', "-")) {
                    format!(" (did you mean {}?)", key.replace('_', "-"))
                } else {
                    String::new()
                };
                return Err(at(format!("line {line}: unknown key `{key}`{hint}")));
            }
            entries.insert(key, (value, line));
        }
        Ok(Self {
            path: path.to_owned(),
            entries,
        })
    }

    /// The file's settings as arguments, for the options `matches` (the command line) does
    /// not give; and the ids of those options.
    fn arguments(
        &self,
        matches: &ArgMatches,
    ) -> Result<(Vec<OsString>, HashSet<String>), LoadError> {
        let command = command();
        let mut argv = Vec::new();
        let mut from_file = HashSet::new();
        for (key, (value, line)) in &self.entries {
            let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(key)) else {
                continue;
            };
            let id = arg.get_id().as_str();
            if matches.value_source(id) == Some(ValueSource::CommandLine) {
                continue;
            }
            from_file.insert(id.to_owned());
            let wrong = |what: &str| {
                LoadError::File(format!(
                    "{}: line {line}: {key} = {value}: {what}",
                    self.path.display()
                ))
            };
            let values: Vec<&toml::Value> = match (value, arg.get_action()) {
                (toml::Value::Boolean(on), ArgAction::SetTrue) => {
                    if *on {
                        argv.push(format!("--{key}").into());
                    }
                    continue;
                }
                (_, ArgAction::SetTrue) => return Err(wrong("expected true or false")),
                (toml::Value::Array(items), ArgAction::Append) => items.iter().collect(),
                (toml::Value::Array(_), _) => return Err(wrong("expected one value, not a list")),
                (value, _) => vec![value],
            };
            for value in values {
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(n) => n.to_string(),
                    toml::Value::Float(x) => x.to_string(),
                    _ => return Err(wrong("expected a string or a number")),
                };
                argv.push(format!("--{key}={text}").into());
            }
        }
        Ok((argv, from_file))
    }

    /// A clap error about an option the file set, with the file's name and line.
    fn explain(&self, error: clap::Error) -> LoadError {
        let arg = error
            .get(clap::error::ContextKind::InvalidArg)
            .map(|v| v.to_string());
        let key = arg.as_deref().and_then(|arg| {
            let long = arg.strip_prefix("--")?;
            Some(long.split([' ', '=']).next().unwrap_or(long).to_owned())
        });
        match key.and_then(|key| self.entries.get(&key).map(|(_, line)| (key, *line))) {
            Some((key, line)) => LoadError::File(format!(
                "{}: line {line}: {key}: {}",
                self.path.display(),
                first_line(&error.to_string())
            )),
            None => LoadError::Usage(error),
        }
    }
}

/// The 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
