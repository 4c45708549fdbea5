//! Diagnostics: every problem of a pipeline file, with where it is.

use std::fmt;
use std::ops::Range;

/// Where a problem is: a byte range of the file, or a command-line edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A byte range of the pipeline file.
    File(Range<usize>),
    /// A command-line option (`--set`, `--input`, `--output`), as the user wrote it.
    CommandLine(String),
    /// The file as a whole.
    Whole,
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where.
    pub location: Location,
    /// What is wrong.
    pub message: String,
    /// A hint ("did you mean `picture_threshold_pe`?").
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem at `location`.
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Self {
            location,
            message: message.into(),
            help: None,
        }
    }

    /// Adds a hint.
    pub fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

/// All problems found in one pipeline file.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    /// The file's name as shown to the user.
    pub file: String,
    /// The file's text (to turn byte offsets into lines and columns).
    pub text: String,
    /// The problems, in file order.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// 1-based (line, column) of a location in the file, if it is in the file.
    pub fn line_column(&self, location: &Location) -> Option<(usize, usize)> {
        let Location::File(range) = location else {
            return None;
        };
        let offset = range.start.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Some((line, column))
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there is no problem.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for item in &self.items {
            match (&item.location, self.line_column(&item.location)) {
                (_, Some((line, column))) => {
                    writeln!(f, "{}:{line}:{column}: error: {}", self.file, item.message)?;
                    if let Some(source_line) = self.text.lines().nth(line - 1) {
                        writeln!(f, "{line:>5} | {source_line}")?;
                        writeln!(f, "      | {}^", " ".repeat(column - 1))?;
                    }
                }
                (Location::CommandLine(option), None) => {
                    writeln!(
                        f,
                        "{} (command line `{option}`): error: {}",
                        self.file, item.message
                    )?;
                }
                _ => writeln!(f, "{}: error: {}", self.file, item.message)?,
            }
            if let Some(help) = &item.help {
                writeln!(f, "      = help: {help}")?;
            }
        }
        let n = self.items.len();
        write!(
            f,
            "{n} error{} in {}",
            if n == 1 { "" } else { "s" },
            self.file
        )
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|&(distance, c)| distance <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}
