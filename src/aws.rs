//! AWS configuration: the standard chain (environment, profiles, SSO, `credential_process`, role
//! chains) through `aws-config`, with `--profile`, `--region` and `--endpoint-url` /
//! `AWS_ENDPOINT_URL` on top. Errors say what to run next.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where to talk to AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    /// An endpoint override (a local emulator such as moto_server); `AWS_ENDPOINT_URL` also works.
    pub endpoint_url: Option<String>,
}

pub async fn load(opts: &AwsOptions) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = &opts.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &opts.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(u) = &opts.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    loader.load().await
}

/// An SDK error as one line: the service's code and message when it sent them, otherwise the
/// cause chain (transport and credential failures carry their cause there), made safe to show.
pub fn error_text<E>(e: &E) -> String
where
    E: aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = match e.message() {
        Some(m) => format!("{}: {m}", e.code().unwrap_or("error")),
        None => format!("{}", aws_sdk_cloudwatchlogs::error::DisplayErrorContext(e)),
    };
    crate::safe_text::SafeText::new(&detail).into_string()
}

/// One line an operator can act on, from an SDK error's text: what to do first (a status line
/// may cut the end), then the error itself.
pub fn advice(error: &str, opts: &AwsOptions) -> String {
    let profile = opts.profile.as_deref().unwrap_or("default");
    let lower = error.to_ascii_lowercase();
    let action = if lower.contains("sso") && (lower.contains("expired") || lower.contains("token"))
    {
        format!("The SSO session has expired: run `aws sso login --profile {profile}`")
    } else if [
        "no credentials",
        "credentials provider",
        "credential provider",
        "credentialsnotloaded",
        "no providers in chain",
        "failed to load credentials",
        "loading credentials",
    ]
    .iter()
    .any(|k| lower.contains(k))
    {
        format!(
            "No AWS credentials found: run `aws configure` or `aws sso login --profile {profile}`, or pass --profile"
        )
    } else if lower.contains("accessdenied") || lower.contains("not authorized") {
        "The credentials lack a permission: see the least-privilege policy in assets/iam-tail-policy.json".to_string()
    } else if lower.contains("region") && lower.contains("missing") {
        "No region: pass --region or set AWS_REGION".to_string()
    } else {
        return error.to_string();
    };
    format!("{action} ({error})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_names_the_command_to_run() {
        let o = AwsOptions {
            profile: Some("prod".into()),
            ..AwsOptions::default()
        };
        assert!(
            advice("the SSO session token has expired", &o)
                .contains("aws sso login --profile prod")
        );
        assert!(advice("no providers in chain provided credentials", &o).contains("aws configure"));
        assert_eq!(advice("something else", &o), "something else");
    }
}
