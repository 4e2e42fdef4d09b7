//! The layout language: parsing a template's output into commands.
//!
//! The language itself is described in the crate documentation. This module only reads
//! it: one command per line, arguments separated by spaces, strings in double quotes.
//! [`flow`](crate::flow) runs the parsed commands.

use crate::error::PdfError;
use crate::fonts::Font;

/// How a string is placed relative to its x coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
    Center,
}

/// A parsed command and the layout line it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Located {
    pub line: usize,
    pub command: Command,
}

/// What is wrong with layout text; [`LayoutError::in_template`] names the template
/// that produced it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LayoutError {
    UnknownCommand { line: usize, command: String },
    Invalid { line: usize, message: String },
}

impl LayoutError {
    pub(crate) fn in_template(self, template: &str) -> PdfError {
        let template = template.to_string();
        match self {
            LayoutError::UnknownCommand { line, command } => PdfError::UnknownCommand {
                template,
                line,
                command,
            },
            LayoutError::Invalid { line, message } => PdfError::Layout {
                template,
                line,
                message,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    // Drawing: allowed anywhere.
    Font {
        font: Font,
        size: f64,
    },
    FillGray(f64),
    StrokeGray(f64),
    LineWidth(f64),
    Text {
        align: Align,
        x: f64,
        y: f64,
        text: String,
    },
    PageNumber {
        align: Align,
        x: f64,
        y: f64,
        format: String,
    },
    Line {
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
    },
    FillRect {
        x: f64,
        y: f64,
        width: f64,
        height: f64,
    },
    StrokeRect {
        x: f64,
        y: f64,
        width: f64,
        height: f64,
    },
    // Pages and flow: top level only.
    Page,
    Flow {
        top: f64,
        bottom: f64,
    },
    Cursor(f64),
    Space(f64),
    Need(f64),
    Block {
        height: f64,
        body: Vec<Located>,
    },
    Repeat {
        height: f64,
        body: Vec<Located>,
    },
    RepeatOff,
    EveryPage {
        body: Vec<Located>,
    },
}

impl Command {
    fn draws(&self) -> bool {
        matches!(
            self,
            Command::Font { .. }
                | Command::FillGray(_)
                | Command::StrokeGray(_)
                | Command::LineWidth(_)
                | Command::Text { .. }
                | Command::PageNumber { .. }
                | Command::Line { .. }
                | Command::FillRect { .. }
                | Command::StrokeRect { .. }
        )
    }
}

/// The commands that open a body closed by `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Block,
    Repeat,
    EveryPage,
}

impl BodyKind {
    fn keyword(self) -> &'static str {
        match self {
            BodyKind::Block => "block",
            BodyKind::Repeat => "repeat",
            BodyKind::EveryPage => "every-page",
        }
    }
}

/// A body being collected between its opening command and `end`.
struct Open {
    line: usize,
    kind: BodyKind,
    height: f64,
    body: Vec<Located>,
}

/// Parses layout text into top-level commands; blocks carry their bodies.
pub(crate) fn parse(source: &str) -> Result<Vec<Located>, LayoutError> {
    let mut program = Vec::new();
    let mut open: Option<Open> = None;
    for (index, raw) in source.lines().enumerate() {
        let line = index + 1;
        let tokens = tokenize(raw, line)?;
        let Some((first, arguments)) = tokens.split_first() else {
            continue;
        };
        let Token::Word(keyword) = first else {
            return Err(layout(
                line,
                "a line must start with a command, not a string",
            ));
        };
        let mut args = Args {
            line,
            command: keyword,
            tokens: arguments,
            next: 0,
        };
        let opens = match keyword.as_str() {
            "block" => Some(BodyKind::Block),
            "repeat" if args.peek_word() != Some("off") => Some(BodyKind::Repeat),
            "every-page" => Some(BodyKind::EveryPage),
            _ => None,
        };
        if let (Some(kind), Some(outer)) = (opens, &open) {
            return Err(layout(
                line,
                format!(
                    "`{}` inside the `{}` opened on line {}; close it with `end` first",
                    kind.keyword(),
                    outer.kind.keyword(),
                    outer.line
                ),
            ));
        }
        if let Some(kind) = opens {
            let height = match kind {
                BodyKind::EveryPage => 0.0,
                BodyKind::Block | BodyKind::Repeat => args.length("HEIGHT")?,
            };
            args.finish()?;
            open = Some(Open {
                line,
                kind,
                height,
                body: Vec::new(),
            });
            continue;
        }
        if keyword == "end" {
            args.finish()?;
            let Some(Open {
                line: opened,
                kind,
                height,
                body,
            }) = open.take()
            else {
                return Err(layout(
                    line,
                    "`end` without an open `block`, `repeat` or `every-page`",
                ));
            };
            let command = match kind {
                BodyKind::Block => Command::Block { height, body },
                BodyKind::Repeat => Command::Repeat { height, body },
                BodyKind::EveryPage => Command::EveryPage { body },
            };
            program.push(Located {
                line: opened,
                command,
            });
            continue;
        }
        let command = match keyword.as_str() {
            "repeat" => {
                args.next += 1; // `off`
                Command::RepeatOff
            }
            _ => parse_command(&mut args)?,
        };
        args.finish()?;
        match &mut open {
            Some(outer) if !command.draws() => {
                return Err(layout(
                    line,
                    format!(
                        "`{keyword}` is not allowed inside `{}` (only drawing commands are)",
                        outer.kind.keyword()
                    ),
                ));
            }
            Some(outer) => outer.body.push(Located { line, command }),
            None => program.push(Located { line, command }),
        }
    }
    if let Some(unclosed) = open {
        return Err(layout(
            unclosed.line,
            format!("`{}` is never closed by `end`", unclosed.kind.keyword()),
        ));
    }
    Ok(program)
}

fn parse_command(args: &mut Args<'_>) -> Result<Command, LayoutError> {
    let command = match args.command.as_str() {
        "page" => Command::Page,
        "font" => {
            let name = args.word("NAME")?;
            let Some(font) = Font::from_name(name) else {
                return Err(
                    args.error(format!("unknown font `{name}` (helvetica, helvetica-bold)"))
                );
            };
            let size = args.number("SIZE")?;
            if size <= 0.0 {
                return Err(args.error("SIZE must be above 0"));
            }
            Command::Font { font, size }
        }
        "fill-gray" => Command::FillGray(args.gray()?),
        "stroke-gray" => Command::StrokeGray(args.gray()?),
        "line-width" => Command::LineWidth(args.length("WIDTH")?),
        "text" | "text-right" | "text-center" => {
            let align = match args.command.as_str() {
                "text" => Align::Left,
                "text-right" => Align::Right,
                _ => Align::Center,
            };
            let (x, y) = (args.number("X")?, args.number("Y")?);
            Command::Text {
                align,
                x,
                y,
                text: args.string("STRING")?,
            }
        }
        "page-number" => {
            let align = match args.word("ALIGN")? {
                "left" => Align::Left,
                "right" => Align::Right,
                "center" => Align::Center,
                other => {
                    return Err(args.error(format!(
                        "ALIGN must be left, right or center, not `{other}`"
                    )));
                }
            };
            let (x, y) = (args.number("X")?, args.number("Y")?);
            Command::PageNumber {
                align,
                x,
                y,
                format: args.string("FORMAT")?,
            }
        }
        "line" => Command::Line {
            x1: args.number("X1")?,
            y1: args.number("Y1")?,
            x2: args.number("X2")?,
            y2: args.number("Y2")?,
        },
        "fill-rect" | "stroke-rect" => {
            let (x, y) = (args.number("X")?, args.number("Y")?);
            let (width, height) = (args.length("WIDTH")?, args.length("HEIGHT")?);
            if args.command == "fill-rect" {
                Command::FillRect {
                    x,
                    y,
                    width,
                    height,
                }
            } else {
                Command::StrokeRect {
                    x,
                    y,
                    width,
                    height,
                }
            }
        }
        "flow" => {
            let (top, bottom) = (args.number("TOP")?, args.number("BOTTOM")?);
            if bottom <= top {
                return Err(args.error("BOTTOM must be below TOP"));
            }
            Command::Flow { top, bottom }
        }
        "cursor" => Command::Cursor(args.number("Y")?),
        "space" => Command::Space(args.length("HEIGHT")?),
        "need" => Command::Need(args.length("HEIGHT")?),
        _ => {
            return Err(LayoutError::UnknownCommand {
                line: args.line,
                command: args.command.clone(),
            });
        }
    };
    Ok(command)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
}

/// Splits one line into words and quoted strings. A line whose first non-blank character
/// is `#` is a comment.
fn tokenize(raw: &str, line: usize) -> Result<Vec<Token>, LayoutError> {
    let mut tokens = Vec::new();
    let mut chars = raw.trim_start().chars().peekable();
    if chars.peek() == Some(&'#') {
        return Ok(tokens);
    }
    while let Some(&next) = chars.peek() {
        if next.is_whitespace() {
            chars.next();
        } else if next == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    None => return Err(layout(line, "a string is not closed by `\"`")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(escaped @ ('"' | '\\')) => text.push(escaped),
                        Some('n') => text.push('\n'),
                        other => {
                            let shown =
                                other.map_or(String::from("end of line"), |c| format!("`{c}`"));
                            return Err(layout(
                                line,
                                format!(
                                    "in a string, `\\` must be followed by `\"`, `\\` or `n`, not {shown}"
                                ),
                            ));
                        }
                    },
                    Some(other) => text.push(other),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(layout(
                    line,
                    "a closing `\"` must be followed by a space or the end of the line",
                ));
            }
            tokens.push(Token::Str(text));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '"' {
                    return Err(layout(
                        line,
                        format!("`\"` inside the word `{word}…`; put a space before a string"),
                    ));
                }
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        }
    }
    Ok(tokens)
}

/// The arguments of one command, consumed left to right.
struct Args<'a> {
    line: usize,
    command: &'a String,
    tokens: &'a [Token],
    next: usize,
}

impl<'a> Args<'a> {
    fn error(&self, message: impl std::fmt::Display) -> LayoutError {
        layout(self.line, format!("`{}`: {message}", self.command))
    }

    fn take(&mut self, name: &str) -> Result<&'a Token, LayoutError> {
        let token = self
            .tokens
            .get(self.next)
            .ok_or_else(|| self.error(format!("missing {name}")))?;
        self.next += 1;
        Ok(token)
    }

    fn peek_word(&self) -> Option<&'a str> {
        match self.tokens.get(self.next) {
            Some(Token::Word(word)) => Some(word),
            _ => None,
        }
    }

    fn word(&mut self, name: &str) -> Result<&'a str, LayoutError> {
        match self.take(name)? {
            Token::Word(word) => Ok(word),
            Token::Str(_) => {
                Err(self.error(format!("{name} must be a bare word, not a quoted string")))
            }
        }
    }

    fn number(&mut self, name: &str) -> Result<f64, LayoutError> {
        let word = match self.take(name)? {
            Token::Word(word) => word,
            Token::Str(text) => {
                return Err(self.error(format!(
                    "{name} must be a number, not the string \"{text}\""
                )));
            }
        };
        match word.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err(self.error(format!("{name} must be a number, not `{word}`"))),
        }
    }

    /// A number that may not be negative (a size, a width, a height).
    fn length(&mut self, name: &str) -> Result<f64, LayoutError> {
        let value = self.number(name)?;
        if value < 0.0 {
            return Err(self.error(format!("{name} must not be negative")));
        }
        Ok(value)
    }

    fn gray(&mut self) -> Result<f64, LayoutError> {
        let value = self.number("GRAY")?;
        if !(0.0..=1.0).contains(&value) {
            return Err(self.error("GRAY must be from 0 (black) to 1 (white)"));
        }
        Ok(value)
    }

    fn string(&mut self, name: &str) -> Result<String, LayoutError> {
        match self.take(name)? {
            Token::Str(text) => Ok(text.clone()),
            Token::Word(word) => Err(self.error(format!(
                "{name} must be a quoted string, not `{word}` (print it with {{{{ … }}}}, which quotes it)"
            ))),
        }
    }

    fn finish(&self) -> Result<(), LayoutError> {
        if self.next < self.tokens.len() {
            let extra = self.tokens.len() - self.next;
            return Err(self.error(format!("{extra} argument(s) too many")));
        }
        Ok(())
    }
}

fn layout(line: usize, message: impl Into<String>) -> LayoutError {
    LayoutError::Invalid {
        line,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(source: &str) -> Command {
        let mut program = parse(source).expect("parses");
        assert_eq!(program.len(), 1, "{program:?}");
        program.remove(0).command
    }

    fn error(source: &str) -> LayoutError {
        parse(source).expect_err("is refused")
    }

    #[test]
    fn commands_parse_with_their_arguments() {
        assert_eq!(
            one("font helvetica-bold 12.5"),
            Command::Font {
                font: Font::HelveticaBold,
                size: 12.5
            }
        );
        assert_eq!(
            one(r#"  text-right 545 -3 "a \"quoted\" \\ back""#),
            Command::Text {
                align: Align::Right,
                x: 545.0,
                y: -3.0,
                text: r#"a "quoted" \ back"#.into()
            }
        );
        assert_eq!(
            one(r#"page-number center 297.5 820 "Page {page} of {pages}""#),
            Command::PageNumber {
                align: Align::Center,
                x: 297.5,
                y: 820.0,
                format: "Page {page} of {pages}".into()
            }
        );
        assert_eq!(
            one("line 1 2 3 4"),
            Command::Line {
                x1: 1.0,
                y1: 2.0,
                x2: 3.0,
                y2: 4.0
            }
        );
        assert_eq!(one("repeat off"), Command::RepeatOff);
        assert_eq!(
            one("flow 50 790"),
            Command::Flow {
                top: 50.0,
                bottom: 790.0
            }
        );
        assert_eq!(one("need 120"), Command::Need(120.0));
    }

    #[test]
    fn blank_lines_and_comments_are_skipped_and_bodies_nest_once() {
        let program = parse(
            "\n# a comment\nblock 20\n  text 0 10 \"x\"\n  line 0 20 10 20\nend\n\nspace 4\n",
        )
        .unwrap();
        assert_eq!(program.len(), 2);
        assert_eq!(program[0].line, 3);
        let Command::Block { height, body } = &program[0].command else {
            panic!("{program:?}")
        };
        assert_eq!(*height, 20.0);
        assert_eq!(
            body.iter().map(|located| located.line).collect::<Vec<_>>(),
            [4, 5]
        );
    }

    #[test]
    fn an_unknown_command_names_its_line() {
        assert_eq!(
            error("page\n\nbarcode 1 2"),
            LayoutError::UnknownCommand {
                line: 3,
                command: "barcode".into()
            }
        );
    }

    #[test]
    fn bad_arguments_and_blocks_are_refused_with_their_line() {
        let rows = [
            ("text 1 2", 1, "missing STRING"),
            ("text 1 2 bare", 1, "must be a quoted string"),
            ("text x 2 \"a\"", 1, "X must be a number"),
            ("text 1 2 \"a\" \"b\"", 1, "too many"),
            ("text 1 2 \"open", 1, "not closed"),
            ("text 1 2 \"a\\q\"", 1, "must be followed by"),
            ("text 1 2 \"a\"b", 1, "followed by a space"),
            ("font courier 9", 1, "unknown font"),
            ("font helvetica 0", 1, "above 0"),
            ("fill-gray 2", 1, "from 0"),
            ("space -1", 1, "negative"),
            ("flow 700 100", 1, "below TOP"),
            ("\"text\" 1 2", 1, "must start with a command"),
            ("end", 1, "without an open"),
            ("block 10\npage\nend", 2, "not allowed inside `block`"),
            (
                "block 10\nblock 5\nend\nend",
                2,
                "inside the `block` opened on line 1",
            ),
            ("text 0 0 \"a\"\nevery-page\n", 2, "never closed"),
        ];
        for (source, line, needle) in rows {
            match error(source) {
                LayoutError::Invalid { line: got, message } => {
                    assert_eq!(got, line, "{source:?}: {message}");
                    assert!(message.contains(needle), "{source:?}: {message}");
                }
                other => panic!("{source:?}: {other:?}"),
            }
        }
    }
}
