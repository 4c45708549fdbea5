//! Loading a pipeline file: parse, apply command-line edits, check in phases, build.
//!
//! Every phase reports all the problems it finds, each with its line and column:
//! 1. TOML syntax;
//! 2. structure: sections, `kind`, `inputs`, `overrides`, unknown options ("did you mean"),
//!    option types;
//! 3. building the stages (e.g. an input file that cannot be opened);
//! 4. the graph: unknown or cyclic inputs, and schemas between stages.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use cascade_instrument::SubarrayDescription;
use cascade_runtime::{
    Arity, GraphError, PipelineGraph, RunOptions, SendableRecordBatchStream, Stage, StageContext,
    StageError, StageRole, ValuePosition,
};
use toml::Spanned;
use toml::de::{DeArray, DeString, DeTable, DeValue};

use crate::diagnostics::did_you_mean;
use crate::registry::{OptionValue, deserialize_options};
use crate::{
    BuildContext, Diagnostic, Diagnostics, Location, PerTelescope, Registry, StageConfig,
    StageFactory, TelescopeSelector,
};

crate::stage_config! {
    /// Pipeline-wide settings: the `[pipeline]` table.
    pub struct PipelineSettings {
        /// Name of the pipeline, recorded in the key-value metadata of every Parquet file
        /// it writes (`cascade.pipeline`) for provenance.
        name: String = "pipeline".to_string(),
        /// Telescope events per batch produced by sources. Larger batches amortise
        /// per-batch costs; smaller ones lower latency and memory.
        batch_size: usize = 256,
        /// Batches buffered on each edge between two stages before the producer waits
        /// (backpressure). Memory in flight is about capacity x batch size x edges.
        channel_capacity: usize = 4,
    }
}

/// Changes to the file given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Edits {
    /// `--input PATH...`: replaces the `paths` of the first source.
    pub inputs: Vec<String>,
    /// `--output DIR`: replaces the `output_dir` of every sink.
    pub output: Option<String>,
    /// `--set key.path=value`: sets any option (`stages.clean.picture_threshold_pe=8`).
    pub sets: Vec<String>,
}

/// One named entry of the file, as the user declared it.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    /// Entry name.
    pub name: String,
    /// Stage kind.
    pub kind: String,
    /// Source, transform or sink.
    pub role: StageRole,
    /// Input names.
    pub inputs: Vec<String>,
}

/// A checked pipeline, ready to compile and run.
#[derive(Debug)]
pub struct LoadedPipeline {
    /// Pipeline-wide settings.
    pub settings: PipelineSettings,
    /// The stage graph.
    pub graph: PipelineGraph,
    /// The instrument of the sources.
    pub subarray: Arc<SubarrayDescription>,
    /// The entries in file order.
    pub entries: Vec<EntryInfo>,
}

impl LoadedPipeline {
    /// Channel capacity and batch size for the runtime.
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            channel_capacity: self.settings.channel_capacity,
            batch_size: self.settings.batch_size,
        }
    }
}

/// Loads and checks the pipeline file `file` (its name as shown to the user) with text
/// `text`, applying `edits`. Returns every problem found.
pub fn load_pipeline(
    file: &str,
    text: &str,
    registry: &Registry,
    edits: &Edits,
) -> Result<LoadedPipeline, Diagnostics> {
    let edit_texts: Vec<EditText> = edits.sets.iter().map(|set| EditText::new(set)).collect();
    let mut loader = Loader {
        registry,
        diagnostics: Vec::new(),
        set_texts: Vec::new(),
    };
    let result = loader.load(text, edits, &edit_texts);
    let mut items = loader.diagnostics;
    items.sort_by_key(|d| match &d.location {
        Location::File(range) => (0, range.start),
        Location::CommandLine(_) => (1, 0),
        Location::Whole => (2, 0),
    });
    items.dedup();
    match result {
        Some(pipeline) if items.is_empty() => Ok(pipeline),
        _ => Err(Diagnostics {
            file: file.to_string(),
            text: text.to_string(),
            items,
        }),
    }
}

/// Spans at or above this offset point at the `--set`/`--input`/`--output` edit number
/// `span.start - EDIT_SPAN_BASE` instead of the file.
const EDIT_SPAN_BASE: usize = usize::MAX / 2;

/// A `--set key=value` edit, as TOML text to parse: the value as written, and quoted as a
/// string for values that are not valid TOML.
struct EditText {
    original: String,
    parsable: Option<(String, String)>,
}

impl EditText {
    fn new(set: &str) -> Self {
        let parsable = set.split_once('=').map(|(key, value)| {
            let (key, value) = (key.trim(), value.trim());
            (
                format!("{key} = {value}"),
                format!("{key} = {}", quote(value)),
            )
        });
        Self {
            original: set.to_string(),
            parsable,
        }
    }
}

const SECTIONS: [(&str, StageRole); 3] = [
    ("sources", StageRole::Source),
    ("stages", StageRole::Transform),
    ("sinks", StageRole::Sink),
];

const ENTRY_KEYS: [&str; 3] = ["kind", "inputs", "overrides"];

struct Loader<'r> {
    registry: &'r Registry,
    diagnostics: Vec<Diagnostic>,
    set_texts: Vec<String>,
}

/// An entry that passed the structural checks.
struct Entry<'a> {
    name: String,
    name_span: Range<usize>,
    role: StageRole,
    kind: String,
    factory: Option<Arc<dyn StageFactory>>,
    inputs: Vec<Spanned<String>>,
    options: Spanned<DeTable<'a>>,
    overrides: Vec<(TelescopeSelector, DeTable<'a>)>,
    valid: bool,
}

impl<'r> Loader<'r> {
    fn load<'a>(
        &mut self,
        text: &'a str,
        edits: &Edits,
        edit_texts: &'a [EditText],
    ) -> Option<LoadedPipeline> {
        let (parsed, syntax_errors) = DeTable::parse_recoverable(text);
        if !syntax_errors.is_empty() {
            for error in syntax_errors {
                let location = error.span().map_or(Location::Whole, Location::File);
                self.diagnostics
                    .push(Diagnostic::new(location, error.message().to_string()));
            }
            return None;
        }
        let span = parsed.span();
        let mut root = parsed.into_inner();
        self.apply_edits(&mut root, edits, edit_texts);

        let settings = self.settings(&root);
        for (key, _) in root.iter() {
            let known = ["pipeline", "sources", "stages", "sinks"];
            if !known.contains(&key.get_ref().as_ref()) {
                self.error_at(
                    key.span(),
                    format!("unknown section `{}`", key.get_ref()),
                    did_you_mean(key.get_ref(), known),
                );
            }
        }
        let mut entries = Vec::new();
        for (section, role) in SECTIONS {
            let Some(value) = root.get(section) else {
                continue;
            };
            let Some(table) = value.get_ref().as_table() else {
                self.error_at(
                    value.span(),
                    format!("`{section}` must be a table of named entries"),
                    None,
                );
                continue;
            };
            for (name, entry) in table.iter() {
                if let Some(entry) = self.entry(name, entry, role) {
                    entries.push(entry);
                }
            }
        }
        if !entries.iter().any(|e| e.role == StageRole::Source) {
            self.diagnostics.push(Diagnostic::new(
                Location::File(span.start..span.start),
                "the pipeline has no source: add a [sources.NAME] table (e.g. kind = \"toy\")",
            ));
        }
        let (graph, subarray) = self.build(&entries, &settings);
        self.check_graph(&graph, &entries);
        let entries = entries
            .iter()
            .map(|e| EntryInfo {
                name: e.name.clone(),
                kind: e.kind.clone(),
                role: e.role,
                inputs: e.inputs.iter().map(|i| i.get_ref().clone()).collect(),
            })
            .collect();
        Some(LoadedPipeline {
            settings,
            graph,
            subarray,
            entries,
        })
    }

    // ----- phase 2: structure -----

    fn settings<'a>(&mut self, root: &DeTable<'a>) -> PipelineSettings {
        let Some(value) = root.get("pipeline") else {
            return PipelineSettings::default();
        };
        let Some(table) = value.get_ref().as_table() else {
            self.error_at(value.span(), "`pipeline` must be a table", None);
            return PipelineSettings::default();
        };
        let names: Vec<&str> = PipelineSettings::options().iter().map(|o| o.name).collect();
        let (_, cleaned) =
            self.check_options(table, value.span(), &names, "the [pipeline] table", |v| {
                deserialize_options::<PipelineSettings>(v).map(|_| ())
            });
        let Some(cleaned) = cleaned else {
            return PipelineSettings::default();
        };
        let mut settings = deserialize_options::<PipelineSettings>(&Spanned::new(
            value.span(),
            DeValue::Table(cleaned),
        ))
        .unwrap_or_default();
        for (field, value) in [
            ("batch_size", &mut settings.batch_size),
            ("channel_capacity", &mut settings.channel_capacity),
        ] {
            if *value == 0 {
                let span = table.get(field).map_or(0..0, |v| v.span());
                self.error_at(span, format!("`{field}` must be at least 1"), None);
                *value = 1;
            }
        }
        settings
    }

    fn entry<'a>(
        &mut self,
        name: &Spanned<DeString<'a>>,
        value: &Spanned<DeValue<'a>>,
        role: StageRole,
    ) -> Option<Entry<'a>> {
        let name_span = name.span();
        let name = name.get_ref().to_string();
        let Some(table) = value.get_ref().as_table() else {
            self.error_at(
                value.span(),
                format!("`{name}` must be a table with at least `kind`"),
                None,
            );
            return None;
        };
        let mut valid = true;
        let (kind, factory) = match table.get("kind") {
            None => {
                self.error_at(
                    name_span.clone(),
                    format!("`{name}` has no `kind`"),
                    Some(format!(
                        "known kinds: {}",
                        self.registry.kinds(role).join(", ")
                    )),
                );
                (String::new(), None)
            }
            Some(kind) => match kind.get_ref().as_str() {
                None => {
                    self.error_at(kind.span(), "`kind` must be a string", None);
                    (String::new(), None)
                }
                Some(kind_name) => {
                    let factory = self.factory(kind_name, kind.span(), role);
                    (kind_name.to_string(), factory)
                }
            },
        };
        valid &= factory.is_some();

        let mut inputs = Vec::new();
        match (table.get("inputs"), role) {
            (Some(value), StageRole::Source) => {
                self.error_at(value.span(), "sources take no `inputs`", None);
                valid = false;
            }
            (None, StageRole::Source) => {}
            (None, _) => {
                self.error_at(
                    name_span.clone(),
                    format!("`{name}` has no `inputs`"),
                    Some("add e.g. inputs = [\"events\"]".to_string()),
                );
                valid = false;
            }
            (Some(value), _) => match value.get_ref().as_array() {
                Some(array) if !array.is_empty() => {
                    for item in array.iter() {
                        match item.get_ref().as_str() {
                            Some(input) => {
                                inputs.push(Spanned::new(item.span(), input.to_string()))
                            }
                            None => {
                                self.error_at(
                                    item.span(),
                                    "inputs are stage names (strings)",
                                    None,
                                );
                                valid = false;
                            }
                        }
                    }
                }
                _ => {
                    self.error_at(
                        value.span(),
                        "`inputs` must be a non-empty list of stage names",
                        None,
                    );
                    valid = false;
                }
            },
        }

        let mut options = DeTable::new();
        for (key, value) in table.iter() {
            if !ENTRY_KEYS.contains(&key.get_ref().as_ref()) {
                options.insert(key.clone(), value.clone());
            }
        }
        let mut options = Spanned::new(value.span(), options);
        let mut overrides = Vec::new();
        if let Some(factory) = &factory {
            let names: Vec<&'static str> = factory.options().iter().map(|o| o.name).collect();
            let what = format!("kind `{kind}`");
            // Bad options are reported; the stage is still built from the good ones, so the
            // checks of the stages downstream still run.
            let (_, cleaned) =
                self.check_options(options.get_ref(), options.span(), &names, &what, |v| {
                    factory.check(v)
                });
            match cleaned {
                Some(cleaned) => options = Spanned::new(options.span(), cleaned),
                None => valid = false,
            }
            if let Some(value) = table.get("overrides")
                && !factory.per_telescope()
            {
                self.error_at(
                    value.span(),
                    format!(
                        "kind `{kind}` has no per-telescope options: its options apply to \
                         every telescope, so `overrides` would be ignored"
                    ),
                    None,
                );
                valid = false;
            } else if let Some(value) = table.get("overrides") {
                match value.get_ref().as_table() {
                    Some(by_selector) => {
                        for (selector, override_value) in by_selector.iter() {
                            let Some(override_table) = override_value.get_ref().as_table() else {
                                self.error_at(
                                    override_value.span(),
                                    "an override must be a table of options",
                                    None,
                                );
                                valid = false;
                                continue;
                            };
                            let mut merged = options.get_ref().clone();
                            for (key, value) in override_table.iter() {
                                merged.insert(key.clone(), value.clone());
                            }
                            let (override_valid, _) = self.check_options(
                                &merged,
                                override_value.span(),
                                &names,
                                &what,
                                |v| factory.check(v),
                            );
                            match TelescopeSelector::parse(selector.get_ref()) {
                                Ok(parsed) if override_valid => {
                                    overrides.push((parsed, override_table.clone()))
                                }
                                Ok(_) => {}
                                Err(message) => {
                                    self.error_at(selector.span(), message, None);
                                    valid = false;
                                }
                            }
                        }
                    }
                    None => {
                        self.error_at(
                            value.span(),
                            "`overrides` must be a table: [stages.NAME.overrides.\"LST*\"]",
                            None,
                        );
                        valid = false;
                    }
                }
            }
        }
        Some(Entry {
            name,
            name_span,
            role,
            kind,
            factory,
            inputs,
            options,
            overrides,
            valid,
        })
    }

    fn factory(
        &mut self,
        kind: &str,
        span: Range<usize>,
        role: StageRole,
    ) -> Option<Arc<dyn StageFactory>> {
        match self.registry.get(kind) {
            Some(factory) if factory.role() == role => Some(Arc::clone(factory)),
            Some(factory) => {
                let section = SECTIONS
                    .iter()
                    .find(|(_, r)| *r == factory.role())
                    .map_or("", |(s, _)| s);
                self.error_at(
                    span,
                    format!(
                        "`{kind}` is a {:?} kind; declare it under [{section}.NAME]",
                        factory.role()
                    )
                    .to_lowercase(),
                    None,
                );
                None
            }
            None => {
                let kinds = self.registry.kinds(role);
                let help = did_you_mean(kind, kinds.iter().copied())
                    .or_else(|| Some(format!("known kinds here: {}", kinds.join(", "))));
                self.error_at(span, format!("unknown kind `{kind}`"), help);
                None
            }
        }
    }

    /// Reports unknown keys (with a suggestion) and every mistyped value of an option
    /// table. Returns true when the table is valid.
    fn check_options<'a>(
        &mut self,
        table: &DeTable<'a>,
        span: Range<usize>,
        known: &[&str],
        what: &str,
        check: impl Fn(&OptionValue<'a>) -> Result<(), toml::de::Error>,
    ) -> (bool, Option<DeTable<'a>>) {
        let mut remaining = DeTable::new();
        let mut valid = true;
        for (key, value) in table.iter() {
            if known.contains(&key.get_ref().as_ref()) {
                remaining.insert(key.clone(), value.clone());
            } else {
                let help = did_you_mean(key.get_ref(), known.iter().copied())
                    .or_else(|| Some(format!("options of {what}: {}", known.join(", "))));
                self.error_at(
                    key.span(),
                    format!("unknown option `{}` for {what}", key.get_ref()),
                    help,
                );
                valid = false;
            }
        }
        // Each round reports one mistyped value and drops it, so every one is reported.
        for _ in 0..=remaining.len() {
            let Err(error) = check(&Spanned::new(
                span.clone(),
                DeValue::Table(remaining.clone()),
            )) else {
                break;
            };
            valid = false;
            let error_span = error.span().unwrap_or(span.clone());
            let culprit = remaining
                .iter()
                .find(|(k, v)| {
                    contains(&v.span(), error_span.start) || contains(&k.span(), error_span.start)
                })
                .map(|(k, _)| k.clone());
            let message = match &culprit {
                Some(key) => format!("option `{}`: {}", key.get_ref(), error.message()),
                None => error.message().to_string(),
            };
            self.error_at(error_span, message, None);
            match culprit {
                Some(key) => {
                    remaining.remove(key.get_ref().as_ref());
                }
                None => return (false, None),
            }
        }
        (valid, Some(remaining))
    }

    // ----- command-line edits -----

    fn apply_edits<'a>(
        &mut self,
        root: &mut DeTable<'a>,
        edits: &Edits,
        edit_texts: &'a [EditText],
    ) {
        for edit in edit_texts {
            let set = &edit.original;
            let Some((as_toml, as_string)) = &edit.parsable else {
                self.edit_error(set, "expected `key.path=value`");
                continue;
            };
            let parsed = DeTable::parse(as_toml).or_else(|_| DeTable::parse(as_string));
            match parsed {
                Ok(table) => {
                    let table = table.into_inner();
                    if let Some(message) = unknown_entry(root, &table) {
                        self.edit_error(set, message);
                        continue;
                    }
                    let span = self.edit_span(set);
                    merge(root, respan_table(table, &span));
                }
                Err(error) => self.edit_error(set, error.message().to_string()),
            }
        }
        if !edits.inputs.is_empty() {
            let option = format!("--input {}", edits.inputs.join(" "));
            let span = self.edit_span(&option);
            let first_source = root
                .get("sources")
                .and_then(|s| s.get_ref().as_table())
                .and_then(|s| s.iter().next())
                .map(|(name, entry)| {
                    (
                        name.get_ref().to_string(),
                        entry
                            .get_ref()
                            .get("kind")
                            .and_then(|k| k.get_ref().as_str().map(str::to_string)),
                    )
                });
            match first_source {
                Some((name, kind))
                    if kind
                        .as_deref()
                        .and_then(|k| self.registry.get(k))
                        .is_some_and(|f| f.options().iter().any(|o| o.name == "paths")) =>
                {
                    let paths: DeArray<'a> = edits
                        .inputs
                        .iter()
                        .map(|p| Spanned::new(span.clone(), DeValue::String(p.clone().into())))
                        .collect();
                    set_option(
                        root,
                        "sources",
                        &name,
                        "paths",
                        Spanned::new(span, DeValue::Array(paths)),
                    );
                }
                Some((name, kind)) => self.edit_error(
                    &option,
                    format!(
                        "the first source `{name}` (kind `{}`) reads no input files",
                        kind.unwrap_or_default()
                    ),
                ),
                None => self.edit_error(&option, "the pipeline has no source to give inputs to"),
            }
        }
        if let Some(output) = &edits.output {
            let option = format!("--output {output}");
            let span = self.edit_span(&option);
            let sinks: Vec<String> = root
                .get("sinks")
                .and_then(|s| s.get_ref().as_table())
                .map(|s| {
                    s.iter()
                        .filter(|(_, e)| {
                            e.get_ref()
                                .get("kind")
                                .and_then(|k| k.get_ref().as_str())
                                .and_then(|k| self.registry.get(k))
                                .is_some_and(|f| f.options().iter().any(|o| o.name == "output_dir"))
                        })
                        .map(|(n, _)| n.get_ref().to_string())
                        .collect()
                })
                .unwrap_or_default();
            if sinks.is_empty() {
                self.edit_error(&option, "the pipeline has no sink writing to a directory");
            }
            for sink in sinks {
                let value = Spanned::new(span.clone(), DeValue::String(output.clone().into()));
                set_option(root, "sinks", &sink, "output_dir", value);
            }
        }
    }

    fn edit_span(&mut self, text: &str) -> Range<usize> {
        self.set_texts.push(text.to_string());
        let start = EDIT_SPAN_BASE + self.set_texts.len() - 1;
        start..start
    }

    fn edit_error(&mut self, option: &str, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(
            Location::CommandLine(option.to_string()),
            message,
        ));
    }

    fn error_at(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<String>) {
        let message = message.into();
        let (location, help) = if span.start >= EDIT_SPAN_BASE {
            let set = self
                .set_texts
                .get(span.start - EDIT_SPAN_BASE)
                .cloned()
                .unwrap_or_default();
            let help = help.or_else(|| quoting_help(&set, &message));
            (Location::CommandLine(set), help)
        } else {
            (Location::File(span), help)
        };
        self.diagnostics
            .push(Diagnostic::new(location, message).with_help(help));
    }

    // ----- phase 3: build -----

    fn build(
        &mut self,
        entries: &[Entry<'_>],
        settings: &PipelineSettings,
    ) -> (PipelineGraph, Arc<SubarrayDescription>) {
        let mut graph = PipelineGraph::new();
        let mut context = BuildContext {
            subarray: Arc::default(),
            readout: BTreeMap::new(),
            shared: BTreeMap::new(),
            batch_size: settings.batch_size,
            pipeline_name: settings.name.clone(),
        };
        let mut built: BTreeMap<usize, Arc<dyn Stage>> = BTreeMap::new();
        // Sources first: they provide the instrument the other stages resolve overrides with.
        let order = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.role == StageRole::Source)
            .chain(
                entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.role != StageRole::Source),
            );
        for (index, entry) in order {
            let (Some(factory), true) = (&entry.factory, entry.valid) else {
                continue;
            };
            let config = resolve(entry, &context.subarray);
            match factory.build(&config, &context) {
                Ok(stage) => {
                    for (name, object) in &stage.shared {
                        context
                            .shared
                            .entry(*name)
                            .or_insert_with(|| Arc::clone(object));
                    }
                    for (tel_id, readout) in &stage.readout {
                        context
                            .readout
                            .entry(*tel_id)
                            .or_insert_with(|| Arc::clone(readout));
                    }
                    if let Some(subarray) = stage.subarray {
                        let mut merged = (*context.subarray).clone();
                        for (id, tel) in &subarray.telescopes {
                            merged
                                .telescopes
                                .entry(*id)
                                .or_insert_with(|| Arc::clone(tel));
                        }
                        for (id, pos) in &subarray.positions_m {
                            merged.positions_m.entry(*id).or_insert(*pos);
                        }
                        if merged.name.is_empty() {
                            merged.name = subarray.name.clone();
                            merged.reference_altitude_m = subarray.reference_altitude_m;
                        }
                        context.subarray = Arc::new(merged);
                    }
                    built.insert(index, stage.stage);
                }
                Err(mut error) => {
                    let also = std::mem::take(&mut error.also);
                    for error in std::iter::once(error).chain(also) {
                        let span = error
                            .option
                            .as_deref()
                            .and_then(|o| entry.options.get_ref().get(o))
                            .map_or(entry.name_span.clone(), |value| {
                                character_span(value, error.at.as_ref())
                            });
                        self.error_at(span, format!("`{}`: {}", entry.name, error.message), None);
                    }
                }
            }
        }
        for (index, entry) in entries.iter().enumerate() {
            let stage = built.remove(&index).unwrap_or_else(|| Arc::new(Unbuilt));
            graph.add_stage(
                entry.name.clone(),
                stage,
                entry.inputs.iter().map(|i| i.get_ref().clone()).collect(),
            );
        }
        (graph, context.subarray)
    }

    // ----- phase 4: graph and schemas -----

    fn check_graph(&mut self, graph: &PipelineGraph, entries: &[Entry<'_>]) {
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        for entry in entries {
            for input in &entry.inputs {
                let source = entries.iter().find(|e| e.name == *input.get_ref());
                if let Some(source) = source.filter(|s| s.role == StageRole::Sink) {
                    self.error_at(
                        input.span(),
                        format!("`{}` is a sink: it has no output to read", source.name),
                        None,
                    );
                }
            }
        }
        let Err(errors) = graph.check() else { return };
        // A name used twice makes a stage seem to read itself: that "cycle" is the same error.
        let duplicates: Vec<String> = errors
            .iter()
            .filter_map(|e| match e {
                GraphError::DuplicateName { stage } => Some(stage.clone()),
                _ => None,
            })
            .collect();
        for error in errors {
            let Some(entry) = entries.iter().find(|e| e.name == error.stage()) else {
                continue;
            };
            match &error {
                GraphError::UnknownInput { input, .. } => {
                    let span = entry
                        .inputs
                        .iter()
                        .find(|i| i.get_ref() == input)
                        .map_or(entry.name_span.clone(), |i| i.span());
                    let candidates = names.iter().copied().filter(|n| *n != entry.name);
                    self.error_at(
                        span,
                        format!("`{}`: unknown input `{input}`", entry.name),
                        did_you_mean(input, candidates),
                    );
                }
                GraphError::Cycle { cycle, .. } => {
                    if !cycle.iter().all(|name| duplicates.contains(name)) {
                        self.error_at(
                            entry.name_span.clone(),
                            format!("inputs form a cycle: {}", cycle.join(" -> ")),
                            None,
                        );
                    }
                }
                GraphError::DuplicateName { stage } => {
                    // at its second use: the first is where the name belongs
                    let second = entries
                        .iter()
                        .rev()
                        .find(|e| e.name == *stage)
                        .unwrap_or(entry);
                    self.error_at(
                        second.name_span.clone(),
                        format!("the name `{stage}` is used twice"),
                        None,
                    );
                }
                GraphError::Schema {
                    error: StageError::Config(message),
                    ..
                } if message == UNBUILT => {}
                GraphError::Schema { error, .. } => {
                    let inputs = entry
                        .inputs
                        .iter()
                        .map(|i| i.get_ref().as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    // An error about an option written in the file points at its value.
                    let span = match error {
                        StageError::InvalidOption { option, at, .. } => entry
                            .options
                            .get_ref()
                            .get(option.as_str())
                            .map(|value| character_span(value, at.as_ref())),
                        _ => None,
                    };
                    self.error_at(
                        span.unwrap_or_else(|| entry.name_span.clone()),
                        format!(
                            "`{}` (kind `{}`) cannot read the output of {inputs}: {error}",
                            entry.name, entry.kind
                        ),
                        None,
                    );
                }
            }
        }
    }
}

/// The option tables of an entry for every telescope of the instrument.
fn resolve<'a>(entry: &Entry<'a>, subarray: &SubarrayDescription) -> PerTelescope<OptionValue<'a>> {
    let span = entry.options.span();
    let table_value = |table: DeTable<'a>| Spanned::new(span.clone(), DeValue::Table(table));
    let mut overrides: Vec<&(TelescopeSelector, DeTable<'a>)> = entry.overrides.iter().collect();
    overrides.sort_by_key(|(selector, _)| selector.precedence());
    let mut by_tel_id = BTreeMap::new();
    for (&tel_id, telescope) in &subarray.telescopes {
        let mut merged: Option<DeTable<'a>> = None;
        for (selector, table) in &overrides {
            if selector.matches(tel_id, &telescope.name) {
                let merged = merged.get_or_insert_with(|| entry.options.get_ref().clone());
                for (key, value) in table.iter() {
                    merged.insert(key.clone(), value.clone());
                }
            }
        }
        if let Some(merged) = merged {
            by_tel_id.insert(tel_id, table_value(merged));
        }
    }
    PerTelescope::new(table_value(entry.options.get_ref().clone()), by_tel_id)
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The span of the character `at` of an option's `value` (see [`ValuePosition`]) when the
/// string it reaches is written on one line without escapes, so that its characters are
/// the value's one by one (its span is then two quotes longer than the value); else the
/// span of that string, or of the value when `at` reaches no string.
fn character_span(value: &Spanned<DeValue<'_>>, at: Option<&ValuePosition>) -> Range<usize> {
    let Some(at) = at else {
        return value.span();
    };
    let mut reached = value;
    for &index in &at.path {
        match reached.get_ref() {
            DeValue::Array(items) if index < items.len() => reached = &items[index],
            _ => return value.span(),
        }
    }
    let span = reached.span();
    let DeValue::String(text) = reached.get_ref() else {
        return span;
    };
    if span.start >= EDIT_SPAN_BASE || span.len() != text.len() + 2 {
        return span;
    }
    match text.char_indices().nth(at.character.wrapping_sub(1)) {
        Some((offset, c)) => {
            let start = span.start + 1 + offset;
            start..start + c.len_utf8()
        }
        None => span,
    }
}

/// For a `--set key=value` whose value TOML read as a number or boolean where the option
/// takes a string (`output_dir=2024`): how to quote it.
fn quoting_help(set: &str, message: &str) -> Option<String> {
    let (key, value) = set.split_once('=')?;
    (message.contains("expected a string") && !value.trim().starts_with('"')).then(|| {
        format!(
            "the value is read as TOML; quote it to give a string: --set '{}=\"{}\"'",
            key.trim(),
            value.trim()
        )
    })
}

/// Why an edit may not apply: it sets options of a source, stage or sink the file does not
/// have (a typo, most likely) without giving it a `kind` to create it.
fn unknown_entry(root: &DeTable<'_>, edit: &DeTable<'_>) -> Option<String> {
    let names_in = |table: &DeTable<'_>, section: &str| -> Vec<String> {
        table
            .get(section)
            .and_then(|s| s.get_ref().as_table())
            .map(|s| s.iter().map(|(n, _)| n.get_ref().to_string()).collect())
            .unwrap_or_default()
    };
    for (section, what) in [
        ("sources", "source"),
        ("stages", "stage"),
        ("sinks", "sink"),
    ] {
        let existing = names_in(root, section);
        let Some(entries) = edit.get(section).and_then(|s| s.get_ref().as_table()) else {
            continue;
        };
        for (name, entry) in entries.iter() {
            let name = name.get_ref();
            let creates = entry.get_ref().get("kind").is_some();
            if !creates && !existing.iter().any(|e| e == name.as_ref()) {
                let hint = did_you_mean(name, existing.iter().map(String::as_str))
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                return Some(format!("the pipeline has no {what} `{name}`{hint}"));
            }
        }
    }
    None
}

/// Deep-merges `edit` into `root`; leaves of `edit` replace those of `root`.
fn merge<'a>(root: &mut DeTable<'a>, edit: DeTable<'a>) {
    for (key, value) in edit {
        let existing = root.get_mut(key.get_ref().as_ref());
        match (existing, value.get_ref().is_table()) {
            (Some(existing), true) if existing.get_ref().is_table() => {
                if let (DeValue::Table(target), DeValue::Table(source)) =
                    (existing.get_mut(), value.into_inner())
                {
                    merge(target, source);
                }
            }
            _ => {
                root.insert(key, value);
            }
        }
    }
}

/// Gives every key and value of an edit the span that points at the edit.
fn respan_table<'a>(table: DeTable<'a>, span: &Range<usize>) -> DeTable<'a> {
    table
        .into_iter()
        .map(|(key, value)| {
            (
                Spanned::new(span.clone(), key.into_inner()),
                respan_value(value.into_inner(), span),
            )
        })
        .collect()
}

fn respan_value<'a>(value: DeValue<'a>, span: &Range<usize>) -> Spanned<DeValue<'a>> {
    let value = match value {
        DeValue::Table(table) => DeValue::Table(respan_table(table, span)),
        DeValue::Array(array) => DeValue::Array(
            array
                .into_iter()
                .map(|v| respan_value(v.into_inner(), span))
                .collect(),
        ),
        other => other,
    };
    Spanned::new(span.clone(), value)
}

fn set_option<'a>(
    root: &mut DeTable<'a>,
    section: &str,
    entry: &str,
    key: &str,
    value: Spanned<DeValue<'a>>,
) {
    let span = value.span();
    let mut edit = DeTable::new();
    edit.insert(
        Spanned::new(span.clone(), DeString::Owned(key.to_string())),
        value,
    );
    let mut entry_table = DeTable::new();
    entry_table.insert(
        Spanned::new(span.clone(), DeString::Owned(entry.to_string())),
        Spanned::new(span.clone(), DeValue::Table(edit)),
    );
    let mut section_table = DeTable::new();
    section_table.insert(
        Spanned::new(span.clone(), DeString::Owned(section.to_string())),
        Spanned::new(span, DeValue::Table(entry_table)),
    );
    merge(root, section_table);
}

const UNBUILT: &str = "not built because of the errors above";

/// Stands in for an entry that could not be built, so the graph checks still run.
#[derive(Debug)]
struct Unbuilt;

impl Stage for Unbuilt {
    fn kind(&self) -> &'static str {
        "unbuilt"
    }

    fn arity(&self) -> Arity {
        Arity::AtLeast(0)
    }

    fn output_schema(
        &self,
        _: &[arrow_schema::SchemaRef],
    ) -> Result<arrow_schema::SchemaRef, StageError> {
        Err(StageError::Config(UNBUILT.to_string()))
    }

    fn execute(
        &self,
        _: Vec<SendableRecordBatchStream>,
        _: StageContext,
    ) -> Result<SendableRecordBatchStream, StageError> {
        Err(StageError::Config(UNBUILT.to_string()))
    }

    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of `key` in `text` (a one-key TOML table).
    fn value_of<'a>(text: &'a str, key: &str) -> Spanned<DeValue<'a>> {
        let table = DeTable::parse(text).expect("valid TOML");
        table.get_ref().get(key).expect("the key").clone()
    }

    #[test]
    fn a_character_of_a_plain_string_is_pointed_at_and_other_values_whole() {
        let text = "where = \"a > 1 AND é >\"";
        let value = value_of(text, "where");
        let whole = value.span();
        // Character 1 is `a`, just after the quote; character 11 is `é` (two bytes).
        let at = |character| Some(ValuePosition::character(character));
        assert_eq!(
            character_span(&value, at(1).as_ref()),
            whole.start + 1..whole.start + 2
        );
        let e = text.find('é').expect("é");
        assert_eq!(character_span(&value, at(11).as_ref()), e..e + 2);
        assert_eq!(character_span(&value, None), whole);
        assert_eq!(character_span(&value, at(0).as_ref()), whole);
        assert_eq!(character_span(&value, at(99).as_ref()), whole);
        // An escape makes characters and bytes differ: the whole value.
        let escaped = value_of("where = \"x = \\\"y\\\"\"", "where");
        assert_eq!(character_span(&escaped, at(3).as_ref()), escaped.span());
        let number = value_of("where = 3", "where");
        assert_eq!(character_span(&number, at(1).as_ref()), number.span());

        // A string in nested arrays: the expression of the second [name, expression] pair.
        let text = "criteria = [[\"a\", \"x > 1\"], [\"b\", \"y > 2\"]]";
        let criteria = value_of(text, "criteria");
        let y = text.find('y').expect("y");
        let second = ValuePosition {
            path: vec![1, 1],
            character: 1,
        };
        assert_eq!(character_span(&criteria, Some(&second)), y..y + 1);
        let beyond = ValuePosition {
            path: vec![5, 1],
            character: 1,
        };
        assert_eq!(character_span(&criteria, Some(&beyond)), criteria.span());
    }
}
