//! The web page in a real browser: Debian's `chromium`, driven over WebDriver by `chromedriver`
//! (fantoccini), against the real server. Two browsers and a raw TCP client chat in one room.
//!
//! Chromium and chromedriver must be installed (`scripts/test` installs them); without them the
//! test fails and says so. Screenshots go to a temp dir every run; with `UPDATE_SCREENSHOTS=1`
//! the desktop one is also written to `docs/web-chat.png` for the README.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_tests::{Client, Server};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Deadline for anything the browser should do: generous, a loaded 2-core machine runs two
/// chromiums, the server and the rest of the suite.
const BT: Duration = Duration::from_secs(45);

/// chat-client's name colour rule (client/src/style.rs, `name_colour`): the index into its
/// 9-colour palette. The page must give every name the same index (CSS class `cN`).
fn name_colour_index(name: &str) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.to_lowercase().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash ^= hash >> 16;
    hash as usize % 9
}

/// A scratch directory for this test run: browser profiles and screenshots.
fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chat-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// `chromedriver` on a free port, and every chromium it starts. Dropping it (also while
/// panicking) stops chromedriver and kills, by PID, any chromium still running on one of our
/// profiles.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
    profiles: Vec<PathBuf>,
}

impl Driver {
    fn start(dir: &Path) -> Driver {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the browser test drives Debian's {package} package. \
                 Install it with `apt-get install chromium chromium-driver`, or run the \
                 project's test command `scripts/test`, which installs it"
            );
        }
        let log = dir.join("chromedriver.log");
        let mut last_error = String::new();
        // A free port can be taken between our probe and chromedriver's bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let out = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
            let err = out.try_clone().expect("cloning a file handle");
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
            let mut driver = Driver {
                child,
                port,
                log: log.clone(),
                profiles: Vec::new(),
            };
            match driver.wait_ready() {
                Ok(()) => return driver,
                Err(Exited(e)) => last_error = e,
                Err(NotReady(e)) => panic!("chromedriver did not start: {e}"),
            }
        }
        panic!("chromedriver did not start: {last_error}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `GET /status` says the driver is ready, or it exits.
    fn wait_ready(&mut self) -> Result<(), NotStarted> {
        let deadline = Instant::now() + BT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Exited(format!(
                    "chromedriver exited with {status}; its output:\n{}",
                    self.output()
                )));
            }
            if let Some(body) = http_get(self.port, "/status") {
                if body.contains("\"ready\":true") {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(NotReady(format!(
                    "no ready answer on port {} within {BT:?}; its output:\n{}",
                    self.port,
                    self.output()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or(&text).to_owned()
    }

    /// A new headless chromium with a fresh, empty profile, its viewport `width` x `height`.
    async fn browser(&mut self, dir: &Path, width: u32, height: u32, dark: bool) -> Browser {
        let profile = dir.join(format!("profile-{}", self.profiles.len()));
        std::fs::create_dir_all(&profile)
            .unwrap_or_else(|e| panic!("creating {}: {e}", profile.display()));
        self.profiles.push(profile.clone());
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1200,800".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if dark {
            // Makes `prefers-color-scheme: dark` true for the page.
            args.push("--force-dark-mode".to_owned());
        }
        // Headless chromium keeps room for window decorations and a minimum width, so the
        // viewport is set exactly through device metrics (a phone-sized one is a mobile one).
        let phone = width < 600;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "mobileEmulation": {
                    "deviceMetrics": {
                        "width": width,
                        "height": height,
                        "pixelRatio": if phone { 2.0 } else { 1.0 },
                        "mobile": phone,
                        "touch": phone,
                    }
                }
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let url = self.url();
        let connecting = builder.connect(&url);
        match tokio::time::timeout(BT * 2, connecting).await {
            Ok(Ok(browser)) => browser,
            Ok(Err(e)) => panic!(
                "chromedriver could not start chromium: {e}\nchromedriver output:\n{}",
                self.output()
            ),
            Err(_) => panic!(
                "chromium did not start within {:?}\nchromedriver output:\n{}",
                BT * 2,
                self.output()
            ),
        }
    }

    /// PIDs of processes (chromium and its helpers) started with one of our profiles.
    fn browser_pids(&self) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let marks: Vec<String> = self
            .profiles
            .iter()
            .map(|p| format!("--user-data-dir={}", p.display()))
            .collect();
        entries
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                let cmdline = String::from_utf8_lossy(&cmdline);
                cmdline
                    .split('\0')
                    .any(|arg| marks.iter().any(|m| arg == m))
                    .then_some(pid)
            })
            .collect()
    }
}

/// Why chromedriver is not ready: it exited (perhaps its port was taken: try another), or it
/// runs and does not answer.
enum NotStarted {
    Exited(String),
    NotReady(String),
}
use NotStarted::{Exited, NotReady};

impl Drop for Driver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- chromedriver (pid {}) output ---\n{}\n--- end ---",
                self.child.id(),
                self.output()
            );
        }
        // Our child only, by its handle; then the browsers it left, by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in self.browser_pids() {
            // SAFETY: kill(2) has no memory-safety preconditions; the PID runs our profile.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        for profile in &self.profiles {
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free port")
}

/// A tiny HTTP/1.1 GET (one request, then close) to 127.0.0.1:`port`; the body, or None if nothing answered.
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    // chromedriver keeps the connection open: read the head, then Content-Length bytes.
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).ok()?;
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if n == 0 || length.is_some_and(|len| body.len() >= len) {
                return Some(body.to_owned());
            }
        } else if n == 0 {
            return None;
        }
    }
}

/// One browser tab on the chat page, with what it needs to explain a failure.
struct Page {
    b: Browser,
    label: &'static str,
}

impl Page {
    /// What the page shows, for failure messages.
    async fn describe(&self) -> String {
        let script = "const t = (id) => (document.getElementById(id) || {}).innerText || '';
            return 'login error: ' + t('login-error') + '\\nlogin status: ' + t('login-status') +
              '\\nchat shown: ' + !document.getElementById('chat').hidden +
              '\\npeople: ' + t('users').replace(/\\n/g, ' ') +
              '\\nlog:\\n' + t('log');";
        match self.b.execute(script, vec![]).await {
            Ok(Value::String(s)) => s,
            Ok(other) => format!("{other}"),
            Err(e) => format!("(could not read the page: {e})"),
        }
    }

    /// Waits for an element matching the CSS selector.
    async fn wait_css(&self, what: &str, css: &str) -> Element {
        self.wait_for(what, Locator::Css(css)).await
    }

    async fn wait_for(&self, what: &str, locator: Locator<'_>) -> Element {
        match self.b.wait().at_most(BT).for_element(locator).await {
            Ok(e) => e,
            Err(e) => panic!(
                "[{}] waiting for {what}: {e}\n{}",
                self.label,
                self.describe().await
            ),
        }
    }

    /// Waits for a log line whose text contains `text` (and matches the extra CSS class).
    async fn wait_line(&self, class: &str, text: &str) -> Element {
        assert!(
            !text.contains('"'),
            "test text must not hold a double quote"
        );
        let xpath = format!(
            "//div[@id='log']/div[contains(concat(' ', @class, ' '), ' {class} ')]\
             [contains(., \"{text}\")]"
        );
        self.wait_for(
            &format!("a {class} line with {text:?}"),
            Locator::XPath(&xpath),
        )
        .await
    }

    /// Waits until `script` (a JS expression) is true.
    async fn wait_js(&self, what: &str, script: &str) {
        let deadline = Instant::now() + BT;
        let body = format!("return !!({script});");
        loop {
            match self.b.execute(&body, vec![]).await {
                Ok(Value::Bool(true)) => return,
                Ok(_) => {}
                Err(e) => panic!("[{}] checking {what}: {e}", self.label),
            }
            if Instant::now() >= deadline {
                panic!(
                    "[{}] waiting for {what}: not within {BT:?}\n{}",
                    self.label,
                    self.describe().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn find(&self, css: &str) -> Element {
        self.b
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("[{}] finding {css}: {e}", self.label))
    }

    /// Types `text` into the element and presses Enter.
    async fn type_enter(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        let keys = format!("{text}{}", char::from(Key::Enter));
        field
            .send_keys(&keys)
            .await
            .unwrap_or_else(|e| panic!("[{}] typing into {css}: {e}", self.label));
    }

    /// Types a name on the name screen and presses Enter.
    async fn try_name(&self, name: &str) {
        let field = self
            .wait_css("the name field", "#login:not([hidden]) #name")
            .await;
        field.clear().await.expect("clearing the name field");
        self.type_enter("#name", name).await;
    }

    /// Logs in through the name screen and waits for the chat with the name in the panel.
    async fn log_in(&self, name: &str) {
        self.wait_css(
            "the name screen to be connected",
            "#login-status[data-state='online']",
        )
        .await;
        self.try_name(name).await;
        self.wait_css("the chat view", "#chat:not([hidden])").await;
        self.wait_css(
            "our own name in the people panel",
            &format!("#users button[data-name='{name}']"),
        )
        .await;
    }

    /// Sends a line from the message box.
    async fn say(&self, text: &str) {
        self.type_enter("#input", text).await;
    }

    async fn screenshot(&self, path: &Path) {
        let png = self
            .b
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("[{}] screenshot: {e}", self.label));
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        println!("screenshot: {}", path.display());
    }

    async fn close(self) {
        let _ = self.b.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_and_a_tcp_client_chat_in_one_room() {
    let dir = scratch_dir();
    let server = Server::start(&[]);
    let page_url = format!("http://{}/", server.web_addr());
    let mut carol: Client = server.login("carol");
    carol.set_label("carol (tcp)");
    // Someone in another room, so the room list has two.
    let mut dave: Client = server.login("dave");
    dave.set_label("dave (tcp, in dev)");
    dave.send_line("/join dev");
    dave.expect_line("the /join reply", |l| l.starts_with("* you are now in dev"));

    let mut driver = Driver::start(&dir);
    let alice = Page {
        b: driver.browser(&dir, 1200, 800, false).await,
        label: "alice (desktop browser)",
    };
    alice
        .b
        .goto(&page_url)
        .await
        .unwrap_or_else(|e| panic!("opening {page_url}: {e}"));

    // The page runs under the server's Content-Security-Policy: its script runs (it connects)
    // and its style applies (the name screen is a flex box).
    alice
        .wait_css(
            "the name screen to be connected",
            "#login-status[data-state='online']",
        )
        .await;
    alice
        .wait_js(
            "the page's style to apply",
            "getComputedStyle(document.getElementById('login')).display === 'flex'",
        )
        .await;

    // A name the TCP user holds is refused, the reason shown, and the name screen stays.
    alice.try_name("Carol").await;
    let error = alice
        .wait_for(
            "the refusal of a taken name",
            Locator::XPath("//*[@id='login-error'][contains(., 'taken')]"),
        )
        .await;
    assert_eq!(
        error.text().await.expect("reading the refusal"),
        "the name Carol is taken"
    );
    assert!(error.is_displayed().await.expect("is_displayed"));
    assert!(
        !alice
            .find("#chat")
            .await
            .is_displayed()
            .await
            .expect("is_displayed"),
        "the chat must not show before a name is accepted"
    );

    // Then a good one.
    alice.log_in("alice").await;
    carol.expect_line_eq("* alice joined");
    alice
        .wait_css(
            "carol in the people panel",
            "#users button[data-name='carol']",
        )
        .await;
    let room = alice.find("#room-name").await.text().await.expect("room");
    assert_eq!(room, "lobby");

    // Browser to TCP, and TCP to browser.
    alice.say("hi carol, this is the browser").await;
    carol.expect_line_eq("[alice] hi carol, this is the browser");
    carol.send_line("hi alice! does it show <b>x</b> as text?");
    let line = alice
        .wait_line("msg", "hi alice! does it show <b>x</b> as text?")
        .await;
    let nick = line
        .find(Locator::Css(".nick"))
        .await
        .expect("the sender's name in the line");
    assert_eq!(nick.text().await.expect("nick"), "carol");
    // The name has chat-client's colour for it.
    let class = nick.attr("class").await.expect("class").unwrap_or_default();
    let want = format!("c{}", name_colour_index("carol"));
    assert!(
        class.split(' ').any(|c| c == want),
        "carol's name should have class {want}, has {class:?}"
    );
    // Server text is text: the markup shows literally and creates no element.
    let body = line
        .find(Locator::Css(".body"))
        .await
        .expect("line body")
        .text()
        .await
        .expect("body text");
    assert!(body.contains("<b>x</b>"), "{body:?}");
    assert!(
        alice
            .b
            .find_all(Locator::Css("#log b, #log script, #log img"))
            .await
            .expect("find_all")
            .is_empty(),
        "server text became markup:\n{}",
        alice.describe().await
    );
    alice.say("yes: literal text, nothing bold").await;
    carol.expect_line_eq("[alice] yes: literal text, nothing bold");

    // The same name colours as chat-client, for any name (the rule, not just a few values).
    let names = [
        "alice",
        "bob",
        "carol",
        "dave",
        "Eve",
        "FRANK",
        "grace",
        "heidi",
        "민수",
        "bob_2",
        "Ada.L",
        "Ωmega",
        "Straße",
        "x",
        "user-0042",
    ];
    let got = alice
        .b
        .execute(
            "return arguments[0].map((n) => window.chatPage.nameColour(n));",
            vec![json!(names)],
        )
        .await
        .expect("calling the page's nameColour");
    let want: Vec<String> = names
        .iter()
        .map(|n| format!("c{}", name_colour_index(n)))
        .collect();
    assert_eq!(got, json!(want), "names: {names:?}");
    // chat-client pins these (style.rs): alice 33, bob 95, carol 94 = palette entries 1, 7, 6.
    assert_eq!(
        [
            name_colour_index("alice"),
            name_colour_index("bob"),
            name_colour_index("carol")
        ],
        [1, 7, 6]
    );

    // A second browser, phone-sized and dark, joins the same room.
    let bob = Page {
        b: driver.browser(&dir, 390, 844, true).await,
        label: "bob (phone browser, dark)",
    };
    bob.b
        .goto(&page_url)
        .await
        .unwrap_or_else(|e| panic!("opening {page_url}: {e}"));
    bob.log_in("bob").await;
    carol.expect_line_eq("* bob joined");
    alice
        .wait_css(
            "bob in alice's people panel",
            "#users button[data-name='bob']",
        )
        .await;
    alice.wait_line("notice", "bob joined").await;
    bob.wait_css(
        "alice in bob's people panel",
        "#users button[data-name='alice']",
    )
    .await;
    bob.wait_css(
        "carol in bob's people panel",
        "#users button[data-name='carol']",
    )
    .await;
    bob.wait_js(
        "the dark colour scheme",
        "matchMedia('(prefers-color-scheme: dark)').matches",
    )
    .await;

    bob.say("hello from my phone").await;
    carol.expect_line_eq("[bob] hello from my phone");
    alice.wait_line("msg", "hello from my phone").await;
    bob.say("does the page follow dark mode by itself?").await;
    alice.wait_line("msg", "follow dark mode by itself").await;
    alice.say("yes, it follows the system setting").await;
    bob.wait_line("msg", "it follows the system setting").await;
    carol.send_line("notes from today: https://example.com/chat/notes");
    // Links are clickable, and still text: the page makes an <a> with that address.
    let link = alice
        .wait_for(
            "a link in carol's line",
            Locator::XPath("//div[@id='log']//a[text()='https://example.com/chat/notes']"),
        )
        .await;
    assert_eq!(
        link.attr("href").await.expect("href").as_deref(),
        Some("https://example.com/chat/notes")
    );
    carol.send_line("/me waves at everyone");
    alice.wait_line("notice", "carol waves at everyone").await;
    bob.wait_line("notice", "carol waves at everyone").await;

    // Clicking a user starts a private message to them.
    alice
        .find("#users button[data-name='bob']")
        .await
        .click()
        .await
        .expect("click bob");
    let input = alice.find("#input").await;
    assert_eq!(
        input.prop("value").await.expect("input value").as_deref(),
        Some("/msg bob ")
    );
    alice.type_enter("#input", "lunch at noon?").await;
    // (Clicking the box moves the mouse off the list, for a clean screenshot.)
    input.click().await.expect("click the message box");
    alice.wait_line("private", "lunch at noon?").await;
    bob.wait_line("private", "lunch at noon?").await;
    carol.send_line("see you both at noon, alice");
    alice.wait_line("mention", "see you both at noon").await;
    bob.wait_line("msg", "see you both at noon").await;
    bob.say("à bientôt, Ωmega team").await;
    alice.wait_line("msg", "à bientôt, Ωmega team").await;
    carol.expect_line_eq("[bob] à bientôt, Ωmega team");

    // Screenshots: desktop light, phone dark, phone with the side panel open.
    alice
        .wait_js(
            "the room list",
            "document.querySelectorAll('#rooms button').length >= 1",
        )
        .await;
    alice.screenshot(&dir.join("web-chat.png")).await;
    bob.screenshot(&dir.join("web-chat-phone-dark.png")).await;
    bob.find("#panel-toggle")
        .await
        .click()
        .await
        .expect("open the panel");
    bob.wait_css("the open side panel", ".chat.panel-open")
        .await;
    bob.wait_js(
        "the panel to finish sliding in",
        "document.getElementById('panel').getBoundingClientRect().right <= innerWidth + 1 && \
         document.getElementById('panel').getBoundingClientRect().left >= innerWidth - 310 && \
         getComputedStyle(document.getElementById('panel')).transform === 'none'",
    )
    .await;
    bob.screenshot(&dir.join("web-chat-phone-panel.png")).await;
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs).expect("creating docs/");
        std::fs::copy(dir.join("web-chat.png"), docs.join("web-chat.png"))
            .expect("writing docs/web-chat.png");
        println!("updated {}", docs.join("web-chat.png").display());
    }

    // The page's own /who and /rooms (after login) are answered quietly: not in the log.
    let log = alice
        .find("#log")
        .await
        .text()
        .await
        .expect("reading the log");
    assert!(
        !log.contains("users in lobby") && !log.contains("rooms: "),
        "replies to the page's own commands showed up:\n{log}"
    );

    // Up and Down go through what was sent.
    let input = alice.find("#input").await;
    let value = || async { input.prop("value").await.expect("input value") };
    let up = char::from(Key::Up).to_string();
    let down = char::from(Key::Down).to_string();
    input.send_keys("draft").await.expect("typing");
    input.send_keys(&up).await.expect("Up");
    assert_eq!(value().await.as_deref(), Some("/msg bob lunch at noon?"));
    input.send_keys(&up).await.expect("Up");
    assert_eq!(
        value().await.as_deref(),
        Some("yes, it follows the system setting")
    );
    input.send_keys(&down).await.expect("Down");
    input.send_keys(&down).await.expect("Down");
    assert_eq!(value().await.as_deref(), Some("draft"));
    input.clear().await.expect("clearing the message box");

    // Clicking a room joins it; the panel follows.
    alice
        .find("#rooms button[data-room='dev']")
        .await
        .click()
        .await
        .expect("click #dev");
    dave.expect_line_eq("* alice joined");
    carol.expect_line_eq("* alice left (moved to dev)");
    alice
        .wait_js(
            "the room title to say dev",
            "document.getElementById('room-name').textContent === 'dev'",
        )
        .await;
    alice
        .wait_css(
            "dave in the people panel",
            "#users button[data-name='dave']",
        )
        .await;
    alice
        .wait_js(
            "only alice and dave in the people panel",
            "document.querySelectorAll('#users button').length === 2",
        )
        .await;
    bob.wait_line("notice", "alice left (moved to dev)").await;
    bob.wait_js(
        "alice gone from bob's people panel",
        "!document.querySelector(\"#users button[data-name='alice']\")",
    )
    .await;

    // A dropped connection: the page says so, reconnects by itself, logs back in under the
    // same name and goes back to its room.
    alice
        .b
        .execute("window.chatPage.state.ws.close();", vec![])
        .await
        .expect("closing alice's WebSocket");
    alice.wait_line("system", "Reconnecting in").await;
    dave.expect_line_eq("* alice left");
    dave.expect_line_eq("* alice joined");
    alice.wait_line("system", "Reconnected as alice").await;
    alice
        .wait_js(
            "alice back in dev",
            "document.getElementById('room-name').textContent === 'dev' && \
             document.querySelectorAll('#users button').length === 2",
        )
        .await;
    dave.send_line("welcome back, alice");
    alice.wait_line("mention", "welcome back, alice").await;

    alice.close().await;
    bob.close().await;
    // Closing a browser is leaving, as closing a TCP connection is.
    dave.expect_line_eq("* alice left");
    carol.expect_line_eq("* bob left");
    drop(driver);
}
