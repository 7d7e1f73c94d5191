//! A tenant's named agents and how a call picks the one that answers, shared by the gateway
//! (API, standalone runtime), the operator (the agent ConfigMap) and the runtime.
//!
//! A tenant has a default agent (`Tenant.spec.agent`, named [`DEFAULT_AGENT`]) and up to its
//! plan's `agents` limit minus one named agents (`Tenant.spec.agents`). At call start the
//! runtime picks, first match wins ([`AgentDirectory::pick`]):
//!
//! 0. a test call (the console's "call it now"): the agent it tests, named in the call's
//!    signed call token and passed on by the gateway's media proxy as the stream's `agent`;
//! 1. a campaign call: the agent the campaign names (`Campaign.spec.agent.name`);
//! 2. the agent of the tenant's number on the call: the dialled number of an inbound call,
//!    the calling number of a campaign call (`PhoneNumber.spec.agent`, the number API's `agent`);
//! 3. the default agent.
//!
//! A name that does not (or no longer) exist falls back to the next rule, so deleting an
//! agent never makes a number unanswerable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tenant::AgentSpec;

/// The name of a tenant's default agent (`Tenant.spec.agent`); no named agent may use it.
pub const DEFAULT_AGENT: &str = "default";
/// File of the agent ConfigMap with the default agent (`AgentSpec` JSON).
pub const AGENT_FILE: &str = "agent.json";
/// File of the agent ConfigMap with the named agents (JSON object of name → `AgentSpec`).
pub const AGENTS_FILE: &str = "agents.json";
/// File of the agent ConfigMap with the tenant's numbers (JSON object of E.164 → agent name);
/// written by the operator's PhoneNumber controller.
pub const NUMBERS_FILE: &str = "numbers.json";
/// File of the agent ConfigMap with the campaign scripts (campaign name → `CampaignAgent`).
pub const CAMPAIGNS_FILE: &str = "campaigns.json";
/// Longest agent name (a DNS label).
pub const MAX_AGENT_NAME: usize = 63;

/// Checks a named agent's name: a DNS label (lowercase letters, digits, `-`) of at most 63
/// characters, other than [`DEFAULT_AGENT`]. The error says what is wrong.
pub fn check_agent_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_AGENT_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        return Err(
            "agent names are 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"
                .to_owned(),
        );
    }
    if name == DEFAULT_AGENT {
        return Err(format!(
            "`{DEFAULT_AGENT}` is the tenant's default agent (spec.agent); choose another name"
        ));
    }
    Ok(())
}

/// Everything a runtime needs to pick the agent of a call: the default agent, the named
/// agents, the agent of each number, and the agent each campaign names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentDirectory {
    /// The default agent.
    pub default: AgentSpec,
    /// Named agents by name.
    pub agents: BTreeMap<String, AgentSpec>,
    /// The tenant's numbers (E.164) that name an agent.
    pub numbers: BTreeMap<String, String>,
}

/// What the runtime knows about a call when it starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallFacts<'a> {
    /// Caller (E.164).
    pub from: Option<&'a str>,
    /// Dialled number (E.164).
    pub to: Option<&'a str>,
    /// Whether this is a campaign (outbound) call.
    pub campaign: bool,
    /// The agent the call's campaign names.
    pub campaign_agent: Option<&'a str>,
    /// The agent a test call tests (the stream's `agent` parameter, set by the gateway from
    /// the signed call token).
    pub agent: Option<&'a str>,
}

impl AgentDirectory {
    /// The named agent `name`, or the default agent for [`DEFAULT_AGENT`]; `None` if unknown.
    pub fn get(&self, name: &str) -> Option<&AgentSpec> {
        if name == DEFAULT_AGENT {
            Some(&self.default)
        } else {
            self.agents.get(name)
        }
    }

    /// The agent that answers a call (see the module documentation), with its name.
    pub fn pick(&self, call: CallFacts<'_>) -> (&str, &AgentSpec) {
        pick(&self.default, &self.agents, &self.numbers, call)
    }
}

/// The agent that answers a call, with its name: [`AgentDirectory::pick`] on borrowed parts.
pub fn pick<'a>(
    default: &'a AgentSpec,
    agents: &'a NamedAgents,
    numbers: &BTreeMap<String, String>,
    call: CallFacts<'_>,
) -> (&'a str, &'a AgentSpec) {
    // The tenant's own number on the call: dialled when inbound, calling when outbound.
    let own_number = if call.campaign { call.from } else { call.to };
    let by_number = own_number.and_then(|n| numbers.get(n)).map(String::as_str);
    if call.agent == Some(DEFAULT_AGENT) {
        return (DEFAULT_AGENT, default);
    }
    for name in [call.agent, call.campaign_agent, by_number]
        .into_iter()
        .flatten()
    {
        if let Some((name, agent)) = agents.get_key_value(name) {
            return (name, agent);
        }
    }
    (DEFAULT_AGENT, default)
}

/// A Tenant's numbers as the runtime's `numbers.json`: E.164 → agent name, for the numbers
/// that name an agent.
pub fn number_agents<'a>(
    numbers: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    numbers
        .into_iter()
        .filter_map(|(e164, agent)| Some((e164.to_owned(), agent?.to_owned())))
        .collect()
}

/// The JSON of a named-agent map, as the ConfigMap and the gateway store it.
pub type NamedAgents = BTreeMap<String, AgentSpec>;

/// Deserialises `agents.json` / a stored map, tolerating an empty text as "no agents".
pub fn parse_named_agents(text: &str) -> Result<NamedAgents, serde_json::Error> {
    if text.trim().is_empty() {
        return Ok(NamedAgents::new());
    }
    serde_json::from_str(text)
}

/// Serialisable form of one agent with its name (API answers, listings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedAgent {
    /// The agent's name ([`DEFAULT_AGENT`] for the default agent).
    pub name: String,
    /// Its configuration.
    #[serde(flatten)]
    pub spec: AgentSpec,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(greeting: &str) -> AgentSpec {
        AgentSpec {
            greeting: greeting.into(),
            ..AgentSpec::default()
        }
    }

    #[test]
    fn names_are_dns_labels_other_than_default() {
        for ok in ["sales", "support-2", "a", &"x".repeat(63)] {
            assert_eq!(check_agent_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Sales", "-a", "a-", "a_b", "a.b", &"x".repeat(64)] {
            assert!(check_agent_name(bad).is_err(), "{bad}");
        }
        assert!(check_agent_name("default").unwrap_err().contains("default"));
    }

    #[test]
    fn campaign_then_number_then_default() {
        let directory = AgentDirectory {
            default: agent("default"),
            agents: BTreeMap::from([
                ("sales".to_owned(), agent("sales")),
                ("survey".to_owned(), agent("survey")),
            ]),
            numbers: BTreeMap::from([
                ("+15550100".to_owned(), "sales".to_owned()),
                ("+15550101".to_owned(), "gone".to_owned()),
            ]),
        };
        let greeting = |facts| directory.pick(facts).1.greeting.clone();
        let inbound = |to| CallFacts {
            from: Some("+4930123"),
            to: Some(to),
            ..CallFacts::default()
        };
        assert_eq!(greeting(inbound("+15550100")), "sales");
        assert_eq!(greeting(inbound("+15550101")), "default", "unknown agent");
        assert_eq!(greeting(inbound("+15550199")), "default", "no agent named");
        // Outbound: the calling number counts, the contact's number does not.
        let outbound = |agent| CallFacts {
            from: Some("+15550100"),
            to: Some("+15550101"),
            campaign: true,
            campaign_agent: agent,
            agent: None,
        };
        assert_eq!(greeting(outbound(Some("survey"))), "survey");
        assert_eq!(greeting(outbound(None)), "sales");
        assert_eq!(greeting(outbound(Some("gone"))), "sales");
        assert_eq!(directory.pick(outbound(None)).0, "sales");
        assert_eq!(directory.get(DEFAULT_AGENT), Some(&directory.default));
    }

    #[test]
    fn a_test_call_gets_the_agent_it_tests() {
        let directory = AgentDirectory {
            default: agent("default"),
            agents: BTreeMap::from([
                ("sales".to_owned(), agent("sales")),
                ("survey".to_owned(), agent("survey")),
            ]),
            numbers: BTreeMap::from([("+15550100".to_owned(), "sales".to_owned())]),
        };
        let test = |name| CallFacts {
            to: Some("+15550100"),
            agent: Some(name),
            ..CallFacts::default()
        };
        assert_eq!(directory.pick(test("survey")).0, "survey");
        // The default agent even on a number another agent answers.
        assert_eq!(directory.pick(test(DEFAULT_AGENT)).0, DEFAULT_AGENT);
        assert_eq!(
            directory.pick(test("gone")).0,
            "sales",
            "unknown: next rule"
        );
    }
}
