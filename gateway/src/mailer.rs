//! Outgoing e-mail (verification, password reset, invitations).
//!
//! Production sends through an SMTP relay with [`SmtpMailer`] (`SMTP_URL` + `MAIL_FROM`;
//! lettre over tokio, TLS by rustls). Without `SMTP_URL` — standalone installs — the
//! [`FileMailer`] writes each message as a JSON file into an outbox folder (the operator of a
//! single host reads links from there). [`MemoryMailer`] keeps messages in memory for tests.
//! [`from_settings`] picks one at start and says which in the log.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;

/// One message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Email {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Writing the outbox file failed.
    #[error("cannot write to the mail outbox: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding the message failed.
    #[error("cannot encode the message: {0}")]
    Encode(#[from] serde_json::Error),
    /// The recipient is not a valid address.
    #[error("invalid recipient address: {0}")]
    Recipient(#[from] lettre::address::AddressError),
    /// The message could not be built (headers).
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    /// The SMTP relay refused the message or could not be reached. The text holds the
    /// relay's reply (e.g. `permanent error (550): …`), never the credentials.
    #[error("SMTP delivery failed: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// Why the mail settings cannot be used (the gateway refuses to start).
#[derive(Debug, thiserror::Error)]
pub enum MailSetupError {
    /// `SMTP_URL` is set but `MAIL_FROM` is not.
    #[error(
        "MAIL_FROM is required when SMTP_URL is set (e.g. MAIL_FROM='Switchboard <no-reply@example.com>')"
    )]
    MissingFrom,
    /// `MAIL_FROM` is not a mailbox.
    #[error("MAIL_FROM is not a valid mailbox ({0}); expected an address or 'Name <address>'")]
    BadFrom(lettre::address::AddressError),
    /// `SMTP_URL` cannot be used.
    #[error(
        "SMTP_URL is not usable ({0}); expected smtps://user:password@host:465 or smtp://user:password@host:587?tls=required"
    )]
    BadUrl(String),
}

/// Sends e-mail.
pub trait Mailer: Send + Sync {
    /// Sends one message.
    fn send(&self, email: Email) -> BoxFuture<'_, Result<(), MailError>>;
}

/// An `SMTP_URL` as configured. It holds the relay password, so its `Debug` (and therefore the
/// configuration's) shows the URL with the password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    /// The full URL, password included (only for building the transport).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `scheme://host:port` without user, password, path or query: safe for logs.
    pub fn redacted(&self) -> String {
        match reqwest::Url::parse(&self.0) {
            Ok(url) => {
                let host = url.host_str().unwrap_or("?");
                match url.port() {
                    Some(port) => format!("{}://{host}:{port}", url.scheme()),
                    None => format!("{}://{host}", url.scheme()),
                }
            }
            Err(_) => "<unparsable SMTP_URL>".to_owned(),
        }
    }
}

impl FromStr for SmtpUrl {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Checked when the mailer is built (with a clear error), so that a bad value never
        // echoes the password back in clap's own parse error.
        Ok(Self(text.trim().to_owned()))
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({})", self.redacted())
    }
}

/// How long one SMTP conversation may take before the send fails (lettre's default is 60 s;
/// mail is sent inside the signup/reset request, so a dead relay should not hold it that long).
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Delivers through an SMTP relay (production). One connection per message: the gateway sends
/// few messages (signup, reset, invitations), so a pool would mostly hold idle sockets.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    relay: String,
}

impl SmtpMailer {
    /// A mailer for `url` (lettre's URL form: `smtps://…` is TLS from the first byte,
    /// `smtp://…?tls=required` is STARTTLS, plain `smtp://…` has no TLS) sending as `from`.
    /// `hello_name` is the EHLO name unless the URL names one in its path.
    pub fn new(
        url: &SmtpUrl,
        from: &str,
        hello_name: Option<&str>,
    ) -> Result<Self, MailSetupError> {
        let from: Mailbox = from.trim().parse().map_err(MailSetupError::BadFrom)?;
        let parsed =
            reqwest::Url::parse(url.expose()).map_err(|e| MailSetupError::BadUrl(e.to_string()))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(|e| MailSetupError::BadUrl(e.to_string()))?
            .timeout(Some(SMTP_TIMEOUT));
        if parsed.path().len() <= 1
            && let Some(name) = hello_name.filter(|n| !n.is_empty())
        {
            builder = builder.hello_name(ClientId::Domain(name.to_owned()));
        }
        let plaintext = parsed.scheme() == "smtp" && !parsed.query_pairs().any(|(k, _)| k == "tls");
        let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if plaintext && parsed.password().is_some() && !loopback {
            tracing::warn!(relay = %url.redacted(), "SMTP_URL sends the relay password without TLS; use smtps:// or ?tls=required");
        }
        Ok(Self {
            transport: builder.build(),
            from,
            relay: url.redacted(),
        })
    }

    /// The relay as `scheme://host:port` (no credentials).
    pub fn relay(&self) -> &str {
        &self.relay
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, email: Email) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(async move {
            let message = Message::builder()
                .from(self.from.clone())
                .to(email.to.parse::<Mailbox>()?)
                .subject(email.subject.as_str())
                .header(ContentType::TEXT_PLAIN)
                .body(email.body)?;
            self.transport.send(message).await?;
            // The body holds single-use tokens: log where it went, not what it says.
            tracing::info!(to = %email.to, subject = %email.subject, relay = %self.relay, "e-mail handed to the SMTP relay");
            Ok(())
        })
    }
}

/// The mail settings of the configuration (`Config::mail`).
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `SMTP_URL`.
    pub smtp_url: Option<SmtpUrl>,
    /// `MAIL_FROM`.
    pub mail_from: Option<String>,
    /// `SWITCHBOARD_MAIL_OUTBOX`.
    pub outbox: PathBuf,
    /// The gateway's public URL (its host names us to the relay).
    pub public_url: String,
}

/// The mailer the settings ask for: SMTP when `SMTP_URL` is set (then `MAIL_FROM` is
/// required and must be a mailbox), else the outbox folder. Logs which, without credentials.
pub fn from_settings(settings: &MailSettings) -> Result<Arc<dyn Mailer>, MailSetupError> {
    let Some(url) = &settings.smtp_url else {
        tracing::info!(outbox = %settings.outbox.display(), "SMTP_URL is not set: e-mail is written as JSON files into the outbox folder");
        return Ok(Arc::new(FileMailer::new(settings.outbox.clone())));
    };
    let from = settings
        .mail_from
        .as_deref()
        .filter(|f| !f.trim().is_empty())
        .ok_or(MailSetupError::MissingFrom)?;
    let hello = reqwest::Url::parse(&settings.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    let mailer = SmtpMailer::new(url, from, hello.as_deref())?;
    tracing::info!(relay = %mailer.relay(), from = %mailer.from, "e-mail is sent through SMTP");
    Ok(Arc::new(mailer))
}

/// Writes every message as `<time>-<id>.json` into a folder.
pub struct FileMailer {
    outbox: PathBuf,
}

impl FileMailer {
    /// A mailer writing into `outbox` (created on first use).
    pub fn new(outbox: PathBuf) -> Self {
        Self { outbox }
    }
}

impl Mailer for FileMailer {
    fn send(&self, email: Email) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(async move {
            tokio::fs::create_dir_all(&self.outbox).await?;
            let name = format!(
                "{}-{}.json",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
                uuid::Uuid::new_v4().simple()
            );
            let path = self.outbox.join(name);
            tokio::fs::write(&path, serde_json::to_vec_pretty(&email)?).await?;
            // The body holds single-use tokens: log where it went, not what it says.
            tracing::info!(to = %email.to, subject = %email.subject, path = %path.display(), "e-mail written to the outbox");
            Ok(())
        })
    }
}

/// Keeps messages in memory (tests, and embedding the gateway in other test suites).
#[derive(Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<Email>>,
}

impl MemoryMailer {
    /// Every message sent so far.
    pub fn sent(&self) -> Vec<Email> {
        self.sent
            .lock()
            .map(|sent| sent.clone())
            .unwrap_or_default()
    }
}

impl Mailer for MemoryMailer {
    fn send(&self, email: Email) -> BoxFuture<'_, Result<(), MailError>> {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(email);
        }
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_show_no_credentials_in_logs_or_debug() {
        let url: SmtpUrl =
            "smtps://mailer%40example.com:p%40ss@smtp.example.com:465/gw.example.com"
                .parse()
                .unwrap();
        assert_eq!(url.redacted(), "smtps://smtp.example.com:465");
        let debug = format!("{url:?}");
        assert!(
            !debug.contains("p%40ss") && !debug.contains("mailer"),
            "{debug}"
        );
        let starttls: SmtpUrl = "smtp://u:p@relay.example.com?tls=required".parse().unwrap();
        assert_eq!(starttls.redacted(), "smtp://relay.example.com");
        let garbage: SmtpUrl = "not a url with a secret".parse().unwrap();
        assert!(!garbage.redacted().contains("secret"));
    }

    #[test]
    fn smtp_mailer_checks_sender_and_url() {
        let url: SmtpUrl = "smtp://u:p@127.0.0.1:2525".parse().unwrap();
        assert!(SmtpMailer::new(&url, "Switchboard <no-reply@example.com>", None).is_ok());
        assert!(matches!(
            SmtpMailer::new(&url, "no-reply", None),
            Err(MailSetupError::BadFrom(_))
        ));
        let bad: SmtpUrl = "smtp://u:p@relay.example.com?tls=sometimes"
            .parse()
            .unwrap();
        let error = SmtpMailer::new(&bad, "a@example.com", None).err().unwrap();
        assert!(matches!(error, MailSetupError::BadUrl(_)));
        assert!(!error.to_string().contains("u:p"), "{error}");
    }

    #[tokio::test]
    async fn file_mailer_writes_one_json_file_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(dir.path().join("outbox"));
        let email = Email {
            to: "a@b.io".into(),
            subject: "Hi".into(),
            body: "token x".into(),
        };
        mailer.send(email.clone()).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["to"], "a@b.io");
        assert_eq!(value["body"], "token x");
    }
}
