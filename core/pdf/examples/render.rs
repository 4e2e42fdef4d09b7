//! Renders a document to a PDF file, to try a template by eye:
//!
//! ```text
//! cargo run -p keel-pdf --example render -- OUT.pdf [DOCUMENT.json [TEMPLATE.jinja]]
//! ```
//!
//! Without a document, `examples/invoice.json` is used; without a template, the built-in.
//! Add `--layout` to print the template's layout text instead (layout errors count its lines).

use std::process::ExitCode;

use keel_pdf::{Document, Template, render};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let print_layout = args.iter().any(|arg| arg == "--layout");
    args.retain(|arg| arg != "--layout");
    let [output, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: render [--layout] OUT.pdf [DOCUMENT.json [TEMPLATE.jinja]]".to_string(),
        );
    };
    let json = match rest.first() {
        Some(path) => std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?,
        None => include_str!("invoice.json").to_string(),
    };
    let document: Document =
        serde_json::from_str(&json).map_err(|error| format!("document: {error}"))?;
    let template = match rest.get(1) {
        Some(path) => {
            let source =
                std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
            Template::from_source(path, &source)
                .map_err(|error| format!("{}: {error}", error.code()))?
        }
        None => Template::builtin(),
    };
    if print_layout {
        let layout = template
            .render_layout(&document)
            .map_err(|error| error.to_string())?;
        for (index, line) in layout.lines().enumerate() {
            println!("{:>5}  {line}", index + 1);
        }
        return Ok(());
    }
    let pdf = render(&document, &template).map_err(|error| format!("{}: {error}", error.code()))?;
    std::fs::write(output, pdf).map_err(|error| format!("{output}: {error}"))
}
