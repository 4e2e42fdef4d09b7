//! The one error type of the crate.

/// Why a template could not be loaded or a document not rendered.
///
/// `TemplateSyntax` is only returned by [`Template::from_source`](crate::Template::from_source);
/// the others can come from loading (which renders sample documents to check the template)
/// or from [`render`](crate::render).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PdfError {
    /// The template does not parse as a minijinja template.
    #[error("template {template}, line {line}: {message}")]
    TemplateSyntax {
        /// The name the template was loaded under, e.g. its path.
        template: String,
        /// 1-based line in the template source.
        line: usize,
        message: String,
    },
    /// The template parsed but failed while rendering (an undefined variable, a bad filter
    /// argument, too much work …).
    #[error("template {template}{}: {message}", line.map(|line| format!(", line {line}")).unwrap_or_default())]
    TemplateRender {
        /// The name the template was loaded under.
        template: String,
        /// 1-based line in the template source, when minijinja knows it.
        line: Option<usize>,
        message: String,
    },
    /// The template's output has a command the layout language does not know.
    #[error("template {template}: layout output line {line}: unknown command `{command}`")]
    UnknownCommand {
        /// The name of the template whose output it is.
        template: String,
        /// 1-based line in the template's output (the layout text that
        /// [`Template::render_layout`](crate::Template::render_layout) returns), not in
        /// the template.
        line: usize,
        command: String,
    },
    /// A known layout command with wrong arguments, or a body not closed by `end`.
    #[error("template {template}: layout output line {line}: {message}")]
    Layout {
        /// The name of the template whose output it is.
        template: String,
        /// 1-based line in the template's output, not in the template.
        line: usize,
        message: String,
    },
}

impl PdfError {
    /// A stable code for logs and API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            PdfError::TemplateSyntax { .. } => "pdf_template_syntax",
            PdfError::TemplateRender { .. } => "pdf_template_render",
            PdfError::UnknownCommand { .. } => "pdf_unknown_layout_command",
            PdfError::Layout { .. } => "pdf_invalid_layout",
        }
    }
}
