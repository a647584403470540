//! The web port (PROTOCOL.md section 9): the chat page, `/metrics`, and WebSocket upgrades that
//! turn the connection into a chat user like any other.
//!
//! Each connection has its reader thread, as on the line port. The thread reads one request
//! head; a plain request gets one response and the connection closes; an upgrade switches the
//! peer's framing to WebSocket and the thread goes on as a chat connection, with the login
//! deadline still counted from connect.

mod http;
mod metrics;
mod page;

use std::sync::Arc;
use std::time::Instant;

use tungstenite::handshake::derive_accept_key;

use crate::connection::{self, Cleanup};
use crate::listener::http_refusal;
use crate::peer::Peer;
use crate::shared::Shared;
use crate::transport::socket::linger;
use crate::transport::ws::WsLines;
use crate::transport::{CloseReason, Framing};
use http::{HeadError, Request, Response};

/// Serves a connection on the web port. Never inlined (see `transport::tcp::serve`).
#[inline(never)]
pub fn serve(shared: Arc<Shared>, peer: Arc<Peer>, login_deadline: Instant) {
    let _cleanup = Cleanup {
        shared: &shared,
        peer: &peer,
    };
    let Some(early) = answer_http(&shared, &peer, login_deadline) else {
        return;
    };
    // On the heap, as the HTTP exchange above is out of line: every byte of this frame is
    // under the stack an idle WebSocket user keeps resident.
    let mut source = Box::new(WsLines::new(
        Arc::clone(&peer),
        shared.config().max_line as usize,
        shared.config().keepalive(),
        early,
    ));
    connection::serve(&shared, &peer, source.as_mut(), login_deadline);
}

/// Reads the request head and answers it. Returns, for an accepted WebSocket upgrade, the
/// bytes the client sent after its head; `None` once a response has closed the exchange.
#[inline(never)]
fn answer_http(shared: &Shared, peer: &Arc<Peer>, login_deadline: Instant) -> Option<Vec<u8>> {
    let request = match http::read_head(peer, login_deadline) {
        Ok(request) => request,
        Err(HeadError::TooLarge) => {
            respond(peer, Response::text(431, "request head too large"));
            return None;
        }
        Err(HeadError::Malformed) => {
            respond(peer, Response::text(400, "bad request"));
            return None;
        }
        Err(HeadError::Gone) => return None,
    };
    if let Some(header) = shared.access.real_ip_header() {
        let real = shared
            .access
            .real_ip(peer.addr.ip(), request.header(&header));
        if real != peer.addr.ip() {
            if let Err(refusal) = shared
                .registry
                .readdress(peer.id, shared.access.admission(real))
            {
                tracing::warn!(peer = peer.id, addr = %peer.addr, %real, reason = refusal.reason(), "refused");
                let line = format!(
                    "{}{}",
                    chat_common::wire::error(refusal.reason()),
                    chat_common::wire::LINE_END
                );
                let _ = peer.send(&http_refusal(refusal, &line));
                finish_response(peer);
                return None;
            }
            tracing::info!(peer = peer.id, addr = %peer.addr, %real, "address from {header}");
        }
    }
    let scheme = if peer.tls().is_some() {
        "https"
    } else {
        "http"
    };
    match route(shared, &request, scheme) {
        Route::Respond(response) => {
            tracing::debug!(peer = peer.id, addr = %peer.addr, method = %request.method, path = %request.path, status = response.status(), "http");
            respond(peer, response);
            None
        }
        Route::Upgrade { accept_key } => {
            let _ = peer.send(&http::switching_protocols(&accept_key));
            peer.set_framing(Framing::WebSocket);
            Some(request.rest)
        }
    }
}

enum Route {
    Respond(Response),
    Upgrade { accept_key: String },
}

fn route(shared: &Shared, request: &Request, scheme: &str) -> Route {
    let method = request.method.as_str();
    if method != "GET" && method != "HEAD" {
        return Route::Respond(
            Response::text(405, "method not allowed").header("Allow", "GET, HEAD"),
        );
    }
    let head = method == "HEAD";
    let wants_upgrade = request.header_has("upgrade", "websocket");
    match request.path.as_str() {
        "/" | "/ws" if wants_upgrade => upgrade(shared, request, scheme),
        "/" => Route::Respond(
            Response::new(200, "text/html; charset=utf-8", page::PAGE)
                .header("Content-Security-Policy", page::content_security_policy())
                .header("X-Content-Type-Options", "nosniff")
                .header("Referrer-Policy", "no-referrer")
                .header("Cache-Control", "no-cache")
                .head_only(head),
        ),
        "/ws" => Route::Respond(
            Response::text(426, "this address takes WebSocket connections")
                .header("Upgrade", "websocket"),
        ),
        "/metrics" if !shared.config().no_metrics => {
            let body = metrics::render(&shared.registry.snapshot());
            Route::Respond(Response::new(200, metrics::CONTENT_TYPE, body).head_only(head))
        }
        _ => Route::Respond(Response::text(404, "not found")),
    }
}

fn upgrade(shared: &Shared, request: &Request, scheme: &str) -> Route {
    if let Some(origin) = request.header("origin") {
        let own = request
            .header("host")
            .map(|host| format!("{scheme}://{host}"));
        if !origin_allowed(origin, own.as_deref(), &shared.config().web_origin) {
            return Route::Respond(Response::text(403, "origin not allowed"));
        }
    }
    let key = request.header("sec-websocket-key");
    let version_ok = request.header("sec-websocket-version") == Some("13");
    match key {
        Some(key)
            if version_ok
                && request.method == "GET"
                && request.header_has("connection", "upgrade") =>
        {
            Route::Upgrade {
                accept_key: derive_accept_key(key.as_bytes()),
            }
        }
        _ => Route::Respond(
            Response::text(400, "not a WebSocket upgrade (RFC 6455, version 13)")
                .header("Sec-WebSocket-Version", "13"),
        ),
    }
}

/// A browser's `Origin` is allowed when it is the page's own (`own`: the scheme, host and port
/// of the request's `Host`) or one of `--web-origin` (`*`: any).
fn origin_allowed(origin: &str, own: Option<&str>, allowed: &[String]) -> bool {
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    own.is_some_and(|own| origin.eq_ignore_ascii_case(own))
}

/// Sends one response, then closes as the line port does.
fn respond(peer: &Arc<Peer>, response: Response) {
    let _ = peer.send(&response.to_bytes());
    finish_response(peer);
}

fn finish_response(peer: &Arc<Peer>) {
    // Nothing more goes out; over TLS this sends close_notify after the response.
    peer.send_close(CloseReason::Normal);
    peer.wait_drained(Instant::now() + connection::DRAIN_ON_CLOSE);
    linger(peer.socket());
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn origins() {
        let none: Vec<String> = Vec::new();
        let own = Some("http://127.0.0.1:9010");
        assert!(origin_allowed("http://127.0.0.1:9010", own, &none));
        assert!(origin_allowed(
            "HTTP://Chat.Example:9010",
            Some("http://chat.example:9010"),
            &none
        ));
        assert!(!origin_allowed("https://127.0.0.1:9010", own, &none));
        assert!(!origin_allowed("http://evil.example", own, &none));
        assert!(!origin_allowed("http://127.0.0.1:9011", own, &none));
        assert!(!origin_allowed("null", own, &none));
        assert!(!origin_allowed("http://127.0.0.1:9010", None, &none));
        let listed = vec!["https://chat.example".to_owned()];
        assert!(origin_allowed(
            "https://chat.example",
            Some("http://x"),
            &listed
        ));
        assert!(origin_allowed("anything", None, &["*".to_owned()]));
    }
}
