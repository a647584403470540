//! `chat-server --check-config`: the effective settings, and whether the server could start with
//! them, without starting it. The settings go to standard output as TOML (a file `--config`
//! reads back), each with where it came from; each check goes to standard error.

use std::io::Write;
use std::time::Duration;

use clap::parser::ValueSource;

use super::file::{command, NOT_IN_FILE};
use super::{Config, Settings, DEFAULT_MAX_CLIENTS};
use crate::access::Access;
use crate::transport::tls::TlsSettings;

/// Prints the settings and the checks; true when every check passed.
pub fn check(settings: &Settings) -> bool {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(render(settings).as_bytes());
    let _ = out.flush();
    let mut ok = true;
    for (what, result) in checks(&settings.config) {
        match result {
            Ok(detail) => eprintln!("ok     {what}{detail}"),
            Err(e) => {
                ok = false;
                eprintln!("error  {what}: {e:#}");
            }
        }
    }
    ok
}

/// The settings as TOML, secrets masked, each line commented with its source.
pub fn render(settings: &Settings) -> String {
    let matches = &settings.matches;
    let mut out = String::new();
    for arg in command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if NOT_IN_FILE.contains(&long) {
            continue;
        }
        let id = arg.get_id().as_str();
        let source = match matches.value_source(id) {
            _ if settings.from_file.contains(id) => "file",
            Some(ValueSource::CommandLine) => "command line",
            Some(ValueSource::EnvVariable) => "environment",
            Some(ValueSource::DefaultValue) => "default",
            _ => "not set",
        };
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = match (arg.get_action(), raw.as_slice()) {
            (clap::ArgAction::SetTrue, _) => matches.get_flag(id).to_string(),
            (clap::ArgAction::Append, values) if !values.is_empty() => {
                let items: Vec<String> = values.iter().map(|v| toml_value(long, v)).collect();
                format!("[{}]", items.join(", "))
            }
            (_, [v]) => toml_value(long, v),
            _ => {
                // Defaults worked out at start are in the help: `[default: 127.0.0.0/8 and ::1]`.
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                let default = help
                    .split_once("[default: ")
                    .and_then(|(_, rest)| rest.split_once(']'))
                    .map_or("not set".to_owned(), |(default, _)| {
                        format!("not set: {default}")
                    });
                out.push_str(&format!("# {long} ({default})\n"));
                continue;
            }
        };
        out.push_str(&format!("{long} = {value}  # {source}\n"));
    }
    out
}

/// A value as TOML: numbers bare, anything else a quoted string, with passwords masked.
fn toml_value(key: &str, raw: &str) -> String {
    let number = raw.parse::<i64>().is_ok()
        || (raw.parse::<f64>().is_ok_and(f64::is_finite)
            && raw.bytes().any(|b| b.is_ascii_digit()));
    if number && key != "host" && key != "cluster-prefix" {
        return raw.to_owned();
    }
    toml::Value::String(mask_password(raw)).to_string()
}

/// `redis://user:secret@host` -> `redis://user:****@host`.
pub fn mask_password(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return value.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
        None => value.to_owned(),
    }
}

type Check = (String, anyhow::Result<String>);

fn checks(config: &Config) -> Vec<Check> {
    let mut checks: Vec<Check> = Vec::new();
    let max_clients = config.max_clients.unwrap_or(DEFAULT_MAX_CLIENTS);
    let files = crate::limits::files_needed(max_clients);
    checks.push((
        "open files".into(),
        crate::limits::raise_open_files(files)
            .map_err(anyhow::Error::from)
            .and_then(|limit| {
                crate::limits::fit_max_clients(config.max_clients, DEFAULT_MAX_CLIENTS, limit)
            })
            .map(|fits| format!(": {fits} clients fit")),
    ));
    let mut ports = vec![("line port", Some(config.port))];
    ports.push(("web port", config.web_port().unwrap_or(None)));
    ports.push(("TLS port", config.tls_port()));
    if let Err(e) = config.web_port() {
        checks.push(("web port".into(), Err(e)));
    }
    // A chat-server already running with these ports (the config is being checked before a
    // reload) holds them: that is no error, a reload keeps them.
    let running = config.port != 0 && chat_server_at(&config.host, config.port);
    for (what, port) in ports {
        let Some(port) = port else { continue };
        let result = match crate::listener::bind(&config.host, port) {
            Ok(_) => Ok(String::new()),
            Err(_) if running => Ok(" (held by the chat-server running there)".to_owned()),
            Err(e) => Err(e),
        };
        checks.push((format!("{what} {}:{port} free", config.host), result));
    }
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let tls = TlsSettings::load(cert, key).map(|_| String::new());
        checks.push(("TLS certificate and key".into(), tls));
    }
    checks.push((
        "trusted addresses and operator password".into(),
        Access::from_config(config).map(|_| String::new()),
    ));
    if let Some(dir) = &config.data_dir {
        checks.push((
            format!("data dir {} writable", dir.display()),
            writable(dir),
        ));
    }
    if let Some(url) = &config.cluster {
        checks.push((format!("Redis at {}", mask_password(url)), ping(url)));
    }
    checks
}

/// Whether a chat-server answers on the line port: its banner comes first.
fn chat_server_at(host: &str, port: u16) -> bool {
    let host = match host {
        "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        host => host,
    };
    let Some(addr) = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()
        .and_then(|mut addrs| addrs.next())
    else {
        return false;
    };
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut banner = [0u8; 64];
    let n = std::io::Read::read(&mut stream, &mut banner).unwrap_or(0);
    banner[..n].starts_with(chat_common::wire::notice("welcome to chat-server").as_bytes())
}

/// The data dir can be written, or (not there yet) made: nothing is created.
fn writable(dir: &std::path::Path) -> anyhow::Result<String> {
    if dir.exists() {
        return Ok(probe(dir).map(|()| String::new())?);
    }
    let parent = dir
        .ancestors()
        .skip(1)
        .find(|p| p.exists())
        .ok_or_else(|| anyhow::anyhow!("no existing parent"))?;
    probe(parent).map_err(|e| anyhow::anyhow!("cannot be made in {}: {e}", parent.display()))?;
    Ok(" (not there yet: it will be made)".to_owned())
}

/// Writes and removes a file in `dir`.
fn probe(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".chat-server-check-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

fn ping(url: &str) -> anyhow::Result<String> {
    let pong = || -> redis::RedisResult<String> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(2)))?;
        redis::cmd("PING").query(&mut conn)
    };
    // A Redis error's text already says everything; no chain of causes after it.
    pong()
        .map(|pong| format!(": {pong}"))
        .map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            mask_password("redis://:s3cret@db:6379/0"),
            "redis://:****@db:6379/0"
        );
        assert_eq!(mask_password("redis://u:p@h"), "redis://u:****@h");
        assert_eq!(mask_password("redis://h:6379"), "redis://h:6379");
        assert_eq!(mask_password("0.0.0.0"), "0.0.0.0");
    }

    #[test]
    fn numbers_are_bare_and_the_rest_quoted() {
        assert_eq!(toml_value("port", "9009"), "9009");
        assert_eq!(toml_value("host", "0.0.0.0"), "\"0.0.0.0\"");
        assert_eq!(toml_value("cluster-prefix", "123"), "\"123\"");
        assert_eq!(toml_value("ban", "0.5"), "0.5");
        assert_eq!(toml_value("x", "inf"), "\"inf\"");
    }
}
