//! Outgoing e-mail (verification, password reset, invitations).
//!
//! Standalone installs use [`FileMailer`], which writes each message as a JSON file into an
//! outbox folder (the operator of a single host reads links from there). [`MemoryMailer`]
//! keeps messages in memory for tests. SMTP delivery for production is not built yet.

use std::path::PathBuf;
use std::sync::Mutex;

use futures::future::BoxFuture;
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
}

/// Sends e-mail.
pub trait Mailer: Send + Sync {
    /// Sends one message.
    fn send(&self, email: Email) -> BoxFuture<'_, Result<(), MailError>>;
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
