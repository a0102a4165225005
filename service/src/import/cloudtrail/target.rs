//! The target of a CloudTrail record: the first entry of `resources`, else the first
//! request parameter known to name the object acted on.

use serde_json::{Map, Value};

use crate::event::Limits;
use crate::import::{fields, MapError};
use crate::proto::Target;

/// Request parameters that name the target, tried in order, with the CloudFormation
/// type they name. A service, when given, limits the rule to that `eventSource`, because
/// a parameter such as `groupName` means an IAM group in IAM and a security group in EC2.
/// The user, group or role comes before the policy so that `AttachUserPolicy` targets
/// the user whose permissions change.
const PARAMETERS: [(Option<&str>, &str, &str); 21] = [
    (Some("ec2"), "groupId", "AWS::EC2::SecurityGroup"),
    (Some("ec2"), "groupName", "AWS::EC2::SecurityGroup"),
    (None, "userName", "AWS::IAM::User"),
    (None, "groupName", "AWS::IAM::Group"),
    (None, "roleName", "AWS::IAM::Role"),
    (None, "roleArn", "AWS::IAM::Role"),
    (None, "policyArn", "AWS::IAM::Policy"),
    (None, "instanceId", "AWS::EC2::Instance"),
    (None, "snapshotId", "AWS::EC2::Snapshot"),
    (None, "keyName", "AWS::EC2::KeyPair"),
    (None, "functionName", "AWS::Lambda::Function"),
    (None, "secretId", "AWS::SecretsManager::Secret"),
    (None, "secretIdList", "AWS::SecretsManager::Secret"),
    (None, "keyId", "AWS::KMS::Key"),
    (None, "modelId", "AWS::Bedrock::Model"),
    (Some("ssm"), "target", "AWS::SSM::ManagedInstance"),
    (Some("ssm"), "documentName", "AWS::SSM::Document"),
    (Some("ssm"), "name", "AWS::SSM::Parameter"),
    (Some("cloudtrail"), "name", "AWS::CloudTrail::Trail"),
    (None, "bucketName", "AWS::S3::Bucket"),
    (None, "trailName", "AWS::CloudTrail::Trail"),
];

/// Returns the target, or `None` when the record names none (`GetCallerIdentity`,
/// `ConsoleLogin`). `service` is `eventSource` without `.amazonaws.com`.
pub(super) fn target(
    resources: Option<&Value>,
    parameters: Option<&Value>,
    service: &str,
) -> Result<Option<Target>, MapError> {
    let named = parameters
        .and_then(Value::as_object)
        .and_then(|parameters| parameter_target(parameters, service));
    let first = resources
        .and_then(Value::as_array)
        .and_then(|list| list.first());
    let arn = first.and_then(|r| r.get("ARN")).and_then(Value::as_str);
    if let Some(arn) = arn.filter(|arn| !arn.is_empty()) {
        // Some records, such as SSM GetParameter, list the ARN without its type.
        let kind = first.and_then(|r| r.get("type")).and_then(Value::as_str);
        let kind = kind
            .filter(|k| !k.is_empty())
            .or(named.as_ref().map(|(kind, _)| *kind));
        return build("resources[0].ARN", kind.unwrap_or(""), arn).map(Some);
    }
    match named {
        Some((kind, id)) => build("requestParameters", kind, &id).map(Some),
        None => Ok(None),
    }
}

/// Returns the type and id of the object the request parameters name.
fn parameter_target(
    parameters: &Map<String, Value>,
    service: &str,
) -> Option<(&'static str, String)> {
    let text = |name: &str| parameters.get(name).and_then(first_text);
    if let (Some(bucket), Some(key)) = (text("bucketName"), text("key")) {
        return Some(("AWS::S3::Object", format!("{bucket}/{key}")));
    }
    if service == "ssm" {
        if let Some(instance) = ssm_instance(parameters) {
            return Some(("AWS::SSM::ManagedInstance", instance.to_owned()));
        }
    }
    PARAMETERS
        .iter()
        .filter(|(only_service, _, _)| only_service.is_none_or(|only| only == service))
        .find_map(|(_, parameter, kind)| Some((*kind, text(parameter)?.to_owned())))
}

/// Returns the first instance an SSM command runs on, from `instanceIds` or from
/// `targets` entries keyed `InstanceIds`; tag targets name no instance.
fn ssm_instance(parameters: &Map<String, Value>) -> Option<&str> {
    if let Some(instance) = parameters.get("instanceIds").and_then(first_text) {
        return Some(instance);
    }
    let targets = parameters.get("targets")?.as_array()?;
    targets
        .iter()
        .filter(|t| {
            t.get("key")
                .and_then(Value::as_str)
                .is_some_and(|k| k.eq_ignore_ascii_case("instanceids"))
        })
        .find_map(|t| t.get("values").and_then(first_text))
}

/// Returns a string, or the first string of an array such as `secretIdList`.
fn first_text(value: &Value) -> Option<&str> {
    match value {
        Value::String(text) => Some(text.as_str()).filter(|t| !t.is_empty()),
        Value::Array(items) => items
            .iter()
            .find_map(Value::as_str)
            .filter(|t| !t.is_empty()),
        _ => None,
    }
}

fn build(field: &'static str, kind: &str, id: &str) -> Result<Target, MapError> {
    Ok(Target {
        r#type: fields::bounded("resources[0].type", kind, Limits::NAME)?,
        id: fields::bounded(field, id, Limits::ID)?,
        name: fields::truncate(short_name(id), Limits::ID),
    })
}

/// Returns the readable end of an id. For an ARN it is the resource part after its type,
/// such as `ReadOnlyAccess` of `arn:aws:iam::aws:policy/ReadOnlyAccess` or
/// `MySecret-a1b2` of `arn:aws:secretsmanager:…:secret:MySecret-a1b2`. For an S3 object
/// it is the last path segment of the key, and any other id is its own name.
fn short_name(id: &str) -> &str {
    let resource = match id.strip_prefix("arn:") {
        Some(rest) => rest.splitn(5, ':').nth(4).unwrap_or(rest),
        None => id,
    };
    if let Some((_, last)) = resource.rsplit_once('/') {
        return last;
    }
    match resource.split_once(':') {
        Some((_, name)) if id.starts_with("arn:") => name,
        _ => resource,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn first_resource_wins() {
        let list = json!([
            {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::bucket-1/logs/a.json"},
            {"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::bucket-1"}
        ]);
        let target = target(Some(&list), Some(&json!({"bucketName": "bucket-1"})), "s3")
            .unwrap()
            .unwrap();
        assert_eq!(target.r#type, "AWS::S3::Object");
        assert_eq!(target.id, "arn:aws:s3:::bucket-1/logs/a.json");
        assert_eq!(target.name, "a.json");
    }

    #[test]
    fn parameters_when_no_resources() {
        let cases = [
            (
                "iam",
                json!({"groupName": "admins", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
                "AWS::IAM::Group",
                "admins",
            ),
            (
                "iam",
                json!({"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/Admin"}),
                "AWS::IAM::User",
                "bob",
            ),
            (
                "ec2",
                json!({"groupId": "sg-0f63", "ipPermissions": {}}),
                "AWS::EC2::SecurityGroup",
                "sg-0f63",
            ),
            (
                "ec2",
                json!({"instanceId": "i-003e"}),
                "AWS::EC2::Instance",
                "i-003e",
            ),
            (
                "secretsmanager",
                json!({"secretIdList": ["arn:aws:secretsmanager:us-east-1:1:secret:A-x1", "B"]}),
                "AWS::SecretsManager::Secret",
                "arn:aws:secretsmanager:us-east-1:1:secret:A-x1",
            ),
            (
                "ssm",
                json!({"name": "/app/db-url"}),
                "AWS::SSM::Parameter",
                "/app/db-url",
            ),
            (
                "cloudtrail",
                json!({"name": "main-trail"}),
                "AWS::CloudTrail::Trail",
                "main-trail",
            ),
            (
                "s3",
                json!({"bucketName": "b", "key": "dir/file.txt"}),
                "AWS::S3::Object",
                "b/dir/file.txt",
            ),
            (
                "ssm",
                json!({"instanceIds": [], "targets": [{"key": "instanceids", "values": ["i-0ddf"]}], "documentName": "Doc"}),
                "AWS::SSM::ManagedInstance",
                "i-0ddf",
            ),
            (
                "ssm",
                json!({"targets": [{"key": "tag:Env", "values": ["prod"]}], "documentName": "Doc"}),
                "AWS::SSM::Document",
                "Doc",
            ),
        ];
        for (service, parameters, kind, id) in cases {
            let target = target(None, Some(&parameters), service).unwrap().unwrap();
            assert_eq!(target.r#type, kind, "{parameters}");
            assert_eq!(target.id, id, "{parameters}");
        }
    }

    #[test]
    fn resource_without_type_takes_parameter_type() {
        let list =
            json!([{"ARN": "arn:aws:ssm:us-east-1:1:parameter/app/db-url", "accountId": "1"}]);
        let target = target(Some(&list), Some(&json!({"name": "/app/db-url"})), "ssm")
            .unwrap()
            .unwrap();
        assert_eq!(target.r#type, "AWS::SSM::Parameter");
        assert_eq!(target.id, "arn:aws:ssm:us-east-1:1:parameter/app/db-url");
    }

    #[test]
    fn no_target() {
        assert_eq!(target(None, None, "sts").unwrap(), None);
        assert_eq!(
            target(Some(&json!([])), Some(&Value::Null), "sts").unwrap(),
            None
        );
        // `name` means a parameter only in SSM and a trail only in CloudTrail.
        assert_eq!(
            target(None, Some(&json!({"name": "x"})), "iam").unwrap(),
            None
        );
    }

    #[test]
    fn too_long_id_is_an_error() {
        let parameters = json!({"userName": "u".repeat(256)});
        assert!(matches!(
            target(None, Some(&parameters), "iam"),
            Err(MapError::TooLong { max: 255, .. })
        ));
    }

    #[test]
    fn short_names() {
        assert_eq!(
            short_name("arn:aws:iam::aws:policy/ReadOnlyAccess"),
            "ReadOnlyAccess"
        );
        assert_eq!(
            short_name("arn:aws:secretsmanager:us-east-1:1:secret:MySecret-a1b2"),
            "MySecret-a1b2"
        );
        assert_eq!(short_name("arn:aws:s3:::bucket"), "bucket");
        assert_eq!(
            short_name("arn:aws:lambda:us-east-1:1:function:fn:2"),
            "fn:2"
        );
        assert_eq!(
            short_name("arn:aws:ssm:us-east-1:1:parameter/inspector/paths"),
            "paths"
        );
        assert_eq!(short_name("TEST-GROUP"), "TEST-GROUP");
        assert_eq!(short_name("b/dir/file.txt"), "file.txt");
    }
}
