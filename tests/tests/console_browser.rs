//! The tenant console in a real browser: Debian's `chromium`, headless, driven through
//! `chromium-driver` (WebDriver) against the standalone platform started in-process (SQLite in
//! a temporary folder, the sandbox carrier, the embedded runtime).
//!
//! Owner: sign up (a weak password first: the error lands on the password field) → confirm the
//! e-mail address with the link from the mail outbox → create a named agent with its own
//! greeting → buy a number answered by it → change the number's agent from its row (to the
//! default agent, an unknown agent refused naming the field, back to the named agent; the API
//! agrees each time) → "call it now" on the agent's page: a test call in the browser, the
//! microphone being chromium's fake capture device playing an espeak-ng sentence, the agent's
//! audio played back (not recorded: no player) → recording turned on for the agent → a
//! simulated carrier call to the number (the CLI's call path: signed webhook and media
//! stream) → both calls and their transcripts appear in the calls pages (the test call's first
//! agent turn is the named agent's greeting); the carrier call's page plays its recording
//! (the WAV the API serves, as long as the API says) with a download link → usage
//! counts both → a campaign with a bad CSV upload shows the refused rows, is paused and
//! resumed → invite a viewer → billing, do-not-call, provider keys (masked, test connection),
//! an API key (shown once), a customer webhook (secret shown once, test event, disabled,
//! secret rotated) and the audit log. Viewer: sign up, confirm, open the invitation link,
//! accept → sees the tenant but cannot buy numbers, change a number's agent, edit an agent or
//! call it, nor hear a recording (the API refuses them the audio too).
//!
//! Needs `espeak-ng` and `sox` (the caller's sentence; `.ci/run` installs them) too.
//!
//! Screenshots of the main pages are taken on the way; with `SWITCHBOARD_UPDATE_SCREENSHOTS=1`
//! they are written to `docs/screenshots/` (the README links them), otherwise to a temporary
//! folder.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`; `.ci/run` installs them) and fails saying so without them.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use switchboard_cli::call::{self, CallOptions};
use switchboard_cli::progress::Progress;
use switchboard_cli::webhook::WebhookTarget;
use switchboard_gateway::Config;
use switchboard_gateway::standalone::{self, Running, StandaloneArgs};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "correct horse battery staple";
const GREETING: &str = "Thanks for calling Acme Voice, how can I help?";
/// How long one step may wait for the page (a bound, not a timed assertion).
const STEP: Duration = Duration::from_secs(30);

#[derive(Parser)]
struct GatewayFlags {
    #[command(flatten)]
    config: Config,
}

/// The standalone platform on loopback; the free plan includes campaigns and a named agent
/// here so those pages can be exercised without Stripe.
async fn start(data_dir: &Path) -> Running {
    let mut config = GatewayFlags::try_parse_from(["switchboard-gateway"])
        .unwrap()
        .config;
    config.database_url = switchboard_gateway::config::DEFAULT_DATABASE_URL.to_owned();
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.metrics_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.voice.plan_limits = Some(json!({"free": {"campaigns": true, "agents": 2}}).to_string());
    let args = StandaloneArgs {
        data_dir: data_dir.to_owned(),
        runtime_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    standalone::start(&args, config).await.unwrap()
}

/// chromedriver on a free loopback port in a process group of its own, killed with the
/// browsers it started when dropped (also when the test panics: killing chromedriver alone
/// would leave its chromium running).
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: install Debian's chromium and chromium-driver \
                 (apt-get install -y chromium chromium-driver; .ci/run does)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + STEP;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    async fn browser(&self, profile: &Path, caller: &Path) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                    // The test call: microphone allowed without asking, the fake capture
                    // device playing the caller's sentence (looped), sound without a gesture.
                    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    format!("--use-file-for-fake-audio-capture={}", caller.display()),
                    "--autoplay-policy=no-user-gesture-required",
                ],
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid; `kill -KILL -- -PGID` signals every member.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser, the console's address and where screenshots go.
struct Console {
    browser: Client,
    base: String,
    shots: PathBuf,
}

impl Console {
    async fn open(&self, path: &str) {
        self.browser
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// Waits for an element matching `css` whose text contains `needle`; returns its text.
    async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(elements) = self.browser.find_all(Locator::Css(css)).await {
                for element in elements {
                    // Hidden elements have no text: an empty text never matches.
                    if let Ok(text) = element.text().await
                        && !text.is_empty()
                        && text.contains(needle)
                    {
                        return text;
                    }
                }
            }
            if Instant::now() > deadline {
                let page = self
                    .browser
                    .find(Locator::Css("main"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap_or_default();
                panic!("no {css} containing {needle:?}; the page shows:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn heading(&self, text: &str) {
        self.wait_text("main h1", text).await;
    }

    /// Types `value` into the field labelled `label` (inside `scope`, a CSS selector).
    async fn fill(&self, scope: &str, label: &str, value: &str) {
        let input = self.field(scope, label).await;
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    async fn field(&self, scope: &str, label: &str) -> fantoccini::elements::Element {
        let xpath = format!(
            "{}//label[normalize-space(text())={label:?}]",
            section_xpath(scope)
        );
        let label = self
            .browser
            .wait()
            .at_most(STEP)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no field labelled {label:?}: {e}"));
        let id = label.attr("for").await.unwrap().unwrap();
        self.browser.find(Locator::Id(&id)).await.unwrap()
    }

    async fn click_button(&self, text: &str) {
        let xpath = format!("//button[normalize-space(text())={text:?}]");
        self.browser
            .wait()
            .at_most(STEP)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button {text:?}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn click_link(&self, text: &str) {
        let xpath = format!("//a[normalize-space(text())={text:?}]");
        self.browser
            .wait()
            .at_most(STEP)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no link {text:?}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn count(&self, css: &str) -> usize {
        self.browser
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .len()
    }

    /// Scrolls the first element matching `css` to the top of the window.
    async fn scroll_to(&self, css: &str) {
        self.browser
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'start'})",
                vec![json!(css)],
            )
            .await
            .unwrap();
    }

    /// `GET path` from the page with the console's session token: (status, JSON body).
    async fn api_get(&self, path: &str) -> (u16, serde_json::Value) {
        let answer = self
            .browser
            .execute_async(
                "const [path, done] = arguments; \
                 const session = JSON.parse(sessionStorage.getItem('switchboard.session')); \
                 fetch(path, {headers: {Authorization: 'Bearer ' + session.access, Accept: 'application/json'}}) \
                   .then((r) => r.json().then((body) => done({status: r.status, body}))) \
                   .catch((e) => done({status: 0, body: String(e)}));",
                vec![json!(path)],
            )
            .await
            .unwrap();
        (
            u16::try_from(answer["status"].as_u64().unwrap()).unwrap(),
            answer["body"].clone(),
        )
    }

    /// The agent the API says answers `number` in the tenant `slug` (`None`: the default).
    async fn number_agent(&self, slug: &str, number: &str) -> Option<String> {
        let (status, body) = self
            .api_get(&format!("/api/v1/tenants/{slug}/numbers"))
            .await;
        assert_eq!(status, 200, "{body}");
        let item = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["e164"] == number)
            .unwrap_or_else(|| panic!("{number} is not listed: {body}"))
            .clone();
        item["agent"].as_str().map(str::to_owned)
    }

    async fn screenshot(&self, name: &str) {
        let png = self.browser.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

/// The section (by its accessible name) a field is looked up in; `""`: anywhere.
fn section_xpath(scope: &str) -> String {
    match scope {
        "" => String::new(),
        section => format!("//section[@aria-label={section:?}]"),
    }
}

/// The newest e-mail to `to` in the outbox whose body contains `path`: the link's token.
fn mailed_token(outbox: &Path, to: &str, path: &str) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let mut mails: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(outbox)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let modified = entry.metadata().ok()?.modified().ok()?;
                Some((modified, std::fs::read_to_string(entry.path()).ok()?))
            })
            .filter(|(_, text)| text.contains(to) && text.contains(path))
            .collect();
        mails.sort();
        if let Some((_, text)) = mails.last() {
            let start = text.find(&format!("{path}?token=")).unwrap() + path.len() + 7;
            return text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-_.~".contains(*c))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "no mail to {to} with {path} in {}",
            outbox.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The caller's side of the test call: a sentence spoken by espeak-ng, then three seconds of
/// silence (so the runtime hears the turn end before chromium loops the file), 16 kHz mono.
fn caller_wav(dir: &Path) -> PathBuf {
    let speech = dir.join("speech.wav");
    let caller = dir.join("caller.wav");
    let spoken = Command::new("espeak-ng")
        .args(["-w"])
        .arg(&speech)
        .arg("Hello, I would like to book a table for two tonight.")
        .status()
        .expect("espeak-ng is missing: apt-get install -y espeak-ng (.ci/run does)");
    assert!(spoken.success(), "espeak-ng failed");
    let padded = Command::new("sox")
        .arg(&speech)
        .args(["-r", "16000", "-c", "1"])
        .arg(&caller)
        .args(["pad", "0.5", "3"])
        .status()
        .expect("sox is missing: apt-get install -y sox (.ci/run does)");
    assert!(padded.success(), "sox failed");
    caller
}

async fn sign_up(console: &Console, name: &str, email: &str, company: &str) {
    console.open("/signup").await;
    console.heading("Create your account").await;
    console.fill("", "Your name", name).await;
    console.fill("", "E-mail address", email).await;
    console.fill("", "Company", company).await;
    console.fill("", "Password", PASSWORD).await;
    console.click_button("Sign up").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_onboarding_numbers_agent_calls_usage_campaigns_and_a_viewer() {
    let data = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let temporary_shots = tempfile::tempdir().unwrap();
    let shots = if std::env::var_os("SWITCHBOARD_UPDATE_SCREENSHOTS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
    } else {
        temporary_shots.path().to_owned()
    };
    std::fs::create_dir_all(&shots).unwrap();
    let outbox = data.path().join("mail-outbox");
    let caller = caller_wav(temporary_shots.path());
    let running = start(data.path()).await;
    let driver = Driver::start();
    let console = Console {
        browser: driver.browser(profile.path(), &caller).await,
        base: running.public_url().trim_end_matches('/').to_owned(),
        shots,
    };

    // Sign up; a weak password is refused on its field, then a good one gets the tenant.
    console.open("/signup").await;
    console.heading("Create your account").await;
    console.screenshot("signup").await;
    console.fill("", "Your name", "Ada Owner").await;
    console
        .fill("", "E-mail address", "owner@example.com")
        .await;
    console.fill("", "Company", "Acme Voice").await;
    console.fill("", "Password", "password").await;
    console.click_button("Sign up").await;
    let error = console.wait_text(".field-error", "").await;
    let password = console.field("", "Password").await;
    assert_eq!(
        password.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true"),
        "the password field is marked: {error}"
    );
    console.fill("", "Password", PASSWORD).await;
    console.click_button("Sign up").await;
    console.heading("Phone numbers").await;
    console
        .wait_text(".banner", "Confirm your e-mail address")
        .await;

    // The confirmation link from the outbox.
    let token = mailed_token(&outbox, "owner@example.com", "/verify-email");
    console.open(&format!("/verify-email?token={token}")).await;
    console
        .wait_text(".success", "Your e-mail address is confirmed")
        .await;
    let url = console.browser.current_url().await.unwrap();
    assert!(
        url.query().is_none(),
        "the token left the address bar: {url}"
    );
    console.click_link("Continue to the console").await;
    console.heading("Phone numbers").await;
    assert_eq!(console.count(".banner").await, 0, "still asked to confirm");

    // A named agent: a bad name is refused on its field, then `support` with our greeting.
    console.click_link("Agents").await;
    console.heading("Agents").await;
    console.wait_text("tbody tr", "default").await;
    console.fill("New agent", "Name", "Support Desk").await;
    console.click_button("Create agent").await;
    console.wait_text(".field-error", "lowercase").await;
    console.fill("New agent", "Name", "support").await;
    console.fill("New agent", "Greeting", GREETING).await;
    console.click_button("Create agent").await;
    console.heading("Agent support").await;
    let greeting = console.field("Conversation", "Greeting").await;
    assert_eq!(
        greeting.prop("value").await.unwrap().as_deref(),
        Some(GREETING)
    );
    // The voice is changed and kept.
    console.fill("Conversation", "Voice", "alloy").await;
    console.click_button("Save agent").await;
    console.wait_text("#toast", "Agent saved").await;
    console.click_link("← Agents").await;
    console.wait_text("tbody tr", "(alloy)").await;
    console.screenshot("agents").await;

    // A bad area code is refused naming the field; 555 buys a sandbox number for `support`.
    console.click_link("Numbers").await;
    console.heading("Phone numbers").await;
    console.fill("Buy a number", "Area code", "5x").await;
    console.click_button("Buy number").await;
    console.wait_text(".field-error", "digits").await;
    console.fill("Buy a number", "Area code", "555").await;
    console
        .field("Buy a number", "Answered by")
        .await
        .select_by_value("support")
        .await
        .unwrap();
    console.click_button("Buy number").await;
    let row = console.wait_text("tbody tr", "+1555").await;
    let number = row.split_whitespace().next().unwrap().to_owned();
    assert!(row.contains("Ready"), "{row}");
    let slug = console
        .browser
        .current_url()
        .await
        .unwrap()
        .path()
        .split('/')
        .nth(2)
        .unwrap()
        .to_owned();
    let agent_label = format!("Agent answering {number}");
    let chosen = console.field("Your numbers", &agent_label).await;
    assert_eq!(
        chosen.prop("value").await.unwrap().as_deref(),
        Some("support"),
        "answered by the named agent: {row}"
    );
    assert_eq!(
        console.number_agent(&slug, &number).await.as_deref(),
        Some("support")
    );
    console.screenshot("numbers").await;

    // The number's agent changed from its row: to the default agent, then back to `support`;
    // the API answers the change each time.
    chosen.select_by_value("default").await.unwrap();
    console.click_button("Change agent").await;
    console
        .wait_text("#toast", "is now answered by the default agent")
        .await;
    assert_eq!(console.number_agent(&slug, &number).await, None);
    let chosen = console.field("Your numbers", &agent_label).await;
    assert_eq!(
        chosen.prop("value").await.unwrap().as_deref(),
        Some("default")
    );
    // An agent the tenant does not have (an option added behind the page's back) is refused
    // by the API (422 naming the field), shown beside the control, and nothing changes.
    console
        .browser
        .execute(
            "const select = document.getElementById(arguments[0]); \
             select.add(new Option('nobody', 'nobody')); select.value = 'nobody';",
            vec![json!(chosen.attr("id").await.unwrap().unwrap())],
        )
        .await
        .unwrap();
    console.click_button("Change agent").await;
    let refused = console
        .wait_text(".number-agent-result.field-error", "agent:")
        .await;
    assert!(refused.contains("no agent named nobody"), "{refused}");
    assert_eq!(
        chosen.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(console.number_agent(&slug, &number).await, None);
    chosen.select_by_value("support").await.unwrap();
    console.click_button("Change agent").await;
    console
        .wait_text("#toast", "is now answered by support")
        .await;
    assert_eq!(
        console.number_agent(&slug, &number).await.as_deref(),
        Some("support")
    );

    // "Call it now": the test call runs in this browser and the agent's audio comes back.
    console.click_link("Agents").await;
    console.wait_text("tbody tr", &number).await;
    console.click_link("support").await;
    console.heading("Agent support").await;
    console.wait_text("main section", "Answers +1555").await;
    console.click_button("Call it now").await;
    console
        .wait_text("#test-call-status", "the agent spoke")
        .await;
    // The live transcript: the named agent's greeting, and the caller's turn.
    console
        .wait_text("#test-call-transcript .turn.agent", GREETING)
        .await;
    console
        .wait_text("#test-call-transcript .turn.caller", "You")
        .await;
    console.screenshot("test-call").await;
    console.click_button("Hang up").await;
    console.wait_text("#test-call-status", "Call ended").await;
    console.click_link("Open this call").await;
    console.heading("Call").await;
    console
        .wait_text("main dd", "Test call from the console")
        .await;
    console.wait_text(".timeline", "Ended").await;
    console.wait_text(".transcript .turn.agent", GREETING).await;
    // The agent did not record then: no player.
    console.wait_text("#call-recording", "No recording").await;
    assert_eq!(console.count("#call-recording audio").await, 0);

    // Recording turned on for `support` (standalone keeps the files in the data folder).
    console.click_link("Agents").await;
    console.heading("Agents").await;
    console.click_link("support").await;
    console.heading("Agent support").await;
    let record = console.field("Conversation", "Record calls").await;
    assert!(
        !record.is_selected().await.unwrap(),
        "recording is off by default"
    );
    record.click().await.unwrap();
    console.click_button("Save agent").await;
    console.wait_text("#toast", "Agent saved").await;
    let (status, agent) = console
        .api_get(&format!("/api/v1/tenants/{slug}/agents/support"))
        .await;
    assert_eq!(status, 200, "{agent}");
    assert_eq!(agent["recording"]["enabled"], true, "{agent}");
    assert_eq!(agent["greeting"], GREETING, "{agent}");
    // The embedded runtime re-reads agents every two seconds; the call must not race it.
    running.reload_agents().await.unwrap();

    // A simulated call to the number (the CLI's path: signed webhook, media stream).
    let options = CallOptions {
        webhook: WebhookTarget {
            base_url: running.public_url().to_owned(),
            signed_base_url: running.public_url().to_owned(),
            auth_token: running.sandbox_auth_token().unwrap().to_owned(),
        },
        from: "+15551234567".to_owned(),
        to: number.clone(),
        account_sid: None,
        caller_audio: switchboard_cli::audio::speech_like(1.2),
        trailing_silence_seconds: 1.0,
        idle_seconds: 1.5,
        max_seconds: 15.0,
        media_url: None,
        status_callback: true,
    };
    let report = call::run(&options, None, &Progress::new(false))
        .await
        .unwrap();
    assert!(report.agent_messages > 0, "the agent sent no audio");

    // The call appears in the list (live, no reload) and its page shows the transcript.
    console.click_link("Calls").await;
    console.heading("Calls").await;
    let row = console.wait_text("tbody tr", "+15551234567").await;
    assert!(row.contains(&number), "{row}");
    let test_row = console.wait_text("tbody tr", "agent:support").await;
    assert!(test_row.contains("test call"), "{test_row}");
    console.wait_text("tbody tr", "completed").await;
    console.screenshot("calls").await;
    console
        .browser
        .find(Locator::Css("tbody tr a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    console.heading("Call").await;
    console.wait_text(".timeline", "Ended").await;
    // The agent's and the caller's turns; the number's agent answered.
    let transcript = console.wait_text(".transcript", "Caller").await;
    assert!(transcript.contains(GREETING), "{transcript}");
    assert!(console.count(".turn.agent").await >= 1, "{transcript}");
    // A recorded call starts with the notice.
    assert!(
        transcript.contains(switchboard_crds::recording::DEFAULT_CONSENT),
        "{transcript}"
    );
    console.screenshot("call").await;

    // The call was recorded: the page plays the WAV the API serves, and offers it for download.
    console.wait_text("#call-recording", "two channels").await;
    let call_id = console
        .browser
        .current_url()
        .await
        .unwrap()
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (status, recording) = console
        .api_get(&format!("/api/v1/tenants/{slug}/calls/{call_id}/recording"))
        .await;
    assert_eq!(status, 200, "{recording}");
    let recorded_ms = recording["durationMs"].as_f64().unwrap();
    assert!(recorded_ms > 0.0, "{recording}");
    console
        .browser
        .wait()
        .at_most(STEP)
        .for_element(Locator::Css("#call-recording audio[controls]"))
        .await
        .unwrap();
    // The browser decodes what it fetched: a WAV as long as the API says.
    let media = console
        .browser
        .execute_async(
            "const done = arguments[0]; const audio = document.querySelector('#call-recording audio'); \
             const report = () => done({duration: audio.duration, src: audio.src, error: audio.error && audio.error.code}); \
             if (audio.readyState >= 1) report(); \
             else { audio.addEventListener('loadedmetadata', report); audio.addEventListener('error', report); audio.load(); }",
            vec![],
        )
        .await
        .unwrap();
    assert!(media["error"].is_null(), "the player failed: {media}");
    let played = media["duration"].as_f64().unwrap();
    assert!(
        (played * 1000.0 - recorded_ms).abs() < 100.0,
        "the player's {played} s is the recording's {recorded_ms} ms: {media}"
    );
    assert!(
        media["src"].as_str().unwrap().starts_with("blob:"),
        "{media}"
    );
    let download = console
        .browser
        .find(Locator::XPath(
            "//a[normalize-space(text())='Download recording']",
        ))
        .await
        .unwrap();
    assert_eq!(
        download.attr("download").await.unwrap(),
        Some(format!("{call_id}.wav"))
    );
    // The audio URL the page fetched answers a RIFF/WAVE file.
    let header = console
        .browser
        .execute_async(
            "const [path, done] = arguments; \
             const session = JSON.parse(sessionStorage.getItem('switchboard.session')); \
             fetch(path, {headers: {Authorization: 'Bearer ' + session.access}}) \
               .then((r) => r.arrayBuffer()).then((b) => done(String.fromCharCode(...new Uint8Array(b.slice(0, 12))))) \
               .catch((e) => done(String(e)));",
            vec![recording["download"].clone()],
        )
        .await
        .unwrap();
    let header = header.as_str().unwrap();
    assert!(
        header.starts_with("RIFF") && header.ends_with("WAVE"),
        "{header:?}"
    );
    console.scroll_to("section[aria-label='Recording']").await;
    console.screenshot("call-recording").await;

    // Usage counts both calls against the plan.
    console.click_link("Usage").await;
    console.heading("Usage").await;
    console.wait_text("#usage-meters", "2 of 50 calls").await;
    console.wait_text("figure", "Call minutes per month").await;
    console.screenshot("usage").await;

    // A campaign; an upload with bad rows names each refused row.
    console.click_link("Campaigns").await;
    console.heading("Campaigns").await;
    console
        .fill("New campaign", "Name", "spring-renewals")
        .await;
    console.click_button("Create campaign").await;
    console.heading("Campaign spring-renewals").await;
    console
        .fill(
            "Upload contacts",
            "Or paste CSV",
            "phone,name\n+15557770001,Grace\nnot-a-number,Bob\n12345,Eve\n",
        )
        .await;
    console.click_button("Upload contacts").await;
    let result = console
        .wait_text("#upload-result", "1 contact added, 2 refused")
        .await;
    let mut rows = Vec::new();
    for cell in console
        .browser
        .find_all(Locator::Css("#upload-result tbody tr td:first-child"))
        .await
        .unwrap()
    {
        rows.push(cell.text().await.unwrap());
    }
    assert_eq!(rows, ["2", "3"], "the refused rows are named: {result}");
    console
        .scroll_to("section[aria-label='Upload contacts']")
        .await;
    console.screenshot("campaign").await;
    // Paused and resumed: the phase follows without a reload.
    console.click_button("Pause campaign").await;
    console.wait_text("#campaign-phase", "Paused").await;
    console.click_button("Resume campaign").await;
    console
        .wait_text("main section button", "Pause campaign")
        .await;
    let phase = console.wait_text("#campaign-phase", "").await;
    assert_ne!(phase, "Paused", "resumed");
    console.click_link("← Campaigns").await;
    console.wait_text("tbody tr", "spring-renewals").await;

    // Invite a viewer.
    console.click_link("Team").await;
    console.heading("Team").await;
    console
        .fill("Invite someone", "E-mail address", "viewer@example.com")
        .await;
    console
        .field("Invite someone", "Role")
        .await
        .select_by_value("viewer")
        .await
        .unwrap();
    console.click_button("Send invitation").await;
    console.wait_text("tbody tr", "viewer@example.com").await;
    console.screenshot("team").await;

    // The other pages: billing shows the plan, a do-not-call entry is listed, a provider key
    // is only shown masked, an API key is shown once, the audit log has the invitation.
    console.click_link("Billing").await;
    console.wait_text("#current-plan", "free").await;
    console.click_link("Do not call").await;
    console.heading("Do not call").await;
    console.fill("Add a number", "Number", "+15550009999").await;
    console.click_button("Add").await;
    console.wait_text("tbody tr", "+15550009999").await;
    console.click_link("Provider keys").await;
    console.heading("Provider keys").await;
    let secret = "sk-console-test-0123456789abcdef";
    console.fill("Add a key", "Label", "production").await;
    console.fill("Add a key", "Secret", secret).await;
    console.click_button("Save key").await;
    console.wait_text("tbody tr", "production").await;
    // The vendor is asked (unreachable from the test machine, or refusing the made-up key):
    // the verdict lands beside the key.
    console.click_button("Test connection").await;
    let verdict = console.wait_text(".verdict", ":").await;
    assert!(
        verdict.starts_with("Unreachable") || verdict.starts_with("Refused by the vendor"),
        "{verdict}"
    );
    assert!(!verdict.contains(secret), "{verdict}");
    let source = console.browser.source().await.unwrap();
    assert!(
        !source.contains(secret),
        "a provider key is shown after creation"
    );
    console.click_link("API keys").await;
    console.heading("API keys").await;
    console.fill("New key", "Name", "CRM sync").await;
    console.click_button("Create key").await;
    console.wait_text(".once", "shown only now").await;
    let key = console
        .browser
        .find(Locator::Css(".once input"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(key.len() > 20, "{key}");
    console.wait_text("tbody tr", "CRM sync").await;
    console.click_link("Webhooks").await;
    console.wait_text("main section", "Nothing sent yet.").await;
    console
        .fill(
            "New endpoint",
            "URL",
            "https://hooks.example.com/switchboard",
        )
        .await;
    console.click_button("Add endpoint").await;
    console.wait_text(".once", "Signing secret").await;
    console.wait_text("tbody tr", "enabled").await;
    console.click_button("Send test event").await;
    console.wait_text("tbody tr", "webhook.test").await;
    console.click_button("Disable").await;
    console.wait_text("tbody tr", "disabled").await;
    console.click_button("Rotate secret").await;
    console
        .click_button("Rotate? The old one works 24 h more")
        .await;
    console.wait_text(".once", "New signing secret").await;
    console.screenshot("webhooks").await;
    console.click_link("API keys").await;
    console.wait_text("tbody tr", "CRM sync").await;
    assert_eq!(console.count(".once").await, 0, "the key is shown once");
    let source = console.browser.source().await.unwrap();
    assert!(!source.contains(&key), "an API key is shown after creation");
    console.click_link("Audit log").await;
    console.wait_text("tbody tr", "invitation.created").await;
    console.screenshot("audit").await;

    // The viewer: own account, confirmed, then the invitation link.
    console.click_button("Log out").await;
    console.heading("Log in").await;
    sign_up(&console, "Vic Viewer", "viewer@example.com", "Vic's Shop").await;
    console.heading("Phone numbers").await;
    let token = mailed_token(&outbox, "viewer@example.com", "/verify-email");
    console.open(&format!("/verify-email?token={token}")).await;
    console.wait_text(".success", "confirmed").await;
    let token = mailed_token(&outbox, "viewer@example.com", "/invitations/accept");
    console
        .open(&format!("/invitations/accept?token={token}"))
        .await;
    console.heading("Accept the invitation").await;
    console.click_button("Accept and join").await;
    console.heading("Phone numbers").await;
    let url = console.browser.current_url().await.unwrap();
    assert!(url.path().contains(&slug), "{url}");
    console.wait_text("tbody tr", &number).await;
    console.wait_text(".note", "Your role (viewer)").await;
    assert_eq!(
        console.count("form").await,
        0,
        "a viewer gets no purchase form"
    );
    assert_eq!(
        console.count("button.danger").await,
        0,
        "nor a release button"
    );
    assert_eq!(
        console.count("main select").await,
        0,
        "nor a choice of the number's agent"
    );
    console.wait_text("tbody tr a", "support").await;
    console.click_link("Agents").await;
    console.heading("Agents").await;
    assert_eq!(
        console.count("form").await,
        0,
        "a viewer gets no agent form"
    );
    console.click_link("support").await;
    console.heading("Agent support").await;
    let greeting = console.field("Conversation", "Greeting").await;
    assert!(
        !greeting.is_enabled().await.unwrap(),
        "a viewer cannot edit"
    );
    assert_eq!(
        greeting.prop("value").await.unwrap().as_deref(),
        Some(GREETING)
    );
    assert_eq!(
        console
            .browser
            .find_all(Locator::XPath(
                "//button[normalize-space(text())='Save agent']"
            ))
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        console
            .browser
            .find_all(Locator::XPath(
                "//button[normalize-space(text())='Call it now']"
            ))
            .await
            .unwrap()
            .len(),
        0,
        "a viewer cannot start a test call"
    );
    console.screenshot("viewer-agent").await;

    // A viewer reads that the call was recorded, but gets no player: the API refuses them
    // the audio.
    console.click_link("Calls").await;
    console.wait_text("tbody tr", "+15551234567").await;
    console
        .open(&format!("/tenants/{slug}/calls/{call_id}"))
        .await;
    console.heading("Call").await;
    console
        .wait_text("#call-recording", "listening needs the member role")
        .await;
    assert_eq!(console.count("#call-recording audio").await, 0);
    let (status, refused) = console
        .api_get(recording["download"].as_str().unwrap())
        .await;
    assert_eq!(status, 403, "{refused}");
    console.click_link("Agents").await;
    console.heading("Agents").await;

    // The tenant switcher: the viewer's own tenant, where they are the owner.
    let own = console
        .browser
        .find(Locator::Css("#tenant-switch option:not(:checked)"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    console
        .browser
        .find(Locator::Id("tenant-switch"))
        .await
        .unwrap()
        .select_by_value(&own)
        .await
        .unwrap();
    console.heading("Agents").await;
    let url = console.browser.current_url().await.unwrap();
    assert_eq!(url.path(), format!("/tenants/{own}/agents"));
    console.click_link("default").await;
    console.heading("Agent default").await;
    console.click_button("Save agent").await;
    console.wait_text("#toast", "Agent saved").await;

    // Log in again as the owner: a wrong password is refused, the right one lands on a page.
    console.click_button("Log out").await;
    console.heading("Log in").await;
    console
        .fill("", "E-mail address", "owner@example.com")
        .await;
    console
        .fill("", "Password", "not the password at all")
        .await;
    console.click_button("Log in").await;
    console.wait_text("main .error", "").await;
    console.fill("", "Password", PASSWORD).await;
    console.click_button("Log in").await;
    console.heading("Phone numbers").await;
    let url = console.browser.current_url().await.unwrap();
    assert_eq!(url.path(), format!("/tenants/{slug}/numbers"));

    // An access token the gateway refuses is renewed once with the refresh token.
    console
        .browser
        .execute(
            "const s = JSON.parse(sessionStorage.getItem('switchboard.session')); \
             s.access = 'expired'; sessionStorage.setItem('switchboard.session', JSON.stringify(s));",
            vec![],
        )
        .await
        .unwrap();
    console.click_link("Calls").await;
    console.wait_text("tbody tr", "+15551234567").await;

    // Narrow screens: one column, the sections in a scrolling row.
    console.browser.set_window_size(390, 844).await.unwrap();
    console.click_link("Numbers").await;
    console.wait_text("tbody tr", &number).await;
    console.screenshot("mobile-numbers").await;

    console.browser.close().await.unwrap();
    drop(driver);
    running.shutdown().await;
}
