//! Per-telescope option values: ctapipe's "telescope parameters".
//!
//! A stage's options can be overridden for telescope types or single telescopes:
//!
//! ```toml
//! [stages.clean]
//! kind = "tailcuts_clean"
//! picture_threshold_pe = 10.0
//! [stages.clean.overrides."LST*"]      # glob on the telescope type, e.g. LST_LST_LSTCam
//! picture_threshold_pe = 8.0
//! [stages.clean.overrides."id:3"]      # one telescope
//! picture_threshold_pe = 9.0
//! ```
//!
//! As in ctapipe, later and more specific entries win: type patterns apply in file order,
//! then telescope ids.

use std::collections::BTreeMap;

/// A value per telescope: a default, and the telescopes whose value differs.
#[derive(Debug, Clone, PartialEq)]
pub struct PerTelescope<C> {
    default: C,
    by_tel_id: BTreeMap<u16, C>,
}

impl<C> PerTelescope<C> {
    /// The same value for every telescope.
    pub fn uniform(value: C) -> Self {
        Self {
            default: value,
            by_tel_id: BTreeMap::new(),
        }
    }

    /// A default plus per-telescope values.
    pub fn new(default: C, by_tel_id: BTreeMap<u16, C>) -> Self {
        Self { default, by_tel_id }
    }

    /// The value for telescope `tel_id`.
    pub fn get(&self, tel_id: u16) -> &C {
        self.by_tel_id.get(&tel_id).unwrap_or(&self.default)
    }

    /// The value for telescopes without an override.
    pub fn default_value(&self) -> &C {
        &self.default
    }

    /// Telescopes with their own value.
    pub fn overridden(&self) -> impl Iterator<Item = (u16, &C)> {
        self.by_tel_id.iter().map(|(&id, c)| (id, c))
    }

    /// Applies a fallible conversion to every value.
    pub fn try_map<D, E>(
        &self,
        convert: impl Fn(&C) -> Result<D, E>,
    ) -> Result<PerTelescope<D>, E> {
        let by_tel_id = self
            .by_tel_id
            .iter()
            .map(|(&id, c)| Ok((id, convert(c)?)))
            .collect::<Result<_, E>>()?;
        Ok(PerTelescope {
            default: convert(&self.default)?,
            by_tel_id,
        })
    }
}

/// Which telescopes an override applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum TelescopeSelector {
    /// Telescope types whose name matches a glob (`"LST*"`, `"*FlashCam"`).
    Type(glob::Pattern),
    /// One telescope id (`"id:3"`).
    Id(u16),
}

impl TelescopeSelector {
    /// Parses an override key.
    pub fn parse(key: &str) -> Result<Self, String> {
        if let Some(id) = key.strip_prefix("id:") {
            return id
                .trim()
                .parse()
                .map(TelescopeSelector::Id)
                .map_err(|_| format!("`{key}`: expected a telescope id after `id:`"));
        }
        glob::Pattern::new(key)
            .map(TelescopeSelector::Type)
            .map_err(|e| format!("`{key}` is not a valid telescope type pattern: {e}"))
    }

    /// Whether the selector matches telescope `tel_id` of type `tel_type`.
    pub fn matches(&self, tel_id: u16, tel_type: &str) -> bool {
        match self {
            TelescopeSelector::Type(pattern) => pattern.matches(tel_type),
            TelescopeSelector::Id(id) => *id == tel_id,
        }
    }

    /// Ids apply after (and so win over) type patterns.
    pub fn precedence(&self) -> u8 {
        match self {
            TelescopeSelector::Type(_) => 0,
            TelescopeSelector::Id(_) => 1,
        }
    }
}
