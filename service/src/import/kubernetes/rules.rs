//! Mapping rules shared by the raw audit event and the GKE envelope: actor type, action
//! name, action type, target and HTTP outcome.

use crate::event::Limits;
use crate::import::{fields, MapError};
use crate::proto::{ActionType, ActorType, Outcome, Result as ResultCode, Target};

/// Subresources that run something inside a pod or reach through the API server to it.
const EXECUTE_SUBRESOURCES: [&str; 4] = ["exec", "attach", "portforward", "proxy"];

/// RBAC objects whose creation or change grants permissions.
const RBAC_RESOURCES: [&str; 4] = [
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
];

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// One Kubernetes API request as the mapping needs it, filled from either the raw audit
/// event or a GKE method name. `resource` is empty for a non-resource URL such as
/// `/healthz`, which `path` then holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    pub verb: &'a str,
    pub api_group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub path: &'a str,
}

/// Classifies a Kubernetes username. Service accounts are `system:serviceaccount:<ns>:<name>`
/// in Kubernetes and `<name>@<project>.iam.gserviceaccount.com` on GKE; every other
/// `system:` name is a component of the platform.
pub(crate) fn actor_type(username: &str) -> ActorType {
    if username.starts_with("system:serviceaccount:") || username.ends_with(".gserviceaccount.com")
    {
        ActorType::ServiceAccount
    } else if username.starts_with("system:") {
        ActorType::System
    } else {
        ActorType::User
    }
}

/// Returns the dotted action, `<resource>[.<subresource>].<verb>` or `nonresource.<verb>`.
pub(crate) fn action(request: &Request) -> Result<String, MapError> {
    let action = match (request.resource, request.subresource) {
        ("", _) => format!("nonresource.{}", request.verb),
        (resource, "") => format!("{resource}.{}", request.verb),
        (resource, subresource) => format!("{resource}.{subresource}.{}", request.verb),
    };
    fields::bounded("objectRef.resource", &action, Limits::NAME)
}

/// Returns the action type of a request. Subresources that execute take precedence over
/// the verb because `pods/exec` is a `create` or `get` on the wire.
pub(crate) fn action_type(request: &Request) -> ActionType {
    if EXECUTE_SUBRESOURCES.contains(&request.subresource) {
        return ActionType::Execute;
    }
    let rbac = request.api_group == RBAC_GROUP && RBAC_RESOURCES.contains(&request.resource);
    match request.verb {
        "create" | "update" | "patch" if rbac => ActionType::Grant,
        "delete" | "deletecollection" if rbac => ActionType::Revoke,
        "create" => ActionType::Create,
        "get" | "list" | "watch" => ActionType::Read,
        "update" | "patch" => ActionType::Update,
        "delete" | "deletecollection" => ActionType::Delete,
        // "impersonate" and anything unknown such as "bind" or "escalate".
        _ => ActionType::Other,
    }
}

/// Returns the target: `<apiGroup>/<resource>` (just `<resource>` for the core group)
/// with id `<namespace>/<name>`. A request on a collection, such as a list, has no name
/// and so an empty id. Non-resource URLs get type `nonresource` and the path, cut to
/// the id limit because a scanner can send any path.
pub(crate) fn target(request: &Request) -> Result<Target, MapError> {
    if request.resource.is_empty() {
        let path = fields::truncate(request.path, Limits::ID);
        return Ok(Target {
            r#type: "nonresource".to_owned(),
            id: path.clone(),
            name: path,
        });
    }
    let kind = match request.api_group {
        "" => request.resource.to_owned(),
        group => format!("{group}/{}", request.resource),
    };
    let id = match (request.namespace, request.name) {
        (_, "") => String::new(),
        ("", name) => name.to_owned(),
        (namespace, name) => format!("{namespace}/{name}"),
    };
    Ok(Target {
        r#type: fields::bounded("objectRef.resource", &kind, Limits::NAME)?,
        id: fields::bounded("objectRef.name", &id, Limits::ID)?,
        name: fields::truncate(request.name, Limits::ID),
    })
}

/// Returns the outcome of an HTTP status: below 400 is success, 401 and 403 are denied,
/// the rest failed. `forbidden` is the authorizer's `forbid` decision, which denies
/// whatever the code. Informational and 2xx codes are not errors, because a successful
/// `exec` upgrades its connection with 101.
pub(crate) fn http_outcome(code: Option<i32>, message: &str, forbidden: bool) -> Outcome {
    let result = match code {
        _ if forbidden => ResultCode::Denied,
        Some(401 | 403) => ResultCode::Denied,
        Some(code) if code >= 400 => ResultCode::Failure,
        _ => ResultCode::Success,
    };
    let error_code = match code {
        Some(code) if code >= 300 => code.to_string(),
        _ => String::new(),
    };
    Outcome {
        result: result as i32,
        error_code,
        message: fields::truncate(message, Limits::MESSAGE),
    }
}

#[cfg(test)]
mod tests;
