//! The actor of a CloudTrail record, from its `userIdentity`.

use serde::Deserialize;

use crate::event::Limits;
use crate::import::{fields, MapError};
use crate::proto::{Actor, ActorType, Impersonator};

/// The fields of `userIdentity` that the mapping reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UserIdentity {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub principal_id: Option<String>,
    pub arn: Option<String>,
    pub account_id: Option<String>,
    pub access_key_id: Option<String>,
    pub user_name: Option<String>,
    pub invoked_by: Option<String>,
    pub session_context: Option<SessionContext>,
    pub on_behalf_of: Option<OnBehalfOf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SessionContext {
    pub session_issuer: Option<SessionIssuer>,
    pub source_identity: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SessionIssuer {
    pub arn: Option<String>,
    pub user_name: Option<String>,
}

/// The IAM Identity Center user a call was made for.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OnBehalfOf {
    pub user_id: Option<String>,
}

impl UserIdentity {
    /// Returns the session name of an assumed role: the last part of
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`, else the part of
    /// `principalId` after the colon.
    fn session_name(&self) -> Option<&str> {
        let from_arn = self
            .arn
            .as_deref()
            .filter(|arn| arn.contains(":assumed-role/"))
            .and_then(|arn| arn.rsplit('/').next());
        let from_principal = || {
            self.principal_id
                .as_deref()?
                .split_once(':')
                .map(|(_, s)| s)
        };
        from_arn
            .or_else(from_principal)
            .filter(|name| !name.is_empty())
    }

    /// Returns the name that identifies a person, when the identity has one.
    fn person_name(&self) -> Option<&str> {
        let name = match self.kind.as_deref() {
            Some("SAMLUser" | "WebIdentityUser") => self.user_name.as_deref(),
            _ => self.session_name(),
        };
        name.filter(|name| looks_like_email(name))
    }
}

/// Classifies an identity. IAM users, the root user and Identity Center users are
/// people. AWS services and other accounts are the platform. Federated and role
/// sessions are people when the session (or SAML/web identity user) is named by an
/// e-mail address, as Identity Center and most identity providers name them, and
/// workloads otherwise. `Unknown`, which CloudTrail writes for failed sign-ins, is a
/// person; any other type is a workload.
pub(super) fn actor_type(identity: &UserIdentity) -> ActorType {
    match identity.kind.as_deref().unwrap_or("") {
        "IAMUser" | "Root" | "IdentityCenterUser" | "Unknown" => ActorType::User,
        "AWSService" | "AWSAccount" => ActorType::System,
        "AssumedRole" | "FederatedUser" | "WebIdentityUser" | "SAMLUser"
            if identity.person_name().is_some() =>
        {
            ActorType::User
        }
        _ => ActorType::ServiceAccount,
    }
}

/// Returns the actor without address and user agent. The id is the first non-empty of
/// `arn`, `principalId`, `onBehalfOf.userId`, `userName` and `invokedBy`.
/// `sign_in_name` is the user name a sign-in event carries outside `userIdentity`.
pub(super) fn actor(
    identity: &UserIdentity,
    sign_in_name: Option<&str>,
) -> Result<Actor, MapError> {
    let candidates = [
        identity.arn.as_deref(),
        identity.principal_id.as_deref(),
        identity
            .on_behalf_of
            .as_ref()
            .and_then(|o| o.user_id.as_deref()),
        identity.user_name.as_deref(),
        identity.invoked_by.as_deref(),
    ];
    let id = candidates.into_iter().flatten().find(|id| !id.is_empty());
    let issuer_name = identity
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref())
        .and_then(|issuer| issuer.user_name.as_deref());
    let display_name = identity
        .user_name
        .as_deref()
        .or_else(|| identity.person_name())
        .or(issuer_name)
        .or(sign_in_name)
        .unwrap_or("");
    Ok(Actor {
        id: fields::required("userIdentity.arn", id, Limits::ID)?,
        r#type: actor_type(identity) as i32,
        display_name: fields::truncate(display_name, Limits::ID),
        impersonator: impersonator(identity)?,
        ..Actor::default()
    })
}

/// Returns the source identity of a role session as the impersonator. The session
/// issuer is not one: it is the role being acted as (kept in metadata), while the source
/// identity, set when the role was assumed, names the person who really acted.
fn impersonator(identity: &UserIdentity) -> Result<Option<Impersonator>, MapError> {
    let source = identity
        .session_context
        .as_ref()
        .and_then(|c| c.source_identity.as_deref())
        .filter(|s| !s.is_empty());
    let Some(source) = source else {
        return Ok(None);
    };
    Ok(Some(Impersonator {
        id: fields::bounded(
            "userIdentity.sessionContext.sourceIdentity",
            source,
            Limits::ID,
        )?,
        r#type: ActorType::User as i32,
    }))
}

/// Returns true for text shaped like `local@domain.tld`.
fn looks_like_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests;
