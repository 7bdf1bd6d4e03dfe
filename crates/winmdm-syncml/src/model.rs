//! The typed SyncML model (OMA DM RepPro 1.2 as profiled by MS-MDM §2.2).
//!
//! Values are kept as the text the message carried (trimmed of surrounding white space
//! for simple elements, exact for `Data`), so nothing is lost in a round trip; typed
//! accessors interpret them. Commands stay in document order.

use serde::{Deserialize, Serialize};

use crate::codes::{AlertCode, CmdId, StatusCode};
use crate::text::Text;

/// The SyncML namespace (`xmlns` of the root).
pub const SYNCML_NS: &str = "SYNCML:SYNCML1.2";
/// The MetInf namespace of `Meta` children.
pub const METINF_NS: &str = "syncml:metinf";
/// Microsoft's namespace for `msft:` attributes (SyncApplicationVersion 3.0 and later).
pub const MSFT_NS: &str = "http://schemas.microsoft.com/MobileDevice/MDM";

/// A whole SyncML message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncMl {
    /// The header.
    pub header: SyncHdr,
    /// The body.
    pub body: SyncBody,
}

/// `SyncHdr`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncHdr {
    /// `VerDTD` (`1.2`).
    pub ver_dtd: Text,
    /// `VerProto` (`DM/1.2`).
    pub ver_proto: Text,
    /// `SessionID` (opaque; `0` is legal).
    pub session_id: Text,
    /// `MsgID`.
    pub msg_id: Text,
    /// `Target`: the recipient (server URL from a client; device ID from a server).
    pub target: Option<Location>,
    /// `Source`: the sender.
    pub source: Option<Location>,
    /// `RespURI`.
    pub resp_uri: Option<Text>,
    /// `NoResp`.
    pub no_resp: bool,
    /// `Cred` (OMA-DM basic or MD5 digest credentials).
    pub cred: Option<Box<Cred>>,
    /// `Meta` (`MaxMsgSize`, `MaxObjSize`).
    pub meta: Option<Box<Meta>>,
    /// Elements this crate does not model, kept verbatim.
    pub unknown: Vec<Unknown>,
}

/// `Target`/`Source`: a `LocURI` and optional `LocName`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Location {
    /// `LocURI`.
    pub loc_uri: Text,
    /// `LocName`.
    pub loc_name: Option<Text>,
}

impl Location {
    /// A location with just a URI.
    pub fn new(uri: impl Into<Text>) -> Self {
        Self {
            loc_uri: uri.into(),
            loc_name: None,
        }
    }
}

/// `Cred`: credentials with their `Meta` (`Format` b64, `Type` `syncml:auth-md5` or
/// `syncml:auth-basic`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cred {
    /// `Meta`.
    pub meta: Option<Box<Meta>>,
    /// `Data`.
    pub data: Text,
}

/// `Chal`: an authentication challenge in a `Status`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Chal {
    /// `Meta` (`Type`, `Format`, `NextNonce`).
    pub meta: Meta,
}

/// `Meta` with its MetInf children.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Meta {
    /// `Format` (`chr`, `int`, `b64`, `bool`, `xml`, `node`, `null`, …).
    pub format: Option<Text>,
    /// `Type` (a MIME type or a URN such as `com.microsoft/MDM/LoginStatus`).
    pub r#type: Option<Text>,
    /// `Mark` (`critical`, `fatal`, `informational`, …).
    pub mark: Option<Text>,
    /// `Size` (total size of a chunked object).
    pub size: Option<Text>,
    /// `Version`.
    pub version: Option<Text>,
    /// `NextNonce` (base64).
    pub next_nonce: Option<Text>,
    /// `MaxMsgSize`.
    pub max_msg_size: Option<Text>,
    /// `MaxObjSize`.
    pub max_obj_size: Option<Text>,
    /// `EMI` (experimental meta information), any number.
    pub emi: Vec<Text>,
    /// MetInf elements this crate does not model, kept verbatim.
    pub unknown: Vec<Unknown>,
}

impl Meta {
    /// `MaxMsgSize` as a number.
    pub fn max_msg_size(&self) -> Option<u64> {
        self.max_msg_size.as_deref()?.trim().parse().ok()
    }

    /// `MaxObjSize` as a number.
    pub fn max_obj_size(&self) -> Option<u64> {
        self.max_obj_size.as_deref()?.trim().parse().ok()
    }

    /// `Size` as a number.
    pub fn size(&self) -> Option<u64> {
        self.size.as_deref()?.trim().parse().ok()
    }

    /// A `Meta` with only `Format` and `Type` set (either may be `None`).
    pub fn format_type(format: Option<&str>, r#type: Option<&str>) -> Self {
        Self {
            format: format.map(Text::from),
            r#type: r#type.map(Text::from),
            ..Self::default()
        }
    }

    /// Whether no child is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `SyncBody`: commands in document order, then `Final`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncBody {
    /// The commands, in document order.
    pub commands: Vec<Command>,
    /// `Final`: this is the last message of the package.
    pub is_final: bool,
}

/// One SyncML command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Command {
    /// `Add`.
    Add(ItemCommand),
    /// `Alert`.
    Alert(Alert),
    /// `Atomic`: all or nothing.
    Atomic(Container),
    /// `Copy` (decoded; Windows does not support it).
    Copy(ItemCommand),
    /// `Delete`.
    Delete(ItemCommand),
    /// `Exec`.
    Exec(ItemCommand),
    /// `Get`.
    Get(ItemCommand),
    /// `Map` (decoded for completeness; not used by OMA DM).
    Map(MapCommand),
    /// `Replace`.
    Replace(ItemCommand),
    /// `Results`.
    Results(Results),
    /// `Sequence`: in order.
    Sequence(Container),
    /// `Status`.
    Status(Status),
    /// A command element this crate does not model, kept verbatim.
    Unknown(Unknown),
}

impl Command {
    /// The element name (`Get`, `Status`, …).
    pub fn name(&self) -> &str {
        match self {
            Self::Add(_) => "Add",
            Self::Alert(_) => "Alert",
            Self::Atomic(_) => "Atomic",
            Self::Copy(_) => "Copy",
            Self::Delete(_) => "Delete",
            Self::Exec(_) => "Exec",
            Self::Get(_) => "Get",
            Self::Map(_) => "Map",
            Self::Replace(_) => "Replace",
            Self::Results(_) => "Results",
            Self::Sequence(_) => "Sequence",
            Self::Status(_) => "Status",
            Self::Unknown(u) => &u.name,
        }
    }

    /// The `ItemCommand` of `Add`, `Copy`, `Delete`, `Exec`, `Get` and `Replace`.
    pub fn item_command(&self) -> Option<&ItemCommand> {
        match self {
            Self::Add(c)
            | Self::Copy(c)
            | Self::Delete(c)
            | Self::Exec(c)
            | Self::Get(c)
            | Self::Replace(c) => Some(c),
            _ => None,
        }
    }

    /// The command's `CmdID`, if it has one.
    pub fn cmd_id(&self) -> Option<&CmdId> {
        if let Some(c) = self.item_command() {
            return c.cmd_id.as_ref();
        }
        match self {
            Self::Alert(a) => a.cmd_id.as_ref(),
            Self::Atomic(c) | Self::Sequence(c) => c.cmd_id.as_ref(),
            Self::Map(m) => m.cmd_id.as_ref(),
            Self::Results(r) => r.cmd_id.as_ref(),
            Self::Status(s) => s.cmd_id.as_ref(),
            _ => None,
        }
    }

    /// Sets the command's `CmdID` (no effect on unknown commands).
    pub fn set_cmd_id(&mut self, id: CmdId) {
        let slot = match self {
            Self::Add(c)
            | Self::Copy(c)
            | Self::Delete(c)
            | Self::Exec(c)
            | Self::Get(c)
            | Self::Replace(c) => &mut c.cmd_id,
            Self::Alert(a) => &mut a.cmd_id,
            Self::Atomic(c) | Self::Sequence(c) => &mut c.cmd_id,
            Self::Map(m) => &mut m.cmd_id,
            Self::Results(r) => &mut r.cmd_id,
            Self::Status(s) => &mut s.cmd_id,
            Self::Unknown(_) => return,
        };
        *slot = Some(id);
    }

    /// The items of an item-carrying command (`Add`, `Alert`, `Get`, …, `Results`, `Status`).
    pub fn items(&self) -> &[Item] {
        if let Some(c) = self.item_command() {
            return &c.items;
        }
        match self {
            Self::Alert(a) => &a.items,
            Self::Results(r) => &r.items,
            Self::Status(s) => &s.items,
            _ => &[],
        }
    }

    /// The nested commands of `Atomic` and `Sequence`.
    pub fn children(&self) -> &[Self] {
        match self {
            Self::Atomic(c) | Self::Sequence(c) => &c.commands,
            _ => &[],
        }
    }

    /// `NoResp`: the sender wants no `Status` for this command.
    pub fn no_resp(&self) -> bool {
        if let Some(c) = self.item_command() {
            return c.no_resp;
        }
        match self {
            Self::Alert(a) => a.no_resp,
            Self::Atomic(c) | Self::Sequence(c) => c.no_resp,
            _ => false,
        }
    }

    // --- builders for the commands a server sends ---------------------------------------

    /// `Get` of each URI.
    pub fn get<I, S>(cmd_id: impl Into<CmdId>, uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Text>,
    {
        Self::Get(ItemCommand::targets(cmd_id, uris))
    }

    /// `Delete` of each URI.
    pub fn delete<I, S>(cmd_id: impl Into<CmdId>, uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Text>,
    {
        Self::Delete(ItemCommand::targets(cmd_id, uris))
    }

    /// `Replace` of one node with a value (`format` such as `chr`, `int`, `bool`, `b64`,
    /// `xml`).
    pub fn replace(
        cmd_id: impl Into<CmdId>,
        uri: impl Into<Text>,
        format: &str,
        value: impl Into<Text>,
    ) -> Self {
        Self::Replace(ItemCommand::one(cmd_id, Item::value(uri, format, value)))
    }

    /// `Add` of one node with a value.
    pub fn add(
        cmd_id: impl Into<CmdId>,
        uri: impl Into<Text>,
        format: &str,
        value: impl Into<Text>,
    ) -> Self {
        Self::Add(ItemCommand::one(cmd_id, Item::value(uri, format, value)))
    }

    /// `Exec` of one node, with optional data.
    pub fn exec(
        cmd_id: impl Into<CmdId>,
        uri: impl Into<Text>,
        format: Option<&str>,
        data: Option<String>,
    ) -> Self {
        let mut item = Item::target(uri);
        if let Some(f) = format {
            item.meta = Some(Box::new(Meta::format_type(Some(f), None)));
        }
        item.data = data.map(Data::text);
        Self::Exec(ItemCommand::one(cmd_id, item))
    }

    /// `Atomic` of the given commands.
    pub fn atomic(cmd_id: impl Into<CmdId>, commands: Vec<Self>) -> Self {
        Self::Atomic(Container {
            cmd_id: Some(cmd_id.into()),
            commands,
            ..Container::default()
        })
    }

    /// `Sequence` of the given commands.
    pub fn sequence(cmd_id: impl Into<CmdId>, commands: Vec<Self>) -> Self {
        Self::Sequence(Container {
            cmd_id: Some(cmd_id.into()),
            commands,
            ..Container::default()
        })
    }

    /// An `Alert` with a code and no items (for example 1223 session abort).
    pub fn alert(cmd_id: impl Into<CmdId>, code: AlertCode) -> Self {
        Self::Alert(Alert {
            cmd_id: Some(cmd_id.into()),
            data: Some(Text::from_u32(u32::from(code.0))),
            ..Alert::default()
        })
    }
}

/// `Add`, `Copy`, `Delete`, `Exec`, `Get`, `Replace`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ItemCommand {
    /// `CmdID` (required by MS-MDM; missing in some documentation samples).
    pub cmd_id: Option<CmdId>,
    /// `NoResp`.
    pub no_resp: bool,
    /// `Cred`.
    pub cred: Option<Box<Cred>>,
    /// `Meta`.
    pub meta: Option<Box<Meta>>,
    /// The items.
    pub items: Vec<Item>,
}

impl ItemCommand {
    fn targets<I, S>(cmd_id: impl Into<CmdId>, uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Text>,
    {
        Self {
            cmd_id: Some(cmd_id.into()),
            items: uris.into_iter().map(Item::target).collect(),
            ..Self::default()
        }
    }

    pub(crate) fn one(cmd_id: impl Into<CmdId>, item: Item) -> Self {
        Self {
            cmd_id: Some(cmd_id.into()),
            items: vec![item],
            ..Self::default()
        }
    }
}

/// `Alert`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Alert {
    /// `CmdID`.
    pub cmd_id: Option<CmdId>,
    /// `NoResp`.
    pub no_resp: bool,
    /// `Cred`.
    pub cred: Option<Box<Cred>>,
    /// `Data`: the alert code as sent.
    pub data: Option<Text>,
    /// `Correlator` (not supported by Windows; kept).
    pub correlator: Option<Text>,
    /// The items.
    pub items: Vec<Item>,
}

impl Alert {
    /// The alert code, if `Data` is a number.
    pub fn code(&self) -> Option<AlertCode> {
        self.data.as_deref()?.parse().ok()
    }
}

/// `Atomic` and `Sequence`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Container {
    /// `CmdID`.
    pub cmd_id: Option<CmdId>,
    /// `NoResp`.
    pub no_resp: bool,
    /// `Meta`.
    pub meta: Option<Box<Meta>>,
    /// The nested commands, in order.
    pub commands: Vec<Command>,
}

/// `Map` (with its `MapItem`s as target/source pairs).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MapCommand {
    /// `CmdID`.
    pub cmd_id: Option<CmdId>,
    /// `Target`.
    pub target: Option<Location>,
    /// `Source`.
    pub source: Option<Location>,
    /// `Cred`.
    pub cred: Option<Box<Cred>>,
    /// `Meta`.
    pub meta: Option<Box<Meta>>,
    /// `MapItem`s: (`Target`, `Source`).
    pub map_items: Vec<(Option<Location>, Option<Location>)>,
}

/// `Results`: the answer to a `Get`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Results {
    /// `CmdID`.
    pub cmd_id: Option<CmdId>,
    /// `MsgRef` (absent means "1").
    pub msg_ref: Option<Text>,
    /// `CmdRef`: the `Get` this answers.
    pub cmd_ref: Option<Text>,
    /// `Cmd` (`Get`; Windows includes it, the OMA DTD does not).
    pub cmd: Option<Text>,
    /// `Meta`.
    pub meta: Option<Box<Meta>>,
    /// `TargetRef`s.
    pub target_ref: Vec<Text>,
    /// `SourceRef`s.
    pub source_ref: Vec<Text>,
    /// The items (each `Source` is a node that was read).
    pub items: Vec<Item>,
}

/// `Status`: the outcome of a command (or of the SyncHdr, `CmdRef` 0).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Status {
    /// `CmdID`.
    pub cmd_id: Option<CmdId>,
    /// `MsgRef`: the message of the referenced command.
    pub msg_ref: Option<Text>,
    /// `CmdRef`: the referenced command (`0` for the SyncHdr).
    pub cmd_ref: Option<Text>,
    /// `Cmd`: the referenced command's name (`SyncHdr`, `Get`, …).
    pub cmd: Option<Text>,
    /// `TargetRef`s.
    pub target_ref: Vec<Text>,
    /// `SourceRef`s.
    pub source_ref: Vec<Text>,
    /// `Cred`.
    pub cred: Option<Box<Cred>>,
    /// `Chal`: an authentication challenge.
    pub chal: Option<Box<Chal>>,
    /// `Data`: the status code as sent.
    pub data: Text,
    /// `msft:originalerror` on `Data`: the HRESULT behind a failure status, as Windows
    /// reports it (MS-MDM lists `Status` among `Data`'s parents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_error: Option<Text>,
    /// Items (rare).
    pub items: Vec<Item>,
}

impl Status {
    /// The status code, if `Data` is a number.
    pub fn code(&self) -> Option<StatusCode> {
        self.data.parse().ok()
    }
}

/// `Item`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Item {
    /// `Target`.
    pub target: Option<Location>,
    /// `Source`.
    pub source: Option<Location>,
    /// `SourceParent`.
    pub source_parent: Option<Box<Location>>,
    /// `TargetParent`.
    pub target_parent: Option<Box<Location>>,
    /// `Meta`.
    pub meta: Option<Box<Meta>>,
    /// `Data`.
    pub data: Option<Data>,
    /// `MoreData`: more chunks of this object follow.
    pub more_data: bool,
}

impl Item {
    /// An item with only a `Target`.
    pub fn target(uri: impl Into<Text>) -> Self {
        Self {
            target: Some(Location::new(uri)),
            ..Self::default()
        }
    }

    /// An item with a `Target`, a `Format` and a text value.
    pub fn value(uri: impl Into<Text>, format: &str, value: impl Into<Text>) -> Self {
        Self {
            target: Some(Location::new(uri)),
            meta: Some(Box::new(Meta::format_type(Some(format), None))),
            data: Some(Data::text(value)),
            ..Self::default()
        }
    }

    /// `Meta/Type`, if any.
    pub fn meta_type(&self) -> Option<&str> {
        self.meta.as_ref()?.r#type.as_deref()
    }

    /// `Meta/Format`, if any.
    pub fn meta_format(&self) -> Option<&str> {
        self.meta.as_ref()?.format.as_deref()
    }

    /// The data as text (`""` when there is none).
    pub fn data_str(&self) -> &str {
        self.data.as_ref().map_or("", |d| d.value.as_str())
    }
}

/// How `Data` was (or will be) written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DataKind {
    /// Character data (escaped on output).
    #[default]
    Text,
    /// A `<![CDATA[…]]>` section.
    CData,
    /// Embedded XML markup, kept byte-exact.
    Xml,
}

/// `Data`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Data {
    /// The value: unescaped text, CDATA content, or the embedded XML verbatim.
    pub value: Text,
    /// How it is written.
    pub kind: DataKind,
    /// `msft:originalerror` (the HRESULT behind a failure status, SyncApplicationVersion ≥ 3.0).
    pub original_error: Option<Text>,
}

impl Data {
    /// Text data.
    pub fn text(value: impl Into<Text>) -> Self {
        Self {
            value: value.into(),
            ..Self::default()
        }
    }

    /// Embedded XML, written verbatim (it must be well-formed and declare its namespaces).
    pub fn xml(markup: impl Into<Text>) -> Self {
        Self {
            value: markup.into(),
            kind: DataKind::Xml,
            original_error: None,
        }
    }
}

/// An element this crate does not model, kept verbatim so it is re-emitted unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Unknown {
    /// The element's name as written (with prefix, if any).
    pub name: String,
    /// The element's markup, from `<` to the end of its end tag.
    pub xml: String,
}
