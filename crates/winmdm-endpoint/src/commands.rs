//! Commands as the admin API and the configuration write them (JSON), and their SyncML.

use serde::{Deserialize, Serialize};
use winmdm_syncml::Command;

/// The most nodes one command may name, and the deepest `Atomic`/`Sequence` nesting.
const MAX_TARGETS: usize = 64;
const MAX_DEPTH: usize = 4;

/// One OMA-DM command, in JSON:
/// `{"verb":"Get","targets":["./DevDetail/SwV"]}`,
/// `{"verb":"Replace","target":"./Vendor/MSFT/…","format":"int","data":"8"}`,
/// `{"verb":"Atomic","commands":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", deny_unknown_fields)]
pub enum CommandSpec {
    /// `Get` of nodes.
    Get {
        /// The nodes.
        targets: Vec<String>,
    },
    /// `Add` of a node.
    Add {
        /// The node.
        target: String,
        /// `chr`, `int`, `bool`, `b64`, `xml`, …
        format: String,
        /// The value.
        data: String,
    },
    /// `Replace` of a node.
    Replace {
        /// The node.
        target: String,
        /// `chr`, `int`, `bool`, `b64`, `xml`, …
        format: String,
        /// The value.
        data: String,
    },
    /// `Delete` of nodes.
    Delete {
        /// The nodes.
        targets: Vec<String>,
    },
    /// `Exec` of a node.
    Exec {
        /// The node.
        target: String,
        /// The data's format, if any.
        #[serde(default)]
        format: Option<String>,
        /// The data, if any.
        #[serde(default)]
        data: Option<String>,
    },
    /// All or nothing.
    Atomic {
        /// The commands.
        commands: Vec<Self>,
    },
    /// In order.
    Sequence {
        /// The commands.
        commands: Vec<Self>,
    },
}

fn check_uri(uri: &str) -> Result<(), String> {
    if uri.is_empty() || uri.len() > 1024 || !uri.starts_with("./") {
        return Err(format!("{uri:?} is not a node URI (./…)"));
    }
    if uri.chars().any(char::is_control) {
        return Err("a node URI has a control character".into());
    }
    Ok(())
}

impl CommandSpec {
    /// Checks the command (URIs, sizes, nesting).
    ///
    /// # Errors
    /// What is wrong, for the admin.
    pub fn check(&self) -> Result<(), String> {
        self.check_at(0, false)
    }

    fn check_at(&self, depth: usize, in_atomic: bool) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("Atomic/Sequence nested too deep".into());
        }
        match self {
            // OMA-DM 1.2 does not allow Get inside Atomic (Windows answers 507).
            Self::Get { .. } if in_atomic => {
                Err("Get cannot be inside Atomic (use Sequence)".into())
            }
            Self::Get { targets } | Self::Delete { targets } => {
                if targets.is_empty() || targets.len() > MAX_TARGETS {
                    return Err(format!("1 to {MAX_TARGETS} targets"));
                }
                targets.iter().try_for_each(|t| check_uri(t))
            }
            Self::Add { target, format, .. } | Self::Replace { target, format, .. } => {
                if format.is_empty() || format.len() > 16 {
                    return Err("a format such as chr, int, bool, b64, xml".into());
                }
                check_uri(target)
            }
            Self::Exec { target, .. } => check_uri(target),
            Self::Atomic { commands } | Self::Sequence { commands } => {
                if commands.is_empty() || commands.len() > MAX_TARGETS {
                    return Err(format!("1 to {MAX_TARGETS} commands"));
                }
                let atomic = in_atomic || matches!(self, Self::Atomic { .. });
                commands
                    .iter()
                    .try_for_each(|c| c.check_at(depth + 1, atomic))
            }
        }
    }

    /// The spec of a command built elsewhere (the `dmclient` builders): `Get` and
    /// `Delete` of their targets, one-item `Add`/`Replace`/`Exec`, and containers of those.
    /// Anything else is `None`.
    pub fn from_command(command: &Command) -> Option<Self> {
        let uri = |i: &winmdm_syncml::Item| {
            i.target
                .as_ref()
                .map(|t| t.loc_uri.to_string())
                .unwrap_or_default()
        };
        let format = |i: &winmdm_syncml::Item| {
            i.meta
                .as_ref()
                .and_then(|m| m.format.as_ref())
                .map_or_else(|| "chr".to_owned(), ToString::to_string)
        };
        let data = |i: &winmdm_syncml::Item| {
            i.data
                .as_ref()
                .map(|d| d.value.to_string())
                .unwrap_or_default()
        };
        Some(match command {
            Command::Get(ic) => Self::Get {
                targets: ic.items.iter().map(uri).collect(),
            },
            Command::Delete(ic) => Self::Delete {
                targets: ic.items.iter().map(uri).collect(),
            },
            Command::Add(ic) | Command::Replace(ic) => {
                let [item] = ic.items.as_slice() else {
                    return None;
                };
                let (target, format, data) = (uri(item), format(item), data(item));
                if matches!(command, Command::Add(_)) {
                    Self::Add {
                        target,
                        format,
                        data,
                    }
                } else {
                    Self::Replace {
                        target,
                        format,
                        data,
                    }
                }
            }
            Command::Exec(ic) => {
                let [item] = ic.items.as_slice() else {
                    return None;
                };
                Self::Exec {
                    target: uri(item),
                    format: item
                        .meta
                        .as_ref()
                        .and_then(|m| m.format.as_ref())
                        .map(ToString::to_string),
                    data: item.data.as_ref().map(|d| d.value.to_string()),
                }
            }
            Command::Atomic(c) => Self::Atomic {
                commands: c
                    .commands
                    .iter()
                    .map(Self::from_command)
                    .collect::<Option<_>>()?,
            },
            Command::Sequence(c) => Self::Sequence {
                commands: c
                    .commands
                    .iter()
                    .map(Self::from_command)
                    .collect::<Option<_>>()?,
            },
            _ => return None,
        })
    }

    /// The SyncML command (the session assigns `CmdID`s when it sends it).
    pub fn to_command(&self) -> Command {
        match self {
            Self::Get { targets } => Command::get(1u32, targets.iter().map(String::as_str)),
            Self::Delete { targets } => Command::delete(1u32, targets.iter().map(String::as_str)),
            Self::Add {
                target,
                format,
                data,
            } if format == "node" && data.is_empty() => {
                // An interior node: no Data.
                let mut c = Command::add(1u32, target.as_str(), format, "");
                if let Command::Add(ic) = &mut c {
                    for item in &mut ic.items {
                        item.data = None;
                    }
                }
                c
            }
            Self::Add {
                target,
                format,
                data,
            } => Command::add(1u32, target.as_str(), format, data.as_str()),
            Self::Replace {
                target,
                format,
                data,
            } => Command::replace(1u32, target.as_str(), format, data.as_str()),
            Self::Exec {
                target,
                format,
                data,
            } => Command::exec(1u32, target.as_str(), format.as_deref(), data.clone()),
            Self::Atomic { commands } => {
                Command::atomic(1u32, commands.iter().map(Self::to_command).collect())
            }
            Self::Sequence { commands } => {
                Command::sequence(1u32, commands.iter().map(Self::to_command).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_checks() {
        let spec: CommandSpec = serde_json::from_str(
            r#"{"verb":"Sequence","commands":[{"verb":"Replace","target":"./Vendor/MSFT/A","format":"int","data":"1"},{"verb":"Get","targets":["./DevDetail/SwV"]}]}"#,
        )
        .unwrap();
        spec.check().unwrap();
        let xml = winmdm_syncml::encode_command(&spec.to_command());
        assert!(xml.starts_with("<Sequence>"), "{xml}");
        assert!(
            xml.contains("./Vendor/MSFT/A") && xml.contains("<Get>"),
            "{xml}"
        );
        for bad in [
            r#"{"verb":"Get","targets":[]}"#,
            r#"{"verb":"Get","targets":["/etc/passwd"]}"#,
            r#"{"verb":"Replace","target":"./A","format":"","data":"1"}"#,
            r#"{"verb":"Exec","target":"./A\u0000"}"#,
            r#"{"verb":"Atomic","commands":[{"verb":"Sequence","commands":[{"verb":"Get","targets":["./A"]}]}]}"#,
        ] {
            let spec: CommandSpec = serde_json::from_str(bad).unwrap();
            assert!(spec.check().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<CommandSpec>(r#"{"verb":"Format"}"#).is_err());
        let mut deep = CommandSpec::Get {
            targets: vec!["./A".into()],
        };
        for _ in 0..6 {
            deep = CommandSpec::Sequence {
                commands: vec![deep],
            };
        }
        assert!(deep.check().is_err());
    }
}
