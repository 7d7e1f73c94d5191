//! Every API operation the CLI uses, as one [`Endpoint`] constant (verb and path template, as
//! the gateway's OpenAPI document names them), and the typed [`Answer`] beside the gateway's
//! JSON. Apart from the client proper so that the session commands ([`crate::commands`]) name
//! their endpoints without depending on the client, which is built on their [`Context`].
//!
//! [`Context`]: crate::commands::Context

use reqwest::Method;
use serde_json::Value;

/// An HTTP verb of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Verb {
    /// The method for reqwest.
    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }

    /// The lower-case name OpenAPI path items use.
    pub fn openapi(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }
}

/// One API operation: verb and path template, as the OpenAPI document names them.
#[derive(Debug)]
pub struct Endpoint {
    /// The verb.
    pub verb: Verb,
    /// The path with `{placeholders}`.
    pub path: &'static str,
    /// A creating `POST` under a tenant: sent with an `Idempotency-Key` and retried with it.
    pub creates: bool,
}

impl Endpoint {
    const fn new(verb: Verb, path: &'static str) -> Self {
        Self {
            verb,
            path,
            creates: false,
        }
    }

    const fn creating(path: &'static str) -> Self {
        Self {
            verb: Verb::Post,
            path,
            creates: true,
        }
    }

    /// The path with its placeholders replaced, in order, by `params` (each escaped so a
    /// user-typed value cannot leave its segment).
    pub fn render(&self, params: &[&str]) -> String {
        let mut out = String::with_capacity(self.path.len() + 32);
        let mut rest = self.path;
        let mut values = params.iter();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
            out.push_str(&segment(values.next().copied().unwrap_or("")));
            rest = &rest[close..];
        }
        out.push_str(rest);
        out
    }
}

macro_rules! endpoints {
    (@make op ($verb:ident) $path:literal) => { Endpoint::new(Verb::$verb, $path) };
    (@make create $path:literal) => { Endpoint::creating($path) };
    ($($(#[$doc:meta])* $name:ident = $kind:ident $(($verb:ident))? $path:literal;)*) => {
        $($(#[$doc])* pub const $name: Endpoint = endpoints!(@make $kind $(($verb))? $path);)*
    };
}

endpoints! {
    /// Sign up.
    SIGNUP = op(Post) "/api/v1/auth/signup";
    /// Log in.
    LOGIN = op(Post) "/api/v1/auth/login";
    /// New tokens.
    REFRESH = op(Post) "/api/v1/auth/refresh";
    /// End the session.
    LOGOUT = op(Post) "/api/v1/auth/logout";
    /// Who am I.
    ME = op(Get) "/api/v1/auth/me";
    /// My tenants.
    TENANTS = op(Get) "/api/v1/tenants";
    /// Agents.
    AGENTS = op(Get) "/api/v1/tenants/{tenant}/agents";
    /// One agent.
    AGENT = op(Get) "/api/v1/tenants/{tenant}/agents/{name}";
    /// New agent.
    CREATE_AGENT = create "/api/v1/tenants/{tenant}/agents";
    /// Change an agent.
    UPDATE_AGENT = op(Patch) "/api/v1/tenants/{tenant}/agents/{name}";
    /// Remove an agent.
    DELETE_AGENT = op(Delete) "/api/v1/tenants/{tenant}/agents/{name}";
    /// Provider credentials.
    CREDENTIALS = op(Get) "/api/v1/tenants/{tenant}/credentials";
    /// New credential.
    CREATE_CREDENTIAL = create "/api/v1/tenants/{tenant}/credentials";
    /// Change a credential.
    UPDATE_CREDENTIAL = op(Patch) "/api/v1/tenants/{tenant}/credentials/{id}";
    /// Try a credential against its vendor.
    TEST_CREDENTIAL = op(Post) "/api/v1/tenants/{tenant}/credentials/{id}/test";
    /// Remove a credential.
    DELETE_CREDENTIAL = op(Delete) "/api/v1/tenants/{tenant}/credentials/{id}";
    /// Numbers.
    NUMBERS = op(Get) "/api/v1/tenants/{tenant}/numbers";
    /// Buy a number.
    BUY_NUMBER = create "/api/v1/tenants/{tenant}/numbers";
    /// Release a number.
    RELEASE_NUMBER = op(Delete) "/api/v1/tenants/{tenant}/numbers/{e164}";
    /// Campaigns.
    CAMPAIGNS = op(Get) "/api/v1/tenants/{tenant}/campaigns";
    /// A campaign's progress.
    CAMPAIGN = op(Get) "/api/v1/tenants/{tenant}/campaigns/{campaign}";
    /// Create or change a campaign.
    PUT_CAMPAIGN = op(Put) "/api/v1/tenants/{tenant}/campaigns/{campaign}";
    /// Stop a campaign.
    DELETE_CAMPAIGN = op(Delete) "/api/v1/tenants/{tenant}/campaigns/{campaign}";
    /// Upload contacts (CSV).
    UPLOAD_CONTACTS = create "/api/v1/tenants/{tenant}/campaigns/{campaign}/contacts";
    /// Results as CSV.
    CAMPAIGN_RESULTS_CSV = op(Get) "/api/v1/tenants/{tenant}/campaigns/{campaign}/results.csv";
    /// API keys.
    API_KEYS = op(Get) "/api/v1/tenants/{tenant}/api-keys";
    /// New API key.
    CREATE_API_KEY = create "/api/v1/tenants/{tenant}/api-keys";
    /// Revoke an API key.
    REVOKE_API_KEY = op(Delete) "/api/v1/tenants/{tenant}/api-keys/{id}";
    /// Members.
    MEMBERS = op(Get) "/api/v1/tenants/{tenant}/members";
    /// Change a member's role.
    CHANGE_ROLE = op(Patch) "/api/v1/tenants/{tenant}/members/{user_id}";
    /// Remove a member.
    REMOVE_MEMBER = op(Delete) "/api/v1/tenants/{tenant}/members/{user_id}";
    /// Pending invitations.
    INVITATIONS = op(Get) "/api/v1/tenants/{tenant}/invitations";
    /// Invite someone.
    INVITE = create "/api/v1/tenants/{tenant}/invitations";
    /// Revoke an invitation.
    REVOKE_INVITATION = op(Delete) "/api/v1/tenants/{tenant}/invitations/{id}";
    /// Call records.
    CALLS = op(Get) "/api/v1/tenants/{tenant}/calls";
    /// One call record.
    CALL = op(Get) "/api/v1/tenants/{tenant}/calls/{id}";
    /// A call's transcript.
    TRANSCRIPT = op(Get) "/api/v1/tenants/{tenant}/calls/{id}/transcript";
    /// This month's usage.
    USAGE = op(Get) "/api/v1/tenants/{tenant}/usage";
    /// Webhook endpoints.
    WEBHOOKS = op(Get) "/api/v1/tenants/{tenant}/webhooks";
    /// New webhook endpoint.
    CREATE_WEBHOOK = create "/api/v1/tenants/{tenant}/webhooks";
    /// Change an endpoint.
    UPDATE_WEBHOOK = op(Patch) "/api/v1/tenants/{tenant}/webhooks/{id}";
    /// Remove an endpoint.
    DELETE_WEBHOOK = op(Delete) "/api/v1/tenants/{tenant}/webhooks/{id}";
    /// New signing secret.
    ROTATE_WEBHOOK_SECRET = op(Post) "/api/v1/tenants/{tenant}/webhooks/{id}/rotate-secret";
    /// Send a test event.
    TEST_WEBHOOK = create "/api/v1/tenants/{tenant}/webhooks/{id}/test";
    /// Recent deliveries.
    WEBHOOK_DELIVERIES = op(Get) "/api/v1/tenants/{tenant}/webhooks/deliveries";
    /// Deliver a message again.
    RESEND_DELIVERY = create "/api/v1/tenants/{tenant}/webhooks/deliveries/{id}/resend";
    /// Stripe Checkout session.
    CHECKOUT = create "/api/v1/tenants/{tenant}/billing/checkout";
    /// Stripe Billing Portal session.
    PORTAL = create "/api/v1/tenants/{tenant}/billing/portal";
    /// Plan and subscription.
    BILLING_STATUS = op(Get) "/api/v1/tenants/{tenant}/billing/status";
}

/// A typed answer beside the gateway's own JSON (which `--json` prints unchanged).
#[derive(Clone, Debug)]
pub struct Answer<T> {
    /// The body as the gateway sent it.
    pub json: Value,
    /// The body as the CLI reads it.
    pub value: T,
}

/// A user-typed id as one path segment: anything but unreserved characters is escaped, so a
/// value cannot leave its segment (`../admin?x` stays one segment).
pub fn segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_cannot_escape_their_segment() {
        assert_eq!(segment("acme"), "acme");
        assert_eq!(segment("../admin?x"), "..%2Fadmin%3Fx");
        assert_eq!(
            AGENT.render(&["acme", "a/b"]),
            "/api/v1/tenants/acme/agents/a%2Fb"
        );
    }
}
