//! How the commands that print data print it: `-o text` (for people, the
//! default), `-o json` (one JSON document on standard output: an object
//! for a report or a summary, an array for a list) or `-o jsonl` (one JSON
//! object per line, for line tools and streams; where a command prints
//! more than one kind of object, each line names its `kind`).
//!
//! Standard output carries the data and nothing else in the JSON forms:
//! counts, hints and progress go to standard error, so `oms … -o json | jq`
//! always reads a whole document.

use serde_json::Value;

/// The output forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Text for people.
    #[default]
    Text,
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Jsonl,
}

/// The `-o` option, shared by every command that prints data.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Output {
    /// Output form: text, json (one document) or jsonl (one object per line).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl Output {
    /// Whether the output is for people.
    pub fn is_text(self) -> bool {
        self.format == Format::Text
    }

    /// Prints one document (a report or a summary) as JSON: in jsonl too
    /// it is one line, so both forms print it alike.
    pub fn document(self, value: &Value) {
        println!("{value}");
    }

    /// Prints a list: an array in json, a line per item in jsonl. Text is
    /// each command's own form; here it falls back to jsonl's lines.
    pub fn list(self, items: Vec<Value>) {
        match self.format {
            Format::Json => println!("{}", Value::Array(items)),
            Format::Jsonl | Format::Text => {
                for item in items {
                    println!("{item}");
                }
            }
        }
    }

    /// A hint or a count: on standard output for people, on standard error
    /// beside JSON, so that it never breaks a document.
    pub fn note(self, line: &str) {
        if self.is_text() {
            println!("{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

/// `value` with `"kind": kind` added, for jsonl lines of a command that
/// prints more than one kind of object.
pub fn with_kind(kind: &str, mut value: Value) -> Value {
    if let Value::Object(fields) = &mut value {
        fields.insert("kind".into(), Value::String(kind.to_owned()));
    }
    value
}

/// The last line of a plan shown instead of a change (`--execute` absent).
pub const DRY_RUN: &str = "dry run: add --execute to do it";
