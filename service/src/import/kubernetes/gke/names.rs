//! Parsing of the GKE `methodName` and `resourceName` of a Kubernetes request.

/// API groups that GKE method names write without their `.k8s.io` suffix, like
/// Kubernetes itself does.
const LEGACY_GROUPS: [&str; 5] = ["apps", "autoscaling", "batch", "extensions", "policy"];

/// The parts of a GKE method name.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Method<'a> {
    /// API group as Kubernetes spells it, such as `rbac.authorization.k8s.io`.
    pub group: String,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub verb: &'a str,
}

/// Parses `io.k8s.<group…>.<version>.<resource>[.<subresource>].<verb>`, or
/// `io.k8s.<verb>` for a non-resource URL. The group is written reversed without
/// `.k8s.io` (`io.k8s.authorization.rbac.v1…` is `rbac.authorization.k8s.io`) and the
/// core group is `core`.
pub(super) fn parse_method(method: &str) -> Option<Method<'_>> {
    let parts: Vec<&str> = method.strip_prefix("io.k8s.")?.split('.').collect();
    let Some(version) = parts.iter().position(|part| is_version(part)) else {
        return match parts.as_slice() {
            [verb] if !verb.is_empty() => Some(Method {
                group: String::new(),
                resource: "",
                subresource: "",
                verb,
            }),
            _ => None,
        };
    };
    let (resource, subresource, verb) = match &parts[version + 1..] {
        [resource, verb] => (*resource, "", *verb),
        [resource, subresource, verb] => (*resource, *subresource, *verb),
        _ => return None,
    };
    let group = match &parts[..version] {
        [] | ["core"] => String::new(),
        [legacy] if LEGACY_GROUPS.contains(legacy) => (*legacy).to_owned(),
        reversed => {
            let mut segments: Vec<&str> = reversed.to_vec();
            segments.reverse();
            format!("{}.k8s.io", segments.join("."))
        }
    };
    Some(Method {
        group,
        resource,
        subresource,
        verb,
    })
}

/// Returns true for an API version such as `v1`, `v1beta1` or `v2alpha3`.
fn is_version(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('v') else {
        return false;
    };
    rest.starts_with(|c: char| c.is_ascii_digit())
        && rest.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Location of an object as `resourceName` gives it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Location<'a> {
    pub group: Option<&'a str>,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// Parses `<group>/<version>[/namespaces/<namespace>]/<resource>[/<name>[/<subresource>]]`.
pub(super) fn locate(resource_name: &str) -> Location<'_> {
    let segments: Vec<&str> = resource_name.split('/').collect();
    if segments.len() < 3 || !is_version(segments[1]) {
        return Location::default();
    }
    let group = match segments[0] {
        "core" => "",
        group => group,
    };
    let (namespace, rest) = match &segments[2..] {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (*namespace, rest),
        rest => ("", rest),
    };
    Location {
        group: Some(group),
        namespace,
        name: rest.get(1).copied().unwrap_or(""),
    }
}
