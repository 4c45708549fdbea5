//! The registry of stage kinds: what a pipeline file may name in `kind = "..."`.
//!
//! Each crate that provides stages exposes a list of [`StageFactory`]s; the CLI hands them
//! to [`Registry::new`]. No link-time magic: the list is explicit.

use std::collections::BTreeMap;
use std::sync::Arc;

use cascade_instrument::{ReadoutDescription, SubarrayDescription};
use cascade_runtime::{Stage, StageRole, ValuePosition};

use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use crate::{OptionDoc, PerTelescope, StageConfig};

/// A table of stage options as parsed from the pipeline file, with source spans.
pub type OptionValue<'a> = Spanned<DeValue<'a>>;

/// What a stage sees of the pipeline while it is built.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// The instrument of the pipeline's sources (empty until a source provides one).
    pub subarray: Arc<SubarrayDescription>,
    /// Readout of each telescope (sampling, reference pulse), by telescope id.
    pub readout: BTreeMap<u16, Arc<ReadoutDescription>>,
    /// Objects sources share with downstream stages in the same process, by name (e.g. the
    /// pixel calibration a sim_telarray source learns while it reads).
    pub shared: BTreeMap<&'static str, SharedObject>,
    /// Telescope events per batch.
    pub batch_size: usize,
    /// The pipeline's `name` (for provenance in the outputs).
    pub pipeline_name: String,
}

/// An object a source shares with the stages downstream of it.
pub type SharedObject = Arc<dyn std::any::Any + Send + Sync>;

/// A built stage, and the instrument it provides (sources).
#[derive(Debug)]
pub struct BuiltStage {
    /// The stage.
    pub stage: Arc<dyn Stage>,
    /// The instrument this source reads, if it is a source that knows one.
    pub subarray: Option<Arc<SubarrayDescription>>,
    /// The readout of this source's telescopes, by telescope id.
    pub readout: BTreeMap<u16, Arc<ReadoutDescription>>,
    /// Objects this source shares with downstream stages (see [`BuildContext::shared`]).
    pub shared: BTreeMap<&'static str, SharedObject>,
}

impl BuiltStage {
    /// A stage that provides no instrument.
    pub fn new(stage: Arc<dyn Stage>) -> Self {
        Self {
            stage,
            subarray: None,
            readout: BTreeMap::new(),
            shared: BTreeMap::new(),
        }
    }
}

/// Why a stage could not be built from a valid configuration.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    /// The option the problem is about, when there is one (to point at its line).
    pub option: Option<String>,
    /// What is wrong.
    pub message: String,
    /// Where in the option's value the problem is, when known: validation then points at
    /// that character.
    pub at: Option<ValuePosition>,
    /// The other problems found in the same configuration, each reported at its own
    /// option ([`BuildError::first_of`]).
    pub also: Vec<BuildError>,
}

impl BuildError {
    /// An error about option `option`.
    pub fn option(option: &str, message: impl Into<String>) -> Self {
        Self {
            option: Some(option.to_string()),
            message: message.into(),
            at: None,
            also: Vec::new(),
        }
    }

    /// The same error, located at `at` in the option's value.
    pub fn at(mut self, at: Option<ValuePosition>) -> Self {
        self.at = at;
        self
    }

    /// An error about the stage as a whole.
    pub fn stage(message: impl Into<String>) -> Self {
        Self {
            option: None,
            message: message.into(),
            at: None,
            also: Vec::new(),
        }
    }

    /// Every problem of `errors` as one error (the first, with the others in `also`), or
    /// `Ok` when there is none: lets a stage report all its bad options at once.
    pub fn first_of(errors: Vec<BuildError>) -> Result<(), BuildError> {
        let mut errors = errors.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut first) => {
                first.also.extend(errors);
                Err(first)
            }
        }
    }
}

/// One stage kind: its documentation and how to build it.
pub trait StageFactory: Send + Sync {
    /// The kind name used in pipeline files.
    fn kind(&self) -> &'static str;
    /// Source, transform or sink.
    fn role(&self) -> StageRole;
    /// One paragraph for the docs.
    fn description(&self) -> &'static str;
    /// Options with defaults and docs.
    fn options(&self) -> Vec<OptionDoc>;
    /// Whether options may differ per telescope (`overrides`); false for stages whose
    /// options apply to the whole stream (sources, sinks, column selections and filters,
    /// image parameters, the stereo join).
    fn per_telescope(&self) -> bool {
        true
    }
    /// Checks that a table of options deserialises; the error carries the span of the
    /// offending value.
    fn check(&self, options: &OptionValue<'_>) -> Result<(), toml::de::Error>;
    /// Builds the stage from its per-telescope option tables (already checked).
    fn build(
        &self,
        config: &PerTelescope<OptionValue<'_>>,
        context: &BuildContext,
    ) -> Result<BuiltStage, BuildError>;
}

/// The function that builds a stage from its typed configuration.
pub type BuildFn<C> = fn(PerTelescope<C>, &BuildContext) -> Result<BuiltStage, BuildError>;

/// A [`StageFactory`] for a stage whose configuration is the [`StageConfig`] `C`.
pub struct TypedFactory<C> {
    kind: &'static str,
    role: StageRole,
    description: &'static str,
    build: BuildFn<C>,
    per_telescope: bool,
}

impl<C: StageConfig> TypedFactory<C> {
    /// A factory for kind `kind`.
    pub fn new(
        kind: &'static str,
        role: StageRole,
        description: &'static str,
        build: BuildFn<C>,
    ) -> Self {
        Self {
            kind,
            role,
            description,
            build,
            per_telescope: true,
        }
    }

    /// Marks the kind's options as the same for every telescope: `overrides` are an error.
    pub fn same_for_every_telescope(mut self) -> Self {
        self.per_telescope = false;
        self
    }
}

impl<C: StageConfig> StageFactory for TypedFactory<C> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn role(&self) -> StageRole {
        self.role
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn options(&self) -> Vec<OptionDoc> {
        C::options()
    }

    fn per_telescope(&self) -> bool {
        self.per_telescope
    }

    fn check(&self, options: &OptionValue<'_>) -> Result<(), toml::de::Error> {
        deserialize_options::<C>(options).map(|_| ())
    }

    fn build(
        &self,
        config: &PerTelescope<OptionValue<'_>>,
        context: &BuildContext,
    ) -> Result<BuiltStage, BuildError> {
        let typed = config
            .try_map(deserialize_options::<C>)
            .map_err(|e| BuildError::stage(format!("invalid options: {}", e.message())))?;
        (self.build)(typed, context)
    }
}

/// All known stage kinds, by name.
#[derive(Default)]
pub struct Registry {
    factories: BTreeMap<&'static str, Arc<dyn StageFactory>>,
}

impl Registry {
    /// A registry of the given factories.
    pub fn new(factories: impl IntoIterator<Item = Arc<dyn StageFactory>>) -> Self {
        Self {
            factories: factories.into_iter().map(|f| (f.kind(), f)).collect(),
        }
    }

    /// The factory of kind `kind`.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn StageFactory>> {
        self.factories.get(kind)
    }

    /// Every factory, sorted by kind.
    pub fn factories(&self) -> impl Iterator<Item = &Arc<dyn StageFactory>> {
        self.factories.values()
    }

    /// Kinds with the given role, sorted.
    pub fn kinds(&self, role: StageRole) -> Vec<&'static str> {
        self.factories
            .values()
            .filter(|f| f.role() == role)
            .map(|f| f.kind())
            .collect()
    }
}

/// Deserialises a configuration from a spanned option table (errors carry the span).
pub fn deserialize_options<C: serde::de::DeserializeOwned>(
    options: &OptionValue<'_>,
) -> Result<C, toml::de::Error> {
    C::deserialize(ValueDeserializer::from(options.clone()))
}
