//! SIGHUP: the settings are read again (the command line the server started with, its
//! `--config` file and the environment) and what can change live takes effect for new
//! connections: limits, flood settings, trusted addresses, the operator password, the web's
//! origins and real-IP header, `/metrics`, and the TLS pair. What cannot (ports, the data dir,
//! the cluster...) is reported as needing a restart and stays as it was. A file that does not
//! parse, or a live setting that fails (an unreadable password file, a bad certificate), keeps
//! the running settings and says why.

use anyhow::Context;

use crate::access::Access;
use crate::config::{self, Config, DEFAULT_MAX_CLIENTS};
use crate::shared::Shared;
use crate::transport::tls::TlsSettings;

pub fn reload(shared: &Shared) {
    let new = match config::reload(&shared.args) {
        Ok(new) => new,
        Err(why) => {
            tracing::error!("SIGHUP: kept the running settings: {why}");
            return;
        }
    };
    let old = shared.config();
    let needs_restart = restart_only_changes(&old, &new);
    if !needs_restart.is_empty() {
        tracing::warn!(
            settings = %needs_restart.join(", "),
            "SIGHUP: these changed but take a restart; they stay as they were until then"
        );
    }
    if let Err(e) = apply_live(shared, &new) {
        tracing::error!("SIGHUP: {e:#}; the running settings stay");
        return;
    }
    let changed = live_changes(&old, &new);
    shared.set_config(keep_restart_only(&old, new));
    if shared.tls.is_some() {
        tracing::info!("SIGHUP: reloaded the TLS certificate and key");
    }
    if changed.is_empty() {
        tracing::info!("SIGHUP: settings read again; nothing that applies live changed");
    } else {
        tracing::info!(settings = %changed.join(", "), "SIGHUP: new settings in force for new connections");
    }
}

/// Checks and applies what does not live in [`Config`] itself; nothing is changed on error.
fn apply_live(shared: &Shared, new: &Config) -> anyhow::Result<()> {
    let open_files = crate::limits::raise_open_files(crate::limits::files_needed(
        new.max_clients.unwrap_or(DEFAULT_MAX_CLIENTS),
    ))?;
    let max_clients =
        crate::limits::fit_max_clients(new.max_clients, DEFAULT_MAX_CLIENTS, open_files)
            .context("max-clients")?;
    // Everything that reads a file is read and checked before anything is put in force.
    let policy = Access::read_policy(new).context("cannot read the operator password")?;
    let pair = match (&shared.tls, &new.tls_cert, &new.tls_key) {
        (Some(_), Some(cert), Some(key)) => Some(
            TlsSettings::read_pair(cert, key).context("kept the old TLS certificate and key")?,
        ),
        _ => None,
    };
    shared.access.put_in_force(policy);
    if let (Some(tls), Some(pair)) = (&shared.tls, pair) {
        tls.put_in_force(pair);
    }
    shared.registry.set_max_clients(max_clients as usize);
    Ok(())
}

/// Names of the settings that differ and cannot change while the server runs.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let tls_on = |c: &Config| c.tls_cert.is_some();
    [
        ("host", old.host != new.host),
        ("port", old.port != new.port),
        ("web-port", old.web_port != new.web_port),
        ("no-web", old.no_web != new.no_web),
        ("tls-port", old.tls_port != new.tls_port),
        ("tls-cert (TLS on or off)", tls_on(old) != tls_on(new)),
        ("data-dir", old.data_dir != new.data_dir),
        ("cluster", old.cluster != new.cluster),
        ("cluster-prefix", old.cluster_prefix != new.cluster_prefix),
        ("history", old.history != new.history),
        (
            "history-on-join",
            old.history_on_join != new.history_on_join,
        ),
        ("writer-threads", old.writer_threads != new.writer_threads),
        ("log-format", old.log_format != new.log_format),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

/// Names of the live settings that differ.
fn live_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    [
        ("max-clients", old.max_clients != new.max_clients),
        ("max-line", old.max_line != new.max_line),
        ("login-timeout", old.login_timeout != new.login_timeout),
        ("outbuf-limit", old.outbuf_limit != new.outbuf_limit),
        ("flood-burst", old.flood_burst != new.flood_burst),
        ("flood-rate", old.flood_rate != new.flood_rate),
        (
            "partial-flush-ms",
            old.partial_flush_ms != new.partial_flush_ms,
        ),
        ("keepalive-secs", old.keepalive_secs != new.keepalive_secs),
        ("max-per-ip", old.max_per_ip != new.max_per_ip),
        ("trusted", old.trusted != new.trusted),
        ("proxy-protocol", old.proxy_protocol != new.proxy_protocol),
        (
            "web-real-ip-header",
            old.web_real_ip_header != new.web_real_ip_header,
        ),
        (
            "oper-password-file",
            old.oper_password_file != new.oper_password_file,
        ),
        ("web-origin", old.web_origin != new.web_origin),
        ("no-metrics", old.no_metrics != new.no_metrics),
        ("tls-cert", old.tls_cert != new.tls_cert),
        ("tls-key", old.tls_key != new.tls_key),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

/// The new settings, with those that take a restart as they were.
fn keep_restart_only(old: &Config, new: Config) -> Config {
    let old = old.clone();
    Config {
        host: old.host,
        port: old.port,
        web_port: old.web_port,
        no_web: old.no_web,
        tls_port: old.tls_port,
        data_dir: old.data_dir,
        cluster: old.cluster,
        cluster_prefix: old.cluster_prefix,
        history: old.history,
        history_on_join: old.history_on_join,
        writer_threads: old.writer_threads,
        log_format: old.log_format,
        tls_cert: if old.tls_cert.is_some() {
            new.tls_cert
        } else {
            None
        },
        tls_key: if old.tls_key.is_some() {
            new.tls_key
        } else {
            None
        },
        ..new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        Config::parse_from(std::iter::once("chat-server").chain(args.iter().copied()))
    }

    #[test]
    fn ports_stay_and_limits_change() {
        let old = config(&["--port", "9009", "--flood-rate", "10"]);
        let new = config(&["--port", "9100", "--flood-rate", "2"]);
        assert_eq!(restart_only_changes(&old, &new), ["port"]);
        assert_eq!(live_changes(&old, &new), ["flood-rate"]);
        let merged = keep_restart_only(&old, new);
        assert_eq!((merged.port, merged.flood_rate), (9009, 2));
    }
}
