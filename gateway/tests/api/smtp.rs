//! The SMTP mailer against a local SMTP stand-in: a small tokio server on 127.0.0.1 that
//! speaks just enough SMTP (greeting, EHLO with AUTH PLAIN LOGIN, AUTH, MAIL FROM, RCPT TO,
//! DATA, QUIT) and records every session. Plain `smtp://` without TLS: lettre's TLS path is
//! lettre's to test; what matters here is our envelope, message, credentials and errors.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use base64::Engine;
use serde_json::json;
use switchboard_gateway::AppState;
use switchboard_gateway::mailer::{
    Email, MailError, MailSetupError, Mailer, SmtpMailer, SmtpUrl, from_settings,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::common::{Options, config, sqlite_app};

/// What one SMTP session carried.
#[derive(Debug, Default, Clone)]
struct Session {
    ehlo: String,
    /// Decoded AUTH credentials: `user:password`.
    auth: Option<String>,
    mail_from: String,
    rcpt_to: Vec<String>,
    /// The message as sent after DATA (dot-unstuffed, CRLF line ends).
    data: String,
    quit: bool,
}

/// Which command the stand-in refuses with a 5xx reply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refuse {
    Nothing,
    Recipient,
    Auth,
}

struct FakeSmtp {
    address: SocketAddr,
    sessions: Arc<Mutex<Vec<Session>>>,
}

impl FakeSmtp {
    async fn start(refuse: Refuse) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let recorded = sessions.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let session = serve(socket, refuse).await;
                    recorded.lock().unwrap().push(session);
                });
            }
        });
        Self { address, sessions }
    }

    fn url(&self, user_password: &str) -> SmtpUrl {
        format!("smtp://{user_password}@{}", self.address)
            .parse()
            .unwrap()
    }

    fn sessions(&self) -> Vec<Session> {
        self.sessions.lock().unwrap().clone()
    }
}

fn decode(b64: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One SMTP conversation; returns what it carried once the client leaves.
async fn serve(socket: tokio::net::TcpStream, refuse: Refuse) -> Session {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    let mut session = Session::default();
    let reply = async |write: &mut tokio::net::tcp::OwnedWriteHalf, text: &str| {
        let _ = write.write_all(text.as_bytes()).await;
    };
    reply(&mut write, "220 fake.smtp.test ESMTP ready\r\n").await;
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            session.ehlo = command;
            reply(
                &mut write,
                "250-fake.smtp.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
            )
            .await;
        } else if upper.starts_with("AUTH PLAIN") {
            let initial = command["AUTH PLAIN".len()..].trim().to_owned();
            let response = if initial.is_empty() {
                reply(&mut write, "334 \r\n").await;
                line.clear();
                let _ = lines.read_line(&mut line).await;
                line.trim().to_owned()
            } else {
                initial
            };
            // PLAIN is `authzid \0 authcid \0 password`.
            let decoded = decode(&response);
            let parts: Vec<&str> = decoded.split('\0').collect();
            session.auth = Some(format!(
                "{}:{}",
                parts.get(1).unwrap_or(&""),
                parts.get(2).unwrap_or(&"")
            ));
            if refuse == Refuse::Auth {
                reply(
                    &mut write,
                    "535 5.7.8 authentication credentials invalid\r\n",
                )
                .await;
            } else {
                reply(&mut write, "235 2.7.0 authenticated\r\n").await;
            }
        } else if upper.starts_with("AUTH LOGIN") {
            reply(&mut write, "334 VXNlcm5hbWU6\r\n").await;
            line.clear();
            let _ = lines.read_line(&mut line).await;
            let user = decode(&line);
            reply(&mut write, "334 UGFzc3dvcmQ6\r\n").await;
            line.clear();
            let _ = lines.read_line(&mut line).await;
            session.auth = Some(format!("{user}:{}", decode(&line)));
            reply(&mut write, "235 2.7.0 authenticated\r\n").await;
        } else if upper.starts_with("MAIL FROM:") {
            session.mail_from = command["MAIL FROM:".len()..].to_owned();
            reply(&mut write, "250 2.1.0 sender ok\r\n").await;
        } else if upper.starts_with("RCPT TO:") {
            if refuse == Refuse::Recipient {
                reply(&mut write, "550 5.1.1 mailbox unavailable\r\n").await;
            } else {
                session.rcpt_to.push(command["RCPT TO:".len()..].to_owned());
                reply(&mut write, "250 2.1.5 recipient ok\r\n").await;
            }
        } else if upper == "DATA" {
            reply(&mut write, "354 end data with <CR><LF>.<CR><LF>\r\n").await;
            loop {
                line.clear();
                match lines.read_line(&mut line).await {
                    Ok(0) | Err(_) => return session,
                    Ok(_) => {}
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let text = line.strip_prefix('.').unwrap_or(&line);
                session.data.push_str(text);
            }
            reply(&mut write, "250 2.0.0 queued as 1\r\n").await;
        } else if upper == "QUIT" {
            session.quit = true;
            reply(&mut write, "221 2.0.0 bye\r\n").await;
            break;
        } else if upper == "RSET" || upper == "NOOP" {
            reply(&mut write, "250 2.0.0 ok\r\n").await;
        } else {
            reply(&mut write, "502 5.5.2 command not recognised\r\n").await;
        }
    }
    session
}

/// Undoes quoted-printable (soft line breaks and `=XX` escapes) well enough for ASCII bodies.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'=' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits (bounded) until the stand-in has recorded `count` finished sessions.
async fn sessions_after(smtp: &FakeSmtp, count: usize) -> Vec<Session> {
    for _ in 0..200 {
        let sessions = smtp.sessions();
        if sessions.len() >= count {
            return sessions;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    smtp.sessions()
}

#[tokio::test]
async fn smtp_mailer_sends_envelope_message_and_credentials() {
    let smtp = FakeSmtp::start(Refuse::Nothing).await;
    // A password with characters that must be percent-encoded in the URL.
    let url = smtp.url("mailer%40switchboard.test:s3cret%2Fpass");
    assert!(
        !format!("{url:?}").contains("s3cret"),
        "Debug must mask the password: {url:?}"
    );
    let mailer = SmtpMailer::new(
        &url,
        "Switchboard <no-reply@switchboard.test>",
        Some("gateway.test"),
    )
    .unwrap();
    assert_eq!(mailer.relay(), format!("smtp://{}", smtp.address));
    mailer
        .send(Email {
            to: "bob@example.com".into(),
            subject: "Your invitation".into(),
            body: "Hello Bob,\n\njoin us: https://gateway.test/invite?token=abc123\n.\nBye\n"
                .into(),
        })
        .await
        .unwrap();

    let sessions = sessions_after(&smtp, 1).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let session = &sessions[0];
    assert_eq!(session.ehlo, "EHLO gateway.test");
    assert_eq!(
        session.auth.as_deref(),
        Some("mailer@switchboard.test:s3cret/pass"),
        "AUTH credentials arrive percent-decoded"
    );
    assert!(
        session.mail_from.starts_with("<no-reply@switchboard.test>"),
        "{}",
        session.mail_from
    );
    assert_eq!(session.rcpt_to, vec!["<bob@example.com>".to_owned()]);
    let data = &session.data;
    assert!(data.contains("Subject: Your invitation\r\n"), "{data}");
    assert!(data.contains("To: bob@example.com\r\n"), "{data}");
    assert!(
        data.contains("From: Switchboard <no-reply@switchboard.test>\r\n"),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: text/plain; charset=utf-8"),
        "{data}"
    );
    // The body arrives intact, including a line that is a lone dot (dot-stuffed on the wire).
    assert!(
        data.contains("join us: https://gateway.test/invite?token=abc123\r\n.\r\nBye"),
        "{data}"
    );
    assert!(session.quit, "the client says QUIT");
}

#[tokio::test]
async fn smtp_5xx_replies_become_errors() {
    let smtp = FakeSmtp::start(Refuse::Recipient).await;
    let mailer = SmtpMailer::new(&smtp.url("user:pw"), "no-reply@switchboard.test", None).unwrap();
    let error = mailer
        .send(Email {
            to: "nobody@example.com".into(),
            subject: "Hi".into(),
            body: "x".into(),
        })
        .await
        .expect_err("a 550 to RCPT TO is an error");
    match &error {
        MailError::Smtp(smtp_error) => assert!(smtp_error.is_permanent(), "{smtp_error:?}"),
        other => panic!("expected an SMTP error, got {other:?}"),
    }
    assert!(error.to_string().contains("550"), "{error}");

    let refusing_auth = FakeSmtp::start(Refuse::Auth).await;
    let mailer = SmtpMailer::new(
        &refusing_auth.url("user:wrong"),
        "no-reply@switchboard.test",
        None,
    )
    .unwrap();
    let error = mailer
        .send(Email {
            to: "bob@example.com".into(),
            subject: "Hi".into(),
            body: "x".into(),
        })
        .await
        .expect_err("a 535 to AUTH is an error");
    assert!(error.to_string().contains("535"), "{error}");
    assert!(
        !error.to_string().contains("wrong"),
        "the error never repeats the password: {error}"
    );

    // Nobody listening: a connection error, not a panic.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let url: SmtpUrl = format!("smtp://{closed}").parse().unwrap();
    let mailer = SmtpMailer::new(&url, "no-reply@switchboard.test", None).unwrap();
    let error = mailer
        .send(Email {
            to: "bob@example.com".into(),
            subject: "Hi".into(),
            body: "x".into(),
        })
        .await;
    assert!(matches!(error, Err(MailError::Smtp(_))), "{error:?}");
}

#[tokio::test]
async fn mail_settings_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let mut settings = config(&db, &Options::default());
    settings.smtp_url = Some("smtps://user:hunter2@smtp.example.com:465".parse().unwrap());
    assert!(
        !format!("{settings:?}").contains("hunter2"),
        "the configuration's Debug must not show the SMTP password"
    );
    settings.mail_from = None;
    assert!(matches!(
        from_settings(&settings.mail()),
        Err(MailSetupError::MissingFrom)
    ));
    settings.mail_from = Some("not an address".into());
    let error = from_settings(&settings.mail())
        .err()
        .expect("bad MAIL_FROM refused");
    assert!(matches!(error, MailSetupError::BadFrom(_)), "{error:?}");
    assert!(error.to_string().contains("MAIL_FROM"), "{error}");
    // The gateway refuses to start with it.
    let refused = AppState::from_config(settings.clone()).await;
    assert!(
        refused.is_err(),
        "AppState::from_config must refuse a bad MAIL_FROM"
    );
    settings.mail_from = Some("Switchboard <no-reply@switchboard.test>".into());
    assert!(from_settings(&settings.mail()).is_ok());
    settings.smtp_url = Some("ftp://smtp.example.com".parse().unwrap());
    let error = from_settings(&settings.mail())
        .err()
        .expect("bad SMTP_URL refused");
    assert!(matches!(error, MailSetupError::BadUrl(_)), "{error:?}");
}

#[tokio::test]
async fn signup_verification_mail_goes_out_through_smtp() {
    println!(
        "signup_verification_mail_goes_out_through_smtp: running on [\"sqlite\"] (the database backend is not what this test is about)"
    );
    let smtp = FakeSmtp::start(Refuse::Nothing).await;
    // Built the way production builds it: SMTP_URL + MAIL_FROM through AppState::from_config.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("smtp.db").display());
    let mut settings = config(&db, &Options::default());
    settings.smtp_url = Some(smtp.url("gateway:relay-password"));
    settings.mail_from = Some("Switchboard <no-reply@switchboard.test>".into());
    let state = AppState::from_config(settings).await.unwrap();
    let mut app = sqlite_app(&Options::default()).await;
    app.state = state;
    app.router = switchboard_gateway::app(app.state.clone());

    let account = app.signup("new.user@example.com", "Mail Co").await;
    let sessions = sessions_after(&smtp, 1).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let session = &sessions[0];
    assert_eq!(session.auth.as_deref(), Some("gateway:relay-password"));
    assert_eq!(session.rcpt_to, vec!["<new.user@example.com>".to_owned()]);
    assert!(
        session
            .data
            .contains("Subject: Confirm your e-mail address\r\n"),
        "{}",
        session.data
    );
    // The link line is longer than 76 characters, so lettre sends the body quoted-printable;
    // a mail client decodes it, and so does this test. The mailed link then works.
    let body = decode_quoted_printable(&session.data);
    let start = body.find("token=").expect("token in the mail") + "token=".len();
    let token: String = body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    let verified = app
        .post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await;
    assert_eq!(
        verified.status,
        StatusCode::OK,
        "{}\ntoken {token:?} from:\n{body}",
        verified.text
    );
    let me = app.get("/api/v1/auth/me", &account.access).await;
    assert_eq!(me.body["user"]["emailVerified"], true);
    app.finish().await;
}
