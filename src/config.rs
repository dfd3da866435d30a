//! Configuration: TOML in the platform config dir, `--config FILE` or `STORMWATCH_CONFIG`, with
//! environment overrides for the paths tests and scripts need.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The default configuration, also the documentation of every key.
pub const DEFAULT_TOML: &str = include_str!("../assets/default-config.toml");

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(
        "cannot read config {path}: {source}. Check the path given with --config or STORMWATCH_CONFIG."
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is not valid: {source}. Compare it with `stormwatch config default`.")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error(
        "no home directory to put the data dir in; set STORMWATCH_DATA_DIR or data_dir in the config"
    )]
    NoDataDir,
    #[error(
        "parse.flow_formats[{group}] = '{spec}' names a field VPC Flow Logs do not have; use the LogFormat DescribeFlowLogs returns"
    )]
    FlowFormat { group: String, spec: String },
    #[error(
        "actions.{key} names '{id}', which is not in the action catalog; see `stormwatch config default` for the ids"
    )]
    UnknownAction { key: String, id: String },
    #[error("actions.operator_ips has '{0}', which is not an IP address")]
    OperatorIp(String),
    #[error(
        "actions.max_actions and actions.rate_window_minutes must be at least 1; to stop every action set actions.read_only = true"
    )]
    ActionLimits,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: String,
    pub engine: EngineConfig,
    pub demo: DemoConfig,
    pub parse: ParseConfig,
    pub ui: UiConfig,
    pub actions: ActionsConfig,
    pub analyst: AnalystConfig,
}

/// `[analyst]`: the local model that explains incidents.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnalystConfig {
    /// A GGUF file; empty: the default model if `stormwatch model pull` fetched it.
    pub model: String,
    /// Hard limit per answer, in seconds.
    pub timeout_secs: u64,
    /// Threads the model uses; 0: every core.
    pub threads: usize,
    /// Tokens an answer may have.
    pub max_tokens: usize,
    /// Context size in tokens.
    pub context: u32,
    /// Token budget of the incident's evidence in a prompt.
    pub budget: usize,
    /// `--no-model`: the rule-based analyst only.
    #[serde(skip)]
    pub off: bool,
}

impl Default for AnalystConfig {
    fn default() -> Self {
        AnalystConfig {
            model: String::new(),
            timeout_secs: 20,
            threads: 0,
            max_tokens: 320,
            context: 2048,
            budget: crate::analyst::pack::DEFAULT_BUDGET,
            off: false,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ParseConfig {
    /// Log group → VPC Flow Logs format string.
    pub flow_formats: std::collections::BTreeMap<String, String>,
}

impl Config {
    /// The engine's options as configured; `tail_lines` is how many lines the caller shows.
    pub fn engine_options(
        &self,
        tail_lines: usize,
    ) -> Result<crate::engine::EngineOptions, ConfigError> {
        Ok(crate::engine::EngineOptions {
            threshold: self.engine.threshold,
            tail_lines,
            flow_formats: self.parse.flow_formats()?,
            forest: self.engine.forest,
            alarms_per_hour: self.engine.alarms_per_hour,
        })
    }
}

impl ParseConfig {
    /// The configured flow formats, each checked; a bad one is an error that names it.
    pub fn flow_formats(&self) -> Result<Vec<(String, crate::parse::FlowFormat)>, ConfigError> {
        self.flow_formats
            .iter()
            .map(|(group, spec)| {
                crate::parse::FlowFormat::parse(spec)
                    .map(|f| (group.clone(), f))
                    .ok_or_else(|| ConfigError::FlowFormat {
                        group: group.clone(),
                        spec: spec.clone(),
                    })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    pub threshold: f64,
    /// Score each source's minutes with the isolation forest as well.
    pub forest: bool,
    /// Incidents one source may open in an hour before its threshold rises.
    pub alarms_per_hour: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    pub seed: u64,
    pub speed: f64,
    pub baseline_hours: f64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    pub tail_lines: usize,
    pub color: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            threshold: 0.7,
            forest: true,
            alarms_per_hour: 4,
        }
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 7,
            speed: 30.0,
            baseline_hours: 2.0,
        }
    }
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            tail_lines: 5000,
            color: true,
        }
    }
}

/// `[actions]`: what remediation may do, and with what.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ActionsConfig {
    /// Catalog ids this profile may run.
    pub allow: Vec<String>,
    /// Per AWS profile or account id: replaces `allow` there.
    pub allow_by_profile: std::collections::BTreeMap<String, Vec<String>>,
    pub read_only: bool,
    pub max_actions: usize,
    pub rate_window_minutes: u32,
    pub notify_unattended: bool,
    pub sns_topic_arn: String,
    pub ssm_documents: Vec<String>,
    pub lambda_throttle_to: u32,
    pub operator_ips: Vec<String>,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            allow: crate::action::catalog::CATALOG
                .iter()
                .map(|k| k.id().to_string())
                .collect(),
            allow_by_profile: Default::default(),
            read_only: false,
            max_actions: 5,
            rate_window_minutes: 10,
            notify_unattended: false,
            sns_topic_arn: String::new(),
            ssm_documents: Vec::new(),
            lambda_throttle_to: 0,
            operator_ips: Vec::new(),
        }
    }
}

impl ActionsConfig {
    fn kinds(
        key: &str,
        ids: &[String],
    ) -> Result<std::collections::BTreeSet<crate::action::catalog::ActionKind>, ConfigError> {
        ids.iter()
            .map(|id| {
                crate::action::catalog::ActionKind::from_id(id).ok_or_else(|| {
                    ConfigError::UnknownAction {
                        key: key.to_string(),
                        id: id.clone(),
                    }
                })
            })
            .collect()
    }

    /// The gate's policy for an AWS profile (or account id); every id is checked, including
    /// other profiles', so a typo anywhere is found at start.
    pub fn policy(
        &self,
        profile: Option<&str>,
    ) -> Result<crate::action::policy::Policy, ConfigError> {
        if self.max_actions == 0 || self.rate_window_minutes == 0 {
            return Err(ConfigError::ActionLimits);
        }
        let mut allowed = Self::kinds("allow", &self.allow)?;
        for (name, ids) in &self.allow_by_profile {
            let kinds = Self::kinds(&format!("allow_by_profile.{name}"), ids)?;
            if profile == Some(name.as_str()) {
                allowed = kinds;
            }
        }
        Ok(crate::action::policy::Policy {
            allowed,
            read_only: self.read_only,
            max_actions: self.max_actions,
            rate_window_ms: i64::from(self.rate_window_minutes) * 60_000,
            notify_unattended: self.notify_unattended,
        })
    }

    pub fn proposal_config(&self) -> crate::action::propose::ProposalConfig {
        crate::action::propose::ProposalConfig {
            sns_topic_arn: Some(self.sns_topic_arn.clone()).filter(|t| !t.is_empty()),
            ssm_documents: self.ssm_documents.clone(),
            lambda_throttle_to: self.lambda_throttle_to,
        }
    }

    pub fn operator_ips(&self) -> Result<Vec<std::net::IpAddr>, ConfigError> {
        self.operator_ips
            .iter()
            .map(|s| s.parse().map_err(|_| ConfigError::OperatorIp(s.clone())))
            .collect()
    }
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "stormwatch")
}

/// The config file used when neither `--config` nor `STORMWATCH_CONFIG` names one.
pub fn default_config_path() -> Option<PathBuf> {
    project_dirs().map(|d| d.config_dir().join("config.toml"))
}

impl Config {
    /// Loads `explicit` (from `--config`), else `STORMWATCH_CONFIG`, else the default path if it
    /// exists, else the built-in defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let from_env = std::env::var_os("STORMWATCH_CONFIG").map(PathBuf::from);
        let path = match explicit.map(Path::to_path_buf).or(from_env) {
            Some(p) => Some(p),
            None => default_config_path().filter(|p| p.exists()),
        };
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let cfg = Self::parse(&text).map_err(|source| ConfigError::Parse {
            path,
            source: Box::new(source),
        })?;
        // Mistakes that only matter once an action is proposed are reported at start, when
        // they are cheap to fix, not in the middle of an incident.
        cfg.actions.policy(None)?;
        cfg.actions.operator_ips()?;
        Ok(cfg)
    }

    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// `STORMWATCH_CACHE_DIR`, else the platform cache dir: downloaded models, nothing that
    /// cannot be fetched again.
    pub fn cache_dir(&self) -> Result<PathBuf, ConfigError> {
        if let Some(d) = std::env::var_os("STORMWATCH_CACHE_DIR").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(d));
        }
        project_dirs()
            .map(|d| d.cache_dir().to_path_buf())
            .ok_or(ConfigError::NoDataDir)
    }

    /// `STORMWATCH_DATA_DIR`, else `data_dir` from the config, else the platform data dir.
    pub fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        if let Some(d) = std::env::var_os("STORMWATCH_DATA_DIR").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(d));
        }
        if !self.data_dir.is_empty() {
            return Ok(PathBuf::from(&self.data_dir));
        }
        project_dirs()
            .map(|d| d.data_dir().to_path_buf())
            .ok_or(ConfigError::NoDataDir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_matches_built_in_default() {
        assert_eq!(Config::parse(DEFAULT_TOML).unwrap(), Config::default());
    }

    #[test]
    fn flow_formats_are_checked() {
        let c = Config::parse(
            "[parse]\nflow_formats = { \"/vpc/a\" = \"${version} ${srcaddr} ${action}\" }\n",
        )
        .unwrap();
        assert_eq!(c.parse.flow_formats().unwrap().len(), 1);
        let bad = Config::parse("[parse]\nflow_formats = { \"/vpc/a\" = \"version nonsense\" }\n")
            .unwrap();
        assert!(matches!(
            bad.parse.flow_formats(),
            Err(ConfigError::FlowFormat { .. })
        ));
    }

    #[test]
    fn action_ids_and_operator_ips_are_checked() {
        let c = Config::parse(
            "[actions]\nallow = [\"sns.notify\"]\nallow_by_profile = { prod = [] }\noperator_ips = [\"198.51.100.20\"]\n",
        )
        .unwrap();
        let everywhere = c.actions.policy(None).unwrap();
        assert_eq!(everywhere.allowed.len(), 1);
        assert!(c.actions.policy(Some("prod")).unwrap().allowed.is_empty());
        assert_eq!(c.actions.operator_ips().unwrap().len(), 1);
        let typo =
            Config::parse("[actions]\nallow_by_profile = { dev = [\"ec2.terminate\"] }\n").unwrap();
        let err = typo.actions.policy(None).unwrap_err().to_string();
        assert!(
            err.contains("ec2.terminate") && err.contains("allow_by_profile.dev"),
            "{err}"
        );
        let no_window = Config::parse("[actions]\nrate_window_minutes = 0\n").unwrap();
        assert!(matches!(
            no_window.actions.policy(None),
            Err(ConfigError::ActionLimits)
        ));
        let bad_ip = Config::parse("[actions]\noperator_ips = [\"home\"]\n").unwrap();
        assert!(bad_ip.actions.operator_ips().is_err());
    }

    #[test]
    fn partial_files_keep_defaults_and_typos_are_errors() {
        let c = Config::parse("[demo]\nseed = 3\n").unwrap();
        assert_eq!(c.demo.seed, 3);
        assert_eq!(c.engine, EngineConfig::default());
        assert!(Config::parse("[demo]\nsede = 3\n").is_err());
    }

    #[test]
    fn a_bad_action_setting_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[actions]\nallow = [\"ec2.terminate_instances\"]\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("ec2.terminate_instances"), "{err}");
        std::fs::write(&path, "[actions]\noperator_ips = [\"my laptop\"]\n").unwrap();
        assert!(Config::load(Some(&path)).is_err());
        std::fs::write(&path, "[actions]\nallow = [\"sns.notify\"]\n").unwrap();
        assert!(Config::load(Some(&path)).is_ok());
    }
}
