//! A host's own template: used when loaded, refused at load when broken.

mod common;

use common::{Pdf, invoice};
use keel_pdf::{BUILTIN_NAME, BUILTIN_SOURCE, PdfError, Template, render};

const HOST_TEMPLATE: &str = r#"{# A host's minimal theme. #}
every-page
  font helvetica 8
  page-number center 297.5 820 "— {page} —"
end
font helvetica-bold 18
text 50 80 {{ "Acme Cloud · " ~ number }}
font helvetica 10
{% for line in lines %}
block 14
  text 50 10 {{ line.description }}
  text-right 545 10 {{ line.amount }}
end
{% endfor %}
{% for row in totals if row.strong %}
text-right 545 760 {{ row.label ~ ": " ~ row.amount }}
{% endfor %}
"#;

#[test]
fn a_host_template_is_used_instead_of_the_builtin() {
    let template =
        Template::from_source("themes/acme/pdf/invoice.jinja", HOST_TEMPLATE).expect("loads");
    assert_eq!(template.name(), "themes/acme/pdf/invoice.jinja");
    let pdf = Pdf::parse(render(&invoice(2), &template).unwrap());
    let texts = pdf.texts(0);
    assert!(
        texts.contains(&r"Acme Cloud \xB7 INV-2026-00042".to_string()),
        "{texts:#?}"
    );
    assert!(texts.contains(&r"\x97 1 \x97".to_string()), "{texts:#?}");
    assert!(
        texts.contains(&"Balance due: 1,730.16 USD".to_string()),
        "{texts:#?}"
    );
    assert!(
        !texts.contains(&"INVOICE".to_string()),
        "the built-in did not run"
    );
}

#[test]
fn the_builtin_source_loads_under_its_name_and_a_copy_renders_the_same() {
    assert_eq!(Template::builtin().name(), BUILTIN_NAME);
    let copy = Template::from_source(BUILTIN_NAME, BUILTIN_SOURCE).unwrap();
    let document = invoice(5);
    assert_eq!(
        render(&document, &copy).unwrap(),
        render(&document, &Template::builtin()).unwrap()
    );
}

#[test]
fn a_syntax_error_in_an_override_is_reported_at_load_with_its_line() {
    let source = "font helvetica 9\ntext 50 50 {{ number }}\n{% for line in lines %}\ntext 50 60 {{ line.amount }\n{% endfor %}\n";
    let error = Template::from_source("theme/pdf/invoice.jinja", source).unwrap_err();
    let PdfError::TemplateSyntax {
        template: name,
        line,
        message,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(name, "theme/pdf/invoice.jinja");
    assert_eq!(*line, 4);
    assert!(!message.is_empty());
    assert_eq!(error.code(), "pdf_template_syntax");
    let shown = error.to_string();
    assert!(
        shown.starts_with("template theme/pdf/invoice.jinja, line 4: "),
        "{shown}"
    );
}

#[test]
fn an_unclosed_tag_is_a_syntax_error_too() {
    let error = Template::from_source("t.jinja", "{% if number %}\ntext 1 2 \"x\"\n").unwrap_err();
    assert_eq!(error.code(), "pdf_template_syntax", "{error:?}");
}

#[test]
fn an_unknown_layout_command_is_reported_at_load_with_the_output_line() {
    let source =
        "font helvetica 9\n\n{% if kind == 'invoice' %}\nbarcode 50 50 {{ number }}\n{% endif %}\n";
    let error = Template::from_source("t.jinja", source).unwrap_err();
    assert_eq!(
        error,
        PdfError::UnknownCommand {
            template: "t.jinja".to_string(),
            line: 3,
            command: "barcode".to_string()
        }
    );
    assert_eq!(error.code(), "pdf_unknown_layout_command");
    assert_eq!(
        error.to_string(),
        "template t.jinja: layout output line 3: unknown command `barcode`"
    );
}

#[test]
fn a_bad_layout_argument_is_reported_at_load() {
    let error =
        Template::from_source("t.jinja", "text 50 {{ number }} {{ number }}\n").unwrap_err();
    let PdfError::Layout {
        template,
        line,
        message,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!((template.as_str(), *line), ("t.jinja", 1));
    assert!(message.contains("Y must be a number"), "{message}");
    assert_eq!(error.code(), "pdf_invalid_layout");
}

#[test]
fn layout_the_samples_do_not_reach_fails_at_render_with_the_output_line() {
    let source = "text 1 2 {{ number }}\n{% if number == 'INV-2026-00042' %}\nqr-code {{ number }}\n{% endif %}\n";
    let template =
        Template::from_source("t.jinja", source).expect("the samples never take the branch");
    let error = render(&invoice(1), &template).unwrap_err();
    assert_eq!(
        error,
        PdfError::UnknownCommand {
            template: "t.jinja".to_string(),
            line: 2,
            command: "qr-code".to_string()
        }
    );
    let layout = template.render_layout(&invoice(1)).unwrap();
    assert_eq!(layout.lines().nth(1), Some(r#"qr-code "INV-2026-00042""#));
}

#[test]
fn a_template_failing_on_one_document_gives_a_render_error() {
    let source =
        "text 1 2 {{ number }}\n{% if lines|length > 50 %}\n{{ lines[0].nope }}\n{% endif %}\n";
    let template = Template::from_source("t.jinja", source).unwrap();
    let error = render(&invoice(60), &template).unwrap_err();
    let PdfError::TemplateRender {
        template: name,
        line,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!((name.as_str(), *line), ("t.jinja", Some(3)));
    assert_eq!(error.code(), "pdf_template_render");
}

#[test]
fn a_template_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<Template>();
    let template = std::sync::Arc::new(Template::builtin());
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let template = template.clone();
            std::thread::spawn(move || render(&invoice(10), &template).unwrap())
        })
        .collect();
    let outputs: Vec<Vec<u8>> = handles
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .collect();
    assert_eq!(outputs[0], outputs[1]);
}
