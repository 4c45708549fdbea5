//! The Arrow schemas of cascade's data levels, loaded from the declarative files in
//! `schemas/` at the workspace root, which are the single source of truth.
//!
//! Each level file lists its fields with name, type, unit and description. The files are
//! embedded at compile time, parsed once, and turned into Arrow [`Schema`]s whose field
//! metadata carries `unit` and `description`, so every Parquet file cascade writes is
//! self-describing. Stages ask for fields by name (`Level::Dl1Parameters.field("hillas_psi")`)
//! instead of repeating types in Rust.
//!
//! ```
//! use cascade_schema::Level;
//! let schema = Level::Dl1Parameters.schema();
//! let psi = schema.field_with_name("hillas_psi").unwrap();
//! assert_eq!(psi.metadata()["unit"], "deg");
//! ```

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};
use serde::Deserialize;

/// A data level of the processing chain, each with one schema file in `schemas/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// The telescopes of the array (`schemas/subarray.toml`).
    Subarray,
    /// Camera geometries, one row per pixel (`schemas/camera_geometry.toml`).
    CameraGeometry,
    /// Raw telescope events with ADC waveforms (`schemas/r0.toml`).
    R0,
    /// Calibrated telescope events with waveforms in p.e. (`schemas/r1.toml`).
    R1,
    /// R1 as CTAO's camera data stream stores it: `uint16` samples with a scale and an
    /// offset (`schemas/r1_quantized.toml`).
    R1Quantized,
    /// Calibrated images, peak times and cleaning masks (`schemas/dl1_images.toml`).
    Dl1Images,
    /// Image parameters (`schemas/dl1_parameters.toml`).
    Dl1Parameters,
    /// Reconstructed showers (`schemas/dl2_shower.toml`).
    Dl2Shower,
    /// Simulated shower truth (`schemas/simulation_shower.toml`).
    SimulationShower,
}

/// Metadata key holding a field's unit (empty when dimensionless).
pub const UNIT_KEY: &str = "unit";
/// Metadata key holding a field's description.
pub const DESCRIPTION_KEY: &str = "description";

impl Level {
    /// Every level, in processing order.
    pub const ALL: [Level; 9] = [
        Level::Subarray,
        Level::CameraGeometry,
        Level::R0,
        Level::R1,
        Level::R1Quantized,
        Level::Dl1Images,
        Level::Dl1Parameters,
        Level::Dl2Shower,
        Level::SimulationShower,
    ];

    /// The level's name, as used on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Level::Subarray => "subarray",
            Level::CameraGeometry => "camera_geometry",
            Level::R0 => "r0",
            Level::R1 => "r1",
            Level::R1Quantized => "r1_quantized",
            Level::Dl1Images => "dl1_images",
            Level::Dl1Parameters => "dl1_parameters",
            Level::Dl2Shower => "dl2_shower",
            Level::SimulationShower => "simulation_shower",
        }
    }

    /// Looks a level up by name.
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.name() == name)
    }

    /// One-line description of the level from its schema file.
    pub fn description(self) -> &'static str {
        &loaded(self).description
    }

    /// The Arrow schema of the level.
    pub fn schema(self) -> SchemaRef {
        loaded(self).schema.clone()
    }

    /// The field `name` of this level.
    ///
    /// # Panics
    /// When the level has no such field: this is a programming error in a stage (the
    /// schema files are compiled in and checked by this crate's tests).
    pub fn field(self, name: &str) -> FieldRef {
        let level = loaded(self);
        match level.index.get(name) {
            Some(&i) => level.schema.fields()[i].clone(),
            None => panic!("schema level {} has no field {name}", self.name()),
        }
    }

    /// The fields `names` of this level, in the given order (see [`Level::field`]).
    pub fn fields(self, names: &[&str]) -> Vec<FieldRef> {
        names.iter().map(|name| self.field(name)).collect()
    }

    /// The field declarations (name, type string, unit, description) as written in the file.
    pub fn declarations(self) -> &'static [FieldDeclaration] {
        &loaded(self).declarations
    }

    /// The raw text of the schema file.
    pub fn source_text(self) -> &'static str {
        source_text(self)
    }
}

/// The reference page of every data level (docs/schemas.md), generated from the files.
pub fn markdown_reference() -> String {
    let mut page = String::from(
        "# Data levels\n\nGenerated from `schemas/*.toml` (the single source of truth) by \
         `cascade schema --markdown`; a test fails when this page is stale.\n",
    );
    for level in Level::ALL {
        page.push_str(&format!(
            "\n## `{}`\n\n{}\n\n",
            level.name(),
            level.description()
        ));
        page.push_str("| column | type | unit | description |\n|---|---|---|---|\n");
        for field in level.declarations() {
            page.push_str(&format!(
                "| `{}` | `{}` | {} | {} |\n",
                field.name, field.type_name, field.unit, field.description
            ));
        }
    }
    page
}

/// One field as declared in a schema file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FieldDeclaration {
    /// Column name (ctapipe's where ctapipe has the quantity).
    pub name: String,
    /// Type, e.g. `float64`, `list<float32>`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Unit (`m`, `deg`, `p.e.`, `ns`, ...), empty when dimensionless.
    pub unit: String,
    /// What the column holds.
    pub description: String,
    /// Whether the column may hold nulls (default false; NaN is used for failed floats).
    #[serde(default)]
    pub nullable: bool,
}

/// Errors in a schema file (only possible if a file in `schemas/` is edited wrongly;
/// this crate's tests parse every file).
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file is not valid TOML or does not have the expected keys.
    #[error("schemas/{file}.toml: {source}")]
    Parse {
        /// Level name.
        file: &'static str,
        /// Parser error.
        source: toml::de::Error,
    },
    /// A type string is not understood.
    #[error("schemas/{file}.toml: field {field}: unknown type {type_name:?}")]
    UnknownType {
        /// Level name.
        file: &'static str,
        /// Field name.
        field: String,
        /// The type string.
        type_name: String,
    },
    /// The `name` inside the file differs from the file name.
    #[error("schemas/{file}.toml declares name = {name:?}")]
    NameMismatch {
        /// Level name (file stem).
        file: &'static str,
        /// The name written in the file.
        name: String,
    },
    /// The same field is declared twice.
    #[error("schemas/{file}.toml: field {field} declared twice")]
    Duplicate {
        /// Level name.
        file: &'static str,
        /// Field name.
        field: String,
    },
}

/// Parses a type string of a schema file (`float32`, `list<uint16>`, ...).
pub fn parse_type(type_name: &str) -> Option<DataType> {
    if let Some(inner) = type_name
        .strip_prefix("list<")
        .and_then(|s| s.strip_suffix('>'))
    {
        let item = parse_type(inner)?;
        return Some(DataType::List(Arc::new(Field::new("item", item, false))));
    }
    Some(match type_name {
        "bool" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float32" => DataType::Float32,
        "float64" => DataType::Float64,
        "utf8" => DataType::Utf8,
        _ => return None,
    })
}

/// Parses a schema file's text into its declarations and Arrow schema.
pub fn parse_level_file(
    file: &'static str,
    text: &str,
) -> Result<(String, Vec<FieldDeclaration>, Schema), SchemaError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct LevelFile {
        name: String,
        description: String,
        fields: Vec<FieldDeclaration>,
    }
    let parsed: LevelFile =
        toml::from_str(text).map_err(|source| SchemaError::Parse { file, source })?;
    if parsed.name != file {
        return Err(SchemaError::NameMismatch {
            file,
            name: parsed.name,
        });
    }
    let mut fields = Vec::with_capacity(parsed.fields.len());
    for (i, decl) in parsed.fields.iter().enumerate() {
        if parsed.fields[..i].iter().any(|d| d.name == decl.name) {
            return Err(SchemaError::Duplicate {
                file,
                field: decl.name.clone(),
            });
        }
        let data_type = parse_type(&decl.type_name).ok_or_else(|| SchemaError::UnknownType {
            file,
            field: decl.name.clone(),
            type_name: decl.type_name.clone(),
        })?;
        let metadata = HashMap::from([
            (UNIT_KEY.to_string(), decl.unit.clone()),
            (DESCRIPTION_KEY.to_string(), decl.description.clone()),
        ]);
        fields.push(Field::new(&decl.name, data_type, decl.nullable).with_metadata(metadata));
    }
    Ok((parsed.description, parsed.fields, Schema::new(fields)))
}

struct LoadedLevel {
    description: String,
    declarations: Vec<FieldDeclaration>,
    schema: SchemaRef,
    index: HashMap<String, usize>,
}

fn source_text(level: Level) -> &'static str {
    match level {
        Level::Subarray => include_str!("../../../schemas/subarray.toml"),
        Level::CameraGeometry => include_str!("../../../schemas/camera_geometry.toml"),
        Level::R0 => include_str!("../../../schemas/r0.toml"),
        Level::R1 => include_str!("../../../schemas/r1.toml"),
        Level::R1Quantized => include_str!("../../../schemas/r1_quantized.toml"),
        Level::Dl1Images => include_str!("../../../schemas/dl1_images.toml"),
        Level::Dl1Parameters => include_str!("../../../schemas/dl1_parameters.toml"),
        Level::Dl2Shower => include_str!("../../../schemas/dl2_shower.toml"),
        Level::SimulationShower => include_str!("../../../schemas/simulation_shower.toml"),
    }
}

fn loaded(level: Level) -> &'static LoadedLevel {
    static LEVELS: OnceLock<Vec<LoadedLevel>> = OnceLock::new();
    let levels = LEVELS.get_or_init(|| {
        Level::ALL
            .iter()
            .map(
                |&level| match parse_level_file(level.name(), source_text(level)) {
                    Ok((description, declarations, schema)) => {
                        let index = declarations
                            .iter()
                            .enumerate()
                            .map(|(i, d)| (d.name.clone(), i))
                            .collect();
                        LoadedLevel {
                            description,
                            declarations,
                            schema: Arc::new(schema),
                            index,
                        }
                    }
                    // The files are compiled in; `every_schema_file_parses` keeps them valid.
                    Err(error) => panic!("{error}"),
                },
            )
            .collect()
    });
    let position = Level::ALL
        .iter()
        .position(|&l| l == level)
        .unwrap_or_default();
    &levels[position]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_file_parses_and_names_match() {
        for level in Level::ALL {
            let (_, decls, schema) = parse_level_file(level.name(), level.source_text()).unwrap();
            assert!(!decls.is_empty(), "{} has no fields", level.name());
            assert_eq!(schema.fields().len(), decls.len());
            assert!(
                level
                    .source_text()
                    .contains(&format!("name = \"{}\"", level.name()))
            );
            assert_eq!(Level::from_name(level.name()), Some(level));
        }
    }

    #[test]
    fn schema_directory_holds_exactly_the_known_levels() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let mut known: Vec<String> = Level::ALL
            .iter()
            .map(|l| format!("{}.toml", l.name()))
            .collect();
        known.sort();
        assert_eq!(on_disk, known);
    }

    #[test]
    fn ctapipe_names_and_units() {
        let hillas = Level::Dl1Parameters.field("hillas_fov_lon");
        assert_eq!(hillas.data_type(), &DataType::Float64);
        assert_eq!(hillas.metadata()[UNIT_KEY], "deg");
        assert_eq!(
            Level::Dl1Parameters.field("tel_id").data_type(),
            &DataType::Int16
        );
        let image = Level::Dl1Images.field("image");
        assert_eq!(image.metadata()[UNIT_KEY], "p.e.");
        assert!(
            matches!(image.data_type(), DataType::List(item) if item.data_type() == &DataType::Float32)
        );
    }

    #[test]
    fn docs_page_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas.md");
        let page = std::fs::read_to_string(&path).unwrap_or_default();
        if page != markdown_reference() {
            if std::env::var_os("CASCADE_BLESS").is_some() {
                std::fs::write(&path, markdown_reference()).unwrap();
            } else {
                panic!(
                    "docs/schemas.md is stale: run `CASCADE_BLESS=1 cargo test -p cascade-schema`"
                );
            }
        }
    }

    #[test]
    fn bad_files_are_reported() {
        let unknown = "name = \"x\"\ndescription = \"\"\n[[fields]]\nname = \"a\"\ntype = \"float128\"\nunit = \"\"\ndescription = \"\"\n";
        assert!(matches!(
            parse_level_file("x", unknown),
            Err(SchemaError::UnknownType { .. })
        ));
        let dup = "name = \"x\"\ndescription = \"\"\n[[fields]]\nname = \"a\"\ntype = \"bool\"\nunit = \"\"\ndescription = \"\"\n[[fields]]\nname = \"a\"\ntype = \"bool\"\nunit = \"\"\ndescription = \"\"\n";
        assert!(matches!(
            parse_level_file("x", dup),
            Err(SchemaError::Duplicate { .. })
        ));
        assert!(parse_type("list<list<int8>>").is_some());
        assert!(parse_type("list<>").is_none());
    }
}
