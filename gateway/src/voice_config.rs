//! Settings of the call path and billing: carrier accounts and webhook secrets, the media
//! path, the internal API, Stripe, plan-limit overrides and the dialer. Flattened into
//! [`crate::Config`]; each flag also reads its variable.

use clap::Args;

/// Carrier, media, internal-API and billing settings. `Debug` (by hand) shows whether each
/// secret is set, never its value.
#[derive(Args, Clone, Default)]
pub struct VoiceConfig {
    /// Auth token of the platform's Twilio account (verifies `X-Twilio-Signature` of webhooks
    /// for numbers the platform owns).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,

    /// Account SID of the platform's Twilio account (redirects calls for transfers).
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,

    /// Twilio REST base URL (tests point it at a local server).
    #[arg(
        long,
        env = "TWILIO_API_BASE",
        default_value = "https://api.twilio.com/2010-04-01"
    )]
    pub twilio_api_base: String,

    /// Base64 Ed25519 public key of the platform's Telnyx account (webhook signatures).
    #[arg(long, env = "TELNYX_PUBLIC_KEY")]
    pub telnyx_public_key: Option<String>,

    /// Token the sandbox carrier signs its (Twilio-style) webhooks with. Generated in dev mode
    /// when unset (then only in-process sandbox calls can sign).
    #[arg(long, env = "SWITCHBOARD_SANDBOX_AUTH_TOKEN", hide_env_values = true)]
    pub sandbox_auth_token: Option<String>,

    /// API key of the platform's Telnyx account (answers and rejects Call Control calls on
    /// numbers the platform owns).
    #[arg(long, env = "TELNYX_API_KEY", hide_env_values = true)]
    pub telnyx_api_key: Option<String>,

    /// Telnyx API base URL (tests point it at a local server).
    #[arg(
        long,
        env = "TELNYX_API_BASE",
        default_value = "https://api.telnyx.com/v2"
    )]
    pub telnyx_api_base: String,

    /// Secret signing call tokens (HMAC-SHA256). Derived from `JWT_SECRET` when unset.
    #[arg(long, env = "SWITCHBOARD_CALL_TOKEN_SECRET", hide_env_values = true)]
    pub call_token_secret: Option<String>,

    /// Secret deriving each tenant's runtime credential (HMAC-SHA256, see
    /// `runtime_credential`). Derived from `JWT_SECRET` when unset; set it so that rotating
    /// `JWT_SECRET` leaves the runtimes' credentials alone (changing it re-issues them all).
    #[arg(
        long,
        env = "SWITCHBOARD_RUNTIME_CREDENTIAL_SECRET",
        hide_env_values = true
    )]
    pub runtime_credential_secret: Option<String>,

    /// Lifetime of a call token in seconds (the carrier connects the stream within seconds).
    #[arg(long, env = "SWITCHBOARD_CALL_TOKEN_TTL_SECONDS", default_value_t = 60)]
    pub call_token_ttl_seconds: i64,

    /// Runtime WebSocket base URL in standalone mode (e.g. `ws://127.0.0.1:8090`); in
    /// Kubernetes mode each tenant's runtime Service is used.
    #[arg(long, env = "SWITCHBOARD_RUNTIME_URL")]
    pub runtime_url: Option<String>,

    /// Largest WebSocket message (and frame) a carrier may send on `/media`, in bytes. Enforced
    /// while reading, before the call token is checked, so an unauthenticated socket can make
    /// the proxy buffer at most 4 such messages. Twilio and Telnyx media frames are under 1 KiB.
    #[arg(long, env = "SWITCHBOARD_MEDIA_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub media_max_message_bytes: usize,

    /// Concurrent media streams allowed per tenant.
    #[arg(long, env = "SWITCHBOARD_MAX_CONCURRENT_CALLS", default_value_t = 20)]
    pub max_concurrent_calls: usize,

    /// Shared secret of the internal API (`/internal/v1`), sent as a Bearer token.
    #[arg(long, env = "SWITCHBOARD_INTERNAL_TOKEN", hide_env_values = true)]
    pub internal_token: Option<String>,

    /// API bases of provider vendors for credential checks, `vendor=url` comma-separated
    /// (`openai`, `groq`, `deepgram`, `elevenlabs`; tests point them at local servers).
    /// Unset: the vendors' public APIs.
    #[arg(long, env = "SWITCHBOARD_PROVIDER_API_BASES", value_delimiter = ',')]
    pub provider_api_bases: Vec<String>,

    /// Stripe secret API key (`sk_…`).
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,

    /// Stripe webhook endpoint secrets (`whsec_…`, comma-separated during a roll).
    #[arg(
        long,
        env = "STRIPE_WEBHOOK_SECRET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub stripe_webhook_secrets: Vec<String>,

    /// Stripe API base URL (tests point it at a local server).
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_api_base: String,

    /// Stripe meter event name for call minutes of metered plans (unset: no reporting).
    #[arg(long, env = "STRIPE_METER_EVENT_NAME")]
    pub stripe_meter_event_name: Option<String>,

    /// Price ids per plan: `starter=price_…,professional=price_…,enterprise=price_…`.
    #[arg(long, env = "STRIPE_PRICES", value_delimiter = ',')]
    pub stripe_prices: Vec<String>,

    /// Plan limit overrides as JSON, e.g. `{"free":{"monthlyCalls":100}}` (the operator's
    /// setting of the same name; both must see the same value).
    #[arg(long, env = "SWITCHBOARD_PLAN_LIMITS")]
    pub plan_limits: Option<String>,

    /// Seconds between reloads of the dialled-number table from the database.
    #[arg(long, env = "SWITCHBOARD_NUMBER_REFRESH_SECONDS", default_value_t = 10)]
    pub number_refresh_seconds: u64,

    /// Milliseconds between polls of the customer-webhook outbox.
    #[arg(long, env = "SWITCHBOARD_OUTBOX_POLL_MS", default_value_t = 1000)]
    pub outbox_poll_ms: u64,

    /// Call Control connection id of the platform's Telnyx account (outbound campaign calls
    /// on numbers the platform owns are placed through it).
    #[arg(long, env = "TELNYX_CONNECTION_ID")]
    pub telnyx_connection_id: Option<String>,

    /// Carrier of self-service tenants in Kubernetes mode (`twilio`, `telnyx` or `sandbox`),
    /// through the platform's account, until a tenant stores its own. Unset: the carrier whose
    /// platform account is configured (Twilio first, then Telnyx); `sandbox` only when neither
    /// is (logged at start).
    #[arg(long, env = "SWITCHBOARD_DEFAULT_CARRIER", value_parser = ["twilio", "telnyx", "sandbox"])]
    pub default_carrier: Option<String>,

    /// Run the campaign dialer in this process. Several replicas may run it on Postgres (they
    /// coordinate with row locks); on SQLite run it in one process only.
    #[arg(long, env = "SWITCHBOARD_DIALER", default_value_t = true, action = clap::ArgAction::Set)]
    pub dialer: bool,

    /// Kubernetes mode: place campaign calls from sandbox numbers through a sandbox carrier
    /// in this process, whose simulated contacts pick up, hear the agent out, answer in the
    /// runtime's builtin voice and hang up (media through this gateway's own listener and
    /// media proxy to the tenant's runtime; see `dialer::sandbox_callee`). For trying
    /// campaigns on a cluster without a carrier account; keep it off in production (the Helm
    /// value `gateway.sandboxCarrier`). Its webhooks are signed with
    /// `SWITCHBOARD_SANDBOX_AUTH_TOKEN`, or when unset a token derived from `JWT_SECRET` (the
    /// same on every replica). Off: campaign calls from sandbox numbers are not placed ("no
    /// sandbox credentials"). Standalone mode always dials through its own sandbox.
    #[arg(long, env = "SWITCHBOARD_SANDBOX_CARRIER", default_value_t = false, action = clap::ArgAction::Set)]
    pub sandbox_carrier: bool,

    /// Milliseconds between dialer passes.
    #[arg(long, env = "SWITCHBOARD_DIALER_INTERVAL_MS", default_value_t = 1000)]
    pub dialer_interval_ms: u64,
}

impl VoiceConfig {
    /// The carrier self-service tenants get (see [`VoiceConfig::default_carrier`]).
    pub fn platform_carrier(&self) -> switchboard_crds::CarrierKind {
        use switchboard_crds::CarrierKind;
        match self.default_carrier.as_deref() {
            Some("twilio") => CarrierKind::Twilio,
            Some("telnyx") => CarrierKind::Telnyx,
            Some(_) => CarrierKind::Sandbox,
            None if self.twilio_account_sid.is_some() && self.twilio_auth_token.is_some() => {
                CarrierKind::Twilio
            }
            None if self.telnyx_api_key.is_some() => CarrierKind::Telnyx,
            None => CarrierKind::Sandbox,
        }
    }

    /// The Stripe price id configured for `plan`.
    pub fn price_for(&self, plan: &str) -> Option<&str> {
        self.stripe_prices.iter().find_map(|entry| {
            let (name, price) = entry.split_once('=')?;
            (name.trim() == plan).then_some(price.trim())
        })
    }

    /// The plan a Stripe price id stands for.
    pub fn plan_for_price(&self, price: &str) -> Option<&str> {
        self.stripe_prices.iter().find_map(|entry| {
            let (name, id) = entry.split_once('=')?;
            (id.trim() == price).then_some(name.trim())
        })
    }
}

/// How a secret setting shows in `Debug`: whether it is set, never its value.
pub(crate) fn presence<T>(value: &Option<T>) -> &'static str {
    if value.is_some() { "<set>" } else { "<unset>" }
}

impl std::fmt::Debug for VoiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceConfig")
            .field("twilio_auth_token", &presence(&self.twilio_auth_token))
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("twilio_api_base", &self.twilio_api_base)
            .field("telnyx_public_key", &self.telnyx_public_key)
            .field("sandbox_auth_token", &presence(&self.sandbox_auth_token))
            .field("telnyx_api_key", &presence(&self.telnyx_api_key))
            .field("telnyx_api_base", &self.telnyx_api_base)
            .field("call_token_secret", &presence(&self.call_token_secret))
            .field("call_token_ttl_seconds", &self.call_token_ttl_seconds)
            .field(
                "runtime_credential_secret",
                &presence(&self.runtime_credential_secret),
            )
            .field("runtime_url", &self.runtime_url)
            .field("max_concurrent_calls", &self.max_concurrent_calls)
            .field("internal_token", &presence(&self.internal_token))
            .field("provider_api_bases", &self.provider_api_bases)
            .field("stripe_secret_key", &presence(&self.stripe_secret_key))
            .field("stripe_webhook_secrets", &self.stripe_webhook_secrets.len())
            .field("stripe_api_base", &self.stripe_api_base)
            .field("stripe_meter_event_name", &self.stripe_meter_event_name)
            .field("stripe_prices", &self.stripe_prices)
            .field("plan_limits", &self.plan_limits)
            .field("number_refresh_seconds", &self.number_refresh_seconds)
            .field("outbox_poll_ms", &self.outbox_poll_ms)
            .field("telnyx_connection_id", &self.telnyx_connection_id)
            .field("dialer", &self.dialer)
            .field("sandbox_carrier", &self.sandbox_carrier)
            .field("dialer_interval_ms", &self.dialer_interval_ms)
            .finish()
    }
}
