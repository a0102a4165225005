use super::*;

fn request<'a>(verb: &'a str, group: &'a str, resource: &'a str, sub: &'a str) -> Request<'a> {
    Request {
        verb,
        api_group: group,
        resource,
        subresource: sub,
        ..Request::default()
    }
}

#[test]
fn actor_type_by_username() {
    let cases = [
        (
            "system:serviceaccount:kube-system:elastic-agent",
            ActorType::ServiceAccount,
        ),
        (
            "deployer@my-project.iam.gserviceaccount.com",
            ActorType::ServiceAccount,
        ),
        ("system:kube-scheduler", ActorType::System),
        ("system:anonymous", ActorType::System),
        // A group name used as a username is not a service account name.
        ("system:serviceaccounts:default:default", ActorType::System),
        ("alice@example.com", ActorType::User),
        ("aksService", ActorType::User),
    ];
    for (username, expected) in cases {
        assert_eq!(actor_type(username), expected, "{username}");
    }
}

#[test]
fn action_type_table() {
    let cases = [
        (request("create", "", "pods", ""), ActionType::Create),
        (request("get", "", "pods", ""), ActionType::Read),
        (request("list", "", "pods", ""), ActionType::Read),
        (request("watch", "", "pods", ""), ActionType::Read),
        (
            request("update", "apps", "deployments", ""),
            ActionType::Update,
        ),
        (
            request("patch", "apps", "deployments", ""),
            ActionType::Update,
        ),
        (request("delete", "", "secrets", ""), ActionType::Delete),
        (
            request("deletecollection", "", "secrets", ""),
            ActionType::Delete,
        ),
        (request("create", "", "pods", "exec"), ActionType::Execute),
        (request("get", "", "pods", "exec"), ActionType::Execute),
        (request("create", "", "pods", "attach"), ActionType::Execute),
        (
            request("create", "", "pods", "portforward"),
            ActionType::Execute,
        ),
        (request("get", "", "services", "proxy"), ActionType::Execute),
        (
            request("create", "", "pods", "eviction"),
            ActionType::Create,
        ),
        (request("impersonate", "", "users", ""), ActionType::Other),
        (
            request("bind", RBAC_GROUP, "clusterroles", ""),
            ActionType::Other,
        ),
        (
            request("create", RBAC_GROUP, "clusterrolebindings", ""),
            ActionType::Grant,
        ),
        (
            request("update", RBAC_GROUP, "roles", ""),
            ActionType::Grant,
        ),
        (
            request("patch", RBAC_GROUP, "rolebindings", ""),
            ActionType::Grant,
        ),
        (
            request("delete", RBAC_GROUP, "clusterroles", ""),
            ActionType::Revoke,
        ),
        (
            request("deletecollection", RBAC_GROUP, "rolebindings", ""),
            ActionType::Revoke,
        ),
        (request("get", RBAC_GROUP, "roles", ""), ActionType::Read),
        // Only the RBAC group's roles grant permissions.
        (
            request("create", "example.com", "roles", ""),
            ActionType::Create,
        ),
        (request("get", "", "", ""), ActionType::Read),
    ];
    for (request, expected) in cases {
        assert_eq!(action_type(&request), expected, "{request:?}");
    }
}

#[test]
fn action_names() {
    assert_eq!(
        action(&request("create", "", "pods", "")).unwrap(),
        "pods.create"
    );
    assert_eq!(
        action(&request("create", "", "pods", "exec")).unwrap(),
        "pods.exec.create"
    );
    assert_eq!(
        action(&request("get", "", "", "")).unwrap(),
        "nonresource.get"
    );
    let long = "r".repeat(130);
    assert!(action(&request("get", "", &long, "")).is_err());
}

#[test]
fn target_type_and_id() {
    let mut pod = request("get", "", "pods", "");
    pod.namespace = "default";
    pod.name = "web-1";
    let target = target(&pod).unwrap();
    assert_eq!(target.r#type, "pods");
    assert_eq!(target.id, "default/web-1");
    assert_eq!(target.name, "web-1");

    let mut binding = request("create", RBAC_GROUP, "clusterrolebindings", "");
    binding.name = "admins";
    let target = super::target(&binding).unwrap();
    assert_eq!(
        target.r#type,
        "rbac.authorization.k8s.io/clusterrolebindings"
    );
    assert_eq!(target.id, "admins");

    let mut list = request("list", "", "pods", "");
    list.namespace = "default";
    assert_eq!(super::target(&list).unwrap().id, "");

    let mut health = request("get", "", "", "");
    health.path = "/readyz";
    let target = super::target(&health).unwrap();
    assert_eq!(
        (target.r#type.as_str(), target.id.as_str()),
        ("nonresource", "/readyz")
    );
}

#[test]
fn http_outcome_rules() {
    let ok = http_outcome(Some(200), "", false);
    assert_eq!(
        (ok.result, ok.error_code.as_str()),
        (ResultCode::Success as i32, "")
    );

    let upgraded = http_outcome(Some(101), "", false);
    assert_eq!(
        (upgraded.result, upgraded.error_code.as_str()),
        (ResultCode::Success as i32, "")
    );
    let not_modified = http_outcome(Some(304), "", false);
    assert_eq!(
        (not_modified.result, not_modified.error_code.as_str()),
        (ResultCode::Success as i32, "304")
    );

    for code in [401, 403] {
        let denied = http_outcome(Some(code), "forbidden", false);
        assert_eq!(denied.result, ResultCode::Denied as i32);
        assert_eq!(denied.error_code, code.to_string());
        assert_eq!(denied.message, "forbidden");
    }

    for code in [404, 409, 422, 500] {
        assert_eq!(
            http_outcome(Some(code), "", false).result,
            ResultCode::Failure as i32
        );
    }
    assert_eq!(
        http_outcome(Some(200), "", true).result,
        ResultCode::Denied as i32
    );
    assert_eq!(
        http_outcome(None, "", false).result,
        ResultCode::Success as i32
    );

    let long = "é".repeat(3000);
    assert_eq!(http_outcome(Some(500), &long, false).message.len(), 4096);
}
